package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// corsExchange is one request's answer through a policy.
type corsExchange struct {
	status int
	header http.Header
	body   []byte
}

// servePolicy serves r through p as servePublic does for a path-form
// request of p's tenant: through serveTenant (which answers from p's CORS
// answers where it can) or, with authority set, through p.h alone, the
// CORS layers themselves.
func servePolicy(s *Server, p *policy, r *http.Request, rest string, authority bool) corsExchange {
	rec := httptest.NewRecorder()
	ri := &reqInfo{Context: r.Context(), routing: true, id: "fuzz", tenant: p.tenant, policy: p, labels: s.pathFormLabels}
	ri.rctx.RoutePath = rest
	ri.sw.ResponseWriter = rec
	r = r.WithContext(ri)
	if authority {
		p.h.ServeHTTP(&ri.sw, r)
	} else {
		s.serveTenant(&ri.sw, r, p)
	}
	return corsExchange{rec.Code, rec.Header(), rec.Body.Bytes()}
}

// FuzzCORSAnswers checks the answers a policy remembers (corsanswers.go)
// against jub0bs/cors itself: a request with a fuzzed method, route,
// Origin (one of acme's, any other, or none) and preflight headers (none,
// one line or two), served by a new policy twice through serveTenant (the
// first records, the second replays) and once through the policy's CORS
// layers alone. Property: all three answers are the same status, headers
// and body.
func FuzzCORSAnswers(f *testing.F) {
	tb := newFuzzTB(f)
	e := newEnv(tb, envOptions{})
	const (
		app, admin, other, none = 0, 1, 2, 3
		absent, one, two        = 0, 1, 2
	)
	for _, seed := range []struct {
		method, route, originSel uint8
		origin, acrm, acrh       string
		acrmLines, acrhLines     uint8
	}{
		{3, 1, app, "", "POST", "content-type", one, one},
		{3, 1, admin, "", "POST", "content-type", one, one},
		{3, 2, app, "", "DELETE", "", one, absent},
		{3, 2, app, "", "DELETE", "content-type", one, one},
		{3, 1, app, "", "PUT", "content-type", one, one},
		{3, 1, app, "", "delete", "", one, absent},
		{3, 1, app, "", "POST", "Content-Type", one, one},
		{3, 1, app, "", "POST", " content-type ", one, one},
		{3, 1, app, "", "POST", ",,content-type,", one, one},
		{3, 1, app, "", "POST", "content-type,x-requested-with", one, one},
		{3, 0, app, "", "GET", "latchkey-receipt", one, one},
		{3, 2, admin, "", "DELETE", "content-type,latchkey-receipt", one, one},
		{3, 0, app, "", "GET", "Latchkey-Receipt", one, one},
		{3, 5, app, "", "GET", "latchkey-receipt", one, one},
		{0, 5, app, "", "", "", absent, absent},
		{0, 5, other, "https://app.acme.co", "", "", absent, absent},
		{3, 1, app, "", "POST", "authorization", one, one},
		{3, 1, app, "", "POST", "", one, one},
		{3, 1, app, "", "", "content-type", one, one},
		{3, 1, app, "", "POST", "content-type", two, two},
		{3, 1, app, "", "POST", "content-type", one, two},
		{3, 0, app, "", "", "", absent, absent},
		{3, 0, app, "", "", "content-type", absent, one},
		{3, 1, other, "https://evil.example", "POST", "content-type", one, one},
		{3, 1, other, "https://app.acme.com.evil.example", "POST", "content-type", one, one},
		{3, 1, other, "HTTPS://APP.ACME.COM", "POST", "content-type", one, one},
		{3, 1, none, "", "POST", "content-type", one, one},
		{0, 0, app, "", "", "", absent, absent},
		{0, 0, app, "", "POST", "content-type", one, one},
		{1, 1, app, "", "", "", absent, absent},
		{2, 2, admin, "", "", "", absent, absent},
		{5, 0, app, "", "", "", absent, absent},
		{4, 3, app, "", "", "", absent, absent},
		{0, 0, other, "null", "", "", absent, absent},
		{0, 0, none, "", "", "", absent, absent},
	} {
		f.Add(seed.method, seed.route, seed.originSel, seed.origin, seed.acrm, seed.acrh, seed.acrmLines, seed.acrhLines)
	}
	routes := []string{"/me", "/login", "/sessions", "/nope", "/logout", "/doctor"}
	f.Fuzz(func(t *testing.T, method, route, originSel uint8, origin, acrm, acrh string, acrmLines, acrhLines uint8) {
		tb.use(t)
		p, err := e.srv.newPolicy(acmeTenant())
		if err != nil {
			t.Fatal(err)
		}
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		rest := routes[int(route)%len(routes)]
		switch originSel % 4 {
		case app:
			origin = acmeApp
		case admin:
			origin = acmeAdmin
		case none:
			origin = ""
		}
		newReq := func() *http.Request {
			r := httptest.NewRequest(m, "/v1/t/acme"+rest, nil)
			r = r.WithContext(t.Context())
			if originSel%4 != none {
				r.Header["Origin"] = []string{origin}
			}
			for name, l := range map[string]struct {
				v     string
				lines uint8
			}{"Access-Control-Request-Method": {acrm, acrmLines}, "Access-Control-Request-Headers": {acrh, acrhLines}} {
				switch l.lines % 3 {
				case one:
					r.Header[name] = []string{l.v}
				case two:
					r.Header[name] = []string{l.v, "content-type"}
				}
			}
			return r
		}
		want := servePolicy(e.srv, p, newReq(), rest, true)
		for _, what := range []string{"first (recorded)", "second (remembered)"} {
			got := servePolicy(e.srv, p, newReq(), rest, false)
			if got.status != want.status || !reflect.DeepEqual(got.header, want.header) || !bytes.Equal(got.body, want.body) {
				t.Fatalf("%s %s from %q, ACRM %q×%d, ACRH %q×%d: %s answer\n got %d %v %s\nwant %d %v %s (jub0bs/cors's)",
					m, rest, origin, acrm, acrmLines%3, acrh, acrhLines%3, what, got.status, got.header, got.body, want.status, want.header, want.body)
			}
		}
	})
}

