package api

// Black-box tests of the public API's credentialed CORS, CSRF and cookie
// rules (../../shared/CORS.md §1, §3, §4, §5), for both fixture tenants:
// acme (host form on auth.acme.com, https origins, SameSite=Lax) and beta
// (path form on the shared host, a localhost dev origin, SameSite=None;
// Partitioned). Their origin lists differ, and every test checks that one
// tenant's origins never get through on the other.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

const (
	corsHdrACAO = "Access-Control-Allow-Origin"
	corsHdrACAC = "Access-Control-Allow-Credentials"
	corsHdrACAM = "Access-Control-Allow-Methods"
	corsHdrACAH = "Access-Control-Allow-Headers"
	corsHdrACEH = "Access-Control-Expose-Headers"
	corsHdrACMA = "Access-Control-Max-Age"
	corsHdrACRM = "Access-Control-Request-Method"
	corsHdrACRH = "Access-Control-Request-Headers"

	// corsEvil is an origin no tenant allows.
	corsEvil = "https://evil.example"
	// corsSessionID is a well-formed session ID that names no session.
	corsSessionID = "AAAAAAAAAAAAAAAAAAAAAA"
)

// corsTenant is one fixture tenant as its SPA sees it.
type corsTenant struct {
	id          session.TenantID
	base        string   // route prefix: "/v1" (host form) or "/v1/t/beta" (path form)
	host        string   // Host header; "" is the shared host
	origins     []string // exactly the tenant's allowed origins
	foreign     []string // the other tenant's origins, never allowed here
	user        string   // the fixture user
	password    string   // every user the tests add to the tenant has this password
	sameSite    http.SameSite
	partitioned bool
	maxAge      int // Max-Age of a fresh session cookie: the absolute lifetime
}

func (tc corsTenant) cookieName() string { return "__Host-latchkey-" + string(tc.id) }

func corsTenants() []corsTenant {
	return []corsTenant{
		{
			id: "acme", base: "/v1", host: acmeHost,
			origins: []string{acmeApp, acmeAdmin}, foreign: []string{betaDev},
			user: "alice", password: alicePassword,
			sameSite: http.SameSiteLaxMode, partitioned: false,
			maxAge: int((24 * time.Hour).Seconds()), // the fixture's absolute_lifetime
		},
		{
			id: "beta", base: "/v1/t/beta", host: "",
			origins: []string{betaDev}, foreign: []string{acmeApp, acmeAdmin},
			user: "bob", password: bobPassword,
			sameSite: http.SameSiteNoneMode, partitioned: true,
			maxAge: int((168 * time.Hour).Seconds()), // the default absolute_lifetime
		},
	}
}

// corsEnvFor returns a view of e that reports to tb, so that a parallel
// subtest's failures are its own and Fatalf runs on its goroutine.
func corsEnvFor(tb testing.TB, e *env) *env {
	tb.Helper()
	c := *e
	c.tb = tb
	return &c
}

var corsUserSeq atomic.Int64

// corsNewUser adds a fresh user to tc's tenant and returns its name, so that a
// subtest that creates or ends sessions shares no state with the others.
func corsNewUser(tb testing.TB, e *env, tc corsTenant) string {
	tb.Helper()
	name := fmt.Sprintf("cors-user-%d", corsUserSeq.Add(1))
	corsEnvFor(tb, e).addUser(tc.id, name, tc.password)
	return name
}

// corsLogin logs user in from tc's first origin and returns the session
// cookie and the session ID.
func corsLogin(tb testing.TB, e *env, tc corsTenant, user string) (*http.Cookie, string) {
	tb.Helper()
	r := corsEnvFor(tb, e).do(req{method: "POST", path: tc.base + "/login", host: tc.host, origin: tc.origins[0],
		json: map[string]string{"username": user, "password": tc.password}})
	if r.StatusCode != http.StatusOK {
		tb.Fatalf("login %s/%s: StatusCode=%v, want %v (body %s)", tc.id, user, r.StatusCode, http.StatusOK, r.body)
	}
	c := r.cookie(tc.cookieName())
	if c == nil {
		tb.Fatalf("login %s/%s: cookie %s=<none>, want one", tc.id, user, tc.cookieName())
	}
	var v struct {
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || v.Session.ID == "" {
		tb.Fatalf("login %s/%s: session.id=%q (%v), want an ID", tc.id, user, v.Session.ID, err)
	}
	return c, v.Session.ID
}

// corsSessionCount returns how many live sessions user has in the store.
func corsSessionCount(tb testing.TB, e *env, tc corsTenant, user string) int {
	tb.Helper()
	ss, err := e.st.ListSessions(tb.Context(), string(tc.id), user)
	if err != nil {
		tb.Fatalf("ListSessions(%s, %s): %v", tc.id, user, err)
	}
	return len(ss)
}

// corsMeStatus is the status of GET me with c from tc's own first origin.
func corsMeStatus(tb testing.TB, e *env, tc corsTenant, c *http.Cookie) int {
	tb.Helper()
	return corsEnvFor(tb, e).do(req{method: "GET", path: tc.base + "/me", host: tc.host, origin: tc.origins[0],
		cookies: []*http.Cookie{c}}).StatusCode
}

// corsDoRaw sends a request whose headers are given line by line (the
// harness's req sets one line per name), through the OpenAPI validator.
func corsDoRaw(tb testing.TB, e *env, method, path, host string, h http.Header, body string) res {
	tb.Helper()
	r, err := http.NewRequestWithContext(tb.Context(), method, e.pub.URL+path, strings.NewReader(body))
	if err != nil {
		tb.Fatalf("NewRequest: %v", err)
	}
	r.Host = host
	if host == "" {
		r.Host = sharedHost
	}
	for k, vs := range h {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	resp, b := e.spec.do(tb, e.pub.Client(), r)
	return res{Response: resp, body: b}
}

// corsHdrTokens returns the comma-separated elements of every line of the
// header name, trimmed, empty ones dropped.
func corsHdrTokens(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				out = append(out, tok)
			}
		}
	}
	return out
}

// corsHdrHasToken reports whether the list header name holds tok, compared
// case-insensitively as header names and methods in these lists are.
func corsHdrHasToken(h http.Header, name, tok string) bool {
	return slices.ContainsFunc(corsHdrTokens(h, name), func(s string) bool { return strings.EqualFold(s, tok) })
}

