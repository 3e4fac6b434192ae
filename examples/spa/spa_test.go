package spa_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/examples/spa"
)

const testAPI = "http://localhost:8080/v1/t/example"

// newHandler returns the handler for api, failing the test if it is refused.
func newHandler(tb testing.TB, api string) http.Handler {
	tb.Helper()
	h, err := spa.Handler(spa.Config{API: api})
	if err != nil {
		tb.Fatalf("Handler(%q) error = %v, want nil", api, err)
	}
	return h
}

// get serves one request to h and returns the response and its body.
func get(tb testing.TB, h http.Handler, method, target string, header http.Header) (*http.Response, string) {
	tb.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("read body: %v", err)
	}
	return res, string(b)
}

func TestHandlerConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		api  string
		want []string // substrings of the error; none means valid
	}{
		{name: "path form", api: testAPI},
		{name: "host form with port", api: "https://auth.acme.test:8443/v1"},
		{name: "no path", api: "https://auth.acme.test"},
		{name: "IPv6 loopback", api: "http://[::1]:8080/v1/t/example"},
		{name: "empty", api: "", want: []string{"required"}},
		{name: "relative", api: "/v1/t/example", want: []string{"scheme must be http or https", "host is required"}},
		{name: "no scheme", api: "localhost:8080/v1", want: []string{"scheme must be http or https", "host is required"}},
		{name: "ftp", api: "ftp://localhost/v1", want: []string{`scheme must be http or https, got "ftp"`}},
		{name: "javascript", api: "javascript:alert(1)", want: []string{"scheme must be http or https", "host is required"}},
		{name: "no host", api: "http:///v1", want: []string{"host is required"}},
		{name: "trailing slash", api: testAPI + "/", want: []string{"trailing slash"}},
		{name: "root slash", api: "http://localhost:8080/", want: []string{"trailing slash"}},
		{name: "query", api: testAPI + "?x=1", want: []string{"query is not allowed"}},
		{name: "empty query", api: testAPI + "?", want: []string{"query is not allowed"}},
		{name: "fragment", api: testAPI + "#top", want: []string{"fragment is not allowed"}},
		{name: "empty fragment", api: testAPI + "#", want: []string{"fragment is not allowed"}},
		{name: "userinfo", api: "http://user:pw@localhost:8080/v1", want: []string{"user information"}},
		{name: "CSP injection in host", api: "http://a;script-src*/v1", want: []string{"not a DNS name or IP address"}},
		{name: "comma in host", api: "http://a,b/v1", want: []string{"not a DNS name or IP address"}},
		{name: "IPv6 zone", api: "http://[fe80::1%25eth0]:8080/v1", want: []string{"not a DNS name or IP address"}},
		{name: "port out of range", api: "http://localhost:99999/v1", want: []string{"port"}},
		{name: "empty port", api: "http://localhost:/v1", want: []string{"port"}},
		{name: "unparsable", api: "http://exa mple/v1", want: []string{"invalid character"}},
		{
			name: "every problem at once",
			api:  "ftp://u@localhost:8080/v1/?q=1#f",
			want: []string{"scheme must be http or https", "user information", "query is not allowed", "fragment is not allowed", "trailing slash"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := spa.Handler(spa.Config{API: tt.api})
			if len(tt.want) == 0 {
				if err != nil || h == nil {
					t.Errorf("Handler(%q) = %v, %v, want a handler and nil", tt.api, h, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Handler(%q) error = nil, want %q", tt.api, tt.want)
			}
			if h != nil {
				t.Errorf("Handler(%q) handler = %v, want nil with an error", tt.api, h)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Handler(%q) error = %q, want it to contain %q", tt.api, err, w)
				}
			}
		})
	}
}

