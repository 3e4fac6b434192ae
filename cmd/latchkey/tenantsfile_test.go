package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/session"
)

// call makes one request and returns its status, body and the value of its
// session cookie, if it set one.
func call(tb testing.TB, method, url, token, origin, cookie, body string) (int, string, string) {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var set string
	if cs := res.Cookies(); len(cs) > 0 {
		set = cs[0].Name + "=" + cs[0].Value
	}
	return res.StatusCode, string(b), set
}

// replicaFile writes a tenants file of two tenants: acme with two origins
// and the users alice, bob, carol and dave, and beta.
func replicaFile(tb testing.TB) string {
	tb.Helper()
	cheap := session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	var users strings.Builder
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		h, err := session.HashPassword(name+"'s first password", cheap)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&users, "      - {username: %s, password_hash: %q}\n", name, h)
	}
	path := filepath.Join(tb.TempDir(), "tenants.yaml")
	src := `tenants:
  - id: acme
    name: Acme
    origins: [https://app.acme.test, https://admin.acme.test]
    cookie: {same_site: none, partitioned: true}
    users:
` + users.String() + `  - id: beta
    name: Beta
    origins: [https://app.beta.test]
    cookie: {same_site: lax}
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestReplicaStartKeepsAdminChanges is row 2 of the hardening issue with
// real processes: two Latchkeys sharing one Redis (a Redis of the test's
// own, so nothing is left in another), the second started after admin
// changes made through the first.
func TestReplicaStartKeepsAdminChanges(t *testing.T) {
	t.Parallel()
	proctest.PrebuildLatchkey()
	rd := proctest.StartRedis(t, proctest.RedisConfig{})
	cfg := proctest.LatchkeyConfig{
		RedisURL:    rd.URL(),
		TenantsFile: replicaFile(t),
		CookieKeys:  "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		AdminToken:  "replica-test-admin-token-123456",
	}
	const app, admin = "https://app.acme.test", "https://admin.acme.test"
	l1 := proctest.StartLatchkey(t, cfg)
	pub1, adm1 := "http://"+l1.Public, "http://"+l1.Admin
	login := func(pub, user, password string) (int, string) {
		code, _, c := call(t, "POST", pub+"/v1/t/acme/login", "", app, "", fmt.Sprintf(`{"username":%q,"password":%q}`, user, password))
		return code, c
	}
	adminDo := func(adm, method, path, body string) (int, string) {
		code, b, _ := call(t, method, adm+"/admin/v1/tenants/"+path, cfg.AdminToken, "", "", body)
		return code, b
	}

	// dave's login re-hashes his imported hash with the service's own
	// parameters; his session must outlive the next start.
	code, dave := login(pub1, "dave", "dave's first password")
	if code != 200 || dave == "" {
		t.Fatalf("dave's login = %d, want 200 and a cookie\n%s", code, l1.Output())
	}
	for _, c := range []struct{ method, path, body string }{
		{"PATCH", "acme/users/alice", `{"disabled":true}`},
		{"PATCH", "acme/users/bob", `{"password":"bob's new password"}`},
		{"DELETE", "acme/users/carol", ""},
		{"PUT", "acme", `{"name":"Acme","origins":["` + app + `"],"cookie":{"same_site":"none","partitioned":true}}`},
		{"DELETE", "beta", ""},
	} {
		if code, b := adminDo(adm1, c.method, c.path, c.body); code/100 != 2 {
			t.Fatalf("%s %s = %d %s", c.method, c.path, code, b)
		}
	}

	l2 := proctest.StartLatchkey(t, cfg)
	pub2, adm2 := "http://"+l2.Public, "http://"+l2.Admin
	for _, tc := range []struct {
		user, password string
		want           int
	}{
		{"alice", "alice's first password", 401}, // disabled
		{"bob", "bob's first password", 401},     // the leaked password
		{"bob", "bob's new password", 200},
		{"carol", "carol's first password", 401}, // deleted
	} {
		if code, _ := login(pub2, tc.user, tc.password); code != tc.want {
			t.Errorf("login %s on the new replica = %d, want %d", tc.user, code, tc.want)
		}
	}
	if code, _, _ := call(t, "GET", pub2+"/v1/t/acme/me", "", "", dave, ""); code != 200 {
		t.Errorf("dave's session on the new replica = %d, want 200 (kept)", code)
	}
	req, _ := http.NewRequest("OPTIONS", pub2+"/v1/t/acme/login", nil)
	req.Header.Set("Origin", admin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("preflight from the dropped origin on the new replica: Access-Control-Allow-Origin %q, want none", got)
		}
	}
	if code, _ := adminDo(adm2, "GET", "beta", ""); code != 404 {
		t.Errorf("GET beta on the new replica = %d, want 404 (deleted on purpose)", code)
	}
	_, b := adminDo(adm2, "GET", "acme/audit", "")
	var audit struct {
		Entries []session.AuditEntry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(b), &audit); err != nil {
		t.Fatalf("audit: %v: %s", err, b)
	}
	var byFile []string
	for _, e := range audit.Entries {
		if e.Actor == "tenants-file" {
			byFile = append(byFile, e.Action+" "+e.Target)
		}
	}
	want := []string{"user.create dave", "user.create carol", "user.create bob", "user.create alice", "tenant.create acme"}
	if strings.Join(byFile, ", ") != strings.Join(want, ", ") {
		t.Errorf("the file's audit entries (newest first) = %q, want only its first application %q", byFile, want)
	}

	// A Redis restarted without persistence comes back empty: the running
	// replicas give it the file's tenants again.
	rd.Stop()
	rd.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := login(pub1, "alice", "alice's first password")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the file's tenants never came back after the store lost them (last login %d)\n%s", code, l1.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDeletedTenantStaysDeleted: a tenant of the tenants file deleted
// through the admin API does not come back on the running replica (it did:
// "the store has lost the tenants of the tenants file… applying the file
// again").
func TestDeletedTenantStaysDeleted(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	os.WriteFile(file, []byte("tenants:\n  - id: shop\n    name: Shop\n    origins: [https://app.shop.test]\n    cookie: {same_site: lax}\n"), 0o600)
	token := "deleted-tenant-admin-token-123456"
	pub, adm, out := boot(t, map[string]string{
		"LATCHKEY_TENANTS_FILE": file,
		"LATCHKEY_COOKIE_KEYS":  "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
		"LATCHKEY_ADMIN_TOKEN":  token,
	})
	if code, b, _ := call(t, "DELETE", adm+"/admin/v1/tenants/shop", token, "", "", ""); code != 204 {
		t.Fatalf("DELETE shop = %d %s", code, b)
	}
	// Another tenant, created after the deletion, is served once the
	// replica has reloaded past it.
	if code, b, _ := call(t, "PUT", adm+"/admin/v1/tenants/probe", token, "", "", `{"name":"Probe","origins":["https://app.probe.test"],"cookie":{"same_site":"lax"}}`); code != 201 {
		t.Fatalf("PUT probe = %d %s", code, b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, _, _ := call(t, "GET", pub+"/v1/t/probe/me", "", "", "", ""); code == 401 {
			break // served: unauthenticated rather than unknown
		}
		if time.Now().After(deadline) {
			t.Fatalf("the probe tenant was never served\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, _ := call(t, "GET", adm+"/admin/v1/tenants/shop", token, "", "", ""); code != 404 {
		t.Errorf("GET shop after the reload = %d, want 404 (deleted on purpose)", code)
	}
	if code, _, _ := call(t, "GET", pub+"/v1/t/shop/me", "", "", "", ""); code != 404 {
		t.Errorf("shop's me after the reload = %d, want 404", code)
	}
	logSettled(t, adm, out)
	if strings.Contains(out.String(), "applying the file again") || strings.Contains(out.String(), "applied them again") {
		t.Errorf("the replica re-applied the tenants file after a deletion:\n%s", out)
	}
}

// TestServeReportsEveryTenantsFileProblem: `latchkey serve` with a broken
// tenants file prints every problem, each with its line, tenant and field,
// and exits non-zero having served nothing.
func TestServeReportsEveryTenantsFileProblem(t *testing.T) {
	t.Parallel()
	bin := proctest.BuildLatchkey(t)
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	os.WriteFile(file, []byte(`tenants:
  - id: acme
    name: Acme
    colour: red
    origins: [https://app.acme.com, null]
    cookie: {same_site: lax, partitioned: true}
    session: {idle_timeout: forever}
    users:
      - {username: alice, password_hash: plain}
`), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve")
	cmd.Env = []string{"LATCHKEY_TENANTS_FILE=" + file, "LATCHKEY_ADDR=127.0.0.1:0", "LATCHKEY_ADMIN_ADDR=127.0.0.1:0"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("latchkey serve with a broken tenants file: %v, want a non-zero exit\n%s", err, stderr.String())
	}
	for _, want := range []string{
		`line 4: tenant "acme": unknown key "colour"`,
		`line 5: tenant "acme": origins[1]: is empty: an unquoted null`,
		`line 6: tenant "acme": cookie.partitioned: requires same_site none`,
		`line 7: tenant "acme": session.idle_timeout: invalid duration "forever"`,
		`line 9: tenant "acme": users[0].password_hash: not an argon2id PHC string`,
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}