// corsHdrACNames lists the Access-Control-* header names of h.
func corsHdrACNames(h http.Header) []string {
	var out []string
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// corsHdrInvariants checks what holds for every response of a credentialed
// API: ACAO is one line and never * or null (R1.9, R1.13), ACAC is absent or
// exactly "true", and no list header is the wildcard (R1.8).
func corsHdrInvariants(tb testing.TB, h http.Header) {
	tb.Helper()
	acao := h.Values(corsHdrACAO)
	if len(acao) > 1 {
		tb.Errorf("Access-Control-Allow-Origin lines=%q, want at most one", acao)
	}
	for _, v := range acao {
		if v == "*" || v == "null" || strings.Contains(v, ",") {
			tb.Errorf("Access-Control-Allow-Origin=%q, want one exact origin (never *, null or a list)", v)
		}
	}
	if acac := h.Values(corsHdrACAC); len(acac) > 0 && !slices.Equal(acac, []string{"true"}) {
		tb.Errorf("Access-Control-Allow-Credentials=%q, want absent or [\"true\"]", acac)
	}
	for _, name := range []string{corsHdrACEH, corsHdrACAM, corsHdrACAH} {
		if slices.Contains(corsHdrTokens(h, name), "*") {
			tb.Errorf("%s=%q, want no *", name, h.Values(name))
		}
	}
}

// corsHdrWantVaryOrigin checks that Vary lists Origin (R1.10).
func corsHdrWantVaryOrigin(tb testing.TB, h http.Header) {
	tb.Helper()
	if !corsHdrHasToken(h, "Vary", "Origin") {
		tb.Errorf("Vary=%q, want it to list Origin", h.Values("Vary"))
	}
}

// corsHdrWantGrant checks that an actual response lets origin read it with
// credentials (R1.6).
func corsHdrWantGrant(tb testing.TB, r res, origin string) {
	tb.Helper()
	corsHdrInvariants(tb, r.Header)
	if got := r.Header.Values(corsHdrACAO); !slices.Equal(got, []string{origin}) {
		tb.Errorf("Access-Control-Allow-Origin=%q, want [%q]", got, origin)
	}
	if got := r.Header.Values(corsHdrACAC); !slices.Equal(got, []string{"true"}) {
		tb.Errorf("Access-Control-Allow-Credentials=%q, want [\"true\"]", got)
	}
	corsHdrWantVaryOrigin(tb, r.Header)
}

// corsHdrWantNoGrant checks that an actual response lets no origin read it,
// yet says it depends on Origin (R1.7, R1.10, §3).
func corsHdrWantNoGrant(tb testing.TB, r res) {
	tb.Helper()
	corsHdrInvariants(tb, r.Header)
	for _, name := range []string{corsHdrACAO, corsHdrACAC, corsHdrACEH} {
		if got := r.Header.Values(name); len(got) > 0 {
			tb.Errorf("%s=%q, want none", name, got)
		}
	}
	corsHdrWantVaryOrigin(tb, r.Header)
}

// corsHdrWantNoCORS checks that a response carries no Access-Control-*
// header at all (refused preflight, unknown tenant).
func corsHdrWantNoCORS(tb testing.TB, r res) {
	tb.Helper()
	if got := corsHdrACNames(r.Header); len(got) > 0 {
		tb.Errorf("Access-Control-* headers=%q, want none", got)
	}
}

// corsWantNoSetCookie checks that a response sets no cookie.
func corsWantNoSetCookie(tb testing.TB, r res) {
	tb.Helper()
	if got := r.Header.Values("Set-Cookie"); len(got) > 0 {
		tb.Errorf("Set-Cookie=%q, want none", got)
	}
}

// ---------------------------------------------------------------- §1 preflights

func TestCORSPreflightAllowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	cases := []struct {
		name      string
		path      string // relative to the tenant's prefix
		acrm      string
		acrh      string // "" sends no ACRH
		badCookie bool   // a preflight carries no cookie; one that does must not matter
		wantACAM  string // a method ACAM must list; "" checks nothing
	}{
		{name: "login POST content-type", path: "/login", acrm: "POST", acrh: "content-type"},
		{name: "logout POST content-type", path: "/logout", acrm: "POST", acrh: "content-type"},
		{name: "sessions DELETE", path: "/sessions", acrm: "DELETE", wantACAM: "DELETE"},
		{name: "sessions DELETE content-type", path: "/sessions", acrm: "DELETE", acrh: "content-type", wantACAM: "DELETE"},
		{name: "session by id DELETE", path: "/sessions/" + corsSessionID, acrm: "DELETE", wantACAM: "DELETE"},
		{name: "me GET latchkey-receipt", path: "/me", acrm: "GET", acrh: "latchkey-receipt"},
		{name: "sessions DELETE content-type and latchkey-receipt", path: "/sessions", acrm: "DELETE", acrh: "content-type,latchkey-receipt", wantACAM: "DELETE"},
		{name: "doctor GET latchkey-receipt", path: "/doctor", acrm: "GET", acrh: "latchkey-receipt"},
		{name: "login POST with a bad cookie", path: "/login", acrm: "POST", acrh: "content-type", badCookie: true},
		{name: "sessions DELETE with a bad cookie", path: "/sessions", acrm: "DELETE", badCookie: true, wantACAM: "DELETE"},
	}
	for _, tc := range corsTenants() {
		for _, origin := range tc.origins {
			for _, c := range cases {
				t.Run(string(tc.id)+"/"+origin+"/"+c.name, func(t *testing.T) {
					t.Parallel()
					q := req{method: "OPTIONS", path: tc.base + c.path, host: tc.host, origin: origin,
						header: map[string]string{corsHdrACRM: c.acrm}}
					if c.acrh != "" {
						q.header[corsHdrACRH] = c.acrh
					}
					if c.badCookie {
						q.cookies = []*http.Cookie{{Name: tc.cookieName(), Value: "not-a-session"}}
					}
					r := corsEnvFor(t, e).do(q)

					if r.StatusCode != http.StatusNoContent {
						t.Errorf("StatusCode=%v, want %v", r.StatusCode, http.StatusNoContent)
					}
					corsHdrInvariants(t, r.Header)
					if got := r.Header.Values(corsHdrACAO); !slices.Equal(got, []string{origin}) {
						t.Errorf("Access-Control-Allow-Origin=%q, want [%q] (one line, byte for byte)", got, origin)
					}
					if got := r.Header.Values(corsHdrACAC); !slices.Equal(got, []string{"true"}) {
						t.Errorf("Access-Control-Allow-Credentials=%q, want [\"true\"]", got)
					}
					if c.acrh != "" {
						for name := range strings.SplitSeq(c.acrh, ",") {
							if !corsHdrHasToken(r.Header, corsHdrACAH, name) {
								t.Errorf("Access-Control-Allow-Headers=%q, want it to cover %q", r.Header.Values(corsHdrACAH), name)
							}
						}
					}
					if c.wantACAM != "" && !corsHdrHasToken(r.Header, corsHdrACAM, c.wantACAM) {
						t.Errorf("Access-Control-Allow-Methods=%q, want it to list %s", r.Header.Values(corsHdrACAM), c.wantACAM)
					}
					if got := r.Header.Values(corsHdrACMA); !slices.Equal(got, []string{"600"}) {
						t.Errorf("Access-Control-Max-Age=%q, want [\"600\"]", got)
					}
					for _, v := range []string{"Origin", corsHdrACRM, corsHdrACRH} {
						if !corsHdrHasToken(r.Header, "Vary", v) {
							t.Errorf("Vary=%q, want it to list %s", r.Header.Values("Vary"), v)
						}
					}
					corsWantNoSetCookie(t, r)
					if got := r.Header.Values("WWW-Authenticate"); len(got) > 0 {
						t.Errorf("WWW-Authenticate=%q, want none", got)
					}
					if len(r.body) != 0 {
						t.Errorf("body=%q, want empty", r.body)
					}
				})
			}
		}
	}
}

func TestCORSPreflightRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	type tcase struct {
		name      string
		origin    string
		acrm      string
		acrh      string
		badCookie bool
	}
	for _, tc := range corsTenants() {
		own := tc.origins[0]
		cases := []tcase{
			{name: "evil origin", origin: corsEvil, acrm: "POST", acrh: "content-type"},
			{name: "null origin", origin: "null", acrm: "POST", acrh: "content-type"},
			{name: "uppercase own origin", origin: strings.ToUpper(own), acrm: "POST", acrh: "content-type"},
			{name: "own origin with trailing slash", origin: own + "/", acrm: "POST", acrh: "content-type"},
			{name: "method PUT", origin: own, acrm: "PUT", acrh: "content-type"},
			{name: "method PATCH", origin: own, acrm: "PATCH", acrh: "content-type"},
			{name: "method patch", origin: own, acrm: "patch"},
			{name: "method CONNECT", origin: own, acrm: "CONNECT"},
			{name: "method TRACE", origin: own, acrm: "TRACE"},
			{name: "header authorization", origin: own, acrm: "POST", acrh: "authorization"},
			{name: "header x-foo", origin: own, acrm: "POST", acrh: "x-foo"},
			{name: "headers content-type and x-foo", origin: own, acrm: "POST", acrh: "content-type,x-foo"},
			{name: "headers authorization and content-type", origin: own, acrm: "POST", acrh: "authorization,content-type"},
			{name: "header x-requested-with", origin: own, acrm: "POST", acrh: "x-requested-with"},
			{name: "header cookie", origin: own, acrm: "POST", acrh: "cookie"},
			{name: "DELETE with header x-foo", origin: own, acrm: "DELETE", acrh: "x-foo"},
			{name: "evil origin with a bad cookie", origin: corsEvil, acrm: "POST", acrh: "content-type", badCookie: true},
			{name: "method PUT with a bad cookie", origin: own, acrm: "PUT", badCookie: true},
		}
		for _, o := range tc.foreign {
			cases = append(cases,
				tcase{name: "other tenant's origin " + o, origin: o, acrm: "POST", acrh: "content-type"},
				tcase{name: "other tenant's origin DELETE " + o, origin: o, acrm: "DELETE"},
			)
		}
		for _, path := range []string{"/login", "/logout", "/sessions"} {
			for _, c := range cases {
				t.Run(string(tc.id)+path+"/"+c.name, func(t *testing.T) {
					t.Parallel()
					q := req{method: "OPTIONS", path: tc.base + path, host: tc.host, origin: c.origin,
						header: map[string]string{corsHdrACRM: c.acrm}}
					if c.acrh != "" {
						q.header[corsHdrACRH] = c.acrh
					}
					if c.badCookie {
						q.cookies = []*http.Cookie{{Name: tc.cookieName(), Value: "not-a-session"}}
					}
					r := corsEnvFor(t, e).do(q)
					if r.StatusCode != http.StatusForbidden {
						t.Errorf("StatusCode=%v, want %v", r.StatusCode, http.StatusForbidden)
					}
					corsHdrWantNoCORS(t, r)
					corsWantNoSetCookie(t, r)
					if got := r.Header.Values("WWW-Authenticate"); len(got) > 0 {
						t.Errorf("WWW-Authenticate=%q, want none", got)
					}
				})
			}
		}
	}
}

// TestCORSOptionsWithoutACRM checks R1.1: OPTIONS without
// Access-Control-Request-Method is not a preflight but an actual request, so
// it is not answered 204 with preflight headers, and it gets the actual
// request's CORS headers.
func TestCORSOptionsWithoutACRM(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range corsTenants() {
		cases := []struct {
			name   string
			origin string
			acrh   string
			grant  bool
		}{
			{name: "own origin", origin: tc.origins[0], grant: true},
			{name: "own origin with ACRH only", origin: tc.origins[0], acrh: "content-type", grant: true},
			{name: "other tenant's origin", origin: tc.foreign[0]},
			{name: "evil origin", origin: corsEvil},
		}
		for _, path := range []string{"/login", "/me"} {
			for _, c := range cases {
				t.Run(string(tc.id)+path+"/"+c.name, func(t *testing.T) {
					t.Parallel()
					q := req{method: "OPTIONS", path: tc.base + path, host: tc.host, origin: c.origin}
					if c.acrh != "" {
						q.header = map[string]string{corsHdrACRH: c.acrh}
					}
					r := corsEnvFor(t, e).do(q)
					if r.StatusCode == http.StatusNoContent {
						t.Errorf("StatusCode=%v, want an actual response, not a preflight's 204", r.StatusCode)
					}
					if r.StatusCode != http.StatusMethodNotAllowed {
						t.Errorf("StatusCode=%v, want %v (OPTIONS is no route's method)", r.StatusCode, http.StatusMethodNotAllowed)
					}
					for _, name := range []string{corsHdrACAM, corsHdrACAH, corsHdrACMA} {
						if got := r.Header.Values(name); len(got) > 0 {
							t.Errorf("%s=%q, want none on an actual response", name, got)
						}
					}
					if c.grant {
						corsHdrWantGrant(t, r, c.origin)
					} else {
						corsHdrWantNoGrant(t, r)
					}
				})
			}
		}
	}
}

func TestCORSPreflightUnknownTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	cases := []struct {
		name   string
		host   string
		path   string
		origin string
	}{
		{name: "unknown tenant, acme origin", path: "/v1/t/nope/login", origin: acmeApp},
		{name: "unknown tenant, beta origin", path: "/v1/t/nope/login", origin: betaDev},
		{name: "unknown tenant me", path: "/v1/t/nope/me", origin: betaDev},
		{name: "unknown host, host form", host: "auth.nope.example", path: "/v1/login", origin: acmeApp},
		{name: "shared host, host form", path: "/v1/login", origin: betaDev},
		{name: "acme path form on acme host", host: acmeHost, path: "/v1/t/acme/login", origin: acmeApp},
		{name: "beta path form on acme host", host: acmeHost, path: "/v1/t/beta/login", origin: betaDev},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := corsEnvFor(t, e).do(req{method: "OPTIONS", path: c.path, host: c.host, origin: c.origin,
				header: map[string]string{corsHdrACRM: "POST", corsHdrACRH: "content-type"}})
			if r.StatusCode != http.StatusNotFound {
				t.Errorf("StatusCode=%v, want %v", r.StatusCode, http.StatusNotFound)
			}
			corsHdrWantNoCORS(t, r)
			corsHdrWantVaryOrigin(t, r.Header)
		})
	}
}

// ---------------------------------------------------------------- §1 actual responses

func TestCORSActualResponsesGrantAllowedOrigin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range corsTenants() {
		good, _ := corsLogin(t, e, tc, tc.user)
		bad := &http.Cookie{Name: tc.cookieName(), Value: "not-a-session"}
		creds := func(pw string) map[string]string { return map[string]string{"username": tc.user, "password": pw} }
		cases := []struct {
			name     string
			q        req
			want     int
			wantType string // problem type slug; "" checks nothing
		}{
			{name: "me 200", q: req{method: "GET", path: "/me", cookies: []*http.Cookie{good}}, want: http.StatusOK},
			{name: "sessions 200", q: req{method: "GET", path: "/sessions", cookies: []*http.Cookie{good}}, want: http.StatusOK},
			{name: "me 401 without cookie", q: req{method: "GET", path: "/me"}, want: http.StatusUnauthorized, wantType: "unauthenticated"},
			{name: "me 401 bad cookie", q: req{method: "GET", path: "/me", cookies: []*http.Cookie{bad}}, want: http.StatusUnauthorized, wantType: "unauthenticated"},
			{name: "login 401 bad password", q: req{method: "POST", path: "/login", json: creds("wrong password")}, want: http.StatusUnauthorized, wantType: "invalid-credentials"},
			{name: "login 400 bad JSON", q: req{method: "POST", path: "/login", ct: "application/json", body: `{"username":`}, want: http.StatusBadRequest, wantType: "bad-request"},
			{name: "login 415 wrong content type", q: req{method: "POST", path: "/login", ct: "text/plain", body: `{"username":"x","password":"y"}`}, want: http.StatusUnsupportedMediaType, wantType: "unsupported-media-type"},
			{name: "logout 204 without session", q: req{method: "POST", path: "/logout", json: map[string]string{}}, want: http.StatusNoContent},
			{name: "404 unknown route", q: req{method: "GET", path: "/nope"}, want: http.StatusNotFound, wantType: "not-found"},
			{name: "405 GET logout", q: req{method: "GET", path: "/logout", cookies: []*http.Cookie{bad}}, want: http.StatusMethodNotAllowed, wantType: "method-not-allowed"},
			{name: "405 DELETE me", q: req{method: "DELETE", path: "/me"}, want: http.StatusMethodNotAllowed, wantType: "method-not-allowed"},
		}
		for _, origin := range tc.origins {
			for _, c := range cases {
				t.Run(string(tc.id)+"/"+origin+"/"+c.name, func(t *testing.T) {
					t.Parallel()
					q := c.q
					q.path = tc.base + q.path
					q.host = tc.host
					q.origin = origin
					r := corsEnvFor(t, e).do(q)
					if r.StatusCode != c.want {
						t.Errorf("StatusCode=%v, want %v (body %s)", r.StatusCode, c.want, r.body)
					}
					if c.wantType != "" {
						if got := r.problemType(); got != c.wantType {
							t.Errorf("problem type=%q, want %q", got, c.wantType)
						}
					}
					corsHdrWantGrant(t, r, origin)
				})
			}
		}
	}
}

func TestCORSActualResponsesWithoutGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range corsTenants() {
		good, _ := corsLogin(t, e, tc, tc.user)
		origins := append([]string{"", corsEvil, "null"}, tc.foreign...)
		// want is the status without Origin, from a non-browser client.
		// From any other origin a route refuses the request (403) before it
		// reads a session; a path or method no route takes keeps its 404 or
		// 405.
		cases := []struct {
			name   string
			q      req
			want   int
			routed bool
		}{
			{name: "me 200", q: req{method: "GET", path: "/me", cookies: []*http.Cookie{good}}, want: http.StatusOK, routed: true},
			{name: "sessions 200", q: req{method: "GET", path: "/sessions", cookies: []*http.Cookie{good}}, want: http.StatusOK, routed: true},
			{name: "me 401", q: req{method: "GET", path: "/me"}, want: http.StatusUnauthorized, routed: true},
			{name: "404 unknown route", q: req{method: "GET", path: "/nope"}, want: http.StatusNotFound},
			{name: "405 GET logout", q: req{method: "GET", path: "/logout"}, want: http.StatusMethodNotAllowed},
			{name: "login bad password", q: req{method: "POST", path: "/login",
				json: map[string]string{"username": tc.user, "password": "wrong password"}}, want: http.StatusUnauthorized, routed: true},
		}
		for _, origin := range origins {
			for _, c := range cases {
				label := origin
				if label == "" {
					label = "no Origin"
				}
				t.Run(string(tc.id)+"/"+label+"/"+c.name, func(t *testing.T) {
					t.Parallel()
					q := c.q
					q.path = tc.base + q.path
					q.host = tc.host
					q.origin = origin
					r := corsEnvFor(t, e).do(q)
					want := c.want
					if origin != "" && c.routed {
						want = http.StatusForbidden
					}
					if r.StatusCode != want {
						t.Errorf("StatusCode=%v, want %v (body %s)", r.StatusCode, want, r.body)
					}
					if want == http.StatusForbidden && r.problemType() != "forbidden-origin" {
						t.Errorf("problem type=%q, want forbidden-origin", r.problemType())
					}
					corsHdrWantNoGrant(t, r)
				})
			}
		}
	}
}

// TestCORSVaryIsAppended checks R1.10's "append, do not overwrite": a Vary
// set by an outer layer (compression, say) survives next to Origin.
func TestCORSVaryIsAppended(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	pub := e.srv.Public()
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Accept-Encoding")
		pub.ServeHTTP(w, r)
	})
	cases := []struct {
		name   string
		method string
		host   string
		path   string
		origin string
		acrm   string
	}{
		{name: "acme me allowed origin", method: "GET", host: acmeHost, path: "/v1/me", origin: acmeApp},
		{name: "acme me evil origin", method: "GET", host: acmeHost, path: "/v1/me", origin: corsEvil},
		{name: "acme me no origin", method: "GET", host: acmeHost, path: "/v1/me"},
		{name: "beta me allowed origin", method: "GET", host: sharedHost, path: "/v1/t/beta/me", origin: betaDev},
		{name: "beta me acme origin", method: "GET", host: sharedHost, path: "/v1/t/beta/me", origin: acmeApp},
		{name: "acme login evil origin", method: "POST", host: acmeHost, path: "/v1/login", origin: corsEvil},
		{name: "acme preflight allowed", method: "OPTIONS", host: acmeHost, path: "/v1/login", origin: acmeApp, acrm: "DELETE"},
		{name: "beta preflight refused", method: "OPTIONS", host: sharedHost, path: "/v1/t/beta/login", origin: acmeApp, acrm: "POST"},
		{name: "unknown tenant", method: "GET", host: sharedHost, path: "/v1/t/nope/me", origin: acmeApp},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequestWithContext(t.Context(), c.method, c.path, nil)
			r.Host = c.host
			if c.origin != "" {
				r.Header.Set("Origin", c.origin)
			}
			if c.acrm != "" {
				r.Header.Set(corsHdrACRM, c.acrm)
			}
			w := httptest.NewRecorder()
			outer.ServeHTTP(w, r)
			h := w.Result().Header
			for _, v := range []string{"Accept-Encoding", "Origin"} {
				if !corsHdrHasToken(h, "Vary", v) {
					t.Errorf("Vary=%q, want it to list %s", h.Values("Vary"), v)
				}
			}
		})
	}
}

// ---------------------------------------------------------------- §3 misconfiguration classes

