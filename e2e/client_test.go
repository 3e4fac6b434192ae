package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// clientProfiles are the profiles TestClientInEngines runs in, one per
// engine: each keeps the cookie of the tenant on the SPA's own site and
// drops that of a cross-site tenant without Partitioned (third-party
// cookies blocked), as the expectation table has it.
var clientProfiles = []string{"chromium/3pc-blocked", "firefox/3pc-blocked", "webkit/default"}

// TestClientInEngines runs @latchkey/client, the built package the
// example SPA loads (examples/spa/static/latchkey-client.js), in one
// profile of each engine, the engines at once, on a deployment of its
// own: through the page, which calls Latchkey only through the client,
// the session's life on the tenant of the SPA's own site (login, me,
// sessions, logout); a login on the cross-site tenant without
// Partitioned, which the client must reject with a CookieNotSentError
// carrying the doctor's reason for the browser, shown in the login box;
// and two tabs of the page in one cookie jar, where a login and then a
// logout in one change the other without a reload (BroadcastChannel).
func TestClientInEngines(t *testing.T) {
	d := newDeployment(t)
	table := loadExpectations(t)
	dir := artifactsDir(t, "e2e-client")
	for _, e := range engines() {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ps := slices.DeleteFunc(profilesOf(e.Name), func(p profile) bool { return !slices.Contains(clientProfiles, p.Name) })
			prof := ps[0]
			// What the checks rely on, from the table.
			for sc, want := range map[string]string{"login-host-lax": "yes", "login-none": "no"} {
				if row := table.rows[[2]string{sc, prof.Name}]; row == nil || row.Obs[4] != want {
					t.Fatalf("expectations.txt: %s in %s shows the user=%v, want %s", sc, prof.Name, row, want)
				}
			}
			set := e.Start(t, d, ps)
			t.Logf("%s: %s", prof.Name, set.Version)
			open := func(t *testing.T, check string) browserTab {
				x := set.Tabs[prof.Name](t, "client-"+fileName(prof.Name)+"-"+check, scenarioTimeout)
				t.Cleanup(func() { x.Screenshot(t, filepath.Join(dir, fileName(prof.Name)+"-"+check+".png")) })
				return x
			}
			t.Run("session", func(t *testing.T) {
				t.Parallel()
				clientSession(t, d, open(t, "session"), everywhereUser(d.User(tenantLax), prof.Name))
			})
			t.Run("cookie-not-sent", func(t *testing.T) {
				t.Parallel()
				clientCookieNotSent(t, d, open(t, "cookie-not-sent"))
			})
			t.Run("tabs", func(t *testing.T) {
				t.Parallel()
				clientTabs(t, d, open(t, "tabs"), d.User(tenantLax))
			})
		})
	}
}

// jsEval evaluates expr in x and decodes its JSON into v.
func jsEval(t testing.TB, x browserTab, expr string, v any) {
	t.Helper()
	if s := x.EvalJSON(t, expr); json.Unmarshal([]byte(s), v) != nil {
		t.Fatalf("evaluate %s: %.300q", expr, s)
	}
}

// loginJS is window.latchkey.login (the client's login) as the page runs it.
func loginJS(user, password string) string {
	return fmt.Sprintf(`window.latchkey.login(%s, %s)`, jsString(user), jsString(password))
}

// changes is what the client's onChange told the page's tab, in order:
// the username signed in, or "" for nobody.
func changes(t testing.TB, x browserTab) []string {
	t.Helper()
	var cs []*string
	jsEval(t, x, `window.latchkey.changes`, &cs)
	out := []string{}
	for _, c := range cs {
		if c == nil {
			out = append(out, "")
		} else {
			out = append(out, *c)
		}
	}
	return out
}

// clientState is what the client says of the tab's session: its
// username, or "" for none.
func clientState(t testing.TB, x browserTab) string {
	t.Helper()
	var s *struct {
		User struct {
			Username string `json:"username"`
		} `json:"user"`
	}
	jsEval(t, x, `window.latchkey.client.session`, &s)
	if s == nil {
		return ""
	}
	return s.User.Username
}

// after returns the tab's first hit for method and path at Latchkey that
// follows its first one for afterMethod and afterPath.
func after(d *deployment, x browserTab, p page, afterMethod, afterPath, method, path string) (frontHit, bool) {
	seen := false
	for _, h := range d.Front.Hits() {
		if !strings.HasSuffix(h.UserAgent, " "+uaTag(x.Tag())) || h.Origin != p.Origin {
			continue
		}
		if !seen {
			seen = h.Method == afterMethod && h.Path == afterPath
			continue
		}
		if h.Method == method && h.Path == path {
			return h, true
		}
	}
	return frontHit{}, false
}

