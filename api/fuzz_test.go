package api

// Fuzz targets for the HTTP edge. `go test` runs each target's seeds (its
// f.Add calls and testdata/fuzz/<FuzzName>/) as ordinary regression tests;
// scripts/fuzz.sh fuzzes every target briefly. Each builds one env (see
// harness_test.go) per process, outside f.Fuzz, and talks to it directly
// rather than through env.do: the OpenAPI check there is too slow for
// fuzzing, and env methods call tb.Helper, which f forbids inside f.Fuzz.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/latchkeyhq/latchkey/session"
)

// fuzzTB is the testing.TB a fuzz target gives newEnv. Inside f.Fuzz, f's
// own methods panic, so the env's log lines (tlogWriter calls Log) go to
// the t of the input being run, and are dropped between inputs.
type fuzzTB struct {
	*testing.F
	cur     atomic.Pointer[testing.T]
	fuzzing atomic.Bool
}

func newFuzzTB(f *testing.F) *fuzzTB { return &fuzzTB{F: f} }

// Log sends a log line to the current input's t, or to f before fuzzing.
func (tb *fuzzTB) Log(args ...any) {
	if t := tb.cur.Load(); t != nil {
		t.Log(args...)
	} else if !tb.fuzzing.Load() {
		tb.F.Log(args...)
	}
}

// use makes t the destination of log lines while it runs. Call it first in
// the fuzz function.
func (tb *fuzzTB) use(t *testing.T) {
	tb.fuzzing.Store(true)
	tb.cur.Store(t)
	t.Cleanup(func() { tb.cur.Store(nil) })
}

// checkProblem reports what is wrong with an error response: it must be
// application/problem+json whose status matches the response's.
func checkProblem(status int, h http.Header, body []byte) string {
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		return "Content-Type " + ct + ", want application/problem+json"
	}
	var p problem
	if err := json.Unmarshal(body, &p); err != nil {
		return "body is not a problem: " + err.Error()
	}
	if p.Status != status || !strings.HasPrefix(p.Type, problemTypePrefix) || p.Detail == "" {
		return "problem " + string(body) + " does not match its response"
	}
	return ""
}

// exactCredentials reports whether body is a JSON object with exactly two
// members, "username" and "password" (each once, in that exact case), whose
// values are the strings of alice's credentials, within the login body
// limit: the only bodies a login may succeed with. It reads the body with
// encoding/json's tokenizer, not with the decoder it checks.
func exactCredentials(body []byte) bool {
	if len(body) > maxLoginBody || !utf8.Valid(body) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	members := map[string]string{}
	for dec.More() {
		k, err := dec.Token()
		key, ok := k.(string)
		if err != nil || !ok {
			return false
		}
		v, err := dec.Token()
		val, ok := v.(string)
		if _, dup := members[key]; err != nil || !ok || dup {
			return false
		}
		members[key] = val
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false
	}
	return len(members) == 2 && members["username"] == "alice" && members["password"] == alicePassword
}

