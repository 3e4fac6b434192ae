package e2e

import (
	"fmt"
	neturl "net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// scenarioTimeout bounds each scenario, browser work included.
const scenarioTimeout = 60 * time.Second

// browser3PCPhaseout is a third browser: third-party cookies allowed by the
// preference, then blocked by the --test-third-party-cookie-phaseout
// switch, to show which mechanism takes effect.
const browser3PCPhaseout = "3pc-phaseout"

// cookieControls is the profile preference behind chrome://settings/cookies:
// 0 allows third-party cookies, 1 blocks them, 2 blocks them in Incognito
// only. This Chromium (156, headless) blocks them when the preference is
// unset, so the "allowed" browser must set it.
func cookieControls(mode int) map[string]any {
	return map[string]any{"profile": map[string]any{"cookie_controls_mode": mode}}
}

// browserSpecs are the browsers of the suite, by role.
func browserSpecs() map[string]browserSpec {
	return map[string]browserSpec{
		browser3PCAllowed: {Prefs: cookieControls(2)},
		browser3PCBlocked: {Prefs: cookieControls(1)},
		browser3PCPhaseout: {
			Prefs: cookieControls(2),
			Flags: map[string]any{"test-third-party-cookie-phaseout": true},
		},
	}
}

// callKind is what a scenario does in the page.
type callKind int

const (
	callLoginUI         callKind = iota // type into #username and #password, click #login
	callLogin                           // window.latchkey.login(user, password)
	callMe                              // window.latchkey.me()
	callLogout                          // window.latchkey.logout()
	callLoginTextPlain                  // raw POST /login, credentials include, Content-Type text/plain (a "simple" request)
	callLoginURLEncoded                 // raw POST /login, credentials include, a URLSearchParams body (form-encoded, "simple")
	callLoginSameOrigin                 // raw POST /login as JSON with credentials 'same-origin'
)

func (k callKind) request() (method, path string) {
	switch k {
	case callMe:
		return "GET", "/me"
	case callLogout:
		return "POST", "/logout"
	default:
		return "POST", "/login"
	}
}

func (k callKind) String() string {
	return [...]string{
		"login (form)", "latchkey.login", "latchkey.me", "latchkey.logout",
		"raw login text/plain", "raw login form-encoded", "raw login credentials:'same-origin'",
	}[k]
}

// expect is what a scenario must observe.
type expect struct {
	// Sent: the request reached Latchkey (DevTools saw the server's status).
	Sent bool
	// Preflight is the status of the CORS preflight, 0 when none must be
	// sent (simple requests and GETs).
	Preflight int
	// Status is what the page reads; 0 means fetch() rejected (blocked).
	Status int
	// Stored: the tenant's session cookie is in the jar afterwards.
	Stored bool
	// Partitioned: the stored cookie has a partition key (the page's site).
	Partitioned bool
	// BlockedBecause, when set, is a reason DevTools must give for not
	// storing the Set-Cookie (SetCookieBlockedReason).
	BlockedBecause string
	// Me is the status of me() afterwards as the page reads it, 0 blocked.
	Me int
	// SignedIn: #who shows "Signed in as <user>" after that me().
	SignedIn bool
	// Cleared: the jar held the cookie before the call and not after.
	Cleared bool
}

type scenario struct {
	name    string
	browser string
	page    string
	// setupPage, when set, is where the before calls run; the scenario
	// then opens page.
	setupPage string
	before    []callKind // calls that must succeed first (e.g. a login)
	call      callKind   // the call observed
	want      expect
	note      string
}

// loggedIn, loggedOut are the expectations of a working login and of
// the state after a logout or a refused login.
var (
	loggedIn  = expect{Sent: true, Preflight: 204, Status: 200, Stored: true, Me: 200, SignedIn: true}
	loggedOut = expect{Sent: true, Preflight: 204, Status: 204, Stored: false, Cleared: true, Me: 401, SignedIn: false}
)

func with(e expect, f func(*expect)) expect { f(&e); return e }

func scenarios() []scenario {
	partitioned := with(loggedIn, func(e *expect) { e.Partitioned = true })
	return []scenario{
		{
			name: "same-site Lax, host form", browser: browser3PCAllowed, page: pageAcme,
			call: callLoginUI, want: loggedIn,
			note: "first-party cookie: SameSite=Lax goes with same-site fetch()",
		},
		{
			name: "same-site Lax, host form, 3PC blocked", browser: browser3PCBlocked, page: pageAcme,
			call: callLoginUI, want: loggedIn,
			note: "blocking third-party cookies does not touch a same-site cookie",
		},
		{
			name: "cross-site None+Partitioned, path form, 3PC allowed", browser: browser3PCAllowed, page: pageBeta,
			call: callLoginUI, want: partitioned,
			note: "CHIPS cookie, keyed to the SPA's site",
		},
		{
			name: "cross-site None+Partitioned, path form, 3PC blocked", browser: browser3PCBlocked, page: pageBeta,
			call: callLoginUI, want: partitioned,
			note: "Partitioned survives the user's third-party cookie block",
		},
		{
			name: "cross-site None+Partitioned, path form, 3PC phase-out", browser: browser3PCPhaseout, page: pageBeta,
			call: callLoginUI, want: partitioned,
			note: "and the phase-out switch",
		},
		{
			name: "cross-site None unpartitioned, 3PC blocked", browser: browser3PCBlocked, page: pageGamma,
			call: callLogin,
			want: expect{Sent: true, Preflight: 204, Status: 200, Stored: false, BlockedBecause: "UserPreferences", Me: 401},
			note: "the silent failure: login reads 200, the browser drops Set-Cookie, me is 401",
		},
		{
			name: "cross-site None unpartitioned, 3PC phase-out", browser: browser3PCPhaseout, page: pageGamma,
			call: callLogin,
			want: expect{Sent: true, Preflight: 204, Status: 200, Stored: false, BlockedBecause: "ThirdPartyPhaseout", Me: 401},
			note: "same silent failure under the phase-out switch",
		},
		{
			name: "cross-site None unpartitioned, 3PC allowed (control)", browser: browser3PCAllowed, page: pageGamma,
			call: callLogin, want: loggedIn,
			note: "proves the block above comes from the third-party cookie setting",
		},
		{
			name: "logout, same-site Lax", browser: browser3PCAllowed, page: pageAcme,
			before: []callKind{callLogin}, call: callLogout, want: loggedOut,
			note: "Max-Age=0 clears the __Host- cookie",
		},
		{
			name: "logout, Partitioned, 3PC blocked", browser: browser3PCBlocked, page: pageBeta,
			before: []callKind{callLogin}, call: callLogout, want: loggedOut,
			note: "the clearing Set-Cookie must carry Partitioned to hit the partitioned cookie",
		},
		{
			name: "disallowed origin: login", browser: browser3PCAllowed, page: pageOther,
			call: callLogin,
			want: expect{Sent: false, Preflight: 403, Status: 0, Stored: false, Me: 0},
			note: "preflight refused, so the POST never leaves the browser; me unreadable",
		},
		{
			name: "disallowed origin: me of a signed-in user", browser: browser3PCAllowed, page: pageEvil,
			setupPage: pageGamma, before: []callKind{callLogin}, call: callMe,
			want: expect{Sent: true, Preflight: 0, Status: 0, Stored: true, Me: 0},
			note: "the cookie goes (3PC allowed, SameSite=None) and Latchkey answers, but without CORS headers the page cannot read it",
		},
		{
			name: "text-plain login, allowed page", browser: browser3PCAllowed, page: pageBeta,
			call: callLoginTextPlain, want: expect{Sent: true, Preflight: 0, Status: 415, Me: 401},
			note: "simple request, no preflight: refused 415",
		},
		{
			name: "form-encoded login, allowed page", browser: browser3PCAllowed, page: pageBeta,
			call: callLoginURLEncoded, want: expect{Sent: true, Preflight: 0, Status: 415, Me: 401},
			note: "simple request, no preflight: refused 415",
		},
		{
			name: "text-plain login, disallowed page", browser: browser3PCAllowed, page: pageOther,
			call: callLoginTextPlain, want: expect{Sent: true, Preflight: 0, Status: 0, Me: 0},
			note: "login CSRF attempt: delivered, refused 403 by the origin check, unreadable",
		},
		{
			name: "form-encoded login, disallowed page", browser: browser3PCAllowed, page: pageOther,
			call: callLoginURLEncoded, want: expect{Sent: true, Preflight: 0, Status: 0, Me: 0},
			note: "login CSRF attempt: delivered, refused 403 by the origin check, unreadable",
		},
		{
			name: "credentials same-origin login, same-site", browser: browser3PCAllowed, page: pageAcme,
			call: callLoginSameOrigin, want: expect{Sent: true, Preflight: 204, Status: 200, Me: 401},
			note: "200 and a readable body, but the browser ignores Set-Cookie without credentials:'include'",
		},
		{
			name: "credentials same-origin login, cross-site", browser: browser3PCAllowed, page: pageBeta,
			call: callLoginSameOrigin, want: expect{Sent: true, Preflight: 204, Status: 200, Me: 401},
			note: "same on the shared host",
		},
	}
}

// TestBrowser runs Latchkey as a process on Redis behind a TLS front and
// drives the example SPA in headless Chromium from several origins; see
// doc.go for what it proves.
func TestBrowser(t *testing.T) {
	start := time.Now()
	d := newDeployment(t, browserSpecs())
	t.Logf("Chromium: %s", d.Version)
	for _, role := range []string{browser3PCAllowed, browser3PCBlocked, browser3PCPhaseout} {
		b := d.Browsers[role]
		t.Logf("browser %s: pid %d, DevTools product %s", role, b.PID, b.Product)
	}
	for _, role := range []string{pageAcme, pageBeta, pageGamma, pageOther, pageEvil} {
		p := d.Pages[role]
		t.Logf("page %s → %s (tenant %s, SameSite=%s, Partitioned=%v, allows %v)",
			p.Origin, p.API, p.Tenant.ID, p.Tenant.SameSite, p.Tenant.Partitioned, p.Tenant.Origins)
	}
	dir := artifactsDir(t)
	sum := &summary{}
	t.Run("scenario", func(t *testing.T) {
		for i, sc := range scenarios() {
			t.Run(sc.name, func(t *testing.T) {
				t.Parallel()
				runScenario(t, d, sc, i, sum, dir)
			})
		}
		t.Run("log out everywhere", func(t *testing.T) {
			t.Parallel()
			runLogoutEverywhere(t, d, 1000, sum, dir)
		})
	})
	header := fmt.Sprintf("%s; %d browsers: %s (cookie_controls_mode 2), %s (cookie_controls_mode 1), %s (mode 2 plus --test-third-party-cookie-phaseout). Run %s, %s, suite %v.",
		d.Version, len(d.Browsers), browser3PCAllowed, browser3PCBlocked, browser3PCPhaseout, d.Run,
		time.Now().UTC().Format(time.RFC3339), time.Since(start).Round(100*time.Millisecond))
	sum.write(t, dir, header)
}

// do performs kind on the open page and returns what the page got.
func (x *tab) do(t testing.TB, kind callKind, user, password string) callResult {
	t.Helper()
	switch kind {
	case callLoginUI:
		return x.loginUI(t, user, password)
	case callLogin:
		return x.eval(t, fmt.Sprintf(`window.latchkey.login(%s, %s)`, jsString(user), jsString(password)))
	case callMe:
		return x.eval(t, `window.latchkey.me()`)
	case callLogout:
		return x.eval(t, `window.latchkey.logout()`)
	case callLoginTextPlain:
		return x.eval(t, fmt.Sprintf(`window.latchkey.raw("/login", {method: "POST", credentials: "include",
			headers: {"Content-Type": "text/plain"}, body: JSON.stringify({username: %s, password: %s})})`,
			jsString(user), jsString(password)))
	case callLoginURLEncoded:
		return x.eval(t, fmt.Sprintf(`window.latchkey.raw("/login", {method: "POST", credentials: "include",
			body: new URLSearchParams({username: %s, password: %s})})`, jsString(user), jsString(password)))
	case callLoginSameOrigin:
		return x.eval(t, fmt.Sprintf(`window.latchkey.raw("/login", {method: "POST", credentials: "same-origin",
			headers: {"Content-Type": "application/json"}, body: JSON.stringify({username: %s, password: %s})})`,
			jsString(user), jsString(password)))
	}
	t.Fatalf("unknown call %d", kind)
	return callResult{}
}

// loginUI logs in as a person would: types into the form and clicks the
// button, then reads the outcome from the call log (li.call data-status).
func (x *tab) loginUI(t testing.TB, user, password string) callResult {
	t.Helper()
	const count = `document.querySelectorAll('#log li.call[data-path="/login"]').length`
	n0, err := chromedp.Run(x.ctx, chromedp.Evaluate[int](count))
	if err != nil {
		t.Fatalf("count login calls: %v", err)
	}
	if err := chromedp.Do(x.ctx,
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login")),
	); err != nil {
		t.Fatalf("fill and submit the login form: %v", err)
	}
	for {
		n, err := chromedp.Run(x.ctx, chromedp.Evaluate[int](count))
		if err != nil {
			t.Fatalf("wait for the login call: %v", err)
		}
		if n > n0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	status, err := chromedp.Run(x.ctx, chromedp.Evaluate[string](`document.querySelector('#log li.call[data-path="/login"]').dataset.status`))
	if err != nil {
		t.Fatalf("login call status: %v", err)
	}
	if status == "blocked" {
		return callResult{Blocked: true, Error: "blocked (call log)"}
	}
	n, err := strconv.Atoi(status)
	if err != nil {
		t.Fatalf("login call data-status=%q, want a number or blocked", status)
	}
	return callResult{OK: n >= 200 && n < 300, Status: n}
}

// siteOf returns the schemeful site of an app host: https://acme-R.test.
func siteOf(host string) string {
	return "https://" + strings.TrimPrefix(host, "app.")
}

func runScenario(t testing.TB, d *deployment, sc scenario, order int, sum *summary, dir string) {
	start := time.Now()
	b := d.Browsers[sc.browser]
	p := d.Pages[sc.page]
	user := p.Tenant.Users[0].Name
	r := row{Order: order, Scenario: sc.name, Browser: sc.browser, Route: p.Origin + " → " + p.API, Note: sc.note}
	defer func() { r.Elapsed = time.Since(start); sum.add(r) }()
	t.Logf("scenario %q: %s on %s in %s", sc.name, sc.call, p.Origin, sc.browser)

	tab := b.newTab(t, fmt.Sprintf("s%02d", order), scenarioTimeout)
	t.Cleanup(func() {
		tab.screenshot(t, filepath.Join(dir, fileName(sc.name)+".png"))
		if t.Failed() {
			t.Logf("DevTools network log of the tab:\n%s", tab.net.dump())
		}
	})

	// Preconditions: a login (on setupPage, or on the page itself).
	setup := p
	if sc.setupPage != "" {
		setup = d.Pages[sc.setupPage]
		user = setup.Tenant.Users[0].Name
	}
	if len(sc.before) > 0 || sc.setupPage != "" {
		tab.open(t, setup.URL)
		for _, k := range sc.before {
			if res := tab.do(t, k, user, d.Password); !res.OK {
				t.Fatalf("precondition %s on %s: %s, want 2xx", k, setup.Origin, res.Outcome())
			}
		}
	}
	if sc.setupPage != "" || len(sc.before) == 0 {
		tab.open(t, p.URL)
	}

	jarBefore := len(tab.cookies(t, setup.Tenant.CookieName()))
	res := tab.do(t, sc.call, user, d.Password)
	method, path := sc.call.request()
	r.Cells = observe(t, d, tab, p, setup, user, method, path, res, jarBefore, sc.want)
	for i, c := range r.Cells {
		t.Logf("  (%d) %s", i+1, c)
	}
}

// observe gathers and checks the five observations of a call made on page
// p (after a possible login on setup); jarBefore is how many session
// cookies the jar held before the call.
func observe(t testing.TB, d *deployment, tab *tab, p, setup page, user, method, path string, res callResult, jarBefore int, want expect) [5]cell {
	t.Helper()
	var cells [5]cell
	url := p.API + path
	cookie := setup.Tenant.CookieName()

	// (1) Request sent: DevTools' view of the request and its preflight,
	// and the front's (what reached Latchkey from this tab).
	req, pre := tab.net.last(t, method, url)
	var parts []string
	gotPre := 0
	if pre != nil {
		gotPre = int(pre.RawStatus)
		parts = append(parts, fmt.Sprintf("preflight OPTIONS → %d", gotPre))
	} else {
		parts = append(parts, "no preflight")
	}
	sent := req != nil && req.HasRaw && req.RawStatus != 0
	switch {
	case sent:
		parts = append(parts, fmt.Sprintf("%s %s → %d at Latchkey", method, path, req.RawStatus))
	case req != nil:
		parts = append(parts, fmt.Sprintf("%s %s not sent", method, path))
	default:
		parts = append(parts, fmt.Sprintf("no %s %s in DevTools", method, path))
	}
	if req != nil && req.CORSError != "" {
		parts = append(parts, "CORS error "+req.CORSError)
	}
	ok := sent == want.Sent && gotPre == want.Preflight
	if sent != want.Sent {
		t.Errorf("(1) %s %s reached Latchkey=%v, want %v", method, path, sent, want.Sent)
	}
	if gotPre != want.Preflight {
		t.Errorf("(1) preflight status=%d, want %d (0: none)", gotPre, want.Preflight)
	}
	// The front's log must agree with DevTools.
	apiURL, err := neturl.Parse(p.API)
	if err != nil {
		t.Fatalf("page API %q: %v", p.API, err)
	}
	apiPath := apiURL.Path + path
	hits, preHits := d.Front.HitsOf(tab.tag, p.Origin, method, apiPath), d.Front.HitsOf(tab.tag, p.Origin, "OPTIONS", apiPath)
	frontSaw := fmt.Sprintf("front saw %d OPTIONS, %d %s from this page", len(preHits), len(hits), method)
	if n := len(hits); n > 0 {
		frontSaw += fmt.Sprintf(" (→ %d)", hits[n-1].Status)
	}
	parts = append(parts, frontSaw)
	if sent != (len(hits) > 0) || (sent && int64(hits[len(hits)-1].Status) != req.RawStatus) {
		ok = false
		t.Errorf("(1) front saw %s %s=%d times (last %+v), want it to agree with DevTools' sent=%v", method, apiPath, len(hits), hits, sent)
	}
	if (want.Preflight != 0) != (len(preHits) > 0) {
		ok = false
		t.Errorf("(1) front saw OPTIONS %s=%d times, want preflight %v", apiPath, len(preHits), want.Preflight != 0)
	}
	cells[0] = cell{OK: ok, Text: strings.Join(parts, "; ")}

	// (2) Response readable by the page.
	if want.Status == 0 {
		cells[1] = cell{OK: res.Blocked, Text: "page: " + res.Outcome()}
		if !res.Blocked {
			t.Errorf("(2) page read status=%d, want blocked", res.Status)
		}
	} else {
		cells[1] = cell{OK: !res.Blocked && res.Status == want.Status, Text: "page read " + res.Outcome()}
		if res.Blocked || res.Status != want.Status {
			t.Errorf("(2) page outcome=%s, want %d", res.Outcome(), want.Status)
		}
	}

	// (3) Cookie stored, from the browser's cookie jar, and what DevTools
	// says about the response's Set-Cookie lines.
	jar := tab.cookies(t, cookie)
	var why []string
	switch {
	case req == nil || !req.HasRaw:
		why = append(why, "no response")
	case len(req.SetCookies) == 0:
		why = append(why, "no Set-Cookie in the response")
	default:
		why = append(why, "Set-Cookie: "+strings.Join(req.SetCookies, " + "))
		for _, b := range req.BlockedSetCookies {
			why = append(why, "DevTools: blocked "+b)
		}
		if len(req.BlockedSetCookies) == 0 && len(jar) == 0 && jarBefore == 0 {
			why = append(why, "DevTools reports no blocked reason: dropped silently")
		}
	}
	switch {
	case want.Stored:
		ok := len(jar) == 1
		text := fmt.Sprintf("%d cookies named %s", len(jar), cookie)
		if ok {
			c := jar[0]
			text = describeCookie(c)
			wantSameSite := map[string]network.CookieSameSite{"lax": network.CookieSameSiteLax, "none": network.CookieSameSiteNone, "strict": network.CookieSameSiteStrict}[setup.Tenant.SameSite]
			if c.SameSite != wantSameSite || !c.Secure || !c.HTTPOnly {
				ok = false
				t.Errorf("(3) cookie SameSite=%s Secure=%v HttpOnly=%v, want %s true true", c.SameSite, c.Secure, c.HTTPOnly, wantSameSite)
			}
			switch {
			case want.Partitioned && (c.PartitionKey == nil || c.PartitionKey.TopLevelSite != siteOf(setup.Host)):
				ok = false
				t.Errorf("(3) cookie PartitionKey=%+v, want top-level site %s", c.PartitionKey, siteOf(setup.Host))
			case !want.Partitioned && c.PartitionKey != nil:
				ok = false
				t.Errorf("(3) cookie PartitionKey=%+v, want none", c.PartitionKey)
			}
		} else {
			t.Errorf("(3) cookies named %s in the jar=%d, want 1 (%s)", cookie, len(jar), strings.Join(why, "; "))
		}
		cells[2] = cell{OK: ok, Text: text}
	default:
		ok := len(jar) == 0
		text := "not stored"
		if want.Cleared {
			text = fmt.Sprintf("cleared: %d before, %d after", jarBefore, len(jar))
			if jarBefore != 1 {
				ok = false
				t.Errorf("(3) cookies before the call=%d, want 1 (nothing to clear)", jarBefore)
			}
		}
		text += " (" + strings.Join(why, "; ") + ")"
		if len(jar) != 0 {
			text = fmt.Sprintf("%d stored: %s", len(jar), describeCookie(jar[0]))
			t.Errorf("(3) cookies named %s in the jar=%d, want 0: %s", cookie, len(jar), text)
		}
		if want.BlockedBecause != "" && !strings.Contains(strings.Join(why, " "), want.BlockedBecause) {
			ok = false
			t.Errorf("(3) Set-Cookie blocked reasons=%v, want %s", why, want.BlockedBecause)
		}
		cells[2] = cell{OK: ok, Text: text}
	}

	// (4) Cookie sent on the next call: me(), and DevTools' associated
	// cookies of that request.
	me := tab.eval(t, `window.latchkey.me()`)
	meReq, _ := tab.net.last(t, "GET", p.API+"/me")
	cookieSent := meReq != nil && slices.Contains(meReq.SentCookies, cookie)
	text := fmt.Sprintf("me → page %s", me.Outcome())
	if meReq != nil && meReq.HasRaw {
		text += fmt.Sprintf(" (Latchkey %d)", meReq.RawStatus)
	}
	if cookieSent {
		text += "; cookie sent"
	} else {
		text += "; no cookie sent"
		if meReq != nil && len(meReq.NotSentCookies) > 0 {
			text += " (" + strings.Join(meReq.NotSentCookies, "; ") + ")"
		}
	}
	meOK := (want.Me == 0 && me.Blocked) || (want.Me != 0 && !me.Blocked && me.Status == want.Me)
	if !meOK {
		t.Errorf("(4) me outcome=%s, want %s", me.Outcome(), statusOrBlocked(want.Me))
	}
	if cookieSent != want.Stored {
		t.Errorf("(4) cookie sent with me=%v, want %v", cookieSent, want.Stored)
	}
	cells[3] = cell{OK: meOK && cookieSent == want.Stored, Text: text}

	// (5) The page shows the user.
	wantWho := "Not signed in"
	if want.SignedIn {
		wantWho = "Signed in as " + user
	}
	who := tab.who(t, wantWho)
	cells[4] = cell{OK: who == wantWho, Text: fmt.Sprintf("#who %q", who)}
	if who != wantWho {
		t.Errorf("(5) #who=%q, want %q", who, wantWho)
	}
	return cells
}

func statusOrBlocked(s int) string {
	if s == 0 {
		return "blocked"
	}
	return strconv.Itoa(s)
}

// runLogoutEverywhere signs one user in from two browser contexts (two
// incognito-like profiles of the 3PC-blocked browser, on the partitioned
// cross-site tenant), revokes all sessions from the first, and checks that
// the second's session is over although its cookie is still in its jar.
func runLogoutEverywhere(t testing.TB, d *deployment, order int, sum *summary, dir string) {
	start := time.Now()
	b := d.Browsers[browser3PCBlocked]
	p := d.Pages[pageBeta]
	user := p.Tenant.Users[1].Name
	cookie := p.Tenant.CookieName()
	r := row{Order: order, Scenario: "log out everywhere (two browser contexts)", Browser: browser3PCBlocked,
		Route: p.Origin + " → " + p.API, Note: "DELETE /sessions from context A ends context B's session server-side"}
	defer func() { r.Elapsed = time.Since(start); sum.add(r) }()
	t.Logf("scenario %q: %s in two browser contexts of %s", r.Scenario, p.Origin, b.Name)

	a, bb := b.newTab(t, "all-a", scenarioTimeout), b.newTab(t, "all-b", scenarioTimeout)
	t.Cleanup(func() {
		a.screenshot(t, filepath.Join(dir, "log_out_everywhere_a.png"))
		bb.screenshot(t, filepath.Join(dir, "log_out_everywhere_b.png"))
		if t.Failed() {
			t.Logf("DevTools network log of A:\n%s\nof B:\n%s", a.net.dump(), bb.net.dump())
		}
	})
	if a.bcid == bb.bcid || a.bcid == "" {
		t.Fatalf("browser contexts A=%q B=%q, want two distinct ones", a.bcid, bb.bcid)
	}
	for _, x := range []*tab{a, bb} {
		x.open(t, p.URL)
		if res := x.do(t, callLogin, user, d.Password); !res.OK {
			t.Fatalf("precondition: login=%s, want 200", res.Outcome())
		}
	}
	if res := bb.do(t, callMe, user, d.Password); res.Status != 200 {
		t.Fatalf("precondition: B me=%s, want 200", res.Outcome())
	}

	if n := len(a.cookies(t, cookie)); n != 1 {
		t.Fatalf("precondition: A's cookies=%d, want 1", n)
	}
	res := a.eval(t, `window.latchkey.revokeAll()`)
	req, _ := a.net.last(t, "DELETE", p.API+"/sessions")
	sent := req != nil && req.HasRaw && req.RawStatus == 204
	r.Cells[0] = cell{OK: sent, Text: fmt.Sprintf("A: DELETE /sessions → %d at Latchkey", rawStatus(req))}
	if !sent {
		t.Errorf("(1) DELETE /sessions status at Latchkey=%d, want 204", rawStatus(req))
	}
	r.Cells[1] = cell{OK: !res.Blocked && res.Status == 204, Text: "A: page read " + res.Outcome()}
	if res.Blocked || res.Status != 204 {
		t.Errorf("(2) revokeAll outcome=%s, want 204", res.Outcome())
	}

	jarA, jarB := a.cookies(t, cookie), bb.cookies(t, cookie)
	r.Cells[2] = cell{OK: len(jarA) == 0 && len(jarB) == 1,
		Text: fmt.Sprintf("A: %d cookies (cleared); B: %d (still holds its now-dead cookie)", len(jarA), len(jarB))}
	if len(jarA) != 0 {
		t.Errorf("(3) A's cookies=%d, want 0 (revokeAll clears the caller's cookie)", len(jarA))
	}
	if len(jarB) != 1 {
		t.Errorf("(3) B's cookies=%d, want 1 (nothing touches another browser's jar)", len(jarB))
	}

	me := bb.eval(t, `window.latchkey.me()`)
	meReq, _ := bb.net.last(t, "GET", p.API+"/me")
	cookieSent := meReq != nil && slices.Contains(meReq.SentCookies, cookie)
	r.Cells[3] = cell{OK: me.Status == 401 && cookieSent, Text: fmt.Sprintf("B: me → page %s with its cookie sent=%v", me.Outcome(), cookieSent)}
	if me.Blocked || me.Status != 401 {
		t.Errorf("(4) B me=%s, want 401", me.Outcome())
	}
	if !cookieSent {
		t.Errorf("(4) B sent its cookie=%v, want true (the session ended server-side)", cookieSent)
	}

	whoA, whoB := a.who(t, "Not signed in"), bb.who(t, "Not signed in")
	r.Cells[4] = cell{OK: whoA == "Not signed in" && whoB == "Not signed in", Text: fmt.Sprintf("A #who %q; B #who %q", whoA, whoB)}
	if whoA != "Not signed in" || whoB != "Not signed in" {
		t.Errorf("(5) #who A=%q B=%q, want %q", whoA, whoB, "Not signed in")
	}
	for i, c := range r.Cells {
		t.Logf("  (%d) %s", i+1, c)
	}
}

func rawStatus(r *netRequest) int64 {
	if r == nil {
		return 0
	}
	return r.RawStatus
}
