package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/internal/smtptest"
	"github.com/latchkeyhq/latchkey/session"
)

// accountsFile writes a tenants file whose tenants, ids, have accounts.
func accountsFile(t *testing.T, ids ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, id := range ids {
		fmt.Fprintf(&b, `  - id: %s
    name: Accounts test
    origins: [https://app.%[1]s.test]
    cookie: {same_site: none, partitioned: true}
    accounts:
      signup: true
      email_verification: required
      verify_url: https://app.%[1]s.test/verify
      reset_url: https://app.%[1]s.test/reset
`, id)
	}
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// serveOnce runs serve with env and stops it as soon as it listens: it
// returns serve's error and output, and whether it started.
func serveOnce(t *testing.T, env map[string]string) (out string, started bool, err error) {
	t.Helper()
	env["LATCHKEY_ADDR"], env["LATCHKEY_ADMIN_ADDR"] = "127.0.0.1:0", "127.0.0.1:0"
	buf := &proctest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	timer := time.AfterFunc(20*time.Second, func() { t.Error("serve hung"); cancel() })
	defer timer.Stop()
	err = serve(ctx, nil, func(k string) string { return env[k] }, buf, buf, func(net.Addr, net.Addr) { started = true; cancel() })
	return buf.String(), started, err
}

// serveErr returns the start-up error of serve with env, failing the test
// if serve starts.
func serveErr(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	out, started, err := serveOnce(t, env)
	if started {
		t.Fatalf("serve started instead of failing\n%s", out)
	}
	return out, err
}

func TestServeRefusesAccountsWithoutMail(t *testing.T) {
	t.Parallel()
	out, err := serveErr(t, map[string]string{"LATCHKEY_TENANTS_FILE": accountsFile(t, "acme", "globex")})
	if err == nil {
		t.Fatalf("serve = nil, want a start-up error\n%s", out)
	}
	for _, want := range []string{
		`tenant "acme": accounts need mail: set LATCHKEY_SMTP_URL and LATCHKEY_MAIL_FROM`,
		`tenant "globex": accounts need mail: set LATCHKEY_SMTP_URL and LATCHKEY_MAIL_FROM`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestServeRefusesStoredAccountsWithoutMail: a tenant given accounts
// through the admin API (here: a first start with mail) is in Redis, not
// in any file; a replica started without mail must refuse to serve it.
func TestServeRefusesStoredAccountsWithoutMail(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	id := "cmdmail-" + strings.ToLower(rand.Text()[:8])
	redistest.LeavesNoKeyWith(t, c, id)
	prefix := redistest.Prefix(t, c)
	srv := smtptest.Start(t, smtptest.Config{})
	env := func() map[string]string {
		return map[string]string{
			"LATCHKEY_REDIS_URL":    "redis://" + redistest.Addr() + "/0",
			"LATCHKEY_REDIS_PREFIX": prefix,
			"LATCHKEY_COOKIE_KEYS":  "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		}
	}
	first := env()
	first["LATCHKEY_TENANTS_FILE"] = accountsFile(t, id)
	first["LATCHKEY_SMTP_URL"], first["LATCHKEY_MAIL_FROM"] = srv.URL(), "accounts@example.test"
	if out, started, err := serveOnce(t, first); err != nil || !started {
		t.Fatalf("first start, with mail: %v\n%s", err, out)
	}
	out, err := serveErr(t, env())
	if want := fmt.Sprintf("tenant %q: accounts need mail: set LATCHKEY_SMTP_URL and LATCHKEY_MAIL_FROM", id); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second start, without mail: %v, want %q\n%s", err, want, out)
	}
}

func TestServeWithSMTP(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Config{Username: "latchkey", Password: "smtp-s3cret-pass"})
	pwFile := filepath.Join(t.TempDir(), "smtp-password")
	os.WriteFile(pwFile, []byte("smtp-s3cret-pass\n"), 0o600)
	_, adm, out := boot(t, map[string]string{
		"LATCHKEY_TENANTS_FILE":       accountsFile(t, "acme"),
		"LATCHKEY_SMTP_URL":           "smtp://latchkey@" + srv.Addr(),
		"LATCHKEY_SMTP_PASSWORD_FILE": pwFile,
		"LATCHKEY_MAIL_FROM":          "Acme <accounts@acme.test>",
	})
	if !strings.Contains(out.String(), `"msg":"mail goes out through SMTP","server":"`+srv.Addr()+`"`) {
		t.Errorf("no line naming the SMTP server:\n%s", out)
	}
	r, err := http.Get(adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(b), "latchkey_mail_queue_depth 0") {
		t.Errorf("/metrics lacks latchkey_mail_queue_depth")
	}
	logSettled(t, adm, out)
	if strings.Contains(out.String(), "smtp-s3cret-pass") {
		t.Error("the SMTP password reached the log")
	}
}

// TestShutdownDrainsMail: a mail queued before shutdown (its first attempt
// refused with a 451) is delivered before serve returns.
func TestShutdownDrainsMail(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Config{})
	srv.FailNext(451, "try again")
	env := map[string]string{
		"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_ADMIN_ADDR": "127.0.0.1:0",
		"LATCHKEY_TENANTS_FILE": accountsFile(t, "acme"),
		"LATCHKEY_SMTP_URL":     srv.URL(),
		"LATCHKEY_MAIL_FROM":    "accounts@acme.test",
	}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := &proctest.SyncBuffer{}
	lw := newLogWriter(out, defaultLogBuffering)
	defer lw.Close()
	a, err := newApp(cfg, lw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- a.run(ctx, func(net.Addr, net.Addr) {
			// What a signup does through the manager's Mailer.
			if err := a.outbox.Send(context.Background(), session.Mail{Tenant: "acme", Kind: session.MailVerify, To: "new@example.test", Subject: "Verify", Text: "https://app.acme.test/verify#token=x"}); err != nil {
				t.Error(err)
			}
			cancel()
		})
	}()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return")
	}
	if n := len(srv.Messages()); n != 1 || srv.Attempts() != 2 {
		t.Fatalf("%d mails delivered in %d attempts by the time run returned, want 1 in 2\n%s", n, srv.Attempts(), out)
	}
}