func TestCORSMisconfigurationClasses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	type tcase struct {
		name   string
		origin string
		grant  bool // the control cases: the tenant's own origins
	}
	acme := []tcase{
		{name: "control app", origin: acmeApp, grant: true},
		{name: "control admin", origin: acmeAdmin, grant: true},
		{name: "reflect any origin", origin: "https://evil.example"},
		{name: "null", origin: "null"},
		{name: "prefix match", origin: "https://app.acme.com.evil.example"},
		{name: "suffix match", origin: "https://evilacme.com"},
		{name: "suffix match label", origin: "https://xapp.acme.com"},
		{name: "unescaped dot x", origin: "https://appxacme.com"},
		{name: "unescaped dot hyphen", origin: "https://app-acme.com"},
		{name: "substring tld", origin: "https://app.acme.co"},
		{name: "substring label", origin: "https://pp.acme.com"},
		{name: "any subdomain", origin: "https://evil.app.acme.com"},
		{name: "sibling", origin: "https://blog.acme.com"},
		{name: "apex", origin: "https://acme.com"},
		{name: "http downgrade", origin: "http://app.acme.com"},
		{name: "other port", origin: "https://app.acme.com:8443"},
		{name: "default port", origin: "https://app.acme.com:443"},
		{name: "default port leading zero", origin: "https://app.acme.com:0443"},
		{name: "empty port", origin: "https://app.acme.com:"},
		{name: "trailing slash", origin: "https://app.acme.com/"},
		{name: "uppercase", origin: "HTTPS://APP.ACME.COM"},
		{name: "uppercase scheme", origin: "HTTPS://app.acme.com"},
		{name: "mixed case host", origin: "https://App.acme.com"},
		{name: "trailing dot", origin: "https://app.acme.com."},
		{name: "special underscore", origin: "https://app.acme.com_.evil.example"},
		{name: "special percent-encoded backtick", origin: "https://app.acme.com%60.evil.example"},
		{name: "special backtick", origin: "https://app.acme.com`.evil.example"},
		{name: "userinfo before", origin: "https://user@app.acme.com"},
		{name: "userinfo after", origin: "https://app.acme.com@evil.example"},
		{name: "path", origin: "https://app.acme.com/path"},
		{name: "query", origin: "https://app.acme.com?x=1"},
		{name: "comma list", origin: "https://app.acme.com, https://evil.example"},
		{name: "comma list no space", origin: "https://app.acme.com,https://evil.example"},
		{name: "space list", origin: "https://app.acme.com https://evil.example"},
		{name: "wildcard", origin: "*"},
		{name: "punycode lookalike", origin: "https://xn--pp-6kc.acme.com"},
		{name: "unicode lookalike", origin: "https://аpp.acme.com"},
		{name: "trie concatenation adminapp", origin: "https://adminapp.acme.com"},
		{name: "trie concatenation appadmin", origin: "https://appadmin.acme.com"},
		{name: "third-party hosting", origin: "https://acme.github.io"},
		{name: "beta's origin", origin: betaDev},
	}
	beta := []tcase{
		{name: "control dev", origin: betaDev, grant: true},
		{name: "reflect any origin", origin: "https://evil.example"},
		{name: "null", origin: "null"},
		{name: "other port", origin: "http://localhost:5174"},
		{name: "port prefix", origin: "http://localhost:517"},
		{name: "port suffix", origin: "http://localhost:51730"},
		{name: "port leading zero", origin: "http://localhost:05173"},
		{name: "no port", origin: "http://localhost"},
		{name: "default port", origin: "http://localhost:80"},
		{name: "loopback IPv4", origin: "http://127.0.0.1:5173"},
		{name: "loopback IPv6", origin: "http://[::1]:5173"},
		{name: "any address", origin: "http://0.0.0.0:5173"},
		{name: "https upgrade", origin: "https://localhost:5173"},
		{name: "trailing slash", origin: "http://localhost:5173/"},
		{name: "uppercase", origin: "HTTP://LOCALHOST:5173"},
		{name: "mixed case host", origin: "http://Localhost:5173"},
		{name: "trailing dot", origin: "http://localhost.:5173"},
		{name: "subdomain of localhost", origin: "http://evil.localhost:5173"},
		{name: "prefix match", origin: "http://localhost:5173.evil.example"},
		{name: "userinfo before", origin: "http://user@localhost:5173"},
		{name: "userinfo after", origin: "http://localhost:5173@evil.example"},
		{name: "path", origin: "http://localhost:5173/path"},
		{name: "comma list", origin: "http://localhost:5173, https://evil.example"},
		{name: "wildcard", origin: "*"},
		{name: "acme's app origin", origin: acmeApp},
		{name: "acme's admin origin", origin: acmeAdmin},
	}
	groups := []struct {
		tenant corsTenant
		cookie *http.Cookie
		cases  []tcase
	}{
		{tenant: corsTenants()[0], cookie: e.loginAlice(), cases: acme},
		{tenant: corsTenants()[1], cookie: e.loginBob(), cases: beta},
	}
	for _, g := range groups {
		for _, c := range g.cases {
			t.Run(string(g.tenant.id)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				r := corsEnvFor(t, e).do(req{method: "GET", path: g.tenant.base + "/me", host: g.tenant.host,
					origin: c.origin, cookies: []*http.Cookie{g.cookie}})
				if c.grant {
					if r.StatusCode != http.StatusOK {
						t.Errorf("StatusCode=%v, want %v", r.StatusCode, http.StatusOK)
					}
					corsHdrWantGrant(t, r, c.origin)
					return
				}
				// Refused before the session is read, and never granted.
				if r.StatusCode != http.StatusForbidden || r.problemType() != "forbidden-origin" {
					t.Errorf("StatusCode=%v problem %q, want 403 forbidden-origin", r.StatusCode, r.problemType())
				}
				corsHdrWantNoGrant(t, r)
			})
		}
	}
}

// TestCORSDuplicateOriginHeaders: browsers send at most one Origin line, so
// a request with two is no browser's and must not be granted either.
func TestCORSDuplicateOriginHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range corsTenants() {
		good, _ := corsLogin(t, e, tc, tc.user)
		cases := []struct {
			name    string
			origins []string
		}{
			{name: "own then evil", origins: []string{tc.origins[0], corsEvil}},
			{name: "evil then own", origins: []string{corsEvil, tc.origins[0]}},
			{name: "own then other tenant's", origins: []string{tc.origins[0], tc.foreign[0]}},
			{name: "other tenant's then own", origins: []string{tc.foreign[0], tc.origins[0]}},
		}
		for _, c := range cases {
			t.Run(string(tc.id)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				h := http.Header{"Origin": c.origins, "Cookie": {good.Name + "=" + good.Value}}
				r := corsDoRaw(t, e, "GET", tc.base+"/me", tc.host, h, "")
				corsHdrWantNoGrant(t, r)
			})
		}
	}
}

// ---------------------------------------------------------------- §5 CSRF

// TestCSRFDisallowedOrigins: unsafe requests from an origin the tenant does
// not list are refused with 403 forbidden-origin and change nothing (R5.2,
// R5.5, R5.6).
func TestCSRFDisallowedOrigins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	actions := []string{"login", "logout", "revoke all sessions", "revoke session"}
	for _, tc := range corsTenants() {
		origins := append([]string{corsEvil, "null", "https://blog.acme.com", strings.ToUpper(tc.origins[0]), tc.origins[0] + "/"}, tc.foreign...)
		for _, origin := range origins {
			for _, action := range actions {
				t.Run(string(tc.id)+"/"+origin+"/"+action, func(t *testing.T) {
					t.Parallel()
					user := corsNewUser(t, e, tc)
					victim, id := corsLogin(t, e, tc, user)
					q := req{host: tc.host, origin: origin}
					switch action {
					case "login":
						q.method, q.path = "POST", tc.base+"/login"
						q.json = map[string]string{"username": user, "password": tc.password}
					case "logout":
						q.method, q.path = "POST", tc.base+"/logout"
						q.json = map[string]string{}
						q.cookies = []*http.Cookie{victim}
					case "revoke all sessions":
						q.method, q.path = "DELETE", tc.base+"/sessions"
						q.cookies = []*http.Cookie{victim}
					case "revoke session":
						q.method, q.path = "DELETE", tc.base+"/sessions/"+id
						q.cookies = []*http.Cookie{victim}
					}
					r := corsEnvFor(t, e).do(q)
					if r.StatusCode != http.StatusForbidden {
						t.Errorf("StatusCode=%v, want %v (body %s)", r.StatusCode, http.StatusForbidden, r.body)
					}
					if got := r.problemType(); got != "forbidden-origin" {
						t.Errorf("problem type=%q, want %q", got, "forbidden-origin")
					}
					corsWantNoSetCookie(t, r)
					corsHdrWantNoGrant(t, r)
					if got := corsSessionCount(t, e, tc, user); got != 1 {
						t.Errorf("sessions after the refused %s=%v, want 1", action, got)
					}
					if got := corsMeStatus(t, e, tc, victim); got != http.StatusOK {
						t.Errorf("me with the victim's cookie: StatusCode=%v, want %v", got, http.StatusOK)
					}
				})
			}
		}
	}
}

