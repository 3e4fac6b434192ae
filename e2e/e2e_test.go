package e2e

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scenarioTimeout bounds each scenario, browser work included.
const scenarioTimeout = 90 * time.Second

// parallelEnv, set to 1, runs the engines at once instead of one after
// another. Either way at most -parallel scenarios run at a time, so all it
// overlaps is the engines' start-ups and tails; on two cores one engine
// at a time is the steadier choice.
const parallelEnv = "LATCHKEY_E2E_PARALLEL"

// scenarioParallel is how many scenarios run at once when -parallel is
// not given: they spend their time waiting for browsers, not on a CPU.
const scenarioParallel = 6

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(scenarioParallel))
	}
	os.Exit(m.Run())
}

// callKind is what a scenario does in the page.
type callKind int

const (
	callLoginUI         callKind = iota // type into #username and #password, click #login
	callLogin                           // window.latchkey.login(user, password): the client's, confirmed by a me; the POST's result
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

type scenario struct {
	ID    string // as the expectation table names it
	Title string
	page  string
	// setupPage, when set, is where the before calls run; the scenario
	// then opens page.
	setupPage string
	before    []callKind // calls that must succeed first (e.g. a login)
	call      callKind   // the call observed
	// everywhere: log out everywhere across two browser contexts, which
	// runLogoutEverywhere does instead.
	everywhere bool
	note       string
}

// Policy is the tenant cookie policy the scenario exercises.
func (sc scenario) Policy(d *deployment) string {
	p := d.Pages[sc.page]
	if sc.setupPage != "" {
		p = d.Pages[sc.setupPage]
	}
	return policyOf(p.Tenant)
}

// Tenant cookie policies, as the expectation table and the docs name them.
const (
	policyHostLax         = "host-lax"         // own hostname on the SPA's site, SameSite=Lax
	policyNonePartitioned = "none-partitioned" // shared host (path form), SameSite=None; Partitioned
	policyNone            = "none"             // shared host, SameSite=None, not partitioned
	policyLaxCrossSite    = "lax-cross-site"   // shared host, SameSite=Lax
)

func policyOf(tc tenantConfig) string {
	switch {
	case len(tc.Hostnames) > 0 && tc.SameSite == "lax":
		return policyHostLax
	case tc.SameSite == "none" && tc.Partitioned:
		return policyNonePartitioned
	case tc.SameSite == "none":
		return policyNone
	case tc.SameSite == "lax":
		return policyLaxCrossSite
	}
	return "other"
}

// scenarios are what runs in every engine profile. What each observes
// there is in the expectation table (expectations.txt), not here.
func scenarios() []scenario {
	return []scenario{
		{ID: "login-host-lax", Title: "same-site Lax, host form: login", page: pageAcme, call: callLoginUI,
			note: "first-party cookie: SameSite=Lax goes with same-site fetch()"},
		{ID: "login-none-partitioned", Title: "cross-site None+Partitioned, path form: login", page: pageBeta, call: callLoginUI,
			note: "CHIPS cookie, keyed to the SPA's site"},
		{ID: "login-none", Title: "cross-site None unpartitioned, path form: login", page: pageGamma, call: callLoginUI,
			note: "a third-party cookie: kept only where those are allowed (or partitioned by the engine)"},
		{ID: "login-lax-cross-site", Title: "cross-site Lax, path form: login", page: pageDelta, call: callLoginUI,
			note: "a Lax cookie is neither stored from nor sent with a cross-site fetch"},
		{ID: "logout-host-lax", Title: "logout, same-site Lax", page: pageAcme, before: []callKind{callLogin}, call: callLogout,
			note: "Max-Age=0 clears the __Host- cookie"},
		{ID: "logout-none-partitioned", Title: "logout, None+Partitioned", page: pageBeta, before: []callKind{callLogin}, call: callLogout,
			note: "the clearing Set-Cookie must carry Partitioned to hit the partitioned cookie"},
		{ID: "disallowed-login", Title: "disallowed origin: login", page: pageOther, call: callLogin,
			note: "preflight refused, so the POST never leaves the browser; me unreadable"},
		{ID: "disallowed-me", Title: "disallowed origin: me of a signed-in user", page: pageEvil,
			setupPage: pageGamma, before: []callKind{callLogin}, call: callMe,
			note: "where the cookie goes, Latchkey answers, but without CORS headers the page cannot read it"},
		{ID: "text-plain-login", Title: "text/plain login, allowed page", page: pageBeta, call: callLoginTextPlain,
			note: "simple request, no preflight: refused 415"},
		{ID: "form-login", Title: "form-encoded login, allowed page", page: pageBeta, call: callLoginURLEncoded,
			note: "simple request, no preflight: refused 415"},
		{ID: "text-plain-login-disallowed", Title: "text/plain login, disallowed page", page: pageOther, call: callLoginTextPlain,
			note: "login CSRF attempt: delivered, refused 403 by the origin check, unreadable"},
		{ID: "form-login-disallowed", Title: "form-encoded login, disallowed page", page: pageOther, call: callLoginURLEncoded,
			note: "login CSRF attempt: delivered, refused 403 by the origin check, unreadable"},
		{ID: "same-origin-credentials-same-site", Title: "credentials 'same-origin' login, same-site", page: pageAcme, call: callLoginSameOrigin,
			note: "200 and a readable body, but the browser ignores Set-Cookie without credentials:'include'"},
		{ID: "same-origin-credentials-cross-site", Title: "credentials 'same-origin' login, cross-site", page: pageBeta, call: callLoginSameOrigin,
			note: "same on the shared host"},
		{ID: "everywhere-none-partitioned", Title: "log out everywhere, two browser contexts, None+Partitioned", page: pageBeta, everywhere: true,
			note: "DELETE /sessions from context A ends context B's session server-side"},
		{ID: "everywhere-host-lax", Title: "log out everywhere, two browser contexts, same-site Lax", page: pageAcme, everywhere: true,
			note: "the same on the tenant's own hostname"},
	}
}

// TestBrowser runs Latchkey as a process on Redis behind a TLS front and
// drives the example SPA from several origins in every engine profile;
// see doc.go for what it proves. Each engine is a subtest of its own
// (TestBrowser/engine/chromium, …/firefox, …/webkit) on the one
// deployment, one after another unless LATCHKEY_E2E_PARALLEL=1, and each
// scenario in each of its profiles a subtest of that
// (…/chromium/chromium/3pc-blocked/login-none), run in parallel.
func TestBrowser(t *testing.T) {
	start := time.Now()
	d := newDeployment(t)
	for _, role := range []string{pageAcme, pageBeta, pageGamma, pageDelta, pageOther, pageEvil} {
		p := d.Pages[role]
		t.Logf("page %s → %s (tenant %s, policy %s, allows %v)", p.Origin, p.API, p.Tenant.ID, policyOf(p.Tenant), p.Tenant.Origins)
	}
	table := loadExpectations(t)
	dir := artifactsDir(t, "e2e")
	m := &matrix{versions: make(map[string]string)}
	parallel := os.Getenv(parallelEnv) == "1"
	t.Run("engine", func(t *testing.T) {
		for _, e := range engines() {
			t.Run(e.Name, func(t *testing.T) {
				if parallel {
					t.Parallel()
				}
				set := e.Start(t, d, profilesOf(e.Name))
				m.setVersion(e.Name, set.Version)
				t.Logf("%s: %s", e.Name, set.Version)
				for _, p := range profilesOf(e.Name) {
					newTab := set.Tabs[p.Name]
					if err := os.MkdirAll(filepath.Join(dir, fileName(p.Name)), 0o755); err != nil {
						t.Fatal(err)
					}
					for i, sc := range scenarios() {
						t.Run(p.Name+"/"+sc.ID, func(t *testing.T) {
							t.Parallel()
							var r result
							defer func() { m.add(r) }() // also when it ends early
							runInProfile(t, d, p, newTab, sc, i, dir, table, &r)
						})
					}
				}
			})
		}
	})
	m.write(t, d, dir, table, time.Since(start))
}

// runInProfile runs sc in profile p, again in a fresh tab when Latchkey
// sheds load, fills r with what it observed, as far as it got, and checks
// that against the table.
func runInProfile(t *testing.T, d *deployment, p profile, newTab func(testing.TB, string, time.Duration) browserTab, sc scenario, order int, dir string, table *expectations, r *result) {
	start := time.Now()
	pg := d.Pages[sc.page]
	*r = result{Order: order, Scenario: sc, Profile: p, Policy: sc.Policy(d), Route: pg.Origin + " → " + pg.API}
	defer func() { r.Elapsed, r.Failed = time.Since(start), t.Failed() }()
	for attempt := 1; ; attempt++ {
		r.Obs = [5]observation{}
		runScenario(t, d, p, newTab, sc, r, dir, attempt)
		shed, ok := d.Front.Shed(attemptTag(p, order, attempt))
		if !ok {
			break
		}
		// A 503 is Latchkey shedding load (hashing memory, or a Redis
		// slower than its timeouts on a busy machine), no browser's doing,
		// and its Retry-After says to try again.
		r.Retries = append(r.Retries, fmt.Sprintf("%s %s → 503 (%s)", shed.Method, shed.Path, shed.Problem))
		if attempt == 3 {
			t.Errorf("Latchkey shed load in %d attempts: %v", attempt, r.Retries)
			return
		}
		t.Logf("Latchkey shed load (%s %s → 503: %s); the scenario again, in a fresh tab", shed.Method, shed.Path, shed.Problem)
	}
	table.check(t, *r)
}

// observation is one of the five observations of a scenario: the token
// the expectation table holds, and what was seen, in words.
type observation struct {
	Token string
	Text  string
}

// result is what one scenario observed in one engine profile.
type result struct {
	Order    int
	Scenario scenario
	Profile  profile
	Policy   string
	Route    string // page origin → API
	Obs      [5]observation
	Elapsed  time.Duration
	Failed   bool
	// Retries are the 503s that made the scenario run again.
	Retries []string
}

// callResult is what every window.latchkey function resolves to: the
// exchange of its own request (for login, the POST login's), and what
// the client rejected with.
type callResult struct {
	OK      bool              `json:"ok"`
	Status  int               `json:"status"`
	Blocked bool              `json:"blocked"`
	Error   string            `json:"error"`
	Body    json.RawMessage   `json:"body"`
	Headers map[string]string `json:"headers"`
	Thrown  *thrown           `json:"thrown"`
}

// thrown is an error @latchkey/client rejected with, as the page reports
// it: its class's name, message and problem members.
type thrown struct {
	Name    string   `json:"name"`
	Message string   `json:"message"`
	Type    string   `json:"type"`
	Status  int      `json:"status"`
	Browser string   `json:"browser"`
	Reasons []string `json:"reasons"`
	Advice  string   `json:"advice"`
}

// Outcome is the result as the page saw it: the status, or blocked.
func (r callResult) Outcome() string {
	if r.Blocked {
		return "blocked (" + r.Error + ")"
	}
	return fmt.Sprint(r.Status)
}

// token is the outcome as the expectation table writes it.
func (r callResult) token() string {
	if r.Blocked {
		return "blocked"
	}
	return strconv.Itoa(r.Status)
}

// jsonOf wraps a JavaScript expression so that it evaluates to a promise
// of the JSON of its awaited value, the one form every engine's
// evaluation returns alike.
func jsonOf(expr string) string {
	return "(async () => JSON.stringify(await (" + expr + ")))()"
}

// eval awaits a window.latchkey call in the tab.
func eval(tb testing.TB, x browserTab, expr string) callResult {
	tb.Helper()
	var r callResult
	if s := x.EvalJSON(tb, expr); json.Unmarshal([]byte(s), &r) != nil {
		tb.Fatalf("evaluate %s: got %.200q, want a call result", expr, s)
	}
	return r
}

// text returns the trimmed text content of the element css selects.
func text(tb testing.TB, x browserTab, css string) string {
	tb.Helper()
	var s string
	if j := x.EvalJSON(tb, fmt.Sprintf(`document.querySelector(%s)?.textContent ?? ""`, jsString(css))); json.Unmarshal([]byte(j), &s) != nil {
		tb.Fatalf("text of %s: got %.200q", css, j)
	}
	return strings.TrimSpace(s)
}

// waitFor polls the JavaScript condition cond in the tab for up to 20 s.
func waitFor(tb testing.TB, x browserTab, cond string) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for x.EvalJSON(tb, cond) != "true" {
		if time.Now().After(deadline) {
			tb.Fatalf("waited 20s for %s", cond)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// who returns the text of #who, waiting up to 2 s for it to contain want
// when want is set (the page updates it right after a call's promise
// settles).
func who(tb testing.TB, x browserTab, want string) string {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		s := text(tb, x, "#who")
		if want == "" || strings.Contains(s, want) || time.Now().After(deadline) {
			return s
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// do performs kind on the open page and returns what the page got.
func do(tb testing.TB, x browserTab, kind callKind, user, password string) callResult {
	tb.Helper()
	switch kind {
	case callLoginUI:
		return loginUI(tb, x, user, password)
	case callLogin:
		return eval(tb, x, fmt.Sprintf(`window.latchkey.login(%s, %s)`, jsString(user), jsString(password)))
	case callMe:
		return eval(tb, x, `window.latchkey.me()`)
	case callLogout:
		return eval(tb, x, `window.latchkey.logout()`)
	case callLoginTextPlain:
		return eval(tb, x, fmt.Sprintf(`window.latchkey.raw("/login", {method: "POST", credentials: "include",
			headers: {"Content-Type": "text/plain"}, body: JSON.stringify({username: %s, password: %s})})`,
			jsString(user), jsString(password)))
	case callLoginURLEncoded:
		return eval(tb, x, fmt.Sprintf(`window.latchkey.raw("/login", {method: "POST", credentials: "include",
			body: new URLSearchParams({username: %s, password: %s})})`, jsString(user), jsString(password)))
	case callLoginSameOrigin:
		return eval(tb, x, fmt.Sprintf(`window.latchkey.raw("/login", {method: "POST", credentials: "same-origin",
			headers: {"Content-Type": "application/json"}, body: JSON.stringify({username: %s, password: %s})})`,
			jsString(user), jsString(password)))
	}
	tb.Fatalf("unknown call %d", kind)
	return callResult{}
}

// loginUI logs in as a person would: types into the form and clicks the
// button, then reads the outcome from the call log (li.call data-status).
func loginUI(tb testing.TB, x browserTab, user, password string) callResult {
	tb.Helper()
	const count = `document.querySelectorAll('#log li.call[data-path="/login"]').length`
	n0 := x.EvalJSON(tb, count)
	x.Type(tb, "#username", user)
	x.Type(tb, "#password", password)
	x.Click(tb, "#login")
	waitFor(tb, x, count+" > "+n0)
	var status string
	if j := x.EvalJSON(tb, `document.querySelector('#log li.call[data-path="/login"]').dataset.status`); json.Unmarshal([]byte(j), &status) != nil {
		tb.Fatalf("login call status: %.200q", j)
	}
	if status == "blocked" {
		return callResult{Blocked: true, Error: "blocked (call log)"}
	}
	n, err := strconv.Atoi(status)
	if err != nil {
		tb.Fatalf("login call data-status=%q, want a number or blocked", status)
	}
	if n == 200 {
		// The page then confirms the login with a me that carries its
		// receipt: what follows must see the page as that me left it
		// (its login box, and the me calls it made).
		waitFor(tb, x, `[...document.querySelectorAll('#log li.call[data-path="/me"] dd')].some((dd) => dd.textContent === "the login answer's receipt")`)
	}
	return callResult{OK: n >= 200 && n < 300, Status: n}
}

// siteOf returns the schemeful site of an app host: https://acme-R.test.
func siteOf(host string) string {
	return "https://" + strings.TrimPrefix(host, "app.")
}

// attemptTag is the tag of the tabs of a scenario's attempt (the
// everywhere scenario adds a and b).
func attemptTag(p profile, order, attempt int) string {
	return fmt.Sprintf("%s-%02d-%d", fileName(p.Name), order, attempt)
}

// shotName is the screenshot file of a scenario's attempt: the scenario's
// name for the first, with the attempt after it for a retry.
func shotName(dir string, p profile, sc scenario, attempt int, suffix string) string {
	name := sc.ID + suffix
	if attempt > 1 {
		name += fmt.Sprintf("-attempt%d", attempt)
	}
	return filepath.Join(dir, fileName(p.Name), name+".png")
}

// runScenario runs sc in a fresh tab of the profile and fills r's
// observations. A precondition that Latchkey answers 503 ends it early,
// for the caller to try again.
func runScenario(t *testing.T, d *deployment, prof profile, newTab func(testing.TB, string, time.Duration) browserTab, sc scenario, r *result, dir string, attempt int) {
	if sc.everywhere {
		runLogoutEverywhere(t, d, prof, newTab, sc, r, dir, attempt)
		return
	}
	p := d.Pages[sc.page]
	user := p.Tenant.Users[0].Name
	t.Logf("scenario %q: %s on %s in %s", sc.Title, sc.call, p.Origin, prof.Name)

	x := newTab(t, attemptTag(prof, r.Order, attempt), scenarioTimeout)
	t.Cleanup(func() {
		x.Screenshot(t, shotName(dir, prof, sc, attempt, ""))
		if t.Failed() && x.Net() != nil {
			t.Logf("the engine's network log of the tab:\n%s", x.Net().dump())
		}
	})

	// Preconditions: a login (on setupPage, or on the page itself).
	setup := p
	if sc.setupPage != "" {
		setup = d.Pages[sc.setupPage]
		user = setup.Tenant.Users[0].Name
	}
	if len(sc.before) > 0 || sc.setupPage != "" {
		x.Open(t, setup.URL)
		for _, k := range sc.before {
			res := do(t, x, k, user, d.Password)
			if res.Status == 503 {
				return
			}
			if !res.OK {
				t.Fatalf("precondition %s on %s: %s, want 2xx", k, setup.Origin, res.Outcome())
			}
		}
	}
	if sc.setupPage != "" || len(sc.before) == 0 {
		x.Open(t, p.URL)
	}

	cookie := setup.Tenant.CookieName()
	jarBefore, _ := x.Jar(t, cookie, originOf(setup.API))
	res := do(t, x, sc.call, user, d.Password)
	method, path := sc.call.request()
	r.Obs = observe(t, d, x, p, setup, user, method, path, res, len(jarBefore))
	for i, o := range r.Obs {
		t.Logf("  (%d) %s: %s", i+1, o.Token, o.Text)
	}
	checkDiagnosis(t, d, x, prof, sc, p, r.Obs)
}

// originOf returns the origin of an API base URL.
func originOf(api string) string {
	u, err := neturl.Parse(api)
	if err != nil {
		return api
	}
	return u.Scheme + "://" + u.Host
}

// apiPath is the path at Latchkey of path (/login) called from page p.
func apiPath(t testing.TB, p page, path string) string {
	u, err := neturl.Parse(p.API)
	if err != nil {
		t.Fatalf("page API %q: %v", p.API, err)
	}
	return u.Path + path
}

// observe gathers the five observations of a call made on page p (after
// a possible login on setup) and checks that the engine's own view, where
// it has one, agrees with the front's. jarBefore is how many session
// cookies the jar held before the call.
func observe(t testing.TB, d *deployment, x browserTab, p, setup page, user, method, path string, res callResult, jarBefore int) [5]observation {
	t.Helper()
	var obs [5]observation
	url := p.API + path
	cookie := setup.Tenant.CookieName()
	net := x.Net()

	// (1) Request sent: the front's view (what reached Latchkey from this
	// tab), and the engine's when it has one.
	ap := apiPath(t, p, path)
	hits, preHits := d.Front.HitsOf(x.Tag(), p.Origin, method, ap), d.Front.HitsOf(x.Tag(), p.Origin, "OPTIONS", ap)
	pre, sent := "-", "-"
	var parts []string
	if n := len(preHits); n > 0 {
		pre = strconv.Itoa(preHits[n-1].Status)
		parts = append(parts, fmt.Sprintf("preflight OPTIONS → %s", pre))
	} else {
		parts = append(parts, "no preflight")
	}
	if n := len(hits); n > 0 {
		sent = strconv.Itoa(hits[n-1].Status)
		parts = append(parts, fmt.Sprintf("%s %s → %s at Latchkey", method, path, sent))
		if hits[n-1].Problem != "" {
			parts = append(parts, "Latchkey said "+hits[n-1].Problem)
		}
	} else {
		parts = append(parts, fmt.Sprintf("%s %s never reached Latchkey", method, path))
	}
	var req *netRequest
	if net != nil {
		var epre *netRequest
		req, epre = net.last(t, method, url)
		engineSent := req != nil && req.HasRaw && req.RawStatus != 0
		view := "engine: "
		switch {
		case engineSent:
			view += fmt.Sprintf("%s → %d", method, req.RawStatus)
		case req != nil:
			view += method + " not sent"
			if req.Failed != "" {
				view += " (" + req.Failed + ")"
			}
		default:
			view += "no " + method + " logged"
		}
		if epre != nil {
			view += fmt.Sprintf(", preflight → %d", epre.RawStatus)
		}
		if req != nil && req.CORSError != "" {
			view += ", CORS error " + req.CORSError
		}
		parts = append(parts, view)
		// The front is the truth for what was sent. DevTools reports a raw
		// status in an extra-info event that can come late or never for a
		// request that then fails CORS, so only a raw status that
		// contradicts the front is a disagreement, not a missing one.
		if engineSent && (len(hits) == 0 || strconv.FormatInt(req.RawStatus, 10) != sent) {
			t.Errorf("(1) the engine's log (sent=%v, %+v) disagrees with the front's (%d hits, last status %s)", engineSent, req, len(hits), sent)
		}
	}
	obs[0] = observation{Token: pre + "/" + sent, Text: strings.Join(parts, "; ")}

	// (2) Response readable by the page.
	obs[1] = observation{Token: res.token(), Text: "page read " + res.Outcome()}

	// The jar as the call left it, before me() (which sets no cookie).
	jar, hasJar := settledJar(t, x, cookie, originOf(setup.API), hits)

	// (4) Cookie sent on the next call: me() as the page reads it, with
	// the cookies the front saw go with it (and the engine's view).
	before := len(hits) > 0 && slices.Contains(hits[len(hits)-1].Cookies, cookie)
	nMe := len(d.Front.HitsOf(x.Tag(), p.Origin, "GET", apiPath(t, p, "/me")))
	me := eval(t, x, `window.latchkey.me()`)
	meHits := d.Front.HitsOf(x.Tag(), p.Origin, "GET", apiPath(t, p, "/me"))
	cookieSent := false
	text4 := "me → page " + me.Outcome()
	if len(meHits) > nMe {
		h := meHits[len(meHits)-1]
		cookieSent = slices.Contains(h.Cookies, cookie)
		text4 += fmt.Sprintf(" (Latchkey %d)", h.Status)
	} else {
		text4 += " (never reached Latchkey)"
	}
	if cookieSent {
		text4 += "; cookie sent"
	} else {
		text4 += "; no cookie sent"
	}
	if net != nil {
		meReq, _ := net.last(t, "GET", p.API+"/me")
		engineSent := meReq != nil && slices.Contains(meReq.SentCookies, cookie)
		switch {
		case engineSent == cookieSent:
		case net.Cookies:
			t.Errorf("(4) the engine says cookie sent=%v with me, the front %v", engineSent, cookieSent)
		default:
			text4 += fmt.Sprintf(" (the engine's log says sent=%v)", engineSent)
		}
		if meReq != nil && len(meReq.NotSentCookies) > 0 {
			text4 += " (engine: " + strings.Join(meReq.NotSentCookies, "; ") + ")"
		}
	}
	next := "none"
	if cookieSent {
		next = "cookie"
	}
	obs[3] = observation{Token: me.token() + "/" + next, Text: text4}

	// (3) Cookie stored: the engine's cookie jar, or, when it shows none,
	// what the browser sent next: stored if the cookie went with me,
	// cleared if it went with the call and not with me.
	var why []string
	switch {
	case len(hits) == 0:
		why = append(why, "no response")
	case len(hits[len(hits)-1].SetCookie) == 0:
		why = append(why, "no Set-Cookie in the response")
	default:
		var lines []string
		for _, l := range hits[len(hits)-1].SetCookie {
			lines = append(lines, redactCookieLine(l))
		}
		why = append(why, "Set-Cookie: "+strings.Join(lines, " + "))
	}
	var reasons []string
	if req != nil {
		for _, b := range req.BlockedSetCookies {
			why = append(why, "engine: blocked "+b)
			if name, rs, ok := strings.Cut(b, ": "); ok && name == cookie {
				reasons = append(reasons, strings.Fields(strings.Trim(rs, "[]"))...)
			}
		}
	}
	var stored string
	switch {
	case !hasJar:
		switch {
		case cookieSent:
			stored = "inferred:yes"
		case before:
			stored = "inferred:cleared"
		default:
			stored = "inferred:no"
		}
		why = append([]string{fmt.Sprintf("no jar view: the cookie went with the call=%v, with the next me=%v", before, cookieSent)}, why...)
	case len(jar) == 0 && jarBefore > 0:
		stored = "cleared"
		why = append([]string{fmt.Sprintf("cleared: %d before, 0 after", jarBefore)}, why...)
	case len(jar) == 0:
		stored = "no"
		if len(reasons) > 0 {
			stored += ":" + strings.Join(reasons, "+")
		}
		why = append([]string{"not stored"}, why...)
	case len(jar) > 1:
		stored = fmt.Sprintf("stored×%d", len(jar))
		why = append([]string{describeCookie(jar[0])}, why...)
	default:
		c := jar[0]
		stored = "unpartitioned"
		if c.PartitionKey != "" {
			stored = "partitioned"
			if c.PartitionKey != siteOf(setup.Host) {
				stored = "partitioned:" + c.PartitionKey
			}
		}
		if c.SameSite != setup.Tenant.SameSite || !c.Secure || !c.HTTPOnly {
			stored += "!attributes"
			t.Errorf("(3) cookie SameSite=%s Secure=%v HttpOnly=%v, want %s true true", c.SameSite, c.Secure, c.HTTPOnly, setup.Tenant.SameSite)
		}
		why = append([]string{describeCookie(c)}, why...)
	}
	obs[2] = observation{Token: stored, Text: strings.Join(why, "; ")}

	// (5) The page shows the user.
	w := who(t, x, "")
	shows := "no"
	if w == "Signed in as "+user {
		shows = "yes"
	}
	obs[4] = observation{Token: shows, Text: fmt.Sprintf("#who %q", w)}
	return obs
}

// describeCookie summarises a stored cookie's attributes.
// jarSettle bounds how long a jar view may lag behind an answer that
// cleared the cookie.
const jarSettle = 2 * time.Second

// settledJar is x's jar view of the cookie named name for apiOrigin after
// the call whose front hits are hits. A deletion reaches Firefox's cookie
// store after the response that carries it has been handed to the page,
// so a jar read at once can still list the cookie the answer cleared:
// when the last answer cleared it, the jar is read again, briefly, until
// it is gone.
func settledJar(tb testing.TB, x browserTab, name, apiOrigin string, hits []frontHit) ([]jarCookie, bool) {
	jar, ok := x.Jar(tb, name, apiOrigin)
	if ok && len(jar) > 0 && len(hits) > 0 && clears(hits[len(hits)-1].SetCookie, name) {
		for deadline := time.Now().Add(jarSettle); len(jar) > 0 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			jar, _ = x.Jar(tb, name, apiOrigin)
		}
	}
	return jar, ok
}

// clears reports whether Set-Cookie lines delete the cookie named name.
func clears(setCookie []string, name string) bool {
	for _, l := range setCookie {
		if c, err := http.ParseSetCookie(l); err == nil && c.Name == name && c.MaxAge < 0 {
			return true
		}
	}
	return false
}

func describeCookie(c jarCookie) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s; SameSite=%s", c.Name, c.Domain, orNone(c.SameSite))
	if c.Secure {
		b.WriteString("; Secure")
	}
	if c.HTTPOnly {
		b.WriteString("; HttpOnly")
	}
	if c.PartitionKey != "" {
		fmt.Fprintf(&b, "; partitioned (key %s)", c.PartitionKey)
	} else {
		b.WriteString("; unpartitioned")
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "(unset)"
	}
	return s
}

// runLogoutEverywhere signs one user in from two browser contexts of the
// profile, revokes all sessions from the first, and observes that the
// second's session is over although its cookie may still be in its jar.
func runLogoutEverywhere(t *testing.T, d *deployment, prof profile, newTab func(testing.TB, string, time.Duration) browserTab, sc scenario, r *result, dir string, attempt int) {
	p := d.Pages[sc.page]
	user := everywhereUser(p.Tenant.Users[0].Name, prof.Name)
	cookie := p.Tenant.CookieName()
	t.Logf("scenario %q: %s in two browser contexts of %s", sc.Title, p.Origin, prof.Name)

	base := attemptTag(prof, r.Order, attempt)
	a, b := newTab(t, base+"a", scenarioTimeout), newTab(t, base+"b", scenarioTimeout)
	t.Cleanup(func() {
		a.Screenshot(t, shotName(dir, prof, sc, attempt, "_a"))
		b.Screenshot(t, shotName(dir, prof, sc, attempt, "_b"))
	})
	for _, x := range []browserTab{a, b} {
		x.Open(t, p.URL)
		res := do(t, x, callLogin, user, d.Password)
		if res.Status == 503 {
			return
		}
		if !res.OK {
			t.Fatalf("precondition: login=%s, want 200", res.Outcome())
		}
	}
	bBefore := eval(t, b, `window.latchkey.me()`)

	res := eval(t, a, `window.latchkey.revokeAll()`)
	ap := apiPath(t, p, "/sessions")
	hits, preHits := d.Front.HitsOf(a.Tag(), p.Origin, "DELETE", ap), d.Front.HitsOf(a.Tag(), p.Origin, "OPTIONS", ap)
	pre, sent := "-", "-"
	if n := len(preHits); n > 0 {
		pre = strconv.Itoa(preHits[n-1].Status)
	}
	aSent := false
	if n := len(hits); n > 0 {
		sent = strconv.Itoa(hits[n-1].Status)
		aSent = slices.Contains(hits[n-1].Cookies, cookie)
	}
	r.Obs[0] = observation{Token: pre + "/" + sent, Text: fmt.Sprintf("A: preflight → %s, DELETE /sessions → %s at Latchkey, A's cookie sent=%v", pre, sent, aSent)}
	r.Obs[1] = observation{Token: res.token(), Text: "A: page read " + res.Outcome()}

	jarA, hasJar := settledJar(t, a, cookie, originOf(p.API), hits)
	jarB, _ := b.Jar(t, cookie, originOf(p.API))

	// B's me, after: the cookie it sends, if any, names a dead session.
	nMe := len(d.Front.HitsOf(b.Tag(), p.Origin, "GET", apiPath(t, p, "/me")))
	me := eval(t, b, `window.latchkey.me()`)
	meHits := d.Front.HitsOf(b.Tag(), p.Origin, "GET", apiPath(t, p, "/me"))
	bSent := len(meHits) > nMe && slices.Contains(meHits[len(meHits)-1].Cookies, cookie)
	next := "none"
	if bSent {
		next = "cookie"
	}
	r.Obs[3] = observation{Token: me.token() + "/" + next, Text: fmt.Sprintf("B: me → page %s before, %s after, its cookie sent=%v", bBefore.Outcome(), me.Outcome(), bSent)}

	var stored string
	if hasJar {
		state := func(n int) string {
			if n == 0 {
				return "none"
			}
			return "kept"
		}
		stored = "A:" + state(len(jarA)) + ",B:" + state(len(jarB))
		r.Obs[2] = observation{Token: stored, Text: fmt.Sprintf("A's jar: %d cookies; B's: %d (nothing touches another browser's jar)", len(jarA), len(jarB))}
	} else {
		state := func(sent bool) string {
			if sent {
				return "sent"
			}
			return "none"
		}
		// A's cookie after the revocation: what its next me sends.
		nA := len(d.Front.HitsOf(a.Tag(), p.Origin, "GET", apiPath(t, p, "/me")))
		eval(t, a, `window.latchkey.me()`)
		aHits := d.Front.HitsOf(a.Tag(), p.Origin, "GET", apiPath(t, p, "/me"))
		aAfter := len(aHits) > nA && slices.Contains(aHits[len(aHits)-1].Cookies, cookie)
		stored = "inferred:A:" + state(aAfter) + ",B:" + state(bSent)
		r.Obs[2] = observation{Token: stored, Text: fmt.Sprintf("no jar view: A's next me sent the cookie=%v, B's=%v", aAfter, bSent)}
	}

	whoA, whoB := who(t, a, ""), who(t, b, "")
	shows := "no"
	if whoA == "Signed in as "+user || whoB == "Signed in as "+user {
		shows = "yes"
	}
	r.Obs[4] = observation{Token: shows, Text: fmt.Sprintf("A #who %q; B #who %q", whoA, whoB)}
	for i, o := range r.Obs {
		t.Logf("  (%d) %s: %s", i+1, o.Token, o.Text)
	}
}
