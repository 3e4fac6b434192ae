package api

import (
	"fmt"
	"github.com/go-chi/chi/v5"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Tests of the OpenAPI checker of spec_test.go itself, against canned
// responses of a fake server, so that they do not depend on the handlers.

// recordingTB stands in for a test: it records what check and do report
// instead of failing the real test. Fatal reports still go to the real test.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.record(fmt.Sprintf(format, args...))
}

func (r *recordingTB) Error(args ...any) { r.record(fmt.Sprint(args...)) }

func (r *recordingTB) Fail() { r.record("Fail called") }

func (r *recordingTB) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs) > 0
}

func (r *recordingTB) record(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, msg)
}

func (r *recordingTB) reported() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

// cannedResponse is what the fake server answers.
type cannedResponse struct {
	status int
	header http.Header
	body   string
}

// cannedServer answers each request with the canned response named by its
// X-Case header.
func cannedServer(t *testing.T, cases map[string]cannedResponse) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := cases[r.Header.Get("X-Case")]
		if !ok {
			http.Error(w, "no canned response for "+r.Header.Get("X-Case"), http.StatusTeapot)
			return
		}
		for k, vs := range c.header {
			w.Header()[k] = vs
		}
		w.WriteHeader(c.status)
		_, _ = w.Write([]byte(c.body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

const (
	specTestOrigin = "https://app.acme.example"
	specTestCookie = "__Host-latchkey-acme=c2Vzc2lvbi1zZWNyZXQtdmFsdWU"

	specTestSession = `{"id":"4p1Yx0dC3n9Qm7Kz2bWvHg","created_at":"2026-11-27T13:04:20Z",` +
		`"last_seen_at":"2026-11-27T13:05:00.123456789Z","idle_expires_at":"2026-11-28T01:05:00Z",` +
		`"expires_at":"2026-12-04T13:04:20Z","user_agent":"Chrome on Linux","current":true}`
	specTestSessionView = `{"user":{"username":"alice"},"session":` + specTestSession + `}`
	specTestLoginResult = `{"user":{"username":"alice"},"session":` + specTestSession +
		`,"receipt":"MTc5NTc4MDgwMHxBQUFBQUFBQUFBQUFBQUFBQUFBQUFBPT18AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`
	specTestCookieNotSent = `,"browser":"chrome","reasons":["UserPreferences","ThirdPartyPhaseout"],"advice":"canned"`
	specTestVerdict       = `{"browser":"chrome","preflight_ok":true,"cookie_stored":true,"cookie_sent":true,"works":true,"reasons":[],"advice":"canned"}`
	specTestDoctorLive    = `{"origin":"https://app.acme.example","origin_listed":true,"sec_fetch_site":"cross-site","sec_fetch_mode":"cors",` +
		`"cookie_present":false,"session_valid":false,"browser_family":"chrome","site_relation":"cross-site","results":[` +
		specTestVerdict + `,` + `{"browser":"chrome-3pc-blocked","preflight_ok":true,"cookie_stored":false,"cookie_sent":false,"works":false,` +
		`"reasons":["UserPreferences","ThirdPartyPhaseout"],"advice":"canned"}]}`

	specTestTenant = `{"id":"acme","name":"Acme","dev":false,"origins":["https://app.acme.example"],` +
		`"hostnames":["auth.acme.example"],"cookie":{"same_site":"lax","partitioned":false},` +
		`"session":{"idle_timeout":"12h0m0s","absolute_lifetime":"168h0m0s"},"login_limits":{"per_account":10,"per_ip":100,"window":"15m0s"}}`
	// specTestTenantSaved is specTestTenant as a PUT answers it, with
	// its browser warnings and the doctor's verdict on its origin.
	specTestTenantSaved = `{"id":"acme","name":"Acme","dev":false,"origins":["https://app.acme.example"],` +
		`"hostnames":["auth.acme.example"],"cookie":{"same_site":"lax","partitioned":false},` +
		`"session":{"idle_timeout":"12h0m0s","absolute_lifetime":"168h0m0s"},"login_limits":{"per_account":10,"per_ip":100,"window":"15m0s"},` +
		`"warnings":[{"field":"origins[0]","message":"…","engines":["webkit"]}],` +
		`"doctor":[{"origin":"https://app.acme.example","api":"https://auth.acme.example/v1","works_everywhere":true,"failing":[]}]}`
	specTestTenantInput = `{"name":"Acme","origins":["https://app.acme.example"],"hostnames":["auth.acme.example"],` +
		`"cookie":{"same_site":"lax"},"session":{"idle_timeout":"12h"}}`

	// specTestDiagnosis is the doctor's answer for a page on another site
	// calling acme's path form with a Lax cookie, abridged to two profiles.
	specTestDoctorInput = `{"page_origin":"https://app.acme.example","api":"https://auth.example.com/v1/t/acme"}`
	specTestDiagnosis   = `{"tenant":"acme","page_origin":"https://app.acme.example","api":"https://auth.example.com/v1/t/acme",` +
		`"site_relation":"cross-site","results":[` +
		`{"browser":"chrome","preflight_ok":true,"cookie_stored":false,"cookie_sent":false,"works":false,"reasons":["SchemefulSameSiteLax"],"advice":"…"},` +
		`{"browser":"safari-no-chips","preflight_ok":true,"cookie_stored":false,"cookie_sent":false,"works":false,"reasons":["SameSiteLax"],"advice":"…"}]}`

	specTestLoginCookie = "__Host-latchkey-acme=c2Vzc2lvbi1zZWNyZXQtdmFsdWU; Path=/; Max-Age=604800; HttpOnly; Secure; SameSite=Lax"
	specTestClearCookie = "__Host-latchkey-acme=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
)

func specTestProblem(slug string, status int, extra string) string {
	return fmt.Sprintf(`{"type":"urn:latchkey:problem:%s","title":"%s","status":%d,"detail":"canned"%s}`,
		slug, slug, status, extra)
}

// Response headers.
var (
	jsonCT    = http.Header{"Content-Type": {"application/json"}}
	problemCT = http.Header{"Content-Type": {"application/problem+json"}}
)

func withHeader(h http.Header, kv ...string) http.Header {
	if h = h.Clone(); h == nil {
		h = http.Header{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func corsHeader(h http.Header) http.Header {
	return withHeader(h,
		"Access-Control-Allow-Origin", specTestOrigin,
		"Access-Control-Allow-Credentials", "true",
		"Vary", "Origin")
}

// specExchange is one request to the fake server, its canned answer, and
// whether the checker must report it.
type specExchange struct {
	name    string
	method  string
	path    string
	header  map[string]string
	body    string
	res     cannedResponse
	wantErr string // "" when the exchange conforms; else a substring of the report ("!" for any)
}

func TestSpecValidator(t *testing.T) {
	t.Parallel()
	v := newSpecValidator(t)

	me := map[string]string{"Cookie": specTestCookie, "Origin": specTestOrigin}
	admin := map[string]string{"Authorization": "Bearer s3cret"}
	adminJSON := map[string]string{"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
	publicJSON := map[string]string{"Origin": specTestOrigin, "Content-Type": "application/json"}
	publicJSONCookie := map[string]string{"Origin": specTestOrigin, "Content-Type": "application/json", "Cookie": specTestCookie}
	preflight := map[string]string{
		"Origin":                         specTestOrigin,
		"Access-Control-Request-Method":  "POST",
		"Access-Control-Request-Headers": "content-type",
	}
	preflightOK := withHeader(nil,
		"Access-Control-Allow-Origin", specTestOrigin,
		"Access-Control-Allow-Credentials", "true",
		"Access-Control-Allow-Methods", "POST",
		"Access-Control-Allow-Headers", "Content-Type",
		"Access-Control-Max-Age", "600",
		"Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")

	cases := []specExchange{
		// Public API: conforming exchanges.
		{name: "me", method: "GET", path: "/v1/t/acme/me", header: me,
			res: cannedResponse{200, corsHeader(jsonCT), specTestSessionView}},
		{name: "me host form", method: "GET", path: "/v1/me",
			header: map[string]string{"Host": "auth.acme.example", "Cookie": specTestCookie},
			res:    cannedResponse{200, jsonCT, specTestSessionView}},
		{name: "me charset", method: "GET", path: "/v1/t/acme/me", header: me,
			res: cannedResponse{200, http.Header{"Content-Type": {"application/json; charset=utf-8"}}, specTestSessionView}},
		{name: "me unauthenticated", method: "GET", path: "/v1/t/acme/me",
			res: cannedResponse{401, problemCT, specTestProblem("unauthenticated", 401, "")}},
		{name: "me unknown tenant", method: "GET", path: "/v1/t/nope/me",
			res: cannedResponse{404, problemCT, specTestProblem("not-found", 404, `,"instance":"/v1/t/nope/me"`)}},
		{name: "me unavailable", method: "GET", path: "/v1/t/acme/me", header: me,
			res: cannedResponse{503, withHeader(problemCT, "Retry-After", "2"), specTestProblem("unavailable", 503, "")}},
		{name: "sessions", method: "GET", path: "/v1/t/acme/sessions", header: me,
			res: cannedResponse{200, corsHeader(jsonCT), `{"sessions":[` + specTestSession + `,` +
				strings.Replace(specTestSession, `"current":true`, `"current":false`, 1) + `]}`}},
		{name: "login", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body: `{"username":"alice","password":"hunter2"}`,
			res:  cannedResponse{200, withHeader(corsHeader(jsonCT), "Set-Cookie", specTestLoginCookie), specTestLoginResult}},
		{name: "login partitioned", method: "POST", path: "/v1/login",
			header: map[string]string{"Host": "auth.acme.example", "Content-Type": "application/json"},
			body:   `{"username":"alice","password":"hunter2"}`,
			res: cannedResponse{200, withHeader(jsonCT, "Set-Cookie",
				"__Host-latchkey-acme=abc; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=None; Partitioned"), specTestLoginResult}},
		{name: "login dev over plain HTTP on loopback", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body: `{"username":"alice","password":"hunter2"}`,
			res:  cannedResponse{200, withHeader(jsonCT, "Set-Cookie", "latchkey-acme=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"), specTestLoginResult}},
		{name: "login wrong password", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body: `{"username":"alice","password":"wrong"}`,
			res:  cannedResponse{401, corsHeader(problemCT), specTestProblem("invalid-credentials", 401, "")}},
		{name: "logout empty body", method: "POST", path: "/v1/t/acme/logout", header: publicJSONCookie,
			res: cannedResponse{204, withHeader(corsHeader(nil), "Set-Cookie", specTestClearCookie), ""}},
		{name: "logout empty object", method: "POST", path: "/v1/t/acme/logout", header: publicJSONCookie, body: `{}`,
			res: cannedResponse{204, withHeader(nil, "Set-Cookie", specTestClearCookie), ""}},
		{name: "logout without body or content type", method: "POST", path: "/v1/t/acme/logout",
			header: map[string]string{"Origin": specTestOrigin, "Cookie": specTestCookie},
			res:    cannedResponse{204, withHeader(corsHeader(nil), "Set-Cookie", specTestClearCookie), ""}},
		{name: "login bad body with pointer", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body: `{"username":"alice","password":"\ud800"}`,
			res:  cannedResponse{400, corsHeader(problemCT), specTestProblem("bad-request", 400, `,"pointer":"/password"`)}},
		{name: "login bad body with root pointer", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body: `[]`,
			res:  cannedResponse{400, corsHeader(problemCT), specTestProblem("bad-request", 400, `,"pointer":""`)}},
		{name: "delete sessions", method: "DELETE", path: "/v1/t/acme/sessions", header: me,
			res: cannedResponse{204, withHeader(nil, "Set-Cookie", specTestClearCookie), ""}},
		{name: "delete other session", method: "DELETE", path: "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA",
			header: map[string]string{"Host": "auth.acme.example", "Cookie": specTestCookie},
			res:    cannedResponse{204, nil, ""}},
		{name: "forbidden origin", method: "DELETE", path: "/v1/t/acme/sessions",
			header: map[string]string{"Cookie": specTestCookie, "Origin": "https://evil.example"},
			res:    cannedResponse{403, problemCT, specTestProblem("forbidden-origin", 403, "")}},
		{name: "cookie not sent", method: "GET", path: "/v1/t/acme/me",
			header: map[string]string{"Origin": specTestOrigin, "Latchkey-Receipt": "MTc5NTc4MDgwMA=="},
			res:    cannedResponse{401, corsHeader(problemCT), specTestProblem("cookie-not-sent", 401, specTestCookieNotSent)}},
		{name: "doctor", method: "GET", path: "/v1/t/acme/doctor", header: map[string]string{"Origin": specTestOrigin},
			res: cannedResponse{200, corsHeader(jsonCT), specTestDoctorLive}},
		{name: "doctor host form", method: "GET", path: "/v1/doctor", header: map[string]string{"Host": "auth.acme.example"},
			res: cannedResponse{200, jsonCT, strings.Replace(specTestDoctorLive, `"origin":"https://app.acme.example","origin_listed":true`, `"origin":"","origin_listed":false`, 1)}},
		{name: "preflight", method: "OPTIONS", path: "/v1/t/acme/login", header: preflight,
			res: cannedResponse{204, preflightOK, ""}},
		{name: "preflight host form", method: "OPTIONS", path: "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA", header: preflight,
			res: cannedResponse{204, preflightOK, ""}},
		{name: "preflight refused", method: "OPTIONS", path: "/v1/t/acme/me",
			header: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
			res:    cannedResponse{status: 403}},

		// Refusals of malformed requests are fine; accepting them is not.
		{name: "login unknown field refused", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body: `{"username":"alice","password":"x","admin":true}`,
			res:  cannedResponse{400, problemCT, specTestProblem("bad-request", 400, "")}},
		{name: "login form refused", method: "POST", path: "/v1/t/acme/login",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body:   "username=alice&password=x",
			res:    cannedResponse{415, problemCT, specTestProblem("unsupported-media-type", 415, "")}},
		{name: "login unknown field accepted", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body:    `{"username":"alice","password":"x","admin":true}`,
			res:     cannedResponse{200, withHeader(jsonCT, "Set-Cookie", specTestLoginCookie), specTestLoginResult},
			wantErr: "did not refuse it"},
		{name: "preflight without method accepted", method: "OPTIONS", path: "/v1/t/acme/me",
			header:  map[string]string{"Origin": specTestOrigin},
			res:     cannedResponse{204, preflightOK, ""},
			wantErr: "did not refuse it"},

		// Public API: non-conforming responses.
		{name: "login without receipt", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body:    `{"username":"alice","password":"hunter2"}`,
			res:     cannedResponse{200, withHeader(jsonCT, "Set-Cookie", specTestLoginCookie), specTestSessionView},
			wantErr: "receipt"},
		{name: "cookie not sent without advice", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{401, problemCT, specTestProblem("cookie-not-sent", 401, `,"browser":"chrome","reasons":["UserPreferences"]`)},
			wantErr: "advice"},
		{name: "unauthenticated with reasons", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{401, problemCT, specTestProblem("unauthenticated", 401, `,"reasons":["UserPreferences"]`)},
			wantErr: "doesn't match"},
		{name: "doctor unknown profile", method: "GET", path: "/v1/t/acme/doctor", header: me,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestDoctorLive, `"chrome-3pc-blocked"`, `"chrome-incognito"`, 1)},
			wantErr: "chrome-incognito"},
		{name: "doctor without results", method: "GET", path: "/v1/t/acme/doctor", header: me,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestDoctorLive, `,"results":[`, `,"verdicts":[`, 1)},
			wantErr: "results"},
		{name: "me extra field", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestSessionView, `"user":{`, `"admin":true,"user":{`, 1)},
			wantErr: "admin"},
		{name: "me extra nested field", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestSessionView, `"username":"alice"`, `"username":"alice","password_hash":"x"`, 1)},
			wantErr: "password_hash"},
		{name: "me wrong type", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestSessionView, `"current":true`, `"current":"yes"`, 1)},
			wantErr: "current"},
		{name: "me not current", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestSessionView, `"current":true`, `"current":false`, 1)},
			wantErr: "current"},
		{name: "me missing field", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestSessionView, `"user_agent":"Chrome on Linux",`, "", 1)},
			wantErr: "user_agent"},
		{name: "me not UTC", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestSessionView, `2026-11-27T13:04:20Z`, `2026-11-27T14:04:20+01:00`, 1)},
			wantErr: "created_at"},
		{name: "me bad session id", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestSessionView, `4p1Yx0dC3n9Qm7Kz2bWvHg`, `4p1Yx0dC3n9Qm7Kz2bWvH=`, 1)},
			wantErr: "id"},
		{name: "me null list", method: "GET", path: "/v1/t/acme/sessions", header: me,
			res:     cannedResponse{200, jsonCT, `{"sessions":null}`},
			wantErr: "sessions"},
		{name: "me text", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, http.Header{"Content-Type": {"text/plain"}}, specTestSessionView},
			wantErr: "Content-Type"},
		{name: "me undeclared status", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{202, jsonCT, specTestSessionView},
			wantErr: "status is not supported"},
		{name: "me problem as json", method: "GET", path: "/v1/t/acme/me",
			res:     cannedResponse{401, jsonCT, specTestProblem("unauthenticated", 401, "")},
			wantErr: "Content-Type"},
		{name: "me wrong slug", method: "GET", path: "/v1/t/acme/me",
			res:     cannedResponse{401, problemCT, specTestProblem("invalid-credentials", 401, "")},
			wantErr: "!"},
		{name: "me problem status mismatch", method: "GET", path: "/v1/t/acme/me",
			res:     cannedResponse{401, problemCT, specTestProblem("unauthenticated", 403, "")},
			wantErr: "!"},
		{name: "me problem errors", method: "GET", path: "/v1/t/acme/me",
			res:     cannedResponse{401, problemCT, specTestProblem("unauthenticated", 401, `,"errors":[{"message":"x"}]`)},
			wantErr: "!"},
		{name: "problem extra field", method: "GET", path: "/v1/t/acme/me",
			res:     cannedResponse{401, problemCT, specTestProblem("unauthenticated", 401, `,"stack":"main.go:1"`)},
			wantErr: "stack"},
		{name: "wildcard origin", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, withHeader(jsonCT, "Access-Control-Allow-Origin", "*"), specTestSessionView},
			wantErr: "Access-Control-Allow-Origin"},
		{name: "credentials false", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{200, withHeader(jsonCT, "Access-Control-Allow-Credentials", "false"), specTestSessionView},
			wantErr: "Access-Control-Allow-Credentials"},
		{name: "unavailable without Retry-After", method: "GET", path: "/v1/t/acme/me", header: me,
			res:     cannedResponse{503, problemCT, specTestProblem("unavailable", 503, "")},
			wantErr: "Retry-After"},
		{name: "login __Host- cookie without Secure", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body:    `{"username":"alice","password":"hunter2"}`,
			res:     cannedResponse{200, withHeader(jsonCT, "Set-Cookie", strings.Replace(specTestLoginCookie, " Secure;", "", 1)), specTestSessionView},
			wantErr: "Set-Cookie"},
		{name: "login plain dev cookie with SameSite=None", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body:    `{"username":"alice","password":"hunter2"}`,
			res:     cannedResponse{200, withHeader(jsonCT, "Set-Cookie", "latchkey-acme=abc; Path=/; Max-Age=60; HttpOnly; SameSite=None"), specTestSessionView},
			wantErr: "Set-Cookie"},
		{name: "login plain dev cookie with Secure", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body:    `{"username":"alice","password":"hunter2"}`,
			res:     cannedResponse{200, withHeader(jsonCT, "Set-Cookie", "latchkey-acme=abc; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax"), specTestSessionView},
			wantErr: "Set-Cookie"},
		{name: "login without cookie", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body:    `{"username":"alice","password":"hunter2"}`,
			res:     cannedResponse{200, jsonCT, specTestSessionView},
			wantErr: "Set-Cookie"},
		{name: "login cookie with Domain", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body:    `{"username":"alice","password":"hunter2"}`,
			res:     cannedResponse{200, withHeader(jsonCT, "Set-Cookie", specTestLoginCookie+"; Domain=acme.example"), specTestSessionView},
			wantErr: "Set-Cookie"},
		{name: "login cookie not HttpOnly", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body:    `{"username":"alice","password":"hunter2"}`,
			res:     cannedResponse{200, withHeader(jsonCT, "Set-Cookie", strings.Replace(specTestLoginCookie, "; HttpOnly", "", 1)), specTestSessionView},
			wantErr: "Set-Cookie"},
		{name: "bad-request pointer not a pointer", method: "POST", path: "/v1/t/acme/login", header: publicJSON,
			body:    `{"username":1}`,
			res:     cannedResponse{400, problemCT, specTestProblem("bad-request", 400, `,"pointer":"username"`)},
			wantErr: "pointer"},
		{name: "logout without clearing", method: "POST", path: "/v1/t/acme/logout", header: publicJSON,
			res:     cannedResponse{204, nil, ""},
			wantErr: "Set-Cookie"},
		{name: "preflight without origin", method: "OPTIONS", path: "/v1/t/acme/login", header: preflight,
			res:     cannedResponse{204, withHeader(nil, "Access-Control-Allow-Credentials", "true", "Access-Control-Allow-Methods", "POST", "Access-Control-Allow-Headers", "Content-Type", "Access-Control-Max-Age", "600"), ""},
			wantErr: "Access-Control-Allow-Origin"},

		// Routes the document does not declare.
		{name: "undeclared route", method: "GET", path: "/v1/t/acme/nope",
			res:     cannedResponse{200, jsonCT, `{}`},
			wantErr: "route not in the spec"},
		{name: "undeclared method", method: "PUT", path: "/v1/t/acme/me",
			res:     cannedResponse{200, jsonCT, specTestSessionView},
			wantErr: "route not in the spec"},
		{name: "undeclared route refused", method: "GET", path: "/v1/t/acme/nope",
			res: cannedResponse{404, problemCT, specTestProblem("not-found", 404, "")}},
		{name: "undeclared method refused", method: "PUT", path: "/v1/t/acme/me",
			res: cannedResponse{405, withHeader(problemCT, "Allow", "GET, OPTIONS"), specTestProblem("method-not-allowed", 405, "")}},
		{name: "undeclared method refused without Allow", method: "PUT", path: "/v1/t/acme/me",
			res:     cannedResponse{405, problemCT, specTestProblem("method-not-allowed", 405, "")},
			wantErr: "Allow"},
		{name: "undeclared admin route unauthorized", method: "GET", path: "/admin/v1/nope",
			res: cannedResponse{401, withHeader(problemCT, "WWW-Authenticate", `Bearer realm="latchkey-admin"`), specTestProblem("admin-unauthorized", 401, "")}},

		// Admin listener.
		{name: "healthz", method: "GET", path: "/healthz",
			res: cannedResponse{200, jsonCT, `{"status":"ok"}`}},
		{name: "healthz wrong status", method: "GET", path: "/healthz",
			res:     cannedResponse{200, jsonCT, `{"status":"up"}`},
			wantErr: "status"},
		{name: "readyz unavailable", method: "GET", path: "/readyz",
			res: cannedResponse{503, withHeader(problemCT, "Retry-After", "1"), specTestProblem("unavailable", 503, "")}},
		{name: "admin tenants", method: "GET", path: "/admin/v1/tenants", header: admin,
			res: cannedResponse{200, jsonCT, `{"tenants":[` + specTestTenant + `]}`}},
		{name: "admin put tenant", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON, body: specTestTenantInput,
			res: cannedResponse{201, jsonCT, specTestTenantSaved}},
		{name: "admin put tenant without warnings", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON, body: specTestTenantInput,
			res:     cannedResponse{201, jsonCT, specTestTenant},
			wantErr: "warnings"},
		{name: "admin put tenant unknown engine", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON, body: specTestTenantInput,
			res:     cannedResponse{201, jsonCT, strings.Replace(specTestTenantSaved, `"webkit"`, `"safari"`, 1)},
			wantErr: "engines"},
		{name: "admin put tenant without doctor", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON, body: specTestTenantInput,
			res:     cannedResponse{201, jsonCT, strings.Replace(specTestTenantSaved, `"doctor"`, `"dr"`, 1)},
			wantErr: "doctor"},
		{name: "admin doctor", method: "POST", path: "/admin/v1/tenants/acme/doctor", header: adminJSON, body: specTestDoctorInput,
			res: cannedResponse{200, jsonCT, specTestDiagnosis}},
		{name: "admin doctor unknown browser", method: "POST", path: "/admin/v1/tenants/acme/doctor", header: adminJSON, body: specTestDoctorInput,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestDiagnosis, `"safari-no-chips"`, `"webkit"`, 1)},
			wantErr: "browser"},
		{name: "admin doctor unknown relation", method: "POST", path: "/admin/v1/tenants/acme/doctor", header: adminJSON, body: specTestDoctorInput,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestDiagnosis, `"cross-site"`, `"third-party"`, 1)},
			wantErr: "site_relation"},
		{name: "admin doctor bad credentials accepted", method: "POST", path: "/admin/v1/tenants/acme/doctor", header: adminJSON,
			body:    strings.Replace(specTestDoctorInput, `}`, `,"credentials":"always"}`, 1),
			res:     cannedResponse{200, jsonCT, specTestDiagnosis},
			wantErr: "did not refuse it"},
		{name: "admin put tenant null hostnames", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON, body: specTestTenantInput,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestTenantSaved, `["auth.acme.example"]`, `null`, 1)},
			wantErr: "hostnames"},
		{name: "admin put tenant partitioned lax", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON, body: specTestTenantInput,
			res:     cannedResponse{200, jsonCT, strings.Replace(specTestTenantSaved, `"partitioned":false`, `"partitioned":true`, 1)},
			wantErr: "!"},
		{name: "admin put tenant partitioned none", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON,
			body: strings.Replace(specTestTenantInput, `"lax"`, `"none","partitioned":true`, 1),
			res:  cannedResponse{200, jsonCT, strings.Replace(specTestTenantSaved, `"lax","partitioned":false`, `"none","partitioned":true`, 1)}},
		{name: "admin put tenant partitioned lax accepted", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON,
			body:    strings.Replace(specTestTenantInput, `"lax"`, `"lax","partitioned":true`, 1),
			res:     cannedResponse{200, jsonCT, specTestTenantSaved},
			wantErr: "did not refuse it"},
		{name: "admin put tenant unknown field accepted", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON,
			body:    strings.Replace(specTestTenantInput, `"name"`, `"nmae":"x","name"`, 1),
			res:     cannedResponse{201, jsonCT, specTestTenantSaved},
			wantErr: "did not refuse it"},
		{name: "admin put tenant invalid", method: "PUT", path: "/admin/v1/tenants/acme", header: adminJSON,
			body: strings.Replace(specTestTenantInput, `"lax"`, `"none","partitioned":true,"x":1`, 1),
			res: cannedResponse{400, problemCT, specTestProblem("invalid-config", 400,
				`,"errors":[{"tenant":"acme","field":"cookie.x","message":"unknown field"}]`)}},
		{name: "admin invalid-config without errors", method: "POST", path: "/admin/v1/tenants/acme/users", header: adminJSON,
			body:    `{"username":"bob","password":"x","password_hash":"y"}`,
			res:     cannedResponse{400, problemCT, specTestProblem("invalid-config", 400, "")},
			wantErr: "!"},
		{name: "admin create user", method: "POST", path: "/admin/v1/tenants/acme/users", header: adminJSON,
			body: `{"username":"bob","password_hash":"$2a$10$abcdefghijklmnopqrstuv","disabled":true}`,
			res:  cannedResponse{201, jsonCT, `{"username":"bob","email_verified":false,"disabled":true,"created_at":"2026-11-27T13:04:20Z","updated_at":"2026-11-27T13:04:20Z"}`}},
		{name: "admin create user leaks hash", method: "POST", path: "/admin/v1/tenants/acme/users", header: adminJSON,
			body:    `{"username":"bob","password":"x"}`,
			res:     cannedResponse{201, jsonCT, `{"username":"bob","email_verified":false,"disabled":false,"password_hash":"x","created_at":"2026-11-27T13:04:20Z","updated_at":"2026-11-27T13:04:20Z"}`},
			wantErr: "password_hash"},
		{name: "admin patch user", method: "PATCH", path: "/admin/v1/tenants/acme/users/bob", header: adminJSON, body: `{"disabled":false}`,
			res: cannedResponse{200, jsonCT, `{"username":"bob","email_verified":false,"disabled":false,"created_at":"2026-11-27T13:04:20Z","updated_at":"2026-11-27T13:05:20Z"}`}},
		{name: "admin user sessions", method: "GET", path: "/admin/v1/tenants/acme/users/bob/sessions", header: admin,
			res: cannedResponse{200, jsonCT, `{"sessions":[` + strings.Replace(specTestSession, `"current":true`, `"current":false`, 1) + `]}`}},
		{name: "admin user sessions current", method: "GET", path: "/admin/v1/tenants/acme/users/bob/sessions", header: admin,
			res:     cannedResponse{200, jsonCT, `{"sessions":[` + specTestSession + `]}`},
			wantErr: "current"},
		{name: "admin delete session", method: "DELETE", path: "/admin/v1/tenants/acme/users/bob/sessions/AAAAAAAAAAAAAAAAAAAAAA", header: admin,
			res: cannedResponse{204, nil, ""}},
		{name: "admin unauthorized", method: "GET", path: "/admin/v1/tenants",
			res: cannedResponse{401, withHeader(problemCT, "WWW-Authenticate", "Bearer"), specTestProblem("admin-unauthorized", 401, "")}},
		{name: "admin unauthorized without challenge", method: "GET", path: "/admin/v1/tenants",
			res:     cannedResponse{401, problemCT, specTestProblem("admin-unauthorized", 401, "")},
			wantErr: "WWW-Authenticate"},
		{name: "admin disabled", method: "DELETE", path: "/admin/v1/tenants/acme",
			res: cannedResponse{404, problemCT, specTestProblem("not-found", 404, "")}},
	}

	canned := make(map[string]cannedResponse, len(cases))
	for _, c := range cases {
		if _, dup := canned[c.name]; dup {
			t.Fatalf("duplicate case %q", c.name)
		}
		canned[c.name] = c.res
	}
	srv := cannedServer(t, canned)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			req, err := http.NewRequest(c.method, srv.URL+c.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Case", c.name)
			for k, val := range c.header {
				if k == "Host" {
					req.Host = val
					continue
				}
				req.Header.Set(k, val)
			}

			rec := &recordingTB{TB: t}
			res, resBody := v.do(rec, srv.Client(), req)
			if res.StatusCode != c.res.status {
				t.Fatalf("fake server answered %d, want %d (%s)", res.StatusCode, c.res.status, resBody)
			}
			if string(resBody) != c.res.body {
				t.Errorf("do returned body %q, want %q", resBody, c.res.body)
			}
			reported := rec.reported()
			switch {
			case c.wantErr == "" && reported != "":
				t.Errorf("conforming exchange reported:\n%s", reported)
			case c.wantErr != "" && reported == "":
				t.Errorf("non-conforming exchange not reported (want %q)", c.wantErr)
			case c.wantErr != "" && c.wantErr != "!" && !strings.Contains(reported, c.wantErr):
				t.Errorf("report does not mention %q:\n%s", c.wantErr, reported)
			case reported != "" && !strings.Contains(reported, c.method+" "+c.path+" -> "):
				t.Errorf("report does not name %s %s and the status:\n%s", c.method, c.path, reported)
			}
			if reported != "" {
				t.Logf("reported (as expected):\n%s", reported)
			}
		})
	}
}