// TestCORSAnswersRemembered: a granted preflight and a `me` from one of the
// tenant's origins are remembered once each, and nothing else is: not a
// refused preflight, not another site's request; and a policy stops
// remembering at maxCORSAnswers, answering what it has not seen through
// the CORS layers, as they would.
func TestCORSAnswersRemembered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p, err := e.srv.newPolicy(acmeTenant())
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		if m := p.answers.m.Load(); m != nil {
			return len(*m)
		}
		return 0
	}
	preflight := func(origin, acrm, acrh string) *http.Request {
		r := httptest.NewRequest(http.MethodOptions, "/v1/t/acme/login", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", acrm)
		r.Header.Set("Access-Control-Request-Headers", acrh)
		return r
	}
	me := httptest.NewRequest(http.MethodGet, "/v1/t/acme/me", nil)
	me.Header.Set("Origin", acmeApp)
	for _, c := range []struct {
		name   string
		r      *http.Request
		rest   string
		status int
		want   int // answers remembered after it, twice sent
	}{
		{"granted preflight", preflight(acmeApp, "POST", "content-type"), "/login", http.StatusNoContent, 1},
		{"refused preflight", preflight(acmeApp, "PUT", "content-type"), "/login", http.StatusForbidden, 1},
		{"another site's preflight", preflight("https://evil.example", "POST", "content-type"), "/login", http.StatusForbidden, 1},
		{"me", me, "/me", http.StatusUnauthorized, 2},
	} {
		for range 2 {
			if got := servePolicy(e.srv, p, c.r, c.rest, false); got.status != c.status {
				t.Errorf("%s: status %d, want %d", c.name, got.status, c.status)
			}
		}
		if got := count(); got != c.want {
			t.Errorf("after %s: %d answers remembered, want %d", c.name, got, c.want)
		}
	}

	// Variants jub0bs/cors grants (empty elements and whitespace before the
	// one name), more of them than the bound.
	var variants []string
	for commas := range 12 {
		for _, ows := range []string{"", " ", "\t", "  ", " \t", "\t "} {
			variants = append(variants, strings.Repeat(",", commas)+ows+"content-type")
		}
	}
	for _, v := range variants {
		r := preflight(acmeApp, "POST", v)
		want := servePolicy(e.srv, p, r, "/login", true)
		if want.status != http.StatusNoContent {
			t.Fatalf("ACRH %q: jub0bs/cors answered %d, want a grant", v, want.status)
		}
		if got := servePolicy(e.srv, p, r, "/login", false); got.status != want.status || !reflect.DeepEqual(got.header, want.header) {
			t.Errorf("ACRH %q: answer %d %v, want %d %v", v, got.status, got.header, want.status, want.header)
		}
	}
	if got := count(); got != maxCORSAnswers {
		t.Errorf("after %d granted variants: %d answers remembered, want the bound, %d", len(variants), got, maxCORSAnswers)
	}
}