func TestHandlerServes(t *testing.T) {
	t.Parallel()
	h := newHandler(t, testAPI)
	tests := []struct {
		name, method, target string
		wantStatus           int
		wantType             string
		wantCache            string
		wantBody             string // a substring; "" checks nothing
		wantAllow            string
	}{
		{name: "index", method: "GET", target: "/", wantStatus: 200, wantType: "text/html; charset=utf-8", wantCache: "no-cache", wantBody: "<title>Latchkey example SPA</title>"},
		{name: "index.html", method: "GET", target: "/index.html", wantStatus: 200, wantType: "text/html; charset=utf-8", wantCache: "no-cache", wantBody: `id="login-form"`},
		{name: "verify", method: "GET", target: "/verify", wantStatus: 200, wantType: "text/html; charset=utf-8", wantCache: "no-cache", wantBody: `id="link-card"`},
		{name: "reset", method: "GET", target: "/reset", wantStatus: 200, wantType: "text/html; charset=utf-8", wantCache: "no-cache", wantBody: `id="reset-form"`},
		{name: "verify, only it", method: "GET", target: "/verify/x", wantStatus: 404},
		{name: "app.js", method: "GET", target: "/app.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantCache: "no-cache", wantBody: "window.latchkey"},
		{name: "style.css", method: "GET", target: "/style.css", wantStatus: 200, wantType: "text/css; charset=utf-8", wantCache: "no-cache", wantBody: ".card"},
		{name: "latchkey-client.js", method: "GET", target: "/latchkey-client.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantCache: "no-cache", wantBody: "export function createClient("},
		{name: "config.js", method: "GET", target: "/config.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantCache: "no-store", wantBody: `window.LATCHKEY_CONFIG = {"api": "` + testAPI + `"};`},
		{name: "query ignored", method: "GET", target: "/app.js?v=2", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantCache: "no-cache"},
		{name: "HEAD", method: "HEAD", target: "/config.js", wantStatus: 200, wantType: "text/javascript; charset=utf-8", wantCache: "no-store"},
		{name: "POST", method: "POST", target: "/", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "DELETE", method: "DELETE", target: "/config.js", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "OPTIONS", method: "OPTIONS", target: "/app.js", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "unknown path", method: "GET", target: "/nope", wantStatus: 404},
		{name: "embed directory", method: "GET", target: "/static/index.html", wantStatus: 404},
		{name: "favicon", method: "GET", target: "/favicon.ico", wantStatus: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, body := get(t, h, tt.method, tt.target, nil)
			if res.StatusCode != tt.wantStatus {
				t.Errorf("StatusCode=%v, want %v", res.StatusCode, tt.wantStatus)
			}
			if tt.wantType != "" {
				if got := res.Header.Get("Content-Type"); got != tt.wantType {
					t.Errorf("Content-Type=%v, want %v", got, tt.wantType)
				}
			}
			if got := res.Header.Get("Cache-Control"); tt.wantCache != "" && got != tt.wantCache {
				t.Errorf("Cache-Control=%v, want %v", got, tt.wantCache)
			}
			if got := res.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow=%v, want %v", got, tt.wantAllow)
			}
			if tt.wantBody != "" && !strings.Contains(body, tt.wantBody) {
				t.Errorf("body=%.200q, want it to contain %q", body, tt.wantBody)
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD body=%q, want empty", body)
			}
			// The security headers are on every response, errors included.
			for k, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"Referrer-Policy":        "no-referrer",
			} {
				if got := res.Header.Get(k); got != want {
					t.Errorf("%s=%v, want %v", k, got, want)
				}
			}
			if got := res.Header.Get("Content-Security-Policy"); !strings.Contains(got, "connect-src 'self' http://localhost:8080;") {
				t.Errorf("Content-Security-Policy=%v, want connect-src 'self' http://localhost:8080", got)
			}
		})
	}
}

func TestHandlerRevalidates(t *testing.T) {
	t.Parallel()
	h := newHandler(t, testAPI)
	res, _ := get(t, h, "GET", "/app.js", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatalf("ETag=%v, want one", etag)
	}
	res, body := get(t, h, "GET", "/app.js", http.Header{"If-None-Match": {etag}})
	if res.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("StatusCode=%v with body %q, want %v and none", res.StatusCode, body, http.StatusNotModified)
	}
	// config.js is never cached, so it has no validator either.
	res, _ = get(t, h, "GET", "/config.js", nil)
	if got := res.Header.Get("ETag"); got != "" {
		t.Errorf("config.js ETag=%v, want none", got)
	}
}

func TestConfigJSEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		api  string
	}{
		{name: "plain", api: testAPI},
		{name: "quote", api: `http://localhost:8080/v1/t/x"};alert(1);//x`},
		{name: "end of script", api: "http://localhost:8080/v1/t/x</script><script>alert(1)</script>"},
		{name: "backslash", api: `http://localhost:8080/v1/t/x\"`},
		{name: "line separator", api: "http://localhost:8080/v1/t/x\u2028alert(1)"},
	}
	const prefix, suffix = "window.LATCHKEY_CONFIG = ", ";\n"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, body := get(t, newHandler(t, tt.api), "GET", "/config.js", nil)
			for _, bad := range []string{"</script", "<script", "\u2028", `x"};alert`} {
				if strings.Contains(body, bad) {
					t.Errorf("config.js=%q contains %q, want it escaped", body, bad)
				}
			}
			obj, okPrefix := strings.CutPrefix(body, prefix)
			obj, okSuffix := strings.CutSuffix(obj, suffix)
			if !okPrefix || !okSuffix {
				t.Fatalf("config.js=%q, want %q + JSON + %q", body, prefix, suffix)
			}
			var cfg struct {
				API string `json:"api"`
			}
			if err := json.Unmarshal([]byte(obj), &cfg); err != nil {
				t.Fatalf("config.js object %q: %v", obj, err)
			}
			if cfg.API != tt.api {
				t.Errorf("api=%v, want %v", cfg.API, tt.api)
			}
		})
	}
}

func TestCSP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, api, wantOrigin string
	}{
		{name: "path form", api: testAPI, wantOrigin: "http://localhost:8080"},
		{name: "default port kept as given", api: "https://auth.acme.test/v1", wantOrigin: "https://auth.acme.test"},
		{name: "host form with port", api: "https://auth.acme.test:8443/v1", wantOrigin: "https://auth.acme.test:8443"},
		{name: "uppercase host", api: "HTTPS://Auth.Acme.TEST:8443/v1", wantOrigin: "https://auth.acme.test:8443"},
		{name: "IPv6", api: "http://[::1]:18180/v1/t/example", wantOrigin: "http://[::1]:18180"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, _ := get(t, newHandler(t, tt.api), "GET", "/", nil)
			want := "default-src 'self'; connect-src 'self' " + tt.wantOrigin +
				"; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
			if got := res.Header.Get("Content-Security-Policy"); got != want {
				t.Errorf("Content-Security-Policy=%v, want %v", got, want)
			}
		})
	}
}