// TestSpecValidatorCheckDirect feeds check exchanges that no real server
// produces, such as a body on a 204.
func TestSpecValidatorCheckDirect(t *testing.T) {
	t.Parallel()
	v := newSpecValidator(t)

	req := httptest.NewRequest("DELETE", "http://127.0.0.1:8081/admin/v1/tenants/acme", nil)
	req.Header.Set("Authorization", "Bearer s3cret")

	rec := &recordingTB{TB: t}
	v.check(rec, req, nil, &http.Response{StatusCode: 204, Header: http.Header{}}, nil)
	if r := rec.reported(); r != "" {
		t.Errorf("204 without body reported:\n%s", r)
	}

	rec = &recordingTB{TB: t}
	v.check(rec, req, nil, &http.Response{StatusCode: 204, Header: jsonCT}, []byte(`{}`))
	if r := rec.reported(); !strings.Contains(r, "declared without content") {
		t.Errorf("204 with a body: got report %q", r)
	}

	// A server-side request, as handler tests with httptest.NewRecorder have.
	req = httptest.NewRequest("POST", "/v1/t/acme/login", strings.NewReader(`{"username":"alice","password":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	rec = &recordingTB{TB: t}
	v.check(rec, req, []byte(`{"username":"alice","password":"x"}`),
		&http.Response{StatusCode: 413, Header: problemCT}, []byte(specTestProblem("payload-too-large", 413, "")))
	if r := rec.reported(); r != "" {
		t.Errorf("413 reported:\n%s", r)
	}
}

// TestSpecDeclaresEveryRoute walks the routers themselves: every route they
// serve must be in openapi.yaml (and nothing else), and each public path
// must have its CORS preflight, so that the spec cannot fall behind.
func TestSpecDeclaresEveryRoute(t *testing.T) {
	t.Parallel()
	v := newSpecValidator(t)
	e := newEnv(t, envOptions{token: adminToken})

	type route struct{ method, path string }
	var want []route
	preflights := map[string]bool{}
	walk := func(r chi.Routes, prefix string) {
		t.Helper()
		err := chi.Walk(r, func(method, path string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
			if strings.HasSuffix(path, "/*") {
				return nil
			}
			if len(path) > 1 {
				path = strings.TrimSuffix(path, "/")
			}
			want = append(want, route{method, prefix + path})
			if strings.HasPrefix(prefix, "/v1") && !preflights[prefix+path] {
				preflights[prefix+path] = true
				want = append(want, route{"OPTIONS", prefix + path})
			}
			return nil
		})
		if err != nil {
			t.Fatalf("chi.Walk: %v", err)
		}
	}
	for _, prefix := range []string{"/v1/t/{tenant}", "/v1"} {
		walk(e.srv.tenantRoutes, prefix)
	}
	walk(e.srv.Admin().(chi.Routes), "")

	declared := 0
	for _, item := range v.doc.Paths.Map() {
		declared += len(item.Operations())
	}
	if declared != len(want) {
		t.Errorf("openapi.yaml declares %d operations, the design has %d", declared, len(want))
	}
	for _, r := range want {
		item := v.doc.Paths.Value(r.path)
		if item == nil || item.GetOperation(r.method) == nil {
			t.Errorf("openapi.yaml lacks %s %s", r.method, r.path)
			continue
		}
		op := item.GetOperation(r.method)
		if op.OperationID == "" {
			t.Errorf("%s %s has no operationId", r.method, r.path)
		}
		admin := strings.HasPrefix(r.path, "/admin/")
		for _, status := range []int{200, 201, 204, 401, 503} {
			ref := op.Responses.Status(status)
			if ref == nil || ref.Value == nil {
				continue
			}
			switch {
			case status == 503 && ref.Value.Headers["Retry-After"] == nil:
				t.Errorf("%s %s: 503 without Retry-After", r.method, r.path)
			case status == 401 && admin && ref.Value.Headers["WWW-Authenticate"] == nil:
				t.Errorf("%s %s: 401 without WWW-Authenticate", r.method, r.path)
			}
		}
		if admin && op.Responses.Status(401) == nil {
			t.Errorf("%s %s: admin route without 401", r.method, r.path)
		}
	}
}
