package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/internal/smtptest"
	"github.com/latchkeyhq/latchkey/session"
)

// System tests of the self-service accounts (issue 16) through serve: real
// HTTP over loopback, a real SMTP server (smtptest), and Redis shared by
// replicas or the in-memory store. Each test has a tenant of its own, with
// a random part in its ID, its addresses and its passwords, so that the
// log can be searched for them afterwards.

// accountsTenant is a tenant with accounts, as a tenants file describes it.
type accountsTenant struct {
	id        string
	origin    string // the first of its origins: the verify and reset pages'
	other     string // a second origin it allows
	verifyURL string
	resetURL  string
	file      string
}

// newAccountsTenant writes a tenants file holding one tenant with accounts
// (signup, verification required, login by address, reset), whose
// accounts block ends with limits (YAML under accounts, or "") and whose
// users are users (YAML list items, or "").
func newAccountsTenant(t *testing.T, limits, users string) accountsTenant {
	t.Helper()
	id := "acct-" + strings.ToLower(rand.Text()[:8])
	a := accountsTenant{
		id:     id,
		origin: "https://app." + id + ".test",
		other:  "https://www." + id + ".test",
	}
	// A query and a deeper path, so that "exactly the tenant's URL" means
	// something.
	a.verifyURL = a.origin + "/welcome/verify?lang=en"
	a.resetURL = a.origin + "/account/reset"
	var b strings.Builder
	fmt.Fprintf(&b, `tenants:
  - id: %s
    name: Systest %s
    origins: [%s, %s]
    cookie: {same_site: none, partitioned: true}
    accounts:
      signup: true
      email_verification: required
      login_with_email: true
      verify_url: "%s"
      reset_url: "%s"
`, id, id, a.origin, a.other, a.verifyURL, a.resetURL)
	if limits != "" {
		b.WriteString("      limits: " + limits + "\n")
	}
	if users != "" {
		b.WriteString("    users:\n" + users)
	}
	a.file = filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(a.file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

// base returns the path-form prefix of the tenant's routes on pub.
func (a accountsTenant) base(pub string) string { return pub + "/v1/t/" + a.id }

// cookieName is the tenant's session cookie.
func (a accountsTenant) cookieName() string { return "__Host-latchkey-" + a.id }

// cheapHash hashes password with small Argon2id parameters, for users of
// a tenants file (a login upgrades them; the flows hash with the defaults).
func cheapHash(t *testing.T, password string) string {
	t.Helper()
	h, err := session.HashPassword(password, session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// acctCall is one request to the public API.
type acctCall struct {
	method, url, body string
	origin            string            // "" sends none
	header            map[string]string // Host sets the request's Host
	cookie            *http.Cookie
}

// answer is what a call got.
type answer struct {
	code   int
	header http.Header
	body   string
	cookie *http.Cookie // the tenant's session cookie it set, if any
}

func (c acctCall) do(t *testing.T, a accountsTenant) answer {
	t.Helper()
	req, err := http.NewRequest(c.method, c.url, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	for k, v := range c.header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if c.cookie != nil {
		req.AddCookie(c.cookie)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	an := answer{code: r.StatusCode, header: r.Header, body: strings.TrimSuffix(string(b), "\n")}
	for _, ck := range r.Cookies() {
		if ck.Name == a.cookieName() && ck.Value != "" && ck.MaxAge >= 0 {
			an.cookie = &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	return an
}

// postJSON posts body to the tenant's route path on pub from its origin.
func postJSON(t *testing.T, a accountsTenant, pub, path, body string) answer {
	t.Helper()
	return acctCall{method: "POST", url: a.base(pub) + path, body: body, origin: a.origin}.do(t, a)
}

// signedIn posts body to path on pub with the session cookie c, as the
// SPA does.
func signedIn(t *testing.T, a accountsTenant, pub, path, body string, c *http.Cookie) answer {
	t.Helper()
	return acctCall{method: "POST", url: a.base(pub) + path, body: body, origin: a.origin, cookie: c}.do(t, a)
}

// me returns the status of `me` on pub with the session cookie c.
func me(t *testing.T, a accountsTenant, pub string, c *http.Cookie) int {
	t.Helper()
	return acctCall{method: "GET", url: a.base(pub) + "/me", origin: a.origin, cookie: c}.do(t, a).code
}

// wantSession fails unless an is a 200 that set a session cookie, and
// returns the cookie.
func wantSession(t *testing.T, what string, an answer) *http.Cookie {
	t.Helper()
	if an.code != 200 || an.cookie == nil {
		t.Fatalf("%s = %d %s (cookie %v), want 200 with a session cookie", what, an.code, an.body, an.cookie != nil)
	}
	return an.cookie
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// linkToken checks that m's link is exactly base + "#token=" + a token,
// and returns the token.
func linkToken(t *testing.T, m smtptest.Message, base string) string {
	t.Helper()
	token, ok := strings.CutPrefix(m.Link, base+"#token=")
	if !ok || !tokenRE.MatchString(token) {
		t.Fatalf("link of %q = %q, want %s#token= and 43 base64url characters", m.Subject, m.Link, base)
	}
	return token
}

// waitMail waits for the next mail to to and checks that its subject
// starts with subject.
func waitMail(t *testing.T, srv *smtptest.Server, to, subject string) smtptest.Message {
	t.Helper()
	m := srv.WaitMessage(t, to, 10*time.Second)
	if !strings.HasPrefix(m.Subject, subject) {
		t.Fatalf("mail subject = %q, want %q…", m.Subject, subject)
	}
	return m
}

// noSecretLogged settles each replica's log and fails if any of secrets
// (compared case-insensitively: addresses are normalized) is in it.
func noSecretLogged(t *testing.T, secrets []string, replicas ...replica) {
	t.Helper()
	for i, r := range replicas {
		logSettled(t, r.adm, r.out)
		out := strings.ToLower(r.out.String())
		for _, s := range secrets {
			if s != "" && strings.Contains(out, strings.ToLower(s)) {
				t.Errorf("replica %d: the log holds the secret %q", i, s)
			}
		}
	}
}

// replica is one running serve.
type replica struct {
	pub, adm string
	out      *proctest.SyncBuffer
}

func bootReplica(t *testing.T, env map[string]string) replica {
	t.Helper()
	pub, adm, out := boot(t, maps.Clone(env))
	return replica{pub, adm, out}
}

// redisEnv returns the settings of replicas sharing one Redis, under a
// prefix of the test's own, with mail through srv; the test fails if a
// key holding the tenant's ID is left in Redis when it ends.
func redisEnv(t *testing.T, a accountsTenant, srv *smtptest.Server) map[string]string {
	t.Helper()
	c := redistest.Client(t)
	redistest.LeavesNoKeyWith(t, c, a.id)
	env := memoryEnv(a, srv)
	env["LATCHKEY_REDIS_URL"] = "redis://" + redistest.Addr() + "/0"
	env["LATCHKEY_REDIS_PREFIX"] = redistest.Prefix(t, c)
	env["LATCHKEY_COOKIE_KEYS"] = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
	return env
}

// memoryEnv returns the settings of one replica on the in-memory store
// with mail through srv.
func memoryEnv(a accountsTenant, srv *smtptest.Server) map[string]string {
	return map[string]string{
		"LATCHKEY_TENANTS_FILE": a.file,
		"LATCHKEY_SMTP_URL":     srv.URL(),
		"LATCHKEY_MAIL_FROM":    "Systest <noreply@sender.invalid>",
	}
}

// cacheHits returns the session cache hits that r's /metrics counts.
func cacheHits(t *testing.T, r replica) int {
	t.Helper()
	resp, err := http.Get(r.adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^latchkey_session_cache_lookups_total\{result="hit"\} (\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("/metrics lacks the session cache's hits")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// cacheTrust mirrors session's: how long after a revocation a replica
// may still answer from its cache (it answers from memory only while its
// invalidation feed is current within this).
const cacheTrust = 30 * time.Millisecond

// TestAccountsAcrossReplicas: the life of a self-service account on two
// replicas sharing Redis, each step on the other replica than the one
// before, with the requests' Host, X-Forwarded-Host and Origin other
// than the tenant's pages (as far as its origin check allows), which
// the mailed links must not follow.
func TestAccountsAcrossReplicas(t *testing.T) {
	t.Parallel()
	a := newAccountsTenant(t, "", "")
	srv := smtptest.Start(t, smtptest.Config{})
	env := redisEnv(t, a, srv)
	A, B := bootReplica(t, env), bootReplica(t, env)
	tag := strings.ToLower(rand.Text()[:10])
	addr := "Ada." + tag + "@Post-" + tag + ".example"
	username := "ada" + tag
	first, second := "first violet tractor "+tag, "second amber harbour "+tag
	// The Host, forwarded headers and Origin of a request that reached
	// Latchkey through someone else's domain. Origin naming the Host is
	// "same origin" to the CSRF check, so it passes; the links still go
	// to the tenant's pages.
	foreign := map[string]string{"Host": "links.attacker.example", "X-Forwarded-Host": "links.attacker.example", "X-Forwarded-Proto": "https"}

	// Signup on A, from the tenant's other origin.
	an := acctCall{method: "POST", url: a.base(A.pub) + "/signup", origin: a.other, header: foreign,
		body: fmt.Sprintf(`{"username":%q,"email":%q,"password":%q}`, username, addr, first)}.do(t, a)
	if an.code != 202 || an.body != `{"status":"verification_sent"}` || an.cookie != nil {
		t.Fatalf("signup on A = %d %s, want 202 verification_sent and no cookie\n%s", an.code, an.body, A.out)
	}
	vm := waitMail(t, srv, addr, "Verify your email address")
	vtoken := linkToken(t, vm, a.verifyURL)

	// Not verified yet: the right password is refused with 403.
	if an := postJSON(t, a, B.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, username, first)); an.code != 403 || !strings.Contains(an.body, "email-unverified") {
		t.Errorf("login before verification = %d %s, want 403 email-unverified", an.code, an.body)
	}
	// Verified on B: signed in.
	c1 := wantSession(t, "verify on B", postJSON(t, a, B.pub, "/email/verify", `{"token":"`+vtoken+`"}`))
	if an := postJSON(t, a, A.pub, "/email/verify", `{"token":"`+vtoken+`"}`); an.code != 400 || !strings.Contains(an.body, "invalid-token") {
		t.Errorf("the verify token spent again on A = %d %s, want 400 invalid-token", an.code, an.body)
	}
	// B's cookie works on A.
	if code := me(t, a, A.pub, c1); code != 200 {
		t.Fatalf("me on A with B's cookie = %d, want 200", code)
	}
	// Login by address on A, in other case than the signup's.
	c2 := wantSession(t, "login by address on A", postJSON(t, a, A.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, strings.ToLower(addr), first)))

	// Both sessions in both replicas' caches: the second me of each on B
	// is a hit.
	for _, r := range []replica{A, B} {
		for _, c := range []*http.Cookie{c1, c2} {
			me(t, a, r.pub, c)
		}
	}
	hits := cacheHits(t, B)
	for _, c := range []*http.Cookie{c1, c2} {
		if code := me(t, a, B.pub, c); code != 200 {
			t.Fatalf("me on B before the reset = %d, want 200", code)
		}
	}
	if got := cacheHits(t, B); got < hits+2 {
		t.Fatalf("B's cache hits went from %d to %d, want both sessions served from its cache", hits, got)
	}

	// Reset requested on B through the foreign host, from that host's own
	// origin.
	an = acctCall{method: "POST", url: a.base(B.pub) + "/password/reset/request", origin: "https://links.attacker.example", header: foreign,
		body: fmt.Sprintf(`{"email":%q}`, addr)}.do(t, a)
	if an.code != 202 || an.body != "{}" {
		t.Fatalf("reset request on B = %d %s, want 202 {}", an.code, an.body)
	}
	rm := waitMail(t, srv, addr, "Reset your password")
	rtoken := linkToken(t, rm, a.resetURL)

	// A weak password does not spend the token.
	if an := postJSON(t, a, A.pub, "/password/reset", fmt.Sprintf(`{"token":%q,"password":"password"}`, rtoken)); an.code != 400 || !strings.Contains(an.body, "weak-password") {
		t.Errorf("reset with a common password = %d %s, want 400 weak-password", an.code, an.body)
	}
	// The reset on A.
	an = postJSON(t, a, A.pub, "/password/reset", fmt.Sprintf(`{"token":%q,"password":%q}`, rtoken, second))
	resetAt := time.Now()
	c3 := wantSession(t, "reset on A", an)

	// Right away on B, whose cache held both sessions: it may answer from
	// memory only while its feed cannot yet hold the invalidation.
	for i, c := range []*http.Cookie{c1, c2} {
		sent := time.Now()
		if code := me(t, a, B.pub, c); code != 401 {
			if code != 200 || sent.Sub(resetAt) >= cacheTrust {
				t.Errorf("me on B with old cookie %d, %v after the reset = %d, want 401", i+1, sent.Sub(resetAt), code)
			} else {
				t.Logf("me on B with old cookie %d, %v after the reset, was still served from its cache", i+1, sent.Sub(resetAt))
			}
		}
	}
	time.Sleep(time.Until(resetAt.Add(2 * cacheTrust)))
	for _, r := range []replica{A, B} {
		for i, c := range []*http.Cookie{c1, c2} {
			if code := me(t, a, r.pub, c); code != 401 {
				t.Errorf("me on %s with old cookie %d after the reset = %d, want 401", r.pub, i+1, code)
			}
		}
		if code := me(t, a, r.pub, c3); code != 200 {
			t.Errorf("me on %s with the reset's cookie = %d, want 200", r.pub, code)
		}
	}
	waitMail(t, srv, addr, "Your password for")
	if an := postJSON(t, a, B.pub, "/password/reset", fmt.Sprintf(`{"token":%q,"password":%q}`, rtoken, second+" again")); an.code != 400 || !strings.Contains(an.body, "invalid-token") {
		t.Errorf("the reset token spent again on B = %d %s, want 400 invalid-token", an.code, an.body)
	}

	// The old password fails, the new one logs in, on either replica.
	if an := postJSON(t, a, B.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, addr, first)); an.code != 401 || an.cookie != nil {
		t.Errorf("login with the old password on B = %d %s, want 401", an.code, an.body)
	}
	c4 := wantSession(t, "login with the new password on B", postJSON(t, a, B.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, username, second)))
	if code := me(t, a, A.pub, c4); code != 200 {
		t.Errorf("me on A after login on B = %d, want 200", code)
	}
	srv.NoMessage(t, addr, 200*time.Millisecond)

	noSecretLogged(t, []string{
		vtoken, rtoken, vm.Link, rm.Link, "#token=", first, second,
		addr, "ada." + tag, "post-" + tag + ".example",
		c1.Value, c2.Value, c3.Value, c4.Value,
	}, A, B)
}

// TestAccountLimitsAcrossReplicas: the per-address limit of reset
// requests counts on both replicas together, and the answers, past the
// limit too, are the same for an address nobody has as for a user's.
func TestAccountLimitsAcrossReplicas(t *testing.T) {
	t.Parallel()
	tag := strings.ToLower(rand.Text()[:10])
	known, unknown := "known."+tag+"@mail-"+tag+".example", "nobody."+tag+"@mail-"+tag+".example"
	password := "known user's long passphrase " + tag
	a := newAccountsTenant(t, "{per_address: 3, window: 1h}",
		fmt.Sprintf("      - {username: known%s, email: %q, email_verified: true, password_hash: %q}\n", tag, known, cheapHash(t, password)))
	srv := smtptest.Start(t, smtptest.Config{})
	env := redisEnv(t, a, srv)
	A, B := bootReplica(t, env), bootReplica(t, env)

	// The same address in other cases counts under one key.
	cased := func(s string, i int) string {
		if i%2 == 1 {
			return strings.ToUpper(s[:1]) + s[1:]
		}
		return s
	}
	for i, r := range []replica{A, B, A, B, A} {
		want := 202
		if i >= 3 {
			want = 429
		}
		var got [2]answer
		for j, addr := range []string{known, unknown} {
			got[j] = postJSON(t, a, r.pub, "/password/reset/request", fmt.Sprintf(`{"email":%q}`, cased(addr, i)))
			if got[j].code != want {
				t.Fatalf("request %d for the %s address = %d %s, want %d", i+1, []string{"known", "unknown"}[j], got[j].code, got[j].body, want)
			}
			if want == 429 {
				ra, err := strconv.Atoi(got[j].header.Get("Retry-After"))
				if err != nil || ra < 1 || ra > 3600 {
					t.Errorf("request %d: Retry-After = %q, want 1 to 3600 seconds", i+1, got[j].header.Get("Retry-After"))
				}
			}
		}
		if got[0].body != got[1].body || got[0].header.Get("Content-Type") != got[1].header.Get("Content-Type") {
			t.Errorf("request %d: known address answered %q (%s), unknown %q (%s), want the same", i+1,
				got[0].body, got[0].header.Get("Content-Type"), got[1].body, got[1].header.Get("Content-Type"))
		}
		if want == 202 && got[0].body != "{}" {
			t.Errorf("request %d = %q, want {}", i+1, got[0].body)
		}
	}
	// Three mails to the user, none past the limit, none to nobody's
	// address.
	var tokens []string
	for range 3 {
		tokens = append(tokens, linkToken(t, waitMail(t, srv, known, "Reset your password"), a.resetURL))
	}
	srv.NoMessage(t, known, 300*time.Millisecond)
	for _, m := range srv.Messages() {
		if hasRecipientFold(m, unknown) {
			t.Errorf("a mail went to the unknown address: %q", m.Subject)
		}
	}
	// A newer link supersedes the older ones: only the last one works,
	// on either replica.
	for i, old := range tokens[:len(tokens)-1] {
		if an := postJSON(t, a, []replica{A, B}[i].pub, "/password/reset", fmt.Sprintf(`{"token":%q,"password":%q}`, old, password+" new")); an.code != 400 || !strings.Contains(an.body, "invalid-token") {
			t.Errorf("reset with superseded link %d = %d %s, want 400 invalid-token", i+1, an.code, an.body)
		}
	}
	c := wantSession(t, "reset with the newest link", postJSON(t, a, B.pub, "/password/reset", fmt.Sprintf(`{"token":%q,"password":%q}`, tokens[2], password+" new")))
	waitMail(t, srv, known, "Your password for")
	noSecretLogged(t, append(tokens, known, unknown, "mail-"+tag+".example", password, c.Value), A, B)
}

func hasRecipientFold(m smtptest.Message, to string) bool {
	for _, r := range m.To {
		if strings.EqualFold(r, to) {
			return true
		}
	}
	return false
}

// TestSMTPDownAtSendTime: a reset requested while the SMTP server is down
// is answered as usual, and the outbox delivers its mail once the server
// is back; the link then works, and a password change is mailed about
// too. On both stores.
func TestSMTPDownAtSendTime(t *testing.T) {
	t.Parallel()
	for _, store := range []string{"redis", "memory"} {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			tag := strings.ToLower(rand.Text()[:10])
			addr := "grace." + tag + "@relay-" + tag + ".example"
			pw0, pw1, pw2 := "original passphrase "+tag, "reset passphrase "+tag, "changed passphrase "+tag
			a := newAccountsTenant(t, "", fmt.Sprintf("      - {username: grace%s, email: %q, email_verified: true, password_hash: %q}\n", tag, addr, cheapHash(t, pw0)))
			srv := smtptest.Start(t, smtptest.Config{})
			env := memoryEnv(a, srv)
			if store == "redis" {
				env = redisEnv(t, a, srv)
			}
			R := bootReplica(t, env)
			c0 := wantSession(t, "login", postJSON(t, a, R.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, addr, pw0)))

			srv.Stop()
			if an := postJSON(t, a, R.pub, "/password/reset/request", fmt.Sprintf(`{"email":%q}`, addr)); an.code != 202 || an.body != "{}" {
				t.Fatalf("reset request with SMTP down = %d %s, want 202 {}", an.code, an.body)
			}
			// The first attempt failed: the outbox says it will retry.
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(R.out.String(), `"msg":"mail delivery failed; will retry","tenant":"`+a.id+`","kind":"reset","attempt":1`); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no failed delivery attempt logged within 10 s\n%s", R.out)
				}
			}
			if n := len(srv.Messages()); n != 0 {
				t.Fatalf("%d mails delivered while the server was down", n)
			}
			srv.Restart(t)
			rtoken := linkToken(t, waitMail(t, srv, addr, "Reset your password"), a.resetURL)
			c1 := wantSession(t, "reset", postJSON(t, a, R.pub, "/password/reset", fmt.Sprintf(`{"token":%q,"password":%q}`, rtoken, pw1)))
			waitMail(t, srv, addr, "Your password for")
			if code := me(t, a, R.pub, c0); code != 401 {
				t.Errorf("me with the session from before the reset = %d, want 401", code)
			}

			// A password change, signed in.
			if an := signedIn(t, a, R.pub, "/password", fmt.Sprintf(`{"current_password":%q,"new_password":%q}`, pw0, pw2), c1); an.code != 401 || !strings.Contains(an.body, "invalid-credentials") {
				t.Errorf("change with the old password as current = %d %s, want 401 invalid-credentials", an.code, an.body)
			}
			c2 := wantSession(t, "password change", signedIn(t, a, R.pub, "/password", fmt.Sprintf(`{"current_password":%q,"new_password":%q}`, pw1, pw2), c1))
			waitMail(t, srv, addr, "Your password for")
			if code := me(t, a, R.pub, c1); code != 401 {
				t.Errorf("me with the session that changed the password = %d, want 401 (every session ends)", code)
			}
			if code := me(t, a, R.pub, c2); code != 200 {
				t.Errorf("me with the change's new cookie = %d, want 200", code)
			}
			if an := postJSON(t, a, R.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, addr, pw1)); an.code != 401 {
				t.Errorf("login with the replaced password = %d, want 401", an.code)
			}
			wantSession(t, "login with the changed password", postJSON(t, a, R.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, addr, pw2)))
			srv.NoMessage(t, addr, 200*time.Millisecond)

			noSecretLogged(t, []string{rtoken, "#token=", pw0, pw1, pw2, addr, "grace." + tag, "relay-" + tag + ".example", c0.Value, c1.Value, c2.Value}, R)
		})
	}
}

// TestAccountsInMemory: signup, verification and reset on the in-memory
// store, with mail through SMTP, as TestAccountsAcrossReplicas has them on
// Redis.
func TestAccountsInMemory(t *testing.T) {
	t.Parallel()
	a := newAccountsTenant(t, "", "")
	srv := smtptest.Start(t, smtptest.Config{})
	R := bootReplica(t, memoryEnv(a, srv))
	tag := strings.ToLower(rand.Text()[:10])
	addr := "Lin." + tag + "@Inbox-" + tag + ".example"
	username := "lin" + tag
	first, second := "first quiet lantern "+tag, "second bright meadow "+tag

	an := postJSON(t, a, R.pub, "/signup", fmt.Sprintf(`{"username":%q,"email":%q,"password":%q}`, username, addr, first))
	if an.code != 202 || an.body != `{"status":"verification_sent"}` {
		t.Fatalf("signup = %d %s, want 202 verification_sent\n%s", an.code, an.body, R.out)
	}
	vm := waitMail(t, srv, addr, "Verify your email address")
	vtoken := linkToken(t, vm, a.verifyURL)
	// The same address again (other case, other username): no second
	// user, the same answer, and a notice to the owner.
	an = postJSON(t, a, R.pub, "/signup", fmt.Sprintf(`{"username":"x%s","email":%q,"password":%q}`, username, strings.ToUpper(addr), first+" x"))
	if an.code != 202 || an.body != `{"status":"verification_sent"}` {
		t.Errorf("signup with a taken address = %d %s, want the same 202", an.code, an.body)
	}
	waitMail(t, srv, addr, "Sign-up attempt at")

	c1 := wantSession(t, "verify", postJSON(t, a, R.pub, "/email/verify", `{"token":"`+vtoken+`"}`))
	c2 := wantSession(t, "login by address", postJSON(t, a, R.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, addr, first)))
	for _, c := range []*http.Cookie{c1, c2, c1, c2} { // cached
		if code := me(t, a, R.pub, c); code != 200 {
			t.Fatalf("me before the reset = %d, want 200", code)
		}
	}
	if an := postJSON(t, a, R.pub, "/password/reset/request", fmt.Sprintf(`{"email":%q}`, addr)); an.code != 202 || an.body != "{}" {
		t.Fatalf("reset request = %d %s, want 202 {}", an.code, an.body)
	}
	rm := waitMail(t, srv, addr, "Reset your password")
	rtoken := linkToken(t, rm, a.resetURL)
	c3 := wantSession(t, "reset", postJSON(t, a, R.pub, "/password/reset", fmt.Sprintf(`{"token":%q,"password":%q}`, rtoken, second)))
	for i, c := range []*http.Cookie{c1, c2} {
		if code := me(t, a, R.pub, c); code != 401 {
			t.Errorf("me with old cookie %d after the reset = %d, want 401", i+1, code)
		}
	}
	if code := me(t, a, R.pub, c3); code != 200 {
		t.Errorf("me with the reset's cookie = %d, want 200", code)
	}
	waitMail(t, srv, addr, "Your password for")
	if an := postJSON(t, a, R.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, username, first)); an.code != 401 {
		t.Errorf("login with the old password = %d, want 401", an.code)
	}
	c4 := wantSession(t, "login with the new password", postJSON(t, a, R.pub, "/login", fmt.Sprintf(`{"username":%q,"password":%q}`, addr, second)))
	srv.NoMessage(t, addr, 200*time.Millisecond)

	noSecretLogged(t, []string{vtoken, rtoken, vm.Link, rm.Link, "#token=", first, second, addr, "lin." + tag, "inbox-" + tag + ".example", c1.Value, c2.Value, c3.Value, c4.Value}, R)
}
