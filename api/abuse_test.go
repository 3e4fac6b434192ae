package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// limitedEnv is an env whose acme tenant allows 3 failures per account and
// perIP per address in a 15-minute window.
func limitedEnv(t *testing.T, opt envOptions, perIP int) *env {
	t.Helper()
	e := newEnv(t, opt)
	tn := acmeTenant()
	tn.LoginLimits = session.LoginLimits{PerAccount: 3, PerIP: perIP, Window: session.Duration(15 * time.Minute)}
	if _, _, err := e.m.PutTenant(t.Context(), tn); err != nil {
		t.Fatal(err)
	}
	e.reload()
	return e
}

func (e *env) tryLogin(user, pw string, header map[string]string) res {
	e.tb.Helper()
	return e.do(req{method: "POST", path: "/v1/login", host: acmeHost, origin: acmeApp, header: header,
		json: map[string]string{"username": user, "password": pw}})
}

func TestLoginLimitPerAccount(t *testing.T) {
	t.Parallel()
	e := limitedEnv(t, envOptions{}, 100)
	for _, user := range []string{"alice", "nobody"} {
		for i := range 3 {
			if r := e.tryLogin(user, "wrong password", nil); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s failure %d: status %d, want 401", user, i+1, r.StatusCode)
			}
		}
		// Over the limit: 429 whether or not the user exists, even with the
		// right password, which is not checked.
		r := e.tryLogin(user, alicePassword, nil)
		if r.StatusCode != http.StatusTooManyRequests || r.problemType() != "rate-limited" {
			t.Fatalf("%s over the limit: status %d %s, want 429 rate-limited", user, r.StatusCode, r.problemType())
		}
		if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 900 {
			t.Errorf("%s: Retry-After = %q, want 1..900 seconds", user, r.Header.Get("Retry-After"))
		}
		if r.Header.Get("Access-Control-Allow-Origin") != acmeApp {
			t.Errorf("%s: the SPA cannot read the 429", user)
		}
		if len(r.Cookies()) != 0 {
			t.Errorf("%s: a refused login set a cookie", user)
		}
	}
	// Another account is not affected.
	e.addUser("acme", "carol", "carol's password")
	if r := e.tryLogin("carol", "carol's password", nil); r.StatusCode != http.StatusOK {
		t.Errorf("another account: status %d, want 200", r.StatusCode)
	}
	// The window passes.
	e.clock.Advance(16 * time.Minute)
	if r := e.tryLogin("alice", alicePassword, nil); r.StatusCode != http.StatusOK {
		t.Errorf("after the window: status %d, want 200", r.StatusCode)
	}
}

func TestLoginSuccessResetsAccountCount(t *testing.T) {
	t.Parallel()
	e := limitedEnv(t, envOptions{}, 100)
	for round := range 3 {
		for range 2 {
			e.tryLogin("alice", "wrong password", nil)
		}
		if r := e.tryLogin("alice", alicePassword, nil); r.StatusCode != http.StatusOK {
			t.Fatalf("round %d: success after 2 failures: status %d, want 200", round, r.StatusCode)
		}
	}
}