// clientSession logs user in on the tenant of the SPA's own site, asks
// who it is and for its sessions, and logs out, all through the page's
// client, checking what the page read and showed and what Latchkey saw.
func clientSession(t *testing.T, d *deployment, x browserTab, user string) {
	p := d.Pages[pageAcme]
	cookie := p.Tenant.CookieName()
	x.Open(t, p.URL)
	if w := who(t, x, ""); w != "Not signed in" {
		t.Fatalf("a fresh tab: #who %q, want Not signed in", w)
	}

	res := eval(t, x, loginJS(user, d.Password))
	var lr struct {
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
		Receipt string `json:"receipt"`
	}
	if json.Unmarshal(res.Body, &lr); res.Status != 200 || res.Thrown != nil || lr.Session.ID == "" || lr.Receipt == "" {
		t.Fatalf("login: %s, thrown %+v, session %q, receipt set %v; want 200, nothing thrown, a session and a receipt", res.Outcome(), res.Thrown, lr.Session.ID, lr.Receipt != "")
	}
	// The client's login: JSON (so preflighted) with credentials, then a
	// me with the receipt (preflighted too) that carried the new cookie.
	if pre := d.Front.HitsOf(x.Tag(), p.Origin, "OPTIONS", apiPath(t, p, "/login")); len(pre) != 1 || pre[0].Status != 204 {
		t.Errorf("login preflights %+v, want one answered 204 (a JSON login)", pre)
	}
	if h, ok := after(d, x, p, "POST", apiPath(t, p, "/login"), "GET", apiPath(t, p, "/me")); !ok || h.Status != 200 || !slices.Contains(h.Cookies, cookie) {
		t.Errorf("the me after the login: %+v (seen %v), want 200 with the cookie %s", h, ok, cookie)
	}
	if pre := d.Front.HitsOf(x.Tag(), p.Origin, "OPTIONS", apiPath(t, p, "/me")); len(pre) != 1 || pre[0].Status != 204 {
		t.Errorf("me preflights %+v, want one answered 204 (the receipt's)", pre)
	}
	waitFor(t, x, `[...document.querySelectorAll('#log li.call[data-path="/me"] dd')].some((dd) => dd.textContent === "the login answer's receipt")`)
	if w := who(t, x, "Signed in as "+user); w != "Signed in as "+user || clientState(t, x) != user {
		t.Errorf("after login: #who %q, the client's session %q; want %s", w, clientState(t, x), user)
	}

	me := eval(t, x, `window.latchkey.me()`)
	var mv struct {
		User struct {
			Username string `json:"username"`
		} `json:"user"`
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	if json.Unmarshal(me.Body, &mv); me.Status != 200 || me.Thrown != nil || mv.User.Username != user || mv.Session.ID != lr.Session.ID {
		t.Errorf("me: %s, thrown %+v, %s in %q; want 200, %s in the login's session", me.Outcome(), me.Thrown, mv.User.Username, mv.Session.ID, user)
	}

	ss := eval(t, x, `window.latchkey.sessions()`)
	var sl struct {
		Sessions []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"sessions"`
	}
	var current []string
	if json.Unmarshal(ss.Body, &sl) == nil {
		for _, s := range sl.Sessions {
			if s.Current {
				current = append(current, s.ID)
			}
		}
	}
	var shown int
	jsEval(t, x, `document.querySelectorAll('#sessions li.session-current').length`, &shown)
	if ss.Status != 200 || ss.Thrown != nil || !slices.Equal(current, []string{lr.Session.ID}) || shown != 1 {
		t.Errorf("sessions: %s, thrown %+v, current %v, %d shown as this device; want 200 and the login's session %s, shown", ss.Outcome(), ss.Thrown, current, shown, lr.Session.ID)
	}

	out := eval(t, x, `window.latchkey.logout()`)
	if pre := d.Front.HitsOf(x.Tag(), p.Origin, "OPTIONS", apiPath(t, p, "/logout")); out.Status != 204 || out.Thrown != nil || len(pre) != 1 || pre[0].Status != 204 {
		t.Errorf("logout: %s, thrown %+v, preflights %+v; want 204 after one preflight (logout sends JSON)", out.Outcome(), out.Thrown, pre)
	}
	if w := who(t, x, "Not signed in"); w != "Not signed in" || clientState(t, x) != "" {
		t.Errorf("after logout: #who %q, the client's session %q; want nobody", w, clientState(t, x))
	}
	again := eval(t, x, `window.latchkey.me()`)
	if again.Status != 401 || again.Thrown == nil || again.Thrown.Name != "UnauthenticatedError" {
		t.Errorf("me after logout: %s, thrown %+v; want 401, an UnauthenticatedError", again.Outcome(), again.Thrown)
	}
	if cs := changes(t, x); !slices.Equal(cs, []string{user, ""}) {
		t.Errorf("onChange told %q, want %q then nobody", cs, user)
	}
}

// clientCookieNotSent logs in on the cross-site tenant without
// Partitioned, whose cookie the profile drops: Latchkey answers 200, and
// the client's login must reject with a CookieNotSentError whose reasons
// are the doctor's for this browser, which the login box shows.
func clientCookieNotSent(t *testing.T, d *deployment, x browserTab) {
	p := d.Pages[pageGamma]
	x.Open(t, p.URL)
	res := eval(t, x, loginJS(d.User(tenantNoChips), d.Password))
	confirm, ok := after(d, x, p, "POST", apiPath(t, p, "/login"), "GET", apiPath(t, p, "/me"))
	if !ok {
		t.Fatalf("login: %s, thrown %+v; no me after it reached Latchkey", res.Outcome(), res.Thrown)
	}
	family, _, _, first := doctorOn(t, p, confirm.UserAgent)
	th := res.Thrown
	t.Logf("login: %s; the me after it: %d, cookies %v; thrown %+v", res.Outcome(), confirm.Status, confirm.Cookies, th)
	if res.Status != 200 || th == nil || th.Name != "CookieNotSentError" || th.Type != "urn:latchkey:problem:cookie-not-sent" || th.Status != 401 {
		t.Fatalf("login: %s, thrown %+v; want a 200 login the client rejects with a CookieNotSentError (401 cookie-not-sent)", res.Outcome(), th)
	}
	if confirm.Status != 401 || slices.Contains(confirm.Cookies, p.Tenant.CookieName()) {
		t.Errorf("the me after the login: %d with cookies %v, want 401 without %s", confirm.Status, confirm.Cookies, p.Tenant.CookieName())
	}
	if th.Browser != family || len(th.Reasons) == 0 || th.Reasons[0] != first || th.Advice == "" || !strings.HasSuffix(th.Message, th.Advice) {
		t.Errorf("CookieNotSentError: browser %q, reasons %v, advice %q, message %q; want %s, first the doctor's %s, and advice ending the message", th.Browser, th.Reasons, th.Advice, th.Message, family, first)
	}
	var pn panel
	jsEval(t, x, panelJS, &pn)
	var advice string
	jsEval(t, x, `document.querySelector('#login-status .status-advice')?.textContent ?? ''`, &advice)
	if pn.Problem != "cookie-not-sent" || !strings.HasSuffix(pn.Reasons, ": "+strings.Join(th.Reasons, ", ")) || advice != "Fix: "+th.Advice {
		t.Errorf("the login box: problem %q, %q, %q; want cookie-not-sent with the error's reasons %v and advice", pn.Problem, pn.Reasons, advice, th.Reasons)
	}
	if w := who(t, x, ""); w != "Not signed in" || clientState(t, x) != "" || len(changes(t, x)) != 0 {
		t.Errorf("#who %q, the client's session %q, onChange told %q; want nobody, never signed in", w, clientState(t, x), changes(t, x))
	}
}

// clientTabs opens two tabs of the page in one cookie jar, logs user in
// in the first and then out, and checks that the second, never
// reloaded, follows: signed in (it asked me itself when told), then
// signed out by the message alone.
func clientTabs(t *testing.T, d *deployment, a browserTab, user string) {
	p := d.Pages[pageAcme]
	a.Open(t, p.URL)
	b := a.Sibling(t)
	b.Open(t, p.URL)
	const mes = `document.querySelectorAll('#log li.call[data-path="/me"]').length`
	// A reload would lose it.
	b.EvalJSON(t, `window.e2eNotReloaded = true`)
	for name, x := range map[string]browserTab{"A": a, "B": b} {
		if w := who(t, x, ""); w != "Not signed in" {
			t.Fatalf("tab %s before the login: #who %q, want Not signed in", name, w)
		}
	}

	if res := eval(t, a, loginJS(user, d.Password)); res.Status != 200 || res.Thrown != nil {
		t.Fatalf("login in A: %s, thrown %+v; want 200", res.Outcome(), res.Thrown)
	}
	signedIn := jsString("Signed in as " + user)
	waitFor(t, b, `document.getElementById('who').textContent === `+signedIn)
	var n int
	jsEval(t, b, mes, &n)
	t.Logf("B shows %q after A's login; B asked me %d times", who(t, b, ""), n)

	if res := eval(t, a, `window.latchkey.logout()`); res.Status != 204 || res.Thrown != nil {
		t.Fatalf("logout in A: %s, thrown %+v; want 204", res.Outcome(), res.Thrown)
	}
	waitFor(t, b, `document.getElementById('who').textContent === 'Not signed in'`)
	var n2 int
	var kept bool
	jsEval(t, b, mes, &n2)
	jsEval(t, b, `window.e2eNotReloaded === true`, &kept)
	if cs := changes(t, b); !slices.Equal(cs, []string{user, ""}) || n2 != n || !kept || clientState(t, b) != "" {
		t.Errorf("B after A's logout: onChange told %q, me asked %d times (%d before), not reloaded %v, the client's session %q; want %q then nobody, no me, no reload",
			cs, n2, n, kept, clientState(t, b), user)
	}
	// The jar is one: B's cookie went with A's logout.
	if me := eval(t, b, `window.latchkey.me()`); me.Status != 401 {
		t.Errorf("me in B after A's logout: %s, want 401", me.Outcome())
	}
}