// TestCSRFFetchMetadata walks R5.2's decision list with Origin and
// Sec-Fetch-Site, on login (which must not create a session when refused)
// and on logout (which must not end one).
func TestCSRFFetchMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range corsTenants() {
		cases := []struct {
			name   string
			origin string
			sfs    string // Sec-Fetch-Site; "" sends none
			allow  bool
		}{
			{name: "allowed origin", origin: tc.origins[0], allow: true},
			{name: "allowed origin cross-site", origin: tc.origins[0], sfs: "cross-site", allow: true},
			{name: "allowed origin same-site", origin: tc.origins[0], sfs: "same-site", allow: true},
			{name: "no Origin no Sec-Fetch-Site (curl)", allow: true},
			{name: "no Origin same-origin", sfs: "same-origin", allow: true},
			{name: "no Origin none", sfs: "none", allow: true},
			{name: "no Origin cross-site", sfs: "cross-site"},
			{name: "no Origin same-site", sfs: "same-site"},
			{name: "evil origin cross-site", origin: corsEvil, sfs: "cross-site"},
			{name: "sibling origin same-site", origin: "https://blog.acme.com", sfs: "same-site"},
			{name: "other tenant's origin cross-site", origin: tc.foreign[0], sfs: "cross-site"},
			{name: "other tenant's origin", origin: tc.foreign[0]},
			{name: "null origin", origin: "null"},
			{name: "null origin cross-site", origin: "null", sfs: "cross-site"},
			{name: "evil origin", origin: corsEvil},
		}
		for _, action := range []string{"login", "logout"} {
			for _, c := range cases {
				t.Run(string(tc.id)+"/"+action+"/"+c.name, func(t *testing.T) {
					t.Parallel()
					user := corsNewUser(t, e, tc)
					q := req{method: "POST", path: tc.base + "/" + action, host: tc.host, origin: c.origin, header: map[string]string{}}
					if c.sfs != "" {
						q.header["Sec-Fetch-Site"] = c.sfs
					}
					var victim *http.Cookie
					if action == "login" {
						q.json = map[string]string{"username": user, "password": tc.password}
					} else {
						victim, _ = corsLogin(t, e, tc, user)
						q.json = map[string]string{}
						q.cookies = []*http.Cookie{victim}
					}
					r := corsEnvFor(t, e).do(q)

					switch {
					case !c.allow:
						if r.StatusCode != http.StatusForbidden {
							t.Errorf("StatusCode=%v, want %v (body %s)", r.StatusCode, http.StatusForbidden, r.body)
						}
						if got := r.problemType(); got != "forbidden-origin" {
							t.Errorf("problem type=%q, want %q", got, "forbidden-origin")
						}
						corsWantNoSetCookie(t, r)
					case action == "login":
						if r.StatusCode != http.StatusOK {
							t.Errorf("StatusCode=%v, want %v (body %s)", r.StatusCode, http.StatusOK, r.body)
						}
					default:
						if r.StatusCode != http.StatusNoContent {
							t.Errorf("StatusCode=%v, want %v (body %s)", r.StatusCode, http.StatusNoContent, r.body)
						}
					}
					wantSessions := 1 // logout: the victim's session stays
					switch {
					case action == "login" && !c.allow:
						wantSessions = 0
					case action == "logout" && c.allow:
						wantSessions = 0
					}
					if got := corsSessionCount(t, e, tc, user); got != wantSessions {
						t.Errorf("sessions after the %s=%v, want %v", action, got, wantSessions)
					}
					if victim != nil && !c.allow {
						if got := corsMeStatus(t, e, tc, victim); got != http.StatusOK {
							t.Errorf("me with the victim's cookie: StatusCode=%v, want %v", got, http.StatusOK)
						}
					}
				})
			}
		}
	}
}

// TestCSRFContentType checks R5.3 and R5.5: login and logout require a
// Content-Type whose essence is application/json, even from an allowed
// origin, and a refused login sets no cookie.
func TestCSRFContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	cases := []struct {
		name string
		cts  []string // Content-Type lines; nil sends none
		ok   bool
	}{
		{name: "text/plain", cts: []string{"text/plain"}},
		{name: "text/plain with json parameter", cts: []string{"text/plain; application/json"}},
		{name: "text/plain charset", cts: []string{"text/plain;charset=UTF-8"}},
		{name: "form urlencoded", cts: []string{"application/x-www-form-urlencoded"}},
		{name: "multipart", cts: []string{"multipart/form-data; boundary=xyz"}},
		{name: "missing", cts: nil},
		{name: "empty", cts: []string{""}},
		{name: "two lines json first", cts: []string{"application/json", "text/plain"}},
		{name: "two lines text first", cts: []string{"text/plain", "application/json"}},
		{name: "two identical json lines", cts: []string{"application/json", "application/json"}},
		{name: "json suffix", cts: []string{"application/jsonx"}},
		{name: "json structured suffix", cts: []string{"application/merge-patch+json"}},
		{name: "text/json", cts: []string{"text/json"}},
		{name: "json with charset", cts: []string{"application/json; charset=utf-8"}, ok: true},
		{name: "json no space charset", cts: []string{"application/json;charset=UTF-8"}, ok: true},
		{name: "json", cts: []string{"application/json"}, ok: true},
	}
	for _, tc := range corsTenants() {
		for _, origin := range tc.origins {
			for _, action := range []string{"login", "logout"} {
				for _, c := range cases {
					t.Run(string(tc.id)+"/"+origin+"/"+action+"/"+c.name, func(t *testing.T) {
						t.Parallel()
						user := corsNewUser(t, e, tc)
						h := http.Header{"Origin": {origin}}
						for _, ct := range c.cts {
							h.Add("Content-Type", ct)
						}
						body := "{}"
						var victim *http.Cookie
						if action == "login" {
							b, _ := json.Marshal(map[string]string{"username": user, "password": tc.password})
							body = string(b)
						} else {
							victim, _ = corsLogin(t, e, tc, user)
							h.Add("Cookie", victim.Name+"="+victim.Value)
						}
						r := corsDoRaw(t, e, "POST", tc.base+"/"+action, tc.host, h, body)
						corsHdrWantGrant(t, r, origin)

						want := http.StatusUnsupportedMediaType
						switch {
						case c.ok && action == "login":
							want = http.StatusOK
						case c.ok:
							want = http.StatusNoContent
						}
						if r.StatusCode != want {
							t.Errorf("StatusCode=%v, want %v (body %s)", r.StatusCode, want, r.body)
						}
						if !c.ok {
							if got := r.problemType(); got != "unsupported-media-type" {
								t.Errorf("problem type=%q, want %q", got, "unsupported-media-type")
							}
							corsWantNoSetCookie(t, r)
						}
						wantSessions := 1
						if c.ok == (action == "logout") {
							wantSessions = 0
						}
						if got := corsSessionCount(t, e, tc, user); got != wantSessions {
							t.Errorf("sessions after the %s=%v, want %v", action, got, wantSessions)
						}
					})
				}
			}
		}
	}
}