func TestDemoMail(t *testing.T) {
	t.Parallel()
	token := "demo-admin-token-1234567890"
	_, adm, out := boot(t, map[string]string{"LATCHKEY_ADMIN_TOKEN": token})
	for _, want := range []string{
		"mails are not sent but printed to this log, each\n  with its link",
		`"msg":"demo: mails are printed to this log, links included, and not sent; set LATCHKEY_SMTP_URL to send them"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	req, _ := http.NewRequest("GET", adm+"/admin/v1/tenants/example", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	r, err := http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("get the demo tenant: %v %v", r, err)
	}
	defer r.Body.Close()
	var got struct{ Accounts *session.AccountsPolicy }
	if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := demoAccounts(defaultDemoOrigin)
	if got.Accounts == nil || got.Accounts.Signup != want.Signup || got.Accounts.EmailVerification != want.EmailVerification ||
		got.Accounts.LoginWithEmail != want.LoginWithEmail || got.Accounts.VerifyURL != "http://localhost:5173/verify" || got.Accounts.ResetURL != "http://localhost:5173/reset" {
		t.Errorf("the demo tenant's accounts = %+v, want %+v", got.Accounts, want)
	}
}

// TestDemoBannerWithSMTP: a demo given an SMTP server sends its mails, and
// says so instead.
func TestDemoBannerWithSMTP(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	printDemo(&b, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, defaultDemoOrigin, "pw", false)
	if s := b.String(); !strings.Contains(s, "sent through LATCHKEY_SMTP_URL") || strings.Contains(s, "printed to this log") {
		t.Errorf("banner:\n%s", s)
	}
}

func TestMailSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("x\n"), 0o600)
	for _, c := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"from without URL", map[string]string{"LATCHKEY_MAIL_FROM": "a@b.test", "LATCHKEY_SMTP_PASSWORD_FILE": pw, "LATCHKEY_SMTP_CA_FILE": pw},
			[]string{"LATCHKEY_MAIL_FROM: only meaningful with LATCHKEY_SMTP_URL", "LATCHKEY_SMTP_PASSWORD_FILE: only meaningful", "LATCHKEY_SMTP_CA_FILE: only meaningful"}},
		{"URL without from", map[string]string{"LATCHKEY_SMTP_URL": "smtp://u:hunter2@mail.example.test"},
			[]string{"LATCHKEY_MAIL_FROM: required with LATCHKEY_SMTP_URL"}},
		{"bad URL", map[string]string{"LATCHKEY_SMTP_URL": "http://u:hunter2@mail.example.test", "LATCHKEY_MAIL_FROM": "nobody"},
			[]string{"LATCHKEY_SMTP_URL: the scheme must be smtp://", `LATCHKEY_MAIL_FROM: "nobody" is not an address`}},
		{"two passwords", map[string]string{"LATCHKEY_SMTP_URL": "smtps://u:hunter2@mail.example.test", "LATCHKEY_MAIL_FROM": "a@b.test", "LATCHKEY_SMTP_PASSWORD_FILE": pw},
			[]string{"LATCHKEY_SMTP_PASSWORD_FILE: LATCHKEY_SMTP_URL holds a password too"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseConfig(nil, func(k string) string { return c.env[k] }, nil)
			if err == nil {
				t.Fatal("parseConfig = nil, want errors")
			}
			for _, want := range c.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error echoes the SMTP password: %v", err)
			}
		})
	}
	t.Run("files", func(t *testing.T) {
		t.Parallel()
		_, err := serveErr(t, map[string]string{
			"LATCHKEY_SMTP_URL": "smtps://u@mail.example.test", "LATCHKEY_MAIL_FROM": "a@b.test",
			"LATCHKEY_SMTP_PASSWORD_FILE": filepath.Join(dir, "missing"), "LATCHKEY_SMTP_CA_FILE": pw,
		})
		for _, want := range []string{"LATCHKEY_SMTP_PASSWORD_FILE: open ", "LATCHKEY_SMTP_CA_FILE: " + pw + " holds no PEM certificate"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("serve = %v, want an error with %q", err, want)
			}
		}
	})
}

// post sends a JSON POST from origin and returns the status and body.
func post(t *testing.T, url, origin, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// TestSignupMailsThroughSMTP: the whole wiring, from a signup to the mail
// at the SMTP server and its link verifying the address.
func TestSignupMailsThroughSMTP(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Config{})
	pub, adm, out := boot(t, map[string]string{
		"LATCHKEY_TENANTS_FILE": accountsFile(t, "acme"),
		"LATCHKEY_SMTP_URL":     srv.URL(),
		"LATCHKEY_MAIL_FROM":    "Acme <accounts@acme.test>",
	})
	origin := "https://app.acme.test"
	if code, body := post(t, pub+"/v1/t/acme/signup", origin, `{"username":"newbie","email":"Newbie@Example.test","password":"a long enough passphrase"}`); code != 202 {
		t.Fatalf("signup = %d %s\n%s", code, body, out)
	}
	m := srv.WaitMessage(t, "Newbie@Example.test", 10*time.Second)
	token, ok := strings.CutPrefix(m.Link, origin+"/verify#token=")
	if !ok {
		t.Fatalf("link = %q, want one to the tenant's verify_url", m.Link)
	}
	if code, body := post(t, pub+"/v1/t/acme/email/verify", origin, `{"token":"`+token+`"}`); code != 200 {
		t.Fatalf("verify = %d %s", code, body)
	}
	logSettled(t, adm, out)
	for _, secret := range []string{token, "example.test", "a long enough passphrase"} {
		if strings.Contains(strings.ToLower(out.String()), strings.ToLower(secret)) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestDemoSignupPrintsMail: the demo's mail, link included, is in its log.
func TestDemoSignupPrintsMail(t *testing.T) {
	t.Parallel()
	pub, _, out := boot(t, map[string]string{})
	if code, body := post(t, pub+"/v1/t/example/signup", defaultDemoOrigin, `{"username":"newbie","email":"newbie@example.test","password":"a long enough passphrase"}`); code != 202 {
		t.Fatalf("signup = %d %s", code, body)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), `"link":"http://localhost:5173/verify#token=`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no demo mail with its link in the log:\n%s", out)
		}
	}
	if !strings.Contains(out.String(), `"to":"newbie@example.test"`) {
		t.Errorf("the demo mail line lacks its recipient:\n%s", out)
	}
}