// FuzzLoginBody posts a fuzzed body to acme's login, from acme's SPA, over
// a real connection. Property: the status is 200, 400, 401 or 413; every
// other answer than 200 is a problem+json; a 200 (with the session cookie)
// happens exactly when the body is a JSON object with exactly alice's
// username and password; and every answer carries acme's CORS headers for
// the SPA's origin, so the SPA can read it.
func FuzzLoginBody(f *testing.F) {
	tb := newFuzzTB(f)
	e := newEnv(tb, envOptions{})
	client := e.pub.Client()
	for _, body := range []string{
		`{"username":"alice","password":"correct horse battery"}`,
		` { "password" : "correct horse battery" , "username" : "alice" } ` + "\n",
		`{"username":"\u0061lice","password":"correct horse battery"}`,
		`{"username":"alice","password":"correct horse battery "}`,
		`{"username":"alice","password":"wrong"}`,
		`{"username":"nobody","password":"correct horse battery"}`,
		`{"username":"","password":"x"}`,
		`{"username":"alice"}`,
		`{"username":"alice","password":"correct horse battery","extra":1}`,
		`{"username":"alice","password":"correct horse battery"}{}`,
		`{"username":"alice","password":"correct horse battery"`,
		`{"username":1,"password":"x"}`,
		`{"username":"alice","password":null}`,
		`{"username":["alice"],"password":"x"}`,
		`["alice","correct horse battery"]`,
		`"alice"`,
		`null`,
		``,
		`{}`,
		"{\"username\":\"alice\",\"password\":\"correct horse battery\xff\"}",
		`{"username":"alice","password":"\ud800"}`,
		`{"username":"alice\udc00","password":"correct horse battery"}`,
		`{"Username":"alice","password":"correct horse battery"}`,
		`{"username":"alice","password":"correct horse battery","password":"correct horse battery"}`,
		`{"username":` + strings.Repeat("[", maxLoginBody-len(`{"username":`)),
		`{"username":"alice","password":"` + strings.Repeat("x", maxLoginBody) + `"}`,
		`{"username":"` + strings.Repeat("a", session.MaxUsernameLen+1) + `","password":"x"}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tb.use(t)
		// Start every request in a fresh failed-login window: the limits
		// are counted in the store on the env's clock, and what is tested
		// here is the body, not the rate limiter.
		e.clock.Advance(24*time.Hour + time.Second)
		r, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.pub.URL+"/v1/login", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Host = acmeHost
		r.Header.Set("Origin", acmeApp)
		r.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(r)
		if err != nil {
			t.Fatalf("POST /v1/login: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("reading the response: %v", err)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != acmeApp || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
			t.Errorf("status %d: Access-Control-Allow-Origin %q, Allow-Credentials %q; want %q and true", resp.StatusCode, got, resp.Header.Get("Access-Control-Allow-Credentials"), acmeApp)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var v sessionView
			if err := json.Unmarshal(b, &v); err != nil || v.User.Username != "alice" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("200 with %s %s, want alice's session as JSON", resp.Header.Get("Content-Type"), b)
			}
			if !slices.ContainsFunc(resp.Cookies(), func(c *http.Cookie) bool { return c.Name == "__Host-latchkey-acme" && c.Value != "" }) {
				t.Error("200 without a session cookie")
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
			if why := checkProblem(resp.StatusCode, resp.Header, b); why != "" {
				t.Errorf("status %d: %s", resp.StatusCode, why)
			}
		default:
			t.Fatalf("status %d (%s), want 200, 400, 401 or 413", resp.StatusCode, b)
		}
		switch exact := exactCredentials(body); {
		case exact && resp.StatusCode != http.StatusOK:
			t.Errorf("status %d for %q, which is exactly alice's credentials; want 200", resp.StatusCode, body)
		case !exact && resp.StatusCode == http.StatusOK:
			t.Errorf("status 200 for %q, which is not a JSON object with exactly alice's username and password", body)
		}
	})
}

// FuzzDecodeJSON checks decodeJSON, the one decoder of every request body,
// against an oracle built without it: encoding/json (v1) for the value,
// and each rule that decodeJSON adds to what v1 accepts checked on its own
// (valid UTF-8, no lone surrogate escape, at most maxJSONDepth levels,
// member names exact and each given once). Property: decodeJSON accepts a
// body exactly when the oracle does, with the same value, and refuses it
// with a bad-request problem whose pointer is an RFC 6901 JSON Pointer.
func FuzzDecodeJSON(f *testing.F) {
	for _, body := range []string{
		`{"username":"alice","password":"pw"}`,
		` { "password" : "pw" , "username" : "\u0061lice" } `,
		`{"username":"\ud83d\ude00","password":"\/"}`,
		`{"username":null}`, `null`, `{}`, `[]`, `""`, ``, ` `, `1`,
		`{"USERNAME":"alice"}`, `{"Username":"a","username":"b"}`, `{"passwor\u212a":"x"}`,
		`{"username":"a","username":"b"}`, `{"username":"a","\u0075sername":"b"}`,
		`{"username":"\ud800x"}`, `{"username":"\ud800"}`, `{"username":"\udc00\ud800"}`, `{"username":"\ud800\u0041"}`,
		"{\"username\":\"\xff\"}", "{\"user\xffname\":1}", "\ufeff{}",
		`{"username":1}`, `{"username":1e999}`, `{"username":[]}`, `{"username":{"a":1,"a":2}}`,
		`{"username":"a"} {}`, `{"username":"a"`, `{"username":"a",}`,
		`{"username":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`,
		`{"username":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`,
		`{"username":` + strings.Repeat("[", 4080),
		strings.Repeat(`{"a":`, 40),
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got loginRequest
		err := decodeJSON(body, &got)
		want, ok := oracleLogin(body)
		switch {
		case err == nil && !ok:
			t.Fatalf("decodeJSON(%q) accepted %+v; the oracle refuses it", body, got)
		case err != nil && ok:
			t.Fatalf("decodeJSON(%q) = %v; the oracle accepts %+v", body, err, want)
		case err == nil && got != want:
			t.Fatalf("decodeJSON(%q) = %+v, the oracle %+v", body, got, want)
		case err != nil:
			var be *bodyError
			if !errors.As(err, &be) {
				t.Fatalf("decodeJSON(%q) = %v (%T), want a *bodyError", body, err, err)
			}
			p := bodyProblem(be)
			if p.Status != http.StatusBadRequest || p.Detail == "" || p.Pointer == nil || !validPointer(*p.Pointer) {
				t.Fatalf("decodeJSON(%q): problem %+v, want a 400 with a detail and a JSON Pointer", body, p)
			}
		}
	})
}

// oracleLogin decodes body into a loginRequest the obvious way, without
// decodeJSON: the checks on the bytes and on encoding/json's tokens first,
// then encoding/json's Decode.
func oracleLogin(body []byte) (loginRequest, bool) {
	if !utf8.Valid(body) || !json.Valid(body) || jsonNesting(body) > maxJSONDepth || hasLoneSurrogate(body) ||
		!uniqueExactNames(body, "username", "password") {
		return loginRequest{}, false
	}
	var v loginRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return loginRequest{}, false
	}
	return v, true
}

// uniqueExactNames reports whether no object in the valid JSON body gives
// a name twice, and the top-level object's names are all among fields,
// compared exactly.
func uniqueExactNames(body []byte, fields ...string) bool {
	type frame struct {
		names    map[string]bool // nil for an array
		wantName bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].names != nil {
			stack[n-1].wantName = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
		if n := len(stack); n > 0 && stack[n-1].wantName {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			name, _ := tok.(string)
			if stack[n-1].names[name] || (n == 1 && !slices.Contains(fields, name)) {
				return false
			}
			stack[n-1].names[name] = true
			stack[n-1].wantName = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{names: map[string]bool{}, wantName: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// jsonNesting returns how deeply the valid JSON body nests.
func jsonNesting(body []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// hasLoneSurrogate reports whether a string of the valid JSON body has a
// \u escape of a UTF-16 surrogate that is not half of a pair, high then
// low.
func hasLoneSurrogate(body []byte) bool {
	hex := func(i int) (rune, bool) {
		if i+6 > len(body) || body[i] != '\\' || body[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(body[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	inString := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case inString && c == '\\' && body[i+1] == 'u':
			r, _ := hex(i)
			switch {
			case 0xdc00 <= r && r <= 0xdfff:
				return true
			case 0xd800 <= r && r <= 0xdbff:
				lo, ok := hex(i + 6)
				if !ok || lo < 0xdc00 || lo > 0xdfff {
					return true
				}
				i += 6
			}
			i += 5
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		}
	}
	return false
}

// validPointer reports whether p is an RFC 6901 JSON Pointer: empty, or
// "/"-prefixed tokens in which "~" only starts "~0" or "~1".
func validPointer(p string) bool {
	if p != "" && p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return false
		}
	}
	return utf8.ValidString(p)
}

// Methods and origins FuzzTenantResolution picks from.
var (
	fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodPut, http.MethodHead, http.MethodPatch}
	fuzzOrigins = []string{acmeApp, betaDev, "", "https://evil.example", "null", acmeAdmin}
)

// tenantOrigins are the origins of the env's tenants.
var tenantOrigins = map[string][]string{"acme": {acmeApp, acmeAdmin}, "beta": {betaDev}}

// servingTenants returns the tenants that may answer a request for
// routePath (what chi routes on) sent to host: acme in host form on its
// own hostname, acme or beta in path form on any other host. The tenant
// segment is decoded once when routePath is the escaped path (escaped is
// set): "b%65ta" is beta, "beta%2Fme" no tenant. An empty list means that
// no tenant may answer.
func servingTenants(host, routePath string, escaped bool) []string {
	onAcme := session.NormalizeHost(host) == acmeHost
	if rest, ok := strings.CutPrefix(routePath, "/v1/t/"); ok {
		seg, _, _ := strings.Cut(rest, "/")
		if escaped {
			var err error
			if seg, err = url.PathUnescape(seg); err != nil {
				return nil
			}
		}
		switch {
		case onAcme && seg == "":
			// Not a path-form URL: it may fall through to the host form.
			return []string{"acme"}
		case onAcme:
			// A tenant's own hostname serves that tenant in host form only.
			return nil
		case seg == "acme" || seg == "beta":
			return []string{seg}
		}
		return nil
	}
	if onAcme && (routePath == "/v1" || strings.HasPrefix(routePath, "/v1/")) {
		return []string{"acme"}
	}
	return nil
}

// FuzzTenantResolution sends a request with a fuzzed Host and path (a path
// not starting with '/' is a suffix of "/v1/"), a method and an Origin to
// the public handler. Property: never a 5xx; a 2xx or 401 only for a URL
// that resolves to a known tenant (acme on a Host that normalizes to
// auth.acme.com with /v1/…, acme or beta in /v1/t/{tenant}/… on any other
// host); CORS headers only with an origin of the tenant that may answer;
// and a URL that resolves to no tenant is a 404 problem without
// Access-Control-Allow-Origin.
func FuzzTenantResolution(f *testing.F) {
	tb := newFuzzTB(f)
	e := newEnv(tb, envOptions{})
	h := e.srv.Public()
	const get, post, options = 0, 1, 3
	const fromAcme, fromBeta, none, evil = 0, 1, 2, 3
	for _, seed := range []struct {
		host, target   string
		method, origin uint8
	}{
		{acmeHost, "/v1/me", get, fromAcme},
		{"AUTH.ACME.COM:443", "me", get, fromAcme},
		{"auth.acme.com.", "login", post, fromAcme},
		{"[auth.acme.com]:80", "/v1/sessions", get, fromAcme},
		{acmeHost, "/v1/login", options, fromAcme},
		{acmeHost, "/v1/login", options, evil},
		{acmeHost, "/v1/login", post, evil},
		{acmeHost, "/v1/me", get, fromBeta},
		{acmeHost, "/v1/t/beta/me", get, fromBeta},
		{acmeHost, "/v1/t//me", get, fromAcme},
		{acmeHost, "/v1//me", get, fromAcme},
		{sharedHost, "/v1/t/beta/me", get, fromBeta},
		{sharedHost, "/v1/t/beta/login", options, fromBeta},
		{sharedHost, "/v1/t/acme/me", get, fromAcme},
		{sharedHost, "/v1/t/beta/me", get, fromAcme},
		{sharedHost, "/v1/me", get, fromAcme},
		{sharedHost, "/v1/t/gamma/me", get, fromAcme},
		{sharedHost, "/v1/t/Beta/me", get, fromBeta},
		{sharedHost, "/v1/t/beta%2Fme", get, fromBeta},
		{sharedHost, "/v1/t/b%65ta/me", get, fromBeta},
		{sharedHost, "/v1/t/beta/../acme/me", get, fromAcme},
		{sharedHost, "/v1/t/beta/sessions", post, fromBeta},
		{"", "/v1/t/beta/logout", post, fromBeta},
		{"evil.example", "/v1/me", get, evil},
		{"auth.acme.com.evil.example", "/v1/me", get, fromAcme},
		{"auth.acme.com:99999", "/healthz", get, none},
		{"auth.acme.co\u212a", "/v1/me", get, fromAcme},
		{sharedHost, "/admin/v1/tenants", get, none},
		{sharedHost, "*", options, fromAcme},
	} {
		f.Add(seed.host, seed.target, seed.method, seed.origin)
	}
	f.Fuzz(func(t *testing.T, host, target string, method, origin uint8) {
		tb.use(t)
		if !strings.HasPrefix(target, "/") {
			target = "/v1/" + target
		}
		u, err := url.ParseRequestURI(target)
		if err != nil {
			// net/http would refuse it; the router must still cope.
			u = &url.URL{Path: target}
		}
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		o := fuzzOrigins[int(origin)%len(fuzzOrigins)]
		var body io.Reader
		if m == http.MethodPost {
			body = strings.NewReader("{}")
		}
		r := httptest.NewRequest(m, "/", body)
		r = r.WithContext(t.Context())
		r.URL, r.RequestURI, r.Host = u, target, host
		if o != "" {
			r.Header.Set("Origin", o)
		}
		if m == http.MethodPost {
			r.Header.Set("Content-Type", "application/json")
		}
		if m == http.MethodOptions {
			r.Header.Set("Access-Control-Request-Method", http.MethodPost)
			r.Header.Set("Access-Control-Request-Headers", "content-type")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res := rec.Result()
		b := rec.Body.Bytes()

		routePath := u.RawPath
		if routePath == "" {
			routePath = u.Path
		}
		serving := servingTenants(host, routePath, u.RawPath != "")
		acao := res.Header.Get("Access-Control-Allow-Origin")
		switch {
		case res.StatusCode >= 500:
			t.Fatalf("%s %q on Host %q: status %d (%s), want no 5xx", m, target, host, res.StatusCode, b)
		case len(serving) == 0:
			if res.StatusCode != http.StatusNotFound || acao != "" || res.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s %q on Host %q from %q: status %d, ACAO %q; want 404 without CORS headers: no tenant is served here", m, target, host, o, res.StatusCode, acao)
			}
			if why := checkProblem(res.StatusCode, res.Header, b); why != "" && m != http.MethodHead {
				t.Errorf("%s %q on Host %q: %s", m, target, host, why)
			}
			if !slices.Contains(res.Header.Values("Vary"), "Origin") {
				t.Errorf("%s %q on Host %q: Vary %q, want Origin", m, target, host, res.Header.Values("Vary"))
			}
		case acao != "":
			allowed := false
			for _, tn := range serving {
				allowed = allowed || slices.Contains(tenantOrigins[tn], acao)
			}
			if acao != o || !allowed {
				t.Errorf("%s %q on Host %q from %q: ACAO %q, want the request's origin, and only if %v allow it", m, target, host, o, acao, serving)
			}
		}
	})
}

// FuzzAdminTenantBody puts a fuzzed JSON body as the tenant "fuzz" through
// the admin API. Property: the status is 200, 201, 400, 409, 413 or 415,
// never a 5xx; errors are problem+json; a 2xx says 201 exactly when the
// tenant did not exist, and returns a tenant that validates, is what the
// store now holds (nothing lost), and can be served (its policy builds).
func FuzzAdminTenantBody(f *testing.F) {
	tb := newFuzzTB(f)
	e := newEnv(tb, envOptions{token: adminToken})
	h := e.srv.Admin()
	for _, body := range []string{
		`{"name":"Fuzz","origins":["https://app.fuzz.example"],"cookie":{"same_site":"strict"}}`,
		`{"id":"fuzz","name":"Fuzz","dev":true,"origins":["http://localhost:5173","http://[::1]:5173"],"hostnames":["auth.fuzz.example"],"cookie":{"same_site":"none","partitioned":true},"session":{"idle_timeout":"1h","absolute_lifetime":"24h"}}`,
		`{"name":"Fuzz","origins":["https://app.fuzz.example"],"hostnames":["auth.acme.com"],"cookie":{"same_site":"lax"}}`,
		`{"id":"other","name":"Fuzz","origins":["https://app.fuzz.example"],"cookie":{"same_site":"lax"}}`,
		`{"name":"Fuzz","origins":["*","null","http://evil.example","https://App.fuzz.example/"],"cookie":{"same_site":"lax","partitioned":true}}`,
		`{"name":"Fuzz","origins":["https://app.fuzz.example"],"cookie":{"same_site":"lax"},"session":{"idle_timeout":3600}}`,
		`{"name":"Fuzz","origins":["https://app.fuzz.example"],"cookie":{"same_site":"lax"},"session":{"idle_timeout":"forever"}}`,
		`{"name":"Fuzz","origins":["https://app.fuzz.example"],"cookie":{"same_site":"lax"},"colour":"red"}`,
		`{"name":"Fuzz","origins":"https://app.fuzz.example","cookie":{"same_site":"lax"}}`,
		`{"name":"Fuzz","origins":["https://app.fuzz.example"],"cookie":{"same_site":"lax"}} {}`,
		`{"name":"F\u0000","origins":["https://app.fuzz.example"],"cookie":{"same_site":"lax"}}`,
		`{"name":"Fuzz","origins":["https://app.fuzz.example"],"hostnames":["Auth.Fuzz.example."],"cookie":{"same_site":"lax"}}`,
		`{"NAME":"Fuzz","Origins":["https://app.fuzz.example"],"cookie":{"same_site":"lax"}}`,
		`null`, `[]`, `{}`, ``, `{`, "\xff",
		`{"name":"` + strings.Repeat("x", maxAdminBody) + `"}`,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tb.use(t)
		ctx := t.Context()
		_, err := e.m.GetTenant(ctx, "fuzz")
		existed := err == nil
		r := httptest.NewRequest(http.MethodPut, "/admin/v1/tenants/fuzz", bytes.NewReader(body)).WithContext(ctx)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+adminToken)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		res, b := rec.Result(), rec.Body.Bytes()
		switch res.StatusCode {
		case http.StatusOK, http.StatusCreated:
		case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if why := checkProblem(res.StatusCode, res.Header, b); why != "" {
				t.Errorf("status %d: %s", res.StatusCode, why)
			}
			return
		default:
			t.Fatalf("status %d (%s), want 200, 201, 400, 409, 413 or 415", res.StatusCode, b)
		}
		if created := res.StatusCode == http.StatusCreated; created == existed {
			t.Errorf("status %d, but the tenant existed before: %v", res.StatusCode, existed)
		}
		var saved struct {
			session.Tenant
			Warnings []json.RawMessage `json:"warnings"`
			Doctor   []json.RawMessage `json:"doctor"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&saved); err != nil || saved.Warnings == nil || saved.Doctor == nil {
			t.Fatalf("status %d with %s: not a tenant with its warnings and doctor: %v", res.StatusCode, b, err)
		}
		got := saved.Tenant
		if got.ID != "fuzz" {
			t.Errorf("saved tenant %q, want fuzz", got.ID)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("saved a tenant that does not validate: %v", err)
		}
		stored, err := e.m.GetTenant(ctx, "fuzz")
		if err != nil {
			t.Fatalf("status %d, but GetTenant(fuzz) = %v: the tenant was lost", res.StatusCode, err)
		}
		if !reflect.DeepEqual(stored, got) {
			t.Errorf("the store holds %+v, the response said %+v", stored, got)
		}
		if _, err := e.srv.newPolicy(got); err != nil {
			t.Errorf("saved tenant %+v, which cannot be served: %v", got, err)
		}
	})
}

// FuzzSessionViewJSON checks the hand-written encoding of the session view
// and the login's answer (jsonview.go) against encoding/json on arbitrary
// strings and times.
// Property: the bytes are exactly what json.Encoder writes.
func FuzzSessionViewJSON(f *testing.F) {
	for _, s := range []string{
		"alice", "", `"quoted" \back\slash`, "<script>&amp;</script>", "tab\tnew\nline\rret\bback\fform",
		"\x00\x01\x1f\x7f", "caf\u00e9 \u212a \U0001f600", "\u2028\u2029", "bad \xff\xfe utf8 \xe2\x80",
		"Firefox on Linux", strings.Repeat("x", 300),
	} {
		f.Add(s, "S0mE-iD_", s, int64(1795000000), int64(1800), false)
	}
	f.Fuzz(func(t *testing.T, user, id, ua string, created, idle int64, current bool) {
		at := func(sec int64) time.Time {
			// encoding/json refuses years outside 0..9999; sessions never
			// have them.
			return time.Unix(sec%253402300799, 0).UTC()
		}
		v := sessionView{User: userView{Username: user}, Session: sessionInfo{
			ID: id, CreatedAt: at(created), LastSeenAt: at(created + idle), IdleExpiresAt: at(created + 2*idle),
			ExpiresAt: at(created + 3*idle), UserAgent: ua, Current: current,
		}}
		for _, tm := range []time.Time{v.Session.CreatedAt, v.Session.LastSeenAt, v.Session.IdleExpiresAt, v.Session.ExpiresAt} {
			if tm.Year() < 0 || tm.Year() > 9999 {
				return
			}
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(v); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if got := v.appendJSON(nil); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("appendJSON:\n got %s\nwant %s", got, want.Bytes())
		}
		// The login's answer: the view and a receipt (any string here).
		l := loginResult{sessionView: v, Receipt: ua}
		want.Reset()
		if err := json.NewEncoder(&want).Encode(l); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if got := l.appendJSON(nil); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("loginResult.appendJSON:\n got %s\nwant %s", got, want.Bytes())
		}
	})
}
