package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

func TestLoginMeSessionsLogout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, prefix, host, origin, user, pw string
	}{
		{"acme host form", "/v1", acmeHost, acmeApp, "alice", alicePassword},
		{"beta path form", "/v1/t/beta", "", betaDev, "bob", bobPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			testLoginMeSessionsLogout(t, e, tc.prefix, tc.host, tc.origin, tc.user, tc.pw)
		})
	}
}

// testLoginMeSessionsLogout walks a user through everything the public API
// offers; the Redis tests run it too.
func testLoginMeSessionsLogout(t *testing.T, e *env, prefix, host, origin, user, pw string) {
	t.Helper()
	do := func(method, path string, c *http.Cookie, json any) res {
		t.Helper()
		q := req{method: method, path: prefix + path, host: host, origin: origin, json: json}
		if c != nil {
			q.cookies = []*http.Cookie{c}
		}
		if method == "POST" && json == nil {
			q.ct = "application/json"
		}
		return e.do(q)
	}
	first := e.login(prefix, host, origin, user, pw)
	second := e.login(prefix, host, origin, user, pw)

	r := do("GET", "/me", first, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("me: status %d, want 200; body %s", r.StatusCode, r.body)
	}
	var me sessionView
	json.Unmarshal(r.body, &me)
	if me.User.Username != user || !me.Session.Current || me.Session.ID == "" {
		t.Errorf("me = %+v, want user %s, current session", me, user)
	}

	r = do("GET", "/sessions", first, nil)
	var list sessionList
	json.Unmarshal(r.body, &list)
	if r.StatusCode != http.StatusOK || len(list.Sessions) != 2 {
		t.Fatalf("sessions: status %d, %d sessions; want 200 and 2", r.StatusCode, len(list.Sessions))
	}
	current := 0
	var other string
	for _, s := range list.Sessions {
		if s.Current {
			current++
			if s.ID != me.Session.ID {
				t.Errorf("current session ID = %s, want %s", s.ID, me.Session.ID)
			}
		} else {
			other = s.ID
		}
	}
	if current != 1 {
		t.Errorf("%d sessions marked current, want 1", current)
	}

	// Revoking the other session ends it, and only it.
	if r = do("DELETE", "/sessions/"+other, first, nil); r.StatusCode != http.StatusNoContent {
		t.Errorf("revoke other: status %d, want 204", r.StatusCode)
	}
	if r = do("GET", "/me", second, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("me with revoked session: status %d, want 401", r.StatusCode)
	}
	if r = do("DELETE", "/sessions/"+other, first, nil); r.StatusCode != http.StatusNotFound || r.problemType() != "not-found" {
		t.Errorf("revoke again: status %d %s, want 404 not-found", r.StatusCode, r.problemType())
	}

	// Logout ends the session server-side and clears the cookie; twice is fine.
	r = do("POST", "/logout", first, nil)
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: status %d, want 204; body %s", r.StatusCode, r.body)
	}
	if c := r.cookie(first.Name); c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("logout cookie = %v, want a clearing cookie (Max-Age=0)", c)
	}
	if r = do("GET", "/me", first, nil); r.StatusCode != http.StatusUnauthorized || r.problemType() != "unauthenticated" {
		t.Errorf("me after logout: status %d %s, want 401 unauthenticated", r.StatusCode, r.problemType())
	}
	if r = do("POST", "/logout", first, nil); r.StatusCode != http.StatusNoContent {
		t.Errorf("second logout: status %d, want 204", r.StatusCode)
	}
	if r = do("POST", "/logout", nil, nil); r.StatusCode != http.StatusNoContent {
		t.Errorf("logout without cookie: status %d, want 204", r.StatusCode)
	}

	// Log out everywhere.
	a := e.login(prefix, host, origin, user, pw)
	b := e.login(prefix, host, origin, user, pw)
	if r = do("DELETE", "/sessions", a, nil); r.StatusCode != http.StatusNoContent {
		t.Errorf("log out everywhere: status %d, want 204", r.StatusCode)
	}
	for _, c := range []*http.Cookie{a, b} {
		if r = do("GET", "/me", c, nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("me after log out everywhere: status %d, want 401", r.StatusCode)
		}
	}
}

func TestLoginFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	bad := func(user, pw string) res {
		return e.do(req{method: "POST", path: "/v1", host: acmeHost, origin: acmeApp,
			json: map[string]string{"username": user, "password": pw}})
	}
	_ = bad
	var bodies []string
	for _, in := range [][2]string{{"alice", "wrong password"}, {"nobody", alicePassword}, {"bob", bobPassword}} {
		r := e.do(req{method: "POST", path: "/v1/login", host: acmeHost, origin: acmeApp,
			json: map[string]string{"username": in[0], "password": in[1]}})
		if r.StatusCode != http.StatusUnauthorized || r.problemType() != "invalid-credentials" {
			t.Errorf("login %s: status %d %s, want 401 invalid-credentials", in[0], r.StatusCode, r.problemType())
		}
		if len(r.Cookies()) != 0 {
			t.Errorf("login %s: set a cookie on failure", in[0])
		}
		bodies = append(bodies, string(r.body))
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Errorf("failure bodies differ:\n%s\n%s", bodies[0], b)
		}
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	const none = "-" // no pointer member
	tests := []struct {
		name    string
		ct      string
		body    string
		status  int
		typ     string
		pointer string
	}{
		{"empty body", "application/json", "", 400, "bad-request", ""},
		{"not json", "application/json", "username=alice", 400, "bad-request", ""},
		{"truncated", "application/json", `{"username":"alice"`, 400, "bad-request", ""},
		{"array", "application/json", `[]`, 400, "bad-request", ""},
		{"unknown field", "application/json", `{"username":"alice","password":"x","admin":true}`, 400, "bad-request", "/admin"},
		{"case-folded field", "application/json", `{"username":"alice","Password":"` + alicePassword + `"}`, 400, "bad-request", "/Password"},
		{"duplicate field", "application/json", `{"username":"mallory","username":"alice","password":"` + alicePassword + `"}`, 400, "bad-request", "/username"},
		{"trailing data", "application/json", `{"username":"alice","password":"x"} {}`, 400, "bad-request", ""},
		{"wrong type", "application/json", `{"username":1,"password":"x"}`, 400, "bad-request", "/username"},
		{"invalid utf-8", "application/json", "{\"username\":\"al\xffice\",\"password\":\"x\"}", 400, "bad-request", "/username"},
		{"lone surrogate", "application/json", `{"username":"alice","password":"\ud800x"}`, 400, "bad-request", "/password"},
		{"empty username", "application/json", `{"username":"","password":"x"}`, 400, "bad-request", none},
		{"huge number", "application/json", `{"username":1e999,"password":"x"}`, 400, "bad-request", "/username"},
		{"deep nesting", "application/json", strings.Repeat("[", 2000), 400, "bad-request", strings.Repeat("/0", maxJSONDepth)},
		{"deep username", "application/json", `{"username":` + strings.Repeat("[", maxLoginBody-len(`{"username":`)), 400, "bad-request", "/username" + strings.Repeat("/0", maxJSONDepth-1)},
		{"too large", "application/json", `{"username":"` + strings.Repeat("a", 5000) + `","password":"x"}`, 413, "payload-too-large", none},
		{"text/plain", "text/plain", `{"username":"alice","password":"` + alicePassword + `"}`, 415, "unsupported-media-type", none},
		{"text/plain json trick", "text/plain; application/json", `{"username":"alice","password":"` + alicePassword + `"}`, 415, "unsupported-media-type", none},
		{"form", "application/x-www-form-urlencoded", "username=alice&password=x", 415, "unsupported-media-type", none},
		{"no content type", "", `{"username":"alice","password":"` + alicePassword + `"}`, 415, "unsupported-media-type", none},
		{"no content type, no body", "", "", 415, "unsupported-media-type", none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := e.do(req{method: "POST", path: "/v1/login", host: acmeHost, origin: acmeApp, ct: tt.ct, body: tt.body})
			if r.StatusCode != tt.status || r.problemType() != tt.typ {
				t.Errorf("status %d %s, want %d %s; body %s", r.StatusCode, r.problemType(), tt.status, tt.typ, r.body)
			}
			if got := r.Header.Get("Content-Type"); got != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", got)
			}
			var p problem
			json.Unmarshal(r.body, &p)
			switch {
			case tt.pointer == none && p.Pointer != nil:
				t.Errorf("pointer = %q, want none", *p.Pointer)
			case tt.pointer != none && (p.Pointer == nil || *p.Pointer != tt.pointer):
				t.Errorf("pointer = %v, want %q; body %s", p.Pointer, tt.pointer, r.body)
			}
			if len(r.Cookies()) != 0 {
				t.Error("a refused login set a cookie")
			}
		})
	}
}

func TestSessionCookieAbuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.loginAlice()
	bobs := e.loginBob()
	me := func(cs ...*http.Cookie) res {
		return e.do(req{method: "GET", path: "/v1/me", host: acmeHost, origin: acmeApp, cookies: cs})
	}
	for name, cs := range map[string][]*http.Cookie{
		"duplicate":                {c, c},
		"tampered":                 {{Name: c.Name, Value: c.Value[:len(c.Value)-3] + "abc"}},
		"truncated":                {{Name: c.Name, Value: c.Value[:20]}},
		"oversized":                {{Name: c.Name, Value: strings.Repeat("A", 3000)}},
		"other tenant's value":     {{Name: c.Name, Value: bobs.Value}},
		"lowercase name prefix":    {{Name: strings.ToLower(c.Name), Value: c.Value}},
		"other tenant's cookie":    {bobs},
		"right value, beta's name": {{Name: bobs.Name, Value: c.Value}},
	} {
		r := me(cs...)
		if r.StatusCode != http.StatusUnauthorized || r.problemType() != "unauthenticated" {
			t.Errorf("%s: status %d %s, want 401 unauthenticated", name, r.StatusCode, r.problemType())
		}
	}
	// And acme's cookie never authenticates on beta.
	r := e.do(req{method: "GET", path: "/v1/t/beta/me", origin: betaDev, cookies: []*http.Cookie{{Name: bobs.Name, Value: c.Value}}})
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("acme cookie on beta: status %d, want 401", r.StatusCode)
	}
	if r := me(c); r.StatusCode != http.StatusOK {
		t.Errorf("genuine cookie: status %d, want 200", r.StatusCode)
	}
}

func TestSessionFixation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	old := e.loginAlice()
	r := e.do(req{method: "POST", path: "/v1/login", host: acmeHost, origin: acmeApp, cookies: []*http.Cookie{old},
		json: map[string]string{"username": "alice", "password": alicePassword}})
	fresh := r.cookie(old.Name)
	if r.StatusCode != http.StatusOK || fresh == nil || fresh.Value == old.Value {
		t.Fatalf("login with a presented cookie: status %d, cookie %v; want 200 and a new cookie", r.StatusCode, fresh)
	}
	if r := e.do(req{method: "GET", path: "/v1/me", host: acmeHost, cookies: []*http.Cookie{old}}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("presented session after login: status %d, want 401", r.StatusCode)
	}
}

func TestExpiryOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.loginAlice() // acme: idle 1h, absolute 24h
	me := func() int {
		return e.do(req{method: "GET", path: "/v1/me", host: acmeHost, cookies: []*http.Cookie{c}}).StatusCode
	}
	e.clock.Advance(59 * time.Minute)
	if got := me(); got != http.StatusOK {
		t.Errorf("me after 59m: %d, want 200", got)
	}
	e.clock.Advance(59 * time.Minute) // slid: still within an hour of last use
	if got := me(); got != http.StatusOK {
		t.Errorf("me after another 59m: %d, want 200 (idle expiry slides)", got)
	}
	e.clock.Advance(61 * time.Minute)
	if got := me(); got != http.StatusUnauthorized {
		t.Errorf("me after 61m idle: %d, want 401", got)
	}
}

