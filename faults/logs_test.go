package faults

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/session"
)

// markers are distinctive strings a test plants where a user's data goes
// (usernames, passwords, path segments, queries, headers, bodies) and
// looks for afterwards in what it must never reach.
type markers struct{ all []string }

// new returns a fresh marker: lowercase letters and digits, valid as a
// username, password, path segment, header value and JSON string, and
// unique to this run.
func (m *markers) new(what string) string {
	s := "lkm" + what + strings.ToLower(rand.Text()[:12])
	m.all = append(m.all, s)
	return s
}

// site returns a fresh name for a refused origin's host, which the log
// may hold (in the refusal's line) and so is no marker.
func (m *markers) site(what string) string {
	return "lkm" + what + strings.ToLower(rand.Text()[:12])
}

// add records secrets the test did not choose (cookies, session IDs, keys).
func (m *markers) add(s ...string) {
	for _, v := range s {
		if v != "" {
			m.all = append(m.all, v)
		}
	}
}

// TestLogsHoldNoUserData runs Latchkey at debug level on a Redis of its
// own and walks every route through success and every error it can give,
// Redis being down (503) included, with markers for usernames, passwords,
// path segments, queries, methods, headers, cookies and tokens; then no
// log line, at any level, may contain any marker (case-insensitively), a
// cookie value, a session ID, the cookie keys, the admin or metrics token
// or a tenant admin key. The store-unavailable lines must be there, and
// name the route template.
func TestLogsHoldNoUserData(t *testing.T) {
	t.Parallel()
	var mk markers
	user, pw := mk.new("user"), mk.new("pass")
	disabled := mk.new("disabled")
	adminToken, metricsToken := mk.new("admintoken"), mk.new("metricstoken")
	key := make([]byte, 32)
	rand.Read(key)
	cookieKeys := base64.StdEncoding.EncodeToString(key)
	mk.add(cookieKeys)

	hash, err := session.HashPassword(pw, cheapParams)
	if err != nil {
		t.Fatal(err)
	}
	tenants := fmt.Sprintf(`tenants:
  - id: %s
    name: Acme (log tests)
    origins: [%s]
    cookie:
      same_site: lax
    login_limits:
      per_account: 3
    users:
      - username: %q
        password_hash: %q
      - username: %q
        password_hash: %q
        disabled: true
`, tenantID, appOrigin, user, hash, disabled, hash)
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	if err := os.WriteFile(file, []byte(tenants), 0o600); err != nil {
		t.Fatal(err)
	}
	rd := proctest.StartRedis(t, proctest.RedisConfig{})
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{
		RedisURL: rd.URL(), TenantsFile: file, CookieKeys: cookieKeys, AdminToken: adminToken,
		Env: map[string]string{
			"LATCHKEY_LOG_LEVEL":       "debug",
			"LATCHKEY_METRICS_TOKEN":   metricsToken,
			"LATCHKEY_TRUSTED_PROXIES": "127.0.0.1",
		},
	})
	c := &http.Client{Timeout: 15 * time.Second}
	pub, adm := "http://"+lk.Public+"/v1/t/"+tenantID, "http://"+lk.Admin

	type call struct {
		method, url, body, ct string
		header                map[string]string
		cookie                string // session cookie value
		bearer                string
	}
	// do sends q and checks that the status is one of want: where another
	// answer would be as right (an unknown session's deletion: 204 done,
	// or 404), the test lists both, as it is about the logs.
	do := func(name string, q call, want ...int) result {
		t.Helper()
		req, err := http.NewRequest(q.method, q.url, strings.NewReader(q.body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if q.ct != "" {
			req.Header.Set("Content-Type", q.ct)
		}
		for k, v := range q.header {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		if q.cookie != "" {
			req.AddCookie(&http.Cookie{Name: cookieName, Value: q.cookie})
		}
		if q.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+q.bearer)
		}
		r := doRequest(c, req)
		if !slices.Contains(want, r.Status) {
			t.Errorf("%s: %v, want %v (body %s)", name, r, want, r.Body)
		}
		return r
	}
	browser := map[string]string{"Origin": appOrigin, "User-Agent": mk.new("agent") + "/1.0", "X-Forwarded-For": mk.new("xff")}
	jsonBody := func(kv ...string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	login := func(name, u, p string, want int) result {
		t.Helper()
		return do(name, call{method: "POST", url: pub + "/login", body: jsonBody("username", u, "password", p), ct: "application/json", header: browser}, want)
	}

	// The public API, each route and its refusals.
	in := login("login", user, pw, 200)
	cookie, sid := in.Cookie(), in.SessionID()
	mk.add(cookie, sid)
	second := login("a second login", user, pw, 200)
	mk.add(second.Cookie(), second.SessionID())
	do("me", call{method: "GET", url: pub + "/me", cookie: cookie, header: browser}, 200)
	do("sessions", call{method: "GET", url: pub + "/sessions?" + mk.new("query") + "=1", cookie: cookie, header: browser}, 200)
	do("revoke one", call{method: "DELETE", url: pub + "/sessions/" + second.SessionID(), cookie: cookie, header: browser}, 204)
	do("revoke an unknown one", call{method: "DELETE", url: pub + "/sessions/" + mk.new("sid"), cookie: cookie, header: browser}, 404)
	login("wrong password", user, mk.new("wrongpass"), 401)
	login("unknown user", mk.new("nouser"), mk.new("nouserpass"), 401)
	login("disabled user", disabled, pw, 401)
	limited := mk.new("limited")
	for i := range 3 {
		login(fmt.Sprintf("failure %d of a limited account", i+1), limited, mk.new("guess"), 401)
	}
	login("rate limited", limited, mk.new("guess"), 429)
	do("bad JSON", call{method: "POST", url: pub + "/login", body: `{"username":"` + mk.new("badjson"), ct: "application/json", header: browser}, 400)
	do("unknown field", call{method: "POST", url: pub + "/login", body: `{"` + mk.new("field") + `":1}`, ct: "application/json", header: browser}, 400)
	do("oversized", call{method: "POST", url: pub + "/login", body: jsonBody("username", mk.new("big"), "password", strings.Repeat(mk.new("bigpass"), 300)), ct: "application/json", header: browser}, 413)
	do("form-encoded", call{method: "POST", url: pub + "/login", body: "username=" + mk.new("form"), ct: "application/x-www-form-urlencoded", header: browser}, 415)
	// A refused origin names a site, not a person, and the operator must
	// see it (the refusal's warn line): it is checked apart, below.
	foreign := []string{"https://" + mk.site("origin") + ".example", "https://" + mk.site("preorigin") + ".example"}
	do("foreign origin", call{method: "POST", url: pub + "/login", body: jsonBody("username", user, "password", pw), ct: "application/json",
		header: map[string]string{"Origin": foreign[0]}}, 403)
	do("foreign preflight", call{method: "OPTIONS", url: pub + "/login",
		header: map[string]string{"Origin": foreign[1], "Access-Control-Request-Method": "POST"}}, 403)
	do("preflight", call{method: "OPTIONS", url: pub + "/login",
		header: map[string]string{"Origin": appOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}}, 204)
	do("bad cookie", call{method: "GET", url: pub + "/me", cookie: mk.new("cookie"), header: browser}, 401)
	do("tampered cookie", call{method: "GET", url: pub + "/me", cookie: cookie[:len(cookie)-4] + "AAAA", header: browser}, 401)
	do("cookie of another name", call{method: "GET", url: pub + "/me", header: map[string]string{"Cookie": mk.new("cname") + "=" + mk.new("cvalue")}}, 401)
	do("unknown tenant", call{method: "GET", url: "http://" + lk.Public + "/v1/t/" + mk.new("tenant") + "/me"}, 404)
	do("unknown route", call{method: "GET", url: pub + "/" + mk.new("route"), header: browser}, 404)
	do("escaped segment", call{method: "DELETE", url: pub + "/sessions/" + mk.new("esc") + "%2F" + mk.new("esc"), cookie: cookie, header: browser}, 400, 404)
	do("unknown method", call{method: strings.ToUpper(mk.new("method")), url: pub + "/me", header: browser}, 405)
	do("wrong method", call{method: "GET", url: pub + "/login?" + mk.new("q") + "=" + mk.new("v"), header: browser}, 405)
	do("unknown host", call{method: "GET", url: "http://" + lk.Public + "/v1/me", header: map[string]string{"Host": mk.new("host") + ".example"}}, 404)

	// The admin API: every kind of answer.
	users := adm + "/admin/v1/tenants/" + tenantID + "/users"
	newUser, newPass := mk.new("newuser"), mk.new("newpass")
	do("admin without a token", call{method: "GET", url: users}, 401)
	do("admin with a wrong token", call{method: "GET", url: users, bearer: mk.new("badtoken")}, 401)
	do("admin with a wrong key", call{method: "GET", url: users, bearer: "lk_admin_" + mk.new("badkey")}, 401)
	do("list users", call{method: "GET", url: users, bearer: adminToken}, 200)
	do("get a user", call{method: "GET", url: users + "/" + user, bearer: adminToken}, 200)
	do("get an unknown user", call{method: "GET", url: users + "/" + mk.new("ghost"), bearer: adminToken}, 404)
	do("create a user", call{method: "POST", url: users, body: jsonBody("username", newUser, "password", newPass), ct: "application/json", bearer: adminToken}, 201)
	do("create it again", call{method: "POST", url: users, body: jsonBody("username", newUser, "password", newPass), ct: "application/json", bearer: adminToken}, 409)
	do("create with bad JSON", call{method: "POST", url: users, body: `{"username":` + mk.new("adminjson"), ct: "application/json", bearer: adminToken}, 400)
	do("create an invalid user", call{method: "POST", url: users, body: jsonBody("username", mk.new("short"), "password", "x"), ct: "application/json", bearer: adminToken}, 400)
	do("set a password", call{method: "PATCH", url: users + "/" + newUser, body: jsonBody("password", mk.new("patchpass")), ct: "application/json", bearer: adminToken}, 200)
	do("patch an unknown user", call{method: "PATCH", url: users + "/" + mk.new("ghost"), body: `{"disabled":true}`, ct: "application/json", bearer: adminToken}, 404)
	do("a user's sessions", call{method: "GET", url: users + "/" + user + "/sessions", bearer: adminToken}, 200)
	do("end an unknown session", call{method: "DELETE", url: users + "/" + user + "/sessions/" + mk.new("adminsid"), bearer: adminToken}, 204, 404)
	do("an escaped username", call{method: "GET", url: users + "/" + mk.new("esc") + "%2F" + mk.new("esc"), bearer: adminToken}, 400, 404)
	do("delete a user", call{method: "DELETE", url: users + "/" + newUser, bearer: adminToken}, 204)
	do("unknown tenant", call{method: "GET", url: adm + "/admin/v1/tenants/" + mk.new("admintenant"), bearer: adminToken}, 404)
	do("invalid tenant", call{method: "PUT", url: adm + "/admin/v1/tenants/" + tenantID, ct: "application/json", bearer: adminToken,
		body: `{"name":"Acme","origins":["https://` + mk.new("badorigin") + `.example/path"],"cookie":{"same_site":"lax"}}`}, 400)
	do("admin unknown route", call{method: "GET", url: adm + "/admin/v1/" + mk.new("adminroute"), bearer: adminToken}, 404)
	do("admin wrong method", call{method: "POST", url: users + "/" + user, bearer: adminToken}, 405)
	made := do("create a tenant key", call{method: "POST", url: adm + "/admin/v1/tenants/" + tenantID + "/keys", body: jsonBody("name", mk.new("keyname")), ct: "application/json", bearer: adminToken}, 201)
	var k struct{ Key string }
	json.Unmarshal(made.Body, &k)
	mk.add(k.Key)
	do("a tenant key lists users", call{method: "GET", url: users, bearer: k.Key}, 200)
	do("a tenant key may not delete its tenant", call{method: "DELETE", url: adm + "/admin/v1/tenants/" + tenantID, bearer: k.Key}, 403)
	do("audit", call{method: "GET", url: adm + "/admin/v1/tenants/" + tenantID + "/audit", bearer: adminToken}, 200)
	do("metrics without the token", call{method: "GET", url: adm + "/metrics"}, 401)
	metrics := do("metrics", call{method: "GET", url: adm + "/metrics", bearer: metricsToken}, 200)
	do("logout", call{method: "POST", url: pub + "/logout", body: "{}", ct: "application/json", cookie: cookie, header: browser}, 204)

	// The store down: 503s, each logged as a server error.
	again := login("a login before the outage", user, pw, 200)
	cookie, sid = again.Cookie(), again.SessionID()
	mk.add(cookie, sid)
	rd.Stop()
	do("me, Redis down", call{method: "GET", url: pub + "/me", cookie: cookie, header: browser}, 503)
	login("login, Redis down", user, pw, 503)
	do("revoke, Redis down", call{method: "DELETE", url: pub + "/sessions/" + sid, cookie: cookie, header: browser}, 503)
	do("get a user, Redis down", call{method: "GET", url: users + "/" + user, bearer: adminToken}, 503)
	do("a user's sessions, Redis down", call{method: "GET", url: users + "/" + user + "/sessions", bearer: adminToken}, 503)
	do("end a session, Redis down", call{method: "DELETE", url: users + "/" + user + "/sessions/" + sid, bearer: adminToken}, 503)
	do("patch a user, Redis down", call{method: "PATCH", url: users + "/" + user, body: jsonBody("password", mk.new("downpass")), ct: "application/json", bearer: adminToken}, 503)
	lk.Stop(t) // every line is written

	out := lk.Output()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	t.Logf("%d log lines, %d markers and secrets", len(lines), len(mk.all))
	for _, o := range foreign {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, o) {
				var rec struct{ Msg, Origin string }
				if json.Unmarshal([]byte(l), &rec) != nil || rec.Msg != "refused an origin the tenant does not list" || rec.Origin != o {
					t.Errorf("a refused origin reached a line other than its refusal's origin: %s", l)
				}
				n++
			}
		}
		if n != 1 {
			t.Errorf("refused origin %s: %d log lines name it, want its one refusal line", o, n)
		}
		if strings.Contains(string(metrics.Body), o) {
			t.Errorf("/metrics holds the refused origin %s (labels must stay bounded)", o)
		}
	}
	lower := strings.ToLower(out)
	for _, m := range mk.all {
		if strings.Contains(lower, strings.ToLower(m)) {
			for _, l := range lines {
				if strings.Contains(strings.ToLower(l), strings.ToLower(m)) {
					t.Errorf("a log line holds %q: %s", m, l)
					break
				}
			}
		}
		if strings.Contains(string(metrics.Body), m) {
			t.Errorf("/metrics holds %q", m)
		}
	}
	// The walk did reach the lines that could leak.
	var requests, unavailable int
	for _, l := range lines {
		var e struct {
			Msg, Route, Path, Method string
			RequestID                string `json:"request_id"`
		}
		if json.Unmarshal([]byte(l), &e) != nil {
			t.Errorf("not a JSON log line: %s", l)
			continue
		}
		switch e.Msg {
		case "request":
			requests++
		case "store unavailable":
			unavailable++
			if e.Route == "" || e.RequestID == "" {
				t.Errorf("a store-unavailable line without its route template or request ID: %s", l)
			}
		}
		if e.Path != "" {
			t.Errorf("a log line with a path: %s", l)
		}
	}
	if requests < 60 || unavailable < 5 {
		t.Errorf("%d request lines and %d store-unavailable lines; the walk should have logged at least 60 and 5", requests, unavailable)
	}
}
