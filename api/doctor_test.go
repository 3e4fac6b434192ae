package api

// Black-box tests of the doctor at the edge: the login receipt and the
// cookie-not-sent problem it unlocks, and the live check in both forms.

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

const (
	uaChrome  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"
	uaFirefox = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
	uaSafari  = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Safari/605.1.15"

	// gammaApp is the one origin of gamma, a cross-site tenant on the
	// shared host whose cookie is SameSite=None without Partitioned.
	gammaApp = "https://app.gamma.example"
)

// doctorEnv is an env whose loopback peers are trusted proxies, so that
// X-Forwarded-Proto: https makes a request one that came over HTTPS, and
// with gamma besides acme and beta.
func doctorEnv(tb testing.TB) *env {
	tb.Helper()
	e := newEnv(tb, envOptions{token: adminToken, trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	g := session.Tenant{ID: "gamma", Name: "Gamma", Origins: []string{gammaApp},
		Cookie: session.CookiePolicy{SameSite: session.SameSiteNone}}
	if _, _, err := e.m.PutTenant(tb.Context(), g); err != nil {
		tb.Fatalf("PutTenant(gamma): %v", err)
	}
	e.addUser("gamma", "gail", alicePassword)
	e.reload()
	return e
}

// overHTTPS is the header of a request that a trusted proxy passed on
// from HTTPS, with more headers.
func overHTTPS(kv ...string) map[string]string {
	h := map[string]string{"X-Forwarded-Proto": "https"}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	return h
}

// loginReceipt logs user in on tenant (whose routes are under base) and
// returns the session cookie and the receipt.
func loginReceipt(tb testing.TB, e *env, tenant, base, host, origin, user, pw string) (*http.Cookie, string) {
	tb.Helper()
	r := e.do(req{method: "POST", path: base + "/login", host: host, origin: origin, header: overHTTPS(),
		json: map[string]string{"username": user, "password": pw}})
	if r.StatusCode != http.StatusOK {
		tb.Fatalf("login %s: status %d, body %s", user, r.StatusCode, r.body)
	}
	var v struct {
		User struct {
			Username string `json:"username"`
		} `json:"user"`
		Receipt string `json:"receipt"`
	}
	if err := json.Unmarshal(r.body, &v); err != nil || v.Receipt == "" || v.User.Username != user {
		tb.Fatalf("login %s: body %s (%v), want the session view and a receipt", user, r.body, err)
	}
	c := r.cookie("__Host-latchkey-" + tenant)
	if c == nil {
		tb.Fatalf("login %s: no session cookie", user)
	}
	return c, v.Receipt
}

// problemBody is a problem with its cookie-not-sent members.
type problemBody struct {
	Type    string   `json:"type"`
	Status  int      `json:"status"`
	Detail  string   `json:"detail"`
	Browser string   `json:"browser"`
	Reasons []string `json:"reasons"`
	Advice  string   `json:"advice"`
}

func answerProblem(tb testing.TB, r res) problemBody {
	tb.Helper()
	var p problemBody
	if err := json.Unmarshal(r.body, &p); err != nil {
		tb.Fatalf("problem body %s: %v", r.body, err)
	}
	p.Type = strings.TrimPrefix(p.Type, problemTypePrefix)
	return p
}

// TestReceiptTellsADroppedCookie: a request without the cookie but with
// its login's receipt gets cookie-not-sent; every other combination
// (a cookie, even an invalid one; no receipt; an expired, foreign or
// tampered one) gets the usual unauthenticated; and a receipt never opens
// a session, on any session route.
func TestReceiptTellsADroppedCookie(t *testing.T) {
	t.Parallel()
	e := doctorEnv(t)
	cookie, receipt := loginReceipt(t, e, "acme", "/v1", acmeHost, acmeApp, "alice", alicePassword)
	_, betaReceipt := loginReceipt(t, e, "beta", "/v1/t/beta", "", betaDev, "bob", bobPassword)
	me := func(cookies []*http.Cookie, receipt string) res {
		t.Helper()
		h := overHTTPS("User-Agent", uaChrome)
		if receipt != "" {
			h["Latchkey-Receipt"] = receipt
		}
		return e.do(req{method: "GET", path: "/v1/me", host: acmeHost, origin: acmeApp, cookies: cookies, header: h})
	}
	if r := me(nil, receipt); r.StatusCode != http.StatusUnauthorized || r.problemType() != "cookie-not-sent" {
		t.Fatalf("me with the receipt and no cookie: %d %s, want 401 cookie-not-sent; body %s", r.StatusCode, r.problemType(), r.body)
	} else {
		corsHdrWantGrant(t, r, acmeApp)
	}
	if r := me([]*http.Cookie{cookie}, receipt); r.StatusCode != http.StatusOK {
		t.Errorf("me with the cookie and the receipt: %d, want 200", r.StatusCode)
	}
	tampered := receipt[:len(receipt)-4] + "AAA="
	if tampered == receipt {
		tampered = receipt[:len(receipt)-4] + "BBB="
	}
	for _, c := range []struct {
		name    string
		cookies []*http.Cookie
		receipt string
	}{
		{"no receipt", nil, ""},
		{"an invalid cookie", []*http.Cookie{{Name: "__Host-latchkey-acme", Value: "not-a-session"}}, receipt},
		{"another tenant's receipt", nil, betaReceipt},
		{"a tampered receipt", nil, tampered},
		{"an oversized receipt", nil, receipt + strings.Repeat("A", session.MaxReceiptLen)},
		{"the receipt as the cookie", []*http.Cookie{{Name: "__Host-latchkey-acme", Value: receipt}}, ""},
		{"the receipt as the cookie and the header", []*http.Cookie{{Name: "__Host-latchkey-acme", Value: receipt}}, receipt},
	} {
		if r := me(c.cookies, c.receipt); r.StatusCode != http.StatusUnauthorized || r.problemType() != "unauthenticated" {
			t.Errorf("me with %s: %d %s, want 401 unauthenticated", c.name, r.StatusCode, r.problemType())
		}
	}
	// A receipt opens no session route, whatever the method.
	for _, q := range []req{
		{method: "GET", path: "/v1/sessions"},
		{method: "DELETE", path: "/v1/sessions"},
		{method: "DELETE", path: "/v1/sessions/" + corsSessionID},
	} {
		q.host, q.origin, q.header = acmeHost, acmeApp, overHTTPS("Latchkey-Receipt", receipt)
		if r := e.do(q); r.StatusCode != http.StatusUnauthorized || r.problemType() != "cookie-not-sent" {
			t.Errorf("%s %s with only the receipt: %d %s, want 401 cookie-not-sent", q.method, q.path, r.StatusCode, r.problemType())
		}
	}
	if r := me([]*http.Cookie{cookie}, ""); r.StatusCode != http.StatusOK {
		t.Errorf("me after the receipt's calls: %d, want 200 (the session is untouched)", r.StatusCode)
	}
	e.clock.Advance(session.ReceiptLifetime + time.Second)
	if r := me(nil, receipt); r.StatusCode != http.StatusUnauthorized || r.problemType() != "unauthenticated" {
		t.Errorf("me with an expired receipt: %d %s, want 401 unauthenticated", r.StatusCode, r.problemType())
	}
}

// TestCookieNotSentDiagnosis: the problem's detail, browser, reasons and
// advice are the doctor's for the request's page, the API as it was
// called and the User-Agent's family; CredentialsNotIncluded when the
// doctor predicts that the cookie sticks. The metric counts each by its
// first reason.
func TestCookieNotSentDiagnosis(t *testing.T) {
	t.Parallel()
	e := doctorEnv(t)
	_, acmeR := loginReceipt(t, e, "acme", "/v1", acmeHost, acmeApp, "alice", alicePassword)
	_, gammaR := loginReceipt(t, e, "gamma", "/v1/t/gamma", "", gammaApp, "gail", alicePassword)
	_, betaR := loginReceipt(t, e, "beta", "/v1/t/beta", "", betaDev, "bob", bobPassword)
	cases := []struct {
		name              string
		path, host        string
		origin, ua        string
		https             bool
		receipt           string
		browser           string
		reasons           []string
		inDetail          []string
		adviceMentions    string
		wantMetricTenant  string
		wantMetricReasons string
	}{
		{name: "Chrome, cross-site None tenant", path: "/v1/t/gamma/me", origin: gammaApp, ua: uaChrome, https: true, receipt: gammaR,
			browser: "chrome", reasons: []string{session.ReasonUserPreferences, session.ReasonThirdPartyPhaseout},
			inDetail:       []string{gammaApp, "https://" + sharedHost + "/v1/t/gamma", "Chrome with third-party cookies blocked", "UserPreferences"},
			adviceMentions: "third-party cookies"},
		{name: "Firefox, cross-site None tenant", path: "/v1/t/gamma/me", origin: gammaApp, ua: uaFirefox, https: true, receipt: gammaR,
			browser: "firefox", reasons: []string{session.ReasonUserPreferences},
			inDetail: []string{"Firefox blocking cross-site cookies"}, adviceMentions: "third-party cookies"},
		{name: "Safari, cross-site None tenant", path: "/v1/t/gamma/me", origin: gammaApp, ua: uaSafari, https: true, receipt: gammaR,
			browser: "safari", reasons: []string{session.ReasonThirdPartyBlocked},
			inDetail: []string{"Safari does not keep or send it"}, adviceMentions: "partitioned"},
		{name: "Chrome, same-site Lax tenant: works, so no credentials", path: "/v1/me", host: acmeHost, origin: acmeApp, ua: uaChrome, https: true, receipt: acmeR,
			browser: "chrome", reasons: []string{session.ReasonCredentialsNotIncluded},
			inDetail:       []string{"Chrome keeps it", acmeApp, "https://" + acmeHost + "/v1", "credentials: 'include'", "privacy setting or an extension"},
			adviceMentions: "credentials: 'include'"},
		{name: "no Origin: the API's own origin", path: "/v1/me", host: acmeHost, ua: uaChrome, https: true, receipt: acmeR,
			browser: "chrome", reasons: []string{session.ReasonCredentialsNotIncluded},
			inDetail: []string{"page on https://" + acmeHost + " calling"}, adviceMentions: "credentials: 'include'"},
		{name: "a Secure cookie over plain HTTP", path: "/v1/t/beta/me", origin: betaDev, ua: uaChrome, receipt: betaR,
			browser: "chrome", reasons: []string{session.ReasonSecureOnly},
			inDetail: []string{"http://" + sharedHost + "/v1/t/beta", "SecureOnly"}, adviceMentions: "HTTPS"},
		{name: "unknown browser", path: "/v1/t/gamma/me", origin: gammaApp, ua: "curl/8.0", https: true, receipt: gammaR,
			browser: "unknown", reasons: []string{session.ReasonUserPreferences, session.ReasonThirdPartyPhaseout},
			inDetail: []string{"Chrome with third-party cookies blocked"}, adviceMentions: "third-party cookies"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{"User-Agent": c.ua, "Latchkey-Receipt": c.receipt}
			if c.https {
				h["X-Forwarded-Proto"] = "https"
			}
			r := corsEnvFor(t, e).do(req{method: "GET", path: c.path, host: c.host, origin: c.origin, header: h})
			p := answerProblem(t, r)
			if r.StatusCode != http.StatusUnauthorized || p.Type != "cookie-not-sent" || p.Status != 401 {
				t.Fatalf("status %d, type %s; want 401 cookie-not-sent; body %s", r.StatusCode, p.Type, r.body)
			}
			if p.Browser != c.browser || !slices.Equal(p.Reasons, c.reasons) {
				t.Errorf("browser=%q reasons=%q, want %q %q", p.Browser, p.Reasons, c.browser, c.reasons)
			}
			for _, want := range c.inDetail {
				if !strings.Contains(p.Detail, want) {
					t.Errorf("detail %q lacks %q", p.Detail, want)
				}
			}
			if !strings.Contains(p.Advice, c.adviceMentions) {
				t.Errorf("advice %q lacks %q", p.Advice, c.adviceMentions)
			}
			if n := strings.Count(p.Detail, ". ") + 1; n > 2 {
				t.Errorf("detail has %d sentences, want one or two: %q", n, p.Detail)
			}
			for _, secret := range []string{"alice", "gail", "bob", c.receipt} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("the problem names %q", secret)
				}
			}
		})
	}
	body := string(e.do(req{admin: true, method: "GET", path: "/metrics", token: adminToken}).body)
	for _, want := range []string{
		`latchkey_cookie_not_sent_total{reason="UserPreferences",tenant="gamma"} 3`,
		`latchkey_cookie_not_sent_total{reason="ThirdPartyCookiesBlocked",tenant="gamma"} 1`,
		`latchkey_cookie_not_sent_total{reason="CredentialsNotIncluded",tenant="acme"} 2`,
		`latchkey_cookie_not_sent_total{reason="SecureOnly",tenant="beta"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestDoctorLive: the live check, in both forms, from a listed origin
// (readable with credentials, what Latchkey saw, the doctor's verdicts for
// the family), with and without a valid cookie, which it only reads; and
// from a foreign origin, the same 403 as every route, without CORS.
func TestDoctorLive(t *testing.T) {
	t.Parallel()
	e := doctorEnv(t)
	acmeCookie, _ := loginReceipt(t, e, "acme", "/v1", acmeHost, acmeApp, "alice", alicePassword)
	gammaCookie, _ := loginReceipt(t, e, "gamma", "/v1/t/gamma", "", gammaApp, "gail", alicePassword)
	cases := []struct {
		name     string
		path     string
		host     string
		origin   string
		ua       string
		cookies  []*http.Cookie
		want     doctorLive
		profiles []string
		works    []bool
	}{
		{name: "host form, valid cookie", path: "/v1/doctor", host: acmeHost, origin: acmeApp, ua: uaFirefox, cookies: []*http.Cookie{acmeCookie},
			want:     doctorLive{Origin: acmeApp, OriginListed: true, SecFetchSite: "same-site", SecFetchMode: "cors", CookiePresent: true, SessionValid: true, BrowserFamily: "firefox", SiteRelation: "same-site"},
			profiles: []string{"firefox", "firefox-strict"}, works: []bool{true, true}},
		{name: "host form, no cookie", path: "/v1/doctor", host: acmeHost, origin: acmeAdmin, ua: uaSafari,
			want:     doctorLive{Origin: acmeAdmin, OriginListed: true, SecFetchSite: "same-site", SecFetchMode: "cors", BrowserFamily: "safari", SiteRelation: "same-site"},
			profiles: []string{"safari", "safari-no-chips"}, works: []bool{true, true}},
		{name: "host form, an ended session's cookie", path: "/v1/doctor", host: acmeHost, origin: acmeApp, ua: uaChrome,
			cookies:  []*http.Cookie{{Name: "__Host-latchkey-acme", Value: "not-a-session"}},
			want:     doctorLive{Origin: acmeApp, OriginListed: true, SecFetchSite: "same-site", SecFetchMode: "cors", CookiePresent: true, BrowserFamily: "chrome", SiteRelation: "same-site"},
			profiles: []string{"chrome", "chrome-3pc-blocked"}, works: []bool{true, true}},
		{name: "path form, valid cookie", path: "/v1/t/gamma/doctor", origin: gammaApp, ua: uaChrome, cookies: []*http.Cookie{gammaCookie},
			want:     doctorLive{Origin: gammaApp, OriginListed: true, SecFetchSite: "same-site", SecFetchMode: "cors", CookiePresent: true, SessionValid: true, BrowserFamily: "chrome", SiteRelation: "cross-site"},
			profiles: []string{"chrome", "chrome-3pc-blocked"}, works: []bool{true, false}},
		{name: "path form, unknown browser", path: "/v1/t/gamma/doctor", origin: gammaApp, ua: "curl/8.0",
			want:     doctorLive{Origin: gammaApp, OriginListed: true, SecFetchSite: "same-site", SecFetchMode: "cors", BrowserFamily: "unknown", SiteRelation: "cross-site"},
			profiles: session.DoctorProfiles, works: []bool{true, false, true, false, false, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := overHTTPS("User-Agent", c.ua, "Sec-Fetch-Site", c.want.SecFetchSite, "Sec-Fetch-Mode", c.want.SecFetchMode)
			r := corsEnvFor(t, e).do(req{method: "GET", path: c.path, host: c.host, origin: c.origin, cookies: c.cookies, header: h})
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", r.StatusCode, r.body)
			}
			corsHdrWantGrant(t, r, c.origin)
			corsWantNoSetCookie(t, r)
			var got doctorLive
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			results := got.Results
			got.Results = nil
			if got.Origin != c.want.Origin || got.OriginListed != c.want.OriginListed || got.SecFetchSite != c.want.SecFetchSite ||
				got.SecFetchMode != c.want.SecFetchMode || got.CookiePresent != c.want.CookiePresent || got.SessionValid != c.want.SessionValid ||
				got.BrowserFamily != c.want.BrowserFamily || got.SiteRelation != c.want.SiteRelation {
				t.Errorf("answer %+v, want %+v", got, c.want)
			}
			var profiles []string
			var works []bool
			for _, v := range results {
				profiles = append(profiles, v.Browser)
				works = append(works, v.Works)
			}
			if !slices.Equal(profiles, c.profiles) || !slices.Equal(works, c.works) {
				t.Errorf("results %v works %v, want %v %v", profiles, works, c.profiles, c.works)
			}
			for _, secret := range []string{"alice", "gail", acmeCookie.Value, gammaCookie.Value} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("the live check names %q", secret)
				}
			}
		})
	}

	// Reading the session leaves it as it was: past refreshAfter, a me
	// would have slid its idle expiry; the live check does not.
	acme, err := e.m.GetTenant(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	before, err := e.m.Sessions(t.Context(), &acme, "alice")
	if err != nil || len(before) != 1 {
		t.Fatalf("alice's sessions: %v, %v", before, err)
	}
	e.clock.Advance(10 * time.Minute)
	if r := e.do(req{method: "GET", path: "/v1/doctor", host: acmeHost, origin: acmeApp, cookies: []*http.Cookie{acmeCookie}}); r.StatusCode != http.StatusOK {
		t.Fatalf("live check: %d", r.StatusCode)
	}
	after, err := e.m.Sessions(t.Context(), &acme, "alice")
	if err != nil || len(after) != 1 || !after[0].LastSeenAt.Equal(before[0].LastSeenAt) {
		t.Errorf("alice's session after the live check: %+v (%v), want LastSeenAt unchanged %v", after, err, before[0].LastSeenAt)
	}

	// A foreign origin, in both forms: the same 403 as every route,
	// readable by nobody, naming the origin.
	for _, q := range []req{
		{method: "GET", path: "/v1/doctor", host: acmeHost, origin: corsEvil, cookies: []*http.Cookie{acmeCookie}},
		{method: "GET", path: "/v1/doctor", host: acmeHost, origin: betaDev},
		{method: "GET", path: "/v1/t/gamma/doctor", origin: corsEvil, cookies: []*http.Cookie{gammaCookie}},
		{method: "GET", path: "/v1/t/gamma/doctor", origin: acmeApp},
	} {
		r := e.do(q)
		if r.StatusCode != http.StatusForbidden || r.problemType() != "forbidden-origin" {
			t.Errorf("%s from %s: %d %s, want 403 forbidden-origin", q.path, q.origin, r.StatusCode, r.problemType())
		}
		corsHdrWantNoGrant(t, r)
		corsWantNoSetCookie(t, r)
		if p := answerProblem(t, r); !strings.Contains(p.Detail, q.origin) {
			t.Errorf("%s from %s: detail %q does not name the origin", q.path, q.origin, p.Detail)
		}
	}
	// A preflight of the live check from a listed origin passes.
	r := e.do(req{method: "OPTIONS", path: "/v1/t/gamma/doctor", origin: gammaApp,
		header: map[string]string{corsHdrACRM: "GET", corsHdrACRH: "latchkey-receipt"}})
	if r.StatusCode != http.StatusNoContent || !corsHdrHasToken(r.Header, corsHdrACAH, "latchkey-receipt") {
		t.Errorf("preflight of doctor: %d, ACAH %q; want 204 covering latchkey-receipt", r.StatusCode, r.Header.Values(corsHdrACAH))
	}
}

// TestDoctorLiveBoundsInput: what the live check repeats is bounded, and
// an Origin it cannot diagnose (only a non-browser client sends one that
// passes the origin check) is a 400.
func TestDoctorLiveBoundsInput(t *testing.T) {
	t.Parallel()
	e := doctorEnv(t)
	long := strings.Repeat("x", 500)
	r := e.do(req{method: "GET", path: "/v1/doctor", host: acmeHost, origin: acmeApp,
		header: map[string]string{"Sec-Fetch-Site": "same-site" + long, "Sec-Fetch-Mode": long, "User-Agent": long}})
	var got doctorLive
	if err := json.Unmarshal(r.body, &got); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s (%v)", r.StatusCode, r.body, err)
	}
	if len(got.SecFetchSite) != maxEchoedHeader || len(got.SecFetchMode) != maxEchoedHeader {
		t.Errorf("echoed %d and %d bytes of Sec-Fetch-Site and -Mode, want %d each", len(got.SecFetchSite), len(got.SecFetchMode), maxEchoedHeader)
	}
	for _, origin := range []string{"chrome-extension://abcdef", "https://" + strings.Repeat("a", maxDoctorHeader) + ".example"} {
		r := e.do(req{method: "GET", path: "/v1/doctor", host: acmeHost, origin: origin, header: map[string]string{"Sec-Fetch-Site": "none"}})
		if r.StatusCode != http.StatusBadRequest || r.problemType() != "bad-request" || len(r.body) > 1024 {
			t.Errorf("Origin of %d bytes: %d %s (%d bytes), want a short 400 bad-request", len(origin), r.StatusCode, r.problemType(), len(r.body))
		}
	}
}

// TestDoctorLiveBehindAnUntrustedProxy: a TLS proxy that Latchkey does not
// trust (or that sends no X-Forwarded-Proto) hands it plain HTTP, but an
// https page's fetch of a host that is not loopback went over HTTPS (the
// browser fetches no plain http from it: mixed content), so the doctor
// judges the API as https, never as blocked mixed content.
func TestDoctorLiveBehindAnUntrustedProxy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{}) // no trusted proxy
	r := e.do(req{method: "GET", path: "/v1/doctor", host: acmeHost, origin: acmeApp, header: map[string]string{"User-Agent": uaChrome}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d; body %s", r.StatusCode, r.body)
	}
	var got doctorLive
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.SiteRelation != "same-site" || len(got.Results) != 2 || !got.Results[0].Works || !got.Results[1].Works {
		t.Errorf("behind an untrusted TLS proxy: %+v, want same-site and working in both Chrome profiles", got)
	}
}