// TestIndexHTML checks the page against the contract the e2e suite relies
// on, and that it can run under its own CSP.
func TestIndexHTML(t *testing.T) {
	t.Parallel()
	_, page := get(t, newHandler(t, testAPI), "GET", "/", nil)

	t.Run("element IDs", func(t *testing.T) {
		t.Parallel()
		tests := []struct{ id, tag string }{
			{"username", "input"},
			{"password", "input"},
			{"login", "button"},
			{"login-form", "form"},
			{"who", ""},
			{"refresh", "button"},
			{"load-sessions", "button"},
			{"sessions", "ul"},
			{"revoke-all", "button"},
			{"logout", "button"},
			{"log", "ol"},
			// The Diagnose panel.
			{"doctor-card", "section"},
			{"diagnose", "button"},
			{"doctor-status", "p"},
			{"doctor-seen", "dl"},
			{"doctor-results", "ul"},
			{"doctor-cli", "div"},
			{"doctor-command", "code"},
			{"doctor-copy", "button"},
			// Self-service accounts.
			{"signup-form", "form"},
			{"signup-email", "input"},
			{"signup", "button"},
			{"check-mail", "div"},
			{"resend", "button"},
			{"forgot-form", "form"},
			{"change-card", "section"},
			{"change-form", "form"},
			{"link-card", "section"},
			{"reset-form", "form"},
		}
		for _, tt := range tests {
			re := regexp.MustCompile(`<([a-z]+)\b[^>]*\sid="` + regexp.QuoteMeta(tt.id) + `"`)
			m := re.FindAllStringSubmatch(page, -1)
			if len(m) != 1 {
				t.Errorf("elements with id %q=%v, want 1", tt.id, len(m))
				continue
			}
			if tt.tag != "" && m[0][1] != tt.tag {
				t.Errorf("#%s tag=%v, want %v", tt.id, m[0][1], tt.tag)
			}
		}
		if !regexp.MustCompile(`<input\b[^>]*\sid="password"[^>]*\stype="password"`).MatchString(page) {
			t.Errorf("input#password type=%v, want password", "not password")
		}
		if !regexp.MustCompile(`<button\b[^>]*\sid="login"[^>]*\stype="submit"`).MatchString(page) {
			t.Errorf("button#login type=%v, want submit", "not submit")
		}
	})

	t.Run("same-origin resources only", func(t *testing.T) {
		t.Parallel()
		refs := regexp.MustCompile(`\s(?:src|href|action|srcset|poster|data)\s*=\s*"([^"]*)"`).FindAllStringSubmatch(page, -1)
		if len(refs) == 0 {
			t.Fatalf("references=%v, want some", len(refs))
		}
		for _, m := range refs {
			ref := m[1]
			local := strings.HasPrefix(ref, "/") && !strings.HasPrefix(ref, "//")
			if !local && ref != "data:," {
				t.Errorf("reference=%v, want a same-origin path", ref)
			}
		}
		if strings.Contains(page, "url(") || strings.Contains(page, "@import") {
			t.Errorf("page has CSS url() or @import=%v, want none", true)
		}
	})

	t.Run("nothing inline", func(t *testing.T) {
		t.Parallel()
		for _, tag := range regexp.MustCompile(`<script\b[^>]*>`).FindAllString(page, -1) {
			if !strings.Contains(tag, ` src="`) {
				t.Errorf("script=%v, want a src (the CSP blocks inline scripts)", tag)
			}
		}
		for name, re := range map[string]string{
			"style element":   `<style\b`,
			"style attribute": `\sstyle\s*=`,
			"event handler":   `<[^>]*\son[a-z]+\s*=`,
			"javascript: URL": `javascript:`,
		} {
			if loc := regexp.MustCompile(re).FindStringIndex(page); loc != nil {
				t.Errorf("%s at %v, want none (the CSP blocks it)", name, page[loc[0]:min(loc[1]+40, len(page))])
			}
		}
	})

	t.Run("scripts in order", func(t *testing.T) {
		t.Parallel()
		cfg, app := strings.Index(page, `<script src="/config.js" defer>`), strings.Index(page, `<script type="module" src="/app.js">`)
		if cfg < 0 || app < 0 || cfg > app {
			t.Errorf("deferred config.js at %v and the app.js module at %v, want config.js first (both run in order once the page is parsed)", cfg, app)
		}
	})
}

// TestAppJSAPI checks that app.js defines every function of the
// window.latchkey API in the contract.
func TestAppJSAPI(t *testing.T) {
	t.Parallel()
	_, app := get(t, newHandler(t, testAPI), "GET", "/app.js", nil)
	if !strings.Contains(app, "window.latchkey = latchkey") {
		t.Errorf("window.latchkey assigned=%v, want true", false)
	}
	for _, fn := range []string{"login", "me", "logout", "sessions", "revoke", "revokeAll", "raw", "diagnose",
		"signup", "resend", "forgotPassword", "verifyEmail", "resetPassword", "changePassword"} {
		if !regexp.MustCompile(`\n\s+` + fn + `: guard\(` + fn + `\)`).MatchString(app) {
			t.Errorf("latchkey.%s defined=%v, want true", fn, false)
		}
	}
	if strings.Contains(app, "innerHTML") || strings.Contains(app, "insertAdjacentHTML") || strings.Contains(app, "document.write") {
		t.Errorf("app.js writes HTML=%v, want text only", true)
	}
}

// TestAppJSElements checks that every element app.js looks up by id is in
// index.html exactly once: a renamed id would fail only in a browser.
func TestAppJSElements(t *testing.T) {
	t.Parallel()
	h := newHandler(t, testAPI)
	_, app := get(t, h, "GET", "/app.js", nil)
	_, page := get(t, h, "GET", "/", nil)
	ids := regexp.MustCompile(`byId\('([a-z-]+)'\)`).FindAllStringSubmatch(app, -1)
	if len(ids) < 20 {
		t.Fatalf("byId lookups=%v, want the page's (at least 20)", len(ids))
	}
	for _, m := range ids {
		if n := strings.Count(page, ` id="`+m[1]+`"`); n != 1 {
			t.Errorf("elements with id %q=%v, want 1", m[1], n)
		}
	}
}