// TestCSRFSafeMethodsChangeNothing checks R5.4: GET, HEAD and OPTIONS never
// end a session, whatever the path.
func TestCSRFSafeMethodsChangeNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range corsTenants() {
		cases := []struct {
			name   string
			method string
			path   string // relative to the tenant's prefix; {id} is the session's ID
			origin string
			acrm   string
			want   int // 0 checks no status
		}{
			{name: "GET logout", method: "GET", path: "/logout", origin: tc.origins[0], want: http.StatusMethodNotAllowed},
			{name: "GET logout evil origin", method: "GET", path: "/logout", origin: corsEvil, want: http.StatusMethodNotAllowed},
			{name: "GET logout no origin", method: "GET", path: "/logout", want: http.StatusMethodNotAllowed},
			{name: "HEAD logout", method: "HEAD", path: "/logout", origin: corsEvil, want: http.StatusMethodNotAllowed},
			{name: "HEAD logout allowed origin", method: "HEAD", path: "/logout", origin: tc.origins[0], want: http.StatusMethodNotAllowed},
			{name: "GET login", method: "GET", path: "/login", origin: corsEvil, want: http.StatusMethodNotAllowed},
			{name: "GET login allowed origin", method: "GET", path: "/login", origin: tc.origins[0], want: http.StatusMethodNotAllowed},
			{name: "GET session by id", method: "GET", path: "/sessions/{id}", origin: corsEvil, want: http.StatusMethodNotAllowed},
			{name: "GET session by id no origin", method: "GET", path: "/sessions/{id}", want: http.StatusMethodNotAllowed},
			// HEAD on a GET route: its status is not this test's concern (chi
			// answers 405), only that nothing changes.
			{name: "HEAD sessions", method: "HEAD", path: "/sessions", origin: corsEvil},
			{name: "OPTIONS logout", method: "OPTIONS", path: "/logout", origin: corsEvil, want: http.StatusMethodNotAllowed},
			{name: "OPTIONS logout allowed origin", method: "OPTIONS", path: "/logout", origin: tc.origins[0], want: http.StatusMethodNotAllowed},
			{name: "preflight logout", method: "OPTIONS", path: "/logout", origin: tc.origins[0], acrm: "POST", want: http.StatusNoContent},
			{name: "preflight DELETE sessions", method: "OPTIONS", path: "/sessions", origin: tc.origins[0], acrm: "DELETE", want: http.StatusNoContent},
			{name: "preflight DELETE session by id", method: "OPTIONS", path: "/sessions/{id}", origin: tc.origins[0], acrm: "DELETE", want: http.StatusNoContent},
		}
		for _, c := range cases {
			t.Run(string(tc.id)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				user := corsNewUser(t, e, tc)
				victim, id := corsLogin(t, e, tc, user)
				q := req{method: c.method, path: tc.base + strings.ReplaceAll(c.path, "{id}", id), host: tc.host,
					origin: c.origin, cookies: []*http.Cookie{victim}}
				if c.acrm != "" {
					q.header = map[string]string{corsHdrACRM: c.acrm}
				}
				r := corsEnvFor(t, e).do(q)
				if c.want != 0 && r.StatusCode != c.want {
					t.Errorf("StatusCode=%v, want %v", r.StatusCode, c.want)
				}
				corsWantNoSetCookie(t, r)
				if got := corsSessionCount(t, e, tc, user); got != 1 {
					t.Errorf("sessions after %s %s=%v, want 1", c.method, c.path, got)
				}
				if got := corsMeStatus(t, e, tc, victim); got != http.StatusOK {
					t.Errorf("me with the session's cookie: StatusCode=%v, want %v", got, http.StatusOK)
				}
			})
		}
	}
}

// ---------------------------------------------------------------- §4 cookies

// corsWantCookieAttrs checks the attributes every session cookie and every
// clearing cookie of tc carries (R4.1–R4.8).
func corsWantCookieAttrs(tb testing.TB, tc corsTenant, r res) (*http.Cookie, string) {
	tb.Helper()
	raws := r.Header.Values("Set-Cookie")
	switch {
	case len(raws) == 1:
	case len(raws) == 2 && strings.Contains(raws[0], "Max-Age=0") && strings.Contains(raws[1], "Max-Age=0") &&
		strings.Contains(strings.ToLower(raws[1]), "; partitioned") != tc.partitioned:
		// A clearing response also deletes the other partition variant
		// (session.Manager.ClearCookies), after the policy's own.
	default:
		tb.Fatalf("Set-Cookie lines=%q, want exactly one, or a clearing one and its other partition variant", raws)
	}
	raw := raws[0]
	c := r.cookie(tc.cookieName())
	if c == nil {
		tb.Fatalf("Set-Cookie=%q, want the cookie %s", raw, tc.cookieName())
	}
	if c.Path != "/" {
		tb.Errorf("Path=%q, want %q", c.Path, "/")
	}
	if !c.Secure {
		tb.Errorf("Secure=%v, want %v (raw %q)", c.Secure, true, raw)
	}
	if !c.HttpOnly {
		tb.Errorf("HttpOnly=%v, want %v (raw %q)", c.HttpOnly, true, raw)
	}
	if c.SameSite != tc.sameSite {
		tb.Errorf("SameSite=%v, want %v (raw %q)", c.SameSite, tc.sameSite, raw)
	}
	if c.Domain != "" || strings.Contains(strings.ToLower(raw), "domain=") {
		tb.Errorf("Domain=%q, want none (raw %q)", c.Domain, raw)
	}
	if got := strings.Contains(strings.ToLower(raw), "; partitioned"); got != tc.partitioned {
		tb.Errorf("raw Set-Cookie has Partitioned=%v, want %v (raw %q)", got, tc.partitioned, raw)
	}
	if c.Partitioned != tc.partitioned {
		tb.Errorf("Partitioned=%v, want %v", c.Partitioned, tc.partitioned)
	}
	return c, raw
}

func TestCookieAttributes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tc := range corsTenants() {
		t.Run(string(tc.id), func(t *testing.T) {
			t.Parallel()
			te := corsEnvFor(t, e)
			user := corsNewUser(t, e, tc)
			login := te.do(req{method: "POST", path: tc.base + "/login", host: tc.host, origin: tc.origins[0],
				json: map[string]string{"username": user, "password": tc.password}})
			if login.StatusCode != http.StatusOK {
				t.Fatalf("login: StatusCode=%v, want %v (body %s)", login.StatusCode, http.StatusOK, login.body)
			}
			c, raw := corsWantCookieAttrs(t, tc, login)
			if c.MaxAge != tc.maxAge {
				t.Errorf("Max-Age=%v, want %v (raw %q)", c.MaxAge, tc.maxAge, raw)
			}
			if c.Value == "" {
				t.Errorf("Value=%q, want a session", c.Value)
			}
			if got := login.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("login Cache-Control=%q, want %q", got, "no-store")
			}

			me := te.do(req{method: "GET", path: tc.base + "/me", host: tc.host, origin: tc.origins[0], cookies: []*http.Cookie{c}})
			if me.StatusCode != http.StatusOK {
				t.Errorf("me: StatusCode=%v, want %v", me.StatusCode, http.StatusOK)
			}
			if got := me.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("me Cache-Control=%q, want %q", got, "no-store")
			}
			corsWantNoSetCookie(t, me)

			logout := te.do(req{method: "POST", path: tc.base + "/logout", host: tc.host, origin: tc.origins[0],
				json: map[string]string{}, cookies: []*http.Cookie{c}})
			if logout.StatusCode != http.StatusNoContent {
				t.Fatalf("logout: StatusCode=%v, want %v", logout.StatusCode, http.StatusNoContent)
			}
			cleared, raw := corsWantCookieAttrs(t, tc, logout)
			if !strings.Contains(raw, "Max-Age=0") || cleared.MaxAge >= 0 {
				t.Errorf("clearing Set-Cookie=%q (MaxAge %v), want Max-Age=0", raw, cleared.MaxAge)
			}
			if cleared.Value != "" {
				t.Errorf("clearing Value=%q, want empty", cleared.Value)
			}
			if got := logout.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("logout Cache-Control=%q, want %q", got, "no-store")
			}
			if got := corsMeStatus(t, e, tc, c); got != http.StatusUnauthorized {
				t.Errorf("me after logout: StatusCode=%v, want %v", got, http.StatusUnauthorized)
			}

			// DELETE /sessions clears the cookie the same way.
			c2, _ := corsLogin(t, e, tc, user)
			revoke := te.do(req{method: "DELETE", path: tc.base + "/sessions", host: tc.host, origin: tc.origins[0],
				cookies: []*http.Cookie{c2}})
			if revoke.StatusCode != http.StatusNoContent {
				t.Fatalf("DELETE sessions: StatusCode=%v, want %v", revoke.StatusCode, http.StatusNoContent)
			}
			cleared, raw = corsWantCookieAttrs(t, tc, revoke)
			if !strings.Contains(raw, "Max-Age=0") || cleared.MaxAge >= 0 {
				t.Errorf("clearing Set-Cookie=%q (MaxAge %v), want Max-Age=0", raw, cleared.MaxAge)
			}
		})
	}
}