func TestLoginLimitPerIP(t *testing.T) {
	t.Parallel()
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	e := limitedEnv(t, envOptions{trusted: []netip.Prefix{loopback}}, 5)
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	// Five failures from one address, each on a different account.
	for i := range 5 {
		if r := e.tryLogin("user"+strconv.Itoa(i), "x", from("198.51.100.7")); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, r.StatusCode)
		}
	}
	if r := e.tryLogin("alice", alicePassword, from("198.51.100.7")); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("sixth attempt from the address: status %d, want 429", r.StatusCode)
	}
	// A client cannot escape by prepending addresses: the proxy appends the
	// real one, and only the right-most untrusted entry counts.
	if r := e.tryLogin("alice", alicePassword, from("203.0.113.9, 198.51.100.7")); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("forged left-hand X-Forwarded-For: status %d, want 429", r.StatusCode)
	}
	if r := e.tryLogin("alice", alicePassword, from("203.0.113.9")); r.StatusCode != http.StatusOK {
		t.Errorf("another address: status %d, want 200", r.StatusCode)
	}

	// Without trusted proxies, X-Forwarded-For is ignored: every attempt
	// comes from the loopback peer.
	plain := limitedEnv(t, envOptions{}, 5)
	for i := range 5 {
		plain.tryLogin("user"+strconv.Itoa(i), "x", from("192.0.2."+strconv.Itoa(i+1)))
	}
	if r := plain.tryLogin("alice", alicePassword, from("192.0.2.99")); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("untrusted X-Forwarded-For changed the address: status %d, want 429", r.StatusCode)
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	s := &Server{trustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	tests := []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"direct", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"direct ignores XFF", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"via proxy", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"via two proxies", "10.1.2.3:4000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"forged left entries", "10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"several header lines", "10.1.2.3:4000", []string{"1.1.1.1", "198.51.100.1"}, "198.51.100.1"},
		{"malformed entry stops", "10.1.2.3:4000", []string{"198.51.100.1, garbage"}, "10.1.2.3"},
		{"proxy without XFF", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"ipv6 proxy", "[::1]:4000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"ipv4-mapped", "[::ffff:203.0.113.5]:4000", nil, "203.0.113.5"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		for _, v := range tt.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientIP(r); got != tt.want {
			t.Errorf("%s: clientIP = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestClientNet checks what the per-address limit counts a client under:
// an IPv4 address, IPv4-mapped ones included, or its IPv6 network.
func TestClientNet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, remote string
		xff          string
		prefix       int
		want         string
	}{
		{"ipv4", "203.0.113.5:4000", "", 64, "203.0.113.5"},
		{"ipv4-mapped", "[::ffff:203.0.113.5]:4000", "", 64, "203.0.113.5"},
		{"ipv4-mapped via proxy", "[::1]:4000", "::ffff:198.51.100.1", 64, "198.51.100.1"},
		{"ipv6 /64", "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:4000", "", 64, "2001:db8:1:2::/64"},
		{"ipv6 via proxy", "[::1]:4000", "2001:db8:1:2::99", 64, "2001:db8:1:2::/64"},
		{"ipv6 zone dropped", "[::1]:4000", "fe80::1%eth0", 64, "fe80::/64"},
		{"ipv6 /48", "[2001:db8:1:2::1]:4000", "", 48, "2001:db8:1::/48"},
		{"ipv6 /128", "[2001:db8:1:2::1]:4000", "", 128, "2001:db8:1:2::1"},
		{"unknown", "garbage", "", 64, ""},
	}
	for _, tt := range tests {
		s := &Server{trustedProxies: []netip.Prefix{netip.MustParsePrefix("::1/128")}, ipv6Prefix: tt.prefix}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := s.clientNet(r); got != tt.want {
			t.Errorf("%s: clientNet = %q, want %q", tt.name, got, tt.want)
		}
	}
	for _, bad := range []int{-1, 31, 129} {
		if _, err := NewServer(newEnv(t, envOptions{}).m, Config{Logger: slog.New(slog.DiscardHandler), IPv6Prefix: bad}); err == nil {
			t.Errorf("NewServer with IPv6Prefix %d = nil error, want one", bad)
		}
	}
}