// TestAppJSClient checks that app.js calls Latchkey through the client
// (latchkey-client.js), with its logging fetch, and past it only in raw.
func TestAppJSClient(t *testing.T) {
	t.Parallel()
	h := newHandler(t, testAPI)
	_, app := get(t, h, "GET", "/app.js", nil)
	_, lib := get(t, h, "GET", "/latchkey-client.js", nil)
	m := regexp.MustCompile(`(?s)^(?:\s*//[^\n]*\n)*import \{([^}]*)\} from './latchkey-client\.js';`).FindStringSubmatch(app)
	if m == nil {
		t.Fatalf("app.js begins with an import from './latchkey-client.js'=%v, want true", false)
	}
	for name := range strings.FieldsFuncSeq(m[1], func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		if !strings.Contains(lib, "export class "+name+" ") && !strings.Contains(lib, "export function "+name+"(") {
			t.Errorf("latchkey-client.js exports %s=%v, want true", name, false)
		}
	}
	if strings.Contains(lib, "import ") || strings.Contains(lib, "require(") {
		t.Errorf("latchkey-client.js imports=%v, want none (the page loads it as it is)", true)
	}
	for _, want := range []string{
		`createClient({ baseUrl: api, fetch: logged })`,
		`client.login(username, password)`,
		`client.me()`,
		`client.logout()`,
		`client.sessions()`,
		`client.revokeSession(id)`,
		`client.logoutEverywhere()`,
		`client.doctor()`,
		`client.onChange(`,
		`client.signup(username, email, password)`,
		`client.verifyEmail(token)`,
		`client.resendVerification(email)`,
		`client.requestPasswordReset(email)`,
		`client.resetPassword(token, password)`,
		`client.changePassword(current, next)`,
		`tokenFromLocation()`,
	} {
		if !strings.Contains(app, want) {
			t.Errorf("app.js contains %q=%v, want true", want, false)
		}
	}
	// The one fetch of the page is the logging one, which the client and
	// raw share.
	if n := len(regexp.MustCompile(`\bfetch\(\w`).FindAllString(app, -1)); n != 1 || !strings.Contains(app, "res = await fetch(url, init);") {
		t.Errorf("app.js fetch( calls=%v, want the logging fetch's only", n)
	}
}

// TestAppJSDoctor checks the page against the doctor's contracts: the live
// check is the client's (sent like a login), and a login the client
// rejects with cookie-not-sent is shown with the problem's reasons and
// advice instead of a guess.
func TestAppJSDoctor(t *testing.T) {
	t.Parallel()
	_, app := get(t, newHandler(t, testAPI), "GET", "/app.js", nil)
	tests := []struct {
		name, want string
	}{
		{name: "live check through the client", want: `call('GET', '/doctor', () => client.doctor())`},
		{name: "receipt shown in the log", want: `new Headers(init.headers || {}).has('latchkey-receipt')`},
		{name: "problem class", want: `err instanceof CookieNotSentError`},
		{name: "problem reasons", want: `strings(err.reasons)`},
		{name: "problem advice", want: `'Fix: ' + err.advice`},
		{name: "verdict reasons", want: `strings(v.reasons)`},
		{name: "command", want: `'latchkey', 'doctor', '--tenants-file', 'tenants.yaml', '--tenant'`},
		{name: "command origin and API", want: `'--page-origin', window.location.origin, '--api', api`},
		{name: "failed fetch", want: `fetch() rejected with a TypeError`},
	}
	for _, tt := range tests {
		if !strings.Contains(app, tt.want) {
			t.Errorf("%s: app.js contains %q=%v, want true", tt.name, tt.want, false)
		}
	}
	// The guess the receipt replaces.
	if strings.Contains(app, "Usually third-party cookies are blocked") {
		t.Errorf("app.js guesses why the cookie was dropped=%v, want the cookie-not-sent problem instead", true)
	}
}