// ---------------------------------------------------------------- host resolution

func TestCORSHostResolution(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.loginAlice()
	bob := e.loginBob()
	cases := []struct {
		name    string
		host    string
		path    string
		origin  string
		cookie  *http.Cookie
		header  map[string]string
		want    int
		grant   bool // the response grants origin; otherwise no Access-Control-* at all
		wantWho string
	}{
		{name: "acme host", host: acmeHost, path: "/v1/me", origin: acmeApp, cookie: alice, want: http.StatusOK, grant: true, wantWho: "alice"},
		{name: "acme host uppercase", host: "AUTH.ACME.COM", path: "/v1/me", origin: acmeApp, cookie: alice, want: http.StatusOK, grant: true, wantWho: "alice"},
		{name: "acme host mixed case", host: "Auth.Acme.Com", path: "/v1/me", origin: acmeAdmin, cookie: alice, want: http.StatusOK, grant: true, wantWho: "alice"},
		{name: "acme host with port", host: acmeHost + ":8443", path: "/v1/me", origin: acmeApp, cookie: alice, want: http.StatusOK, grant: true, wantWho: "alice"},
		{name: "acme host with default port", host: acmeHost + ":443", path: "/v1/me", origin: acmeApp, cookie: alice, want: http.StatusOK, grant: true, wantWho: "alice"},
		{name: "acme host trailing dot", host: acmeHost + ".", path: "/v1/me", origin: acmeApp, cookie: alice, want: http.StatusOK, grant: true, wantWho: "alice"},
		{name: "acme host trailing dot and port", host: "AUTH.acme.com.:8443", path: "/v1/me", origin: acmeApp, cookie: alice, want: http.StatusOK, grant: true, wantWho: "alice"},
		// The origin never picks the tenant: acme refuses beta's origin.
		{name: "acme host beta origin", host: acmeHost, path: "/v1/me", origin: betaDev, cookie: alice, want: http.StatusForbidden},
		{name: "acme host no origin", host: acmeHost, path: "/v1/me", cookie: alice, want: http.StatusOK, wantWho: "alice"},
		{name: "X-Forwarded-Host on shared host", path: "/v1/me", origin: acmeApp, cookie: alice,
			header: map[string]string{"X-Forwarded-Host": acmeHost}, want: http.StatusNotFound},
		{name: "Forwarded host on shared host", path: "/v1/me", origin: acmeApp, cookie: alice,
			header: map[string]string{"Forwarded": "host=" + acmeHost}, want: http.StatusNotFound},
		{name: "X-Forwarded-Host acme on beta path", path: "/v1/t/beta/me", origin: betaDev, cookie: bob,
			header: map[string]string{"X-Forwarded-Host": acmeHost}, want: http.StatusOK, grant: true, wantWho: "bob"},
		{name: "X-Forwarded-Host shared on acme host", host: acmeHost, path: "/v1/t/beta/me", origin: betaDev, cookie: bob,
			header: map[string]string{"X-Forwarded-Host": sharedHost}, want: http.StatusNotFound},
		{name: "acme path form on acme host", host: acmeHost, path: "/v1/t/acme/me", origin: acmeApp, cookie: alice, want: http.StatusNotFound},
		{name: "acme path form on acme host uppercase", host: "AUTH.ACME.COM.", path: "/v1/t/acme/me", origin: acmeApp, cookie: alice, want: http.StatusNotFound},
		{name: "beta path form on acme host", host: acmeHost, path: "/v1/t/beta/me", origin: betaDev, cookie: bob, want: http.StatusNotFound},
		{name: "host form on shared host", path: "/v1/me", origin: betaDev, cookie: bob, want: http.StatusNotFound},
		{name: "unknown tenant", path: "/v1/t/nope/me", origin: acmeApp, cookie: alice, want: http.StatusNotFound},
		{name: "unknown tenant beta origin", path: "/v1/t/nope/me", origin: betaDev, want: http.StatusNotFound},
		{name: "unknown host", host: "auth.nope.example", path: "/v1/me", origin: acmeApp, cookie: alice, want: http.StatusNotFound},
		{name: "acme host suffix", host: "evil-auth.acme.com", path: "/v1/me", origin: acmeApp, cookie: alice, want: http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			q := req{method: "GET", path: c.path, host: c.host, origin: c.origin, header: c.header}
			if c.cookie != nil {
				q.cookies = []*http.Cookie{c.cookie}
			}
			r := corsEnvFor(t, e).do(q)
			if r.StatusCode != c.want {
				t.Errorf("StatusCode=%v, want %v (body %s)", r.StatusCode, c.want, r.body)
			}
			switch {
			case c.grant:
				corsHdrWantGrant(t, r, c.origin)
			case c.want == http.StatusNotFound:
				corsHdrWantNoCORS(t, r)
				corsHdrWantVaryOrigin(t, r.Header)
				if got := r.problemType(); got != "not-found" {
					t.Errorf("problem type=%q, want %q", got, "not-found")
				}
			default:
				corsHdrWantNoGrant(t, r)
			}
			if c.wantWho != "" {
				var v struct {
					User struct {
						Username string `json:"username"`
					} `json:"user"`
				}
				json.Unmarshal(r.body, &v)
				if v.User.Username != c.wantWho {
					t.Errorf("user.username=%q, want %q", v.User.Username, c.wantWho)
				}
			}
		})
	}
}

// TestForeignOriginRefusedBeforeSession: a route refuses an Origin that is
// not one of the tenant's, whatever the method, unless the request comes
// from the service's own origin (as CrossOriginProtection decides it).
func TestForeignOriginRefusedBeforeSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.loginAlice()
	cases := []struct {
		name   string
		origin string
		sfs    string // Sec-Fetch-Site
		want   int
	}{
		{name: "tenant origin", origin: acmeApp, sfs: "same-site", want: http.StatusOK},
		{name: "foreign origin", origin: corsEvil, want: http.StatusForbidden},
		{name: "foreign origin cross-site", origin: corsEvil, sfs: "cross-site", want: http.StatusForbidden},
		{name: "null origin", origin: "null", want: http.StatusForbidden},
		{name: "own origin, same-origin", origin: "https://" + acmeHost, sfs: "same-origin", want: http.StatusOK},
		{name: "any origin, Sec-Fetch-Site none", origin: corsEvil, sfs: "none", want: http.StatusOK},
		{name: "own origin from an old browser", origin: "https://" + acmeHost, want: http.StatusOK},
		{name: "own host but cross-site", origin: "https://" + acmeHost, sfs: "cross-site", want: http.StatusForbidden},
		{name: "no origin", want: http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			q := req{method: "GET", path: "/v1/me", host: acmeHost, origin: c.origin, cookies: []*http.Cookie{alice}}
			if c.sfs != "" {
				q.header = map[string]string{"Sec-Fetch-Site": c.sfs}
			}
			r := corsEnvFor(t, e).do(q)
			if r.StatusCode != c.want {
				t.Fatalf("StatusCode=%v, want %v (body %s)", r.StatusCode, c.want, r.body)
			}
			if c.want == http.StatusForbidden {
				if got := r.problemType(); got != "forbidden-origin" {
					t.Errorf("problem type=%q, want forbidden-origin", got)
				}
				corsHdrWantNoGrant(t, r)
				corsHdrWantVaryOrigin(t, r.Header)
			}
		})
	}
}