// TestLoginLimitPerIPv6Network sends failures from 25 addresses of one
// /64 through a trusted proxy, at a per-address limit of 20: a site can
// take any address of its /64, so they count together. Counted per full
// address, all 25 were checked.
func TestLoginLimitPerIPv6Network(t *testing.T) {
	t.Parallel()
	e := limitedEnv(t, envOptions{trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, 20)
	from := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": ip} }
	for i := range 25 {
		want := http.StatusUnauthorized
		if i >= 20 {
			want = http.StatusTooManyRequests
		}
		r := e.tryLogin("user"+strconv.Itoa(i), "x", from(fmt.Sprintf("2001:db8:1:2::%x", i+1)))
		if r.StatusCode != want {
			t.Errorf("failure %d from the /64: status %d, want %d", i+1, r.StatusCode, want)
		}
	}
	if r := e.tryLogin("alice", alicePassword, from("2001:db8:1:3::1")); r.StatusCode != http.StatusOK {
		t.Errorf("another /64: status %d, want 200", r.StatusCode)
	}
}

func TestTenantAdminKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	r := e.do(adminReq("POST", "/admin/v1/tenants/acme/keys", map[string]any{"name": "acme ops", "expires_at": e.clock.Now().Add(48 * time.Hour)}))
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create key: status %d; body %s", r.StatusCode, r.body)
	}
	var created struct{ ID, Key string }
	json.Unmarshal(r.body, &created)
	key := created.Key
	as := func(method, path string, body any) res {
		t.Helper()
		q := adminReq(method, path, body)
		q.token = key
		return e.do(q)
	}

	tests := []struct {
		name, method, path string
		body               any
		status             int
	}{
		{"get own tenant", "GET", "/admin/v1/tenants/acme", nil, 200},
		{"list own users", "GET", "/admin/v1/tenants/acme/users", nil, 200},
		{"create own user", "POST", "/admin/v1/tenants/acme/users", map[string]any{"username": "erin", "password": "erin's password"}, 201},
		{"revoke own user's sessions", "DELETE", "/admin/v1/tenants/acme/users/alice/sessions", nil, 204},
		{"read own audit", "GET", "/admin/v1/tenants/acme/audit", nil, 200},
		{"change own origins", "PUT", "/admin/v1/tenants/acme", func() any { tn := acmeTenant(); tn.Origins = []string{acmeApp}; return tn }(), 200},
		{"change own hostnames", "PUT", "/admin/v1/tenants/acme", func() any { tn := acmeTenant(); tn.Hostnames = []string{"login.acme.com"}; return tn }(), 403},
		{"make own tenant dev", "PUT", "/admin/v1/tenants/acme", func() any { tn := acmeTenant(); tn.Dev = true; return tn }(), 403},
		{"delete own tenant", "DELETE", "/admin/v1/tenants/acme", nil, 403},
		{"list own keys", "GET", "/admin/v1/tenants/acme/keys", nil, 403},
		{"make another key", "POST", "/admin/v1/tenants/acme/keys", map[string]any{"name": "x"}, 403},
		{"another tenant", "GET", "/admin/v1/tenants/beta", nil, 404},
		{"another tenant's users", "GET", "/admin/v1/tenants/beta/users", nil, 404},
		{"another tenant's user", "DELETE", "/admin/v1/tenants/beta/users/bob", nil, 404},
		{"another tenant's audit", "GET", "/admin/v1/tenants/beta/audit", nil, 404},
		{"delete another tenant", "DELETE", "/admin/v1/tenants/beta", nil, 404},
		{"create a tenant", "PUT", "/admin/v1/tenants/gamma", betaTenant(), 404},
		{"missing tenant", "GET", "/admin/v1/tenants/nope", nil, 404},
	}
	for _, tt := range tests {
		if r := as(tt.method, tt.path, tt.body); r.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d; body %s", tt.name, r.StatusCode, tt.status, r.body)
		}
	}
	r = as("GET", "/admin/v1/tenants", nil)
	var list tenantList
	json.Unmarshal(r.body, &list)
	if len(list.Tenants) != 1 || list.Tenants[0].ID != "acme" {
		t.Errorf("a key's tenant list = %+v, want acme alone", list.Tenants)
	}
	// bob, in beta, was not touched by any of it.
	if r := e.do(adminReq("GET", "/admin/v1/tenants/beta/users/bob", nil)); r.StatusCode != 200 {
		t.Errorf("bob after the key's attempts: status %d, want 200", r.StatusCode)
	}

	// The listing never shows the secret.
	r = e.do(adminReq("GET", "/admin/v1/tenants/acme/keys", nil))
	if strings.Contains(string(r.body), key) || !strings.Contains(string(r.body), created.ID) {
		t.Errorf("key list = %s, want the ID and never the secret", r.body)
	}
	// Expiry and revocation end the key.
	e.clock.Advance(49 * time.Hour)
	if r := as("GET", "/admin/v1/tenants/acme", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired key: status %d, want 401", r.StatusCode)
	}
	r = e.do(adminReq("POST", "/admin/v1/tenants/acme/keys", map[string]any{"name": "second"}))
	json.Unmarshal(r.body, &created)
	key = created.Key
	if r := as("GET", "/admin/v1/tenants/acme", nil); r.StatusCode != http.StatusOK {
		t.Errorf("new key: status %d, want 200", r.StatusCode)
	}
	if r := e.do(adminReq("DELETE", "/admin/v1/tenants/acme/keys/"+created.ID, nil)); r.StatusCode != http.StatusNoContent {
		t.Errorf("revoke: status %d, want 204", r.StatusCode)
	}
	if r := as("GET", "/admin/v1/tenants/acme", nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked key: status %d, want 401", r.StatusCode)
	}
	for _, bad := range []string{"lk_admin_", "lk_admin_" + strings.Repeat("A", 43), key + "x"} {
		q := adminReq("GET", "/admin/v1/tenants/acme", nil)
		q.token = bad
		if r := e.do(q); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("bogus key %q: status %d, want 401", bad, r.StatusCode)
		}
	}
}

func TestKeysDieWithTheirTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	r := e.do(adminReq("POST", "/admin/v1/tenants/beta/keys", map[string]any{"name": "beta ops"}))
	var created struct{ Key string }
	json.Unmarshal(r.body, &created)
	e.do(adminReq("DELETE", "/admin/v1/tenants/beta", nil))
	e.do(adminReq("PUT", "/admin/v1/tenants/beta", betaTenant()))
	q := adminReq("GET", "/admin/v1/tenants/beta", nil)
	q.token = created.Key
	if r := e.do(q); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a deleted tenant's key on its recreated namesake: status %d, want 401", r.StatusCode)
	}
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	const secretPassword = "a very secret password"
	tn := acmeTenant()
	tn.Origins = append(tn.Origins, "https://new.acme.com")
	e.do(adminReq("PUT", "/admin/v1/tenants/acme", tn))
	e.do(adminReq("POST", "/admin/v1/tenants/acme/users", map[string]any{"username": "dave", "password": secretPassword}))
	e.do(adminReq("PATCH", "/admin/v1/tenants/acme/users/dave", map[string]any{"password": secretPassword + "!"}))
	r := e.do(adminReq("POST", "/admin/v1/tenants/acme/keys", map[string]any{"name": "ops"}))
	var created struct{ ID, Key string }
	json.Unmarshal(r.body, &created)
	q := adminReq("PATCH", "/admin/v1/tenants/acme/users/dave", map[string]any{"disabled": true})
	q.token = created.Key
	e.do(q)
	e.do(adminReq("DELETE", "/admin/v1/tenants/acme/users/dave", nil))

	r = e.do(adminReq("GET", "/admin/v1/tenants/acme/audit", nil))
	var log auditList
	json.Unmarshal(r.body, &log)
	var got []string
	for _, en := range log.Entries {
		got = append(got, en.Action+" "+en.Target+" by "+strings.SplitN(en.Actor, " ", 2)[0])
	}
	want := []string{
		"user.delete dave by platform",
		"user.update dave by key:" + created.ID,
		"key.create " + created.ID + " by platform",
		"user.update dave by platform",
		"user.create dave by platform",
		"tenant.update acme by platform",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit log (newest first) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	body := string(r.body)
	for _, secret := range []string{secretPassword, "argon2id", created.Key, adminToken} {
		if strings.Contains(body, secret) {
			t.Errorf("the audit log holds a secret (%q)", secret[:8])
		}
	}
	if len(log.Entries) == 6 {
		upd := log.Entries[5]
		if !strings.Contains(string(upd.Before), acmeAdmin) || !strings.Contains(string(upd.After), "https://new.acme.com") || strings.Contains(string(upd.Before), "https://new.acme.com") {
			t.Errorf("tenant.update before/after = %s / %s, want the origin list before and after", upd.Before, upd.After)
		}
		if !strings.Contains(string(log.Entries[3].After), `"password_changed":true`) {
			t.Errorf("password change entry = %s, want password_changed true", log.Entries[3].After)
		}
	}
	// Deleting the tenant keeps its log, with the deletion on record.
	e.do(adminReq("DELETE", "/admin/v1/tenants/acme", nil))
	r = e.do(adminReq("GET", "/admin/v1/tenants/acme/audit?limit=1", nil))
	json.Unmarshal(r.body, &log)
	if len(log.Entries) != 1 || log.Entries[0].Action != "tenant.delete" {
		t.Errorf("after deletion, newest entry = %+v, want tenant.delete", log.Entries)
	}
	if r := e.do(adminReq("GET", "/admin/v1/tenants/acme/audit?limit=0", nil)); r.StatusCode != 400 {
		t.Errorf("limit=0: status %d, want 400", r.StatusCode)
	}
}

// TestTenantHashOverTheBudget has a tenant admin key store a password hash
// that needs more memory than the hashing budget holds (m=256 MiB under
// the default 128 MiB, which one wrong password then allocated in full):
// refused with a 400 naming password_hash, and the other tenant's logins
// go on.
func TestTenantHashOverTheBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken, manager: func(c *session.Config) { c.HashMemory = session.DefaultHashMemory }})
	r := e.do(adminReq("POST", "/admin/v1/tenants/acme/keys", map[string]any{"name": "acme ops"}))
	var created struct{ Key string }
	if r.StatusCode != http.StatusCreated || json.Unmarshal(r.body, &created) != nil {
		t.Fatalf("create key: status %d; body %s", r.StatusCode, r.body)
	}
	hash, err := session.HashPassword("mallory's pw", session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	for _, params := range []string{"m=262144,t=1,p=1", "m=131076,t=1,p=1"} { // 256 MiB; 128 MiB and 4 KiB
		big := strings.Replace(hash, "m=64,t=1,p=1", params, 1)
		for _, q := range []req{
			adminReq("POST", "/admin/v1/tenants/acme/users", map[string]any{"username": "mallory", "password_hash": big}),
			adminReq("PATCH", "/admin/v1/tenants/acme/users/alice", map[string]any{"password_hash": big}),
		} {
			q.token = created.Key
			r := e.do(q)
			var p struct {
				Errors []session.Problem `json:"errors"`
			}
			json.Unmarshal(r.body, &p)
			if r.StatusCode != http.StatusBadRequest || len(p.Errors) != 1 || p.Errors[0].Field != "password_hash" || !strings.Contains(p.Errors[0].Message, "hashing budget") {
				t.Errorf("%s %s with %s: status %d, body %s; want 400 naming password_hash and the budget", q.method, q.path, params, r.StatusCode, r.body)
			}
		}
	}
	if c := e.loginAlice(); c == nil {
		t.Error("alice cannot log in after the refused changes")
	}
	if c := e.loginBob(); c == nil {
		t.Error("bob, of another tenant, cannot log in")
	}
}