func TestAdminAuthorization(t *testing.T) {
	t.Parallel()
	on := newEnv(t, envOptions{token: adminToken})
	off := newEnv(t, envOptions{})
	tests := []struct {
		name   string
		e      *env
		token  string
		header string
		status int
	}{
		{"no token", on, "", "", 401},
		{"wrong token", on, "test-admin-token-0123456788", "", 401},
		{"prefix of token", on, adminToken[:10], "", 401},
		{"basic scheme", on, "", "Basic " + adminToken, 401},
		{"right token", on, adminToken, "", 200},
		{"disabled", off, adminToken, "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := req{admin: true, method: "GET", path: "/admin/v1/tenants", token: tt.token}
			if tt.header != "" {
				q.header = map[string]string{"Authorization": tt.header}
			}
			r := tt.e.do(q)
			if r.StatusCode != tt.status {
				t.Errorf("status %d, want %d; body %s", r.StatusCode, tt.status, r.body)
			}
			if tt.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want Bearer", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// Health stays reachable without a token.
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := off.do(req{admin: true, method: "GET", path: p}); r.StatusCode != 200 {
			t.Errorf("%s: status %d, want 200", p, r.StatusCode)
		}
	}
}

// TestLogoutWithoutBody checks that a POST logout with neither a body nor
// a Content-Type, which is what axios.post(url) and fetch(url, {method:
// "POST"}) send, ends the session from an allowed origin; that the CSRF
// origin check still refuses it from anywhere else (such a request is
// "simple": no preflight stands in its way); and that a body still needs
// Content-Type: application/json.
func TestLogoutWithoutBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range corsTenants() {
		allowed := tc.origins[0]
		cases := []struct {
			name string
			h    http.Header
			body string
			want int
		}{
			{"allowed origin", http.Header{"Origin": {allowed}}, "", http.StatusNoContent},
			{"allowed origin, cross-site fetch metadata", http.Header{"Origin": {allowed}, "Sec-Fetch-Site": {"cross-site"}}, "", http.StatusNoContent},
			{"no origin (not a browser)", http.Header{}, "", http.StatusNoContent},
			{"json, empty", http.Header{"Origin": {allowed}, "Content-Type": {"application/json"}}, "", http.StatusNoContent},
			{"json, empty object", http.Header{"Origin": {allowed}, "Content-Type": {"application/json"}}, "{}", http.StatusNoContent},

			{"another tenant's origin", http.Header{"Origin": {tc.foreign[0]}}, "", http.StatusForbidden},
			{"foreign origin, cross-site", http.Header{"Origin": {corsEvil}, "Sec-Fetch-Site": {"cross-site"}}, "", http.StatusForbidden},
			{"cross-site fetch metadata without origin", http.Header{"Sec-Fetch-Site": {"cross-site"}}, "", http.StatusForbidden},
			{"same-site sibling", http.Header{"Origin": {"https://blog.acme.com"}, "Sec-Fetch-Site": {"same-site"}}, "", http.StatusForbidden},
			{"null origin", http.Header{"Origin": {"null"}}, "", http.StatusForbidden},

			{"body without content type", http.Header{"Origin": {allowed}}, "{}", http.StatusUnsupportedMediaType},
			{"text/plain body", http.Header{"Origin": {allowed}, "Content-Type": {"text/plain"}}, "{}", http.StatusUnsupportedMediaType},
			{"text/plain, empty", http.Header{"Origin": {allowed}, "Content-Type": {"text/plain"}}, "", http.StatusUnsupportedMediaType},
			{"form", http.Header{"Origin": {allowed}, "Content-Type": {"application/x-www-form-urlencoded"}}, "a=b", http.StatusUnsupportedMediaType},
			{"json with a member", http.Header{"Origin": {allowed}, "Content-Type": {"application/json"}}, `{"all":true}`, http.StatusBadRequest},
			{"json, deep", http.Header{"Origin": {allowed}, "Content-Type": {"application/json"}}, strings.Repeat("[", maxLoginBody), http.StatusBadRequest},
		}
		for _, c := range cases {
			t.Run(string(tc.id)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				user := corsNewUser(t, e, tc)
				victim, _ := corsLogin(t, e, tc, user)
				h := c.h.Clone()
				h.Add("Cookie", victim.Name+"="+victim.Value)
				r := corsDoRaw(t, e, "POST", tc.base+"/logout", tc.host, h, c.body)
				if r.StatusCode != c.want {
					t.Fatalf("StatusCode=%v, want %v (body %s)", r.StatusCode, c.want, r.body)
				}
				wantSessions := 1
				if c.want == http.StatusNoContent {
					wantSessions = 0
					if got := r.cookie(tc.cookieName()); got == nil || got.MaxAge >= 0 {
						t.Errorf("Set-Cookie %v, want %s cleared", got, tc.cookieName())
					}
				} else {
					corsWantNoSetCookie(t, r)
				}
				if got := corsSessionCount(t, e, tc, user); got != wantSessions {
					t.Errorf("sessions after the logout=%v, want %v", got, wantSessions)
				}
			})
		}
	}
}

// TestLogoutChunkedBody checks that an unlabelled body is refused however
// it is framed: one sent chunked has no Content-Length to tell it from none.
func TestLogoutChunkedBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	c := e.loginAlice()
	for _, tt := range []struct {
		name string
		body string
		want int
	}{
		{"chunked body", "{}", http.StatusUnsupportedMediaType},
		{"chunked, empty", "", http.StatusNoContent},
	} {
		// An io.Reader of unknown length makes the client send chunked.
		r, err := http.NewRequestWithContext(t.Context(), "POST", e.pub.URL+"/v1/logout", io.MultiReader(strings.NewReader(tt.body)))
		if err != nil {
			t.Fatal(err)
		}
		r.Host = acmeHost
		r.Header.Set("Origin", acmeApp)
		r.AddCookie(c)
		resp, err := e.pub.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.want)
		}
		if got := e.aliveAcme(c); got != (tt.want != http.StatusNoContent) {
			t.Errorf("%s: session alive %v after a %d", tt.name, got, resp.StatusCode)
		}
	}
}

// TestDevCookieOverPlainLoopback: a dev tenant with a Lax cookie called
// over plain HTTP by a loopback name sets a cookie without Secure (so not
// __Host-), which Safari keeps there, and reads only that one there; the
// same tenant over HTTPS (a trusted proxy's X-Forwarded-Proto) or on
// another host, a dev tenant whose cookie is SameSite=None, and a
// production tenant on loopback keep the __Host- cookie.
func TestDevCookieOverPlainLoopback(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	login := func(tenant, host, origin, user, pw string, header map[string]string) res {
		t.Helper()
		r := e.do(req{method: "POST", path: "/v1/t/" + tenant + "/login", host: host, origin: origin, header: header,
			json: map[string]string{"username": user, "password": pw}})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("login on %s: %d %s", host, r.StatusCode, r.body)
		}
		return r
	}
	secure := func(r res, name string) {
		t.Helper()
		if c := r.cookie(name); c == nil || !c.Secure {
			t.Errorf("want a Secure %s cookie, got %q", name, r.Header.Values("Set-Cookie"))
		}
	}
	// A SameSite=None cookie must be Secure (Chrome, Firefox), even here.
	secure(login("beta", "localhost:8080", betaDev, "bob", bobPassword, nil), "__Host-latchkey-beta")
	lax := betaTenant()
	lax.Cookie = session.CookiePolicy{SameSite: session.SameSiteLax}
	if _, _, err := e.m.PutTenant(t.Context(), lax); err != nil {
		t.Fatal(err)
	}
	e.reload()
	for _, host := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "api.localhost"} {
		r := login("beta", host, betaDev, "bob", bobPassword, nil)
		set := r.Header.Values("Set-Cookie")
		if len(set) != 1 || !strings.HasPrefix(set[0], "latchkey-beta=") || strings.Contains(set[0], "Secure") || !strings.Contains(set[0], "HttpOnly") {
			t.Fatalf("login on %s set %q, want one latchkey-beta cookie, HttpOnly, not Secure", host, set)
		}
		c := r.cookie("latchkey-beta")
		if got := e.do(req{method: "GET", path: "/v1/t/beta/me", host: host, origin: betaDev, cookies: []*http.Cookie{c}}); got.StatusCode != http.StatusOK {
			t.Errorf("me on %s with its cookie: %d", host, got.StatusCode)
		}
		// The plain cookie is its own: it opens nothing where the Secure
		// one is read, even renamed, since the MAC covers its name.
		renamed := &http.Cookie{Name: "__Host-latchkey-beta", Value: c.Value}
		if got := e.do(req{method: "GET", path: "/v1/t/beta/me", cookies: []*http.Cookie{renamed}}); got.StatusCode != http.StatusUnauthorized {
			t.Errorf("the plain cookie renamed __Host- on the shared host: %d, want 401", got.StatusCode)
		}
		clear := e.do(req{method: "POST", path: "/v1/t/beta/logout", host: host, origin: betaDev, cookies: []*http.Cookie{c}})
		if clear.StatusCode != http.StatusNoContent || clear.cookie("latchkey-beta") == nil || clear.cookie("latchkey-beta").MaxAge >= 0 {
			t.Errorf("logout on %s: %d %q, want 204 clearing latchkey-beta", host, clear.StatusCode, clear.Header.Values("Set-Cookie"))
		}
	}
	// HTTPS before Latchkey: the Secure cookie, loopback or not.
	secure(login("beta", "localhost:8443", betaDev, "bob", bobPassword, map[string]string{"X-Forwarded-Proto": "https"}), "__Host-latchkey-beta")
	secure(login("beta", "", betaDev, "bob", bobPassword, nil), "__Host-latchkey-beta")
	secure(login("acme", "localhost:8080", acmeApp, "alice", alicePassword, nil), "__Host-latchkey-acme")
}
