package e2e

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/session"
)

// familyOf is the browser family Latchkey must read from each engine's
// User-Agent, the suite's latchkey-e2e tag appended (session.BrowserFamily):
// WebKitGTK's MiniBrowser says Safari/, as Safari does.
var familyOf = map[string]string{engineChromium: session.FamilyChrome, engineFirefox: session.FamilyFirefox, engineWebKit: session.FamilySafari}

// panelJS reads what the example SPA shows of the doctor: the login box's
// cookie-not-sent diagnosis, and the Diagnose panel.
const panelJS = `(() => {
	const q = (s) => document.querySelector(s), all = (s) => [...document.querySelectorAll(s)];
	return {
		problem: q('#login-status').dataset.problem ?? '',
		reasons: q('#login-status .status-reasons')?.textContent ?? '',
		status: q('#doctor-status').className,
		command: q('#doctor-command').textContent,
		works: Object.fromEntries(all('#doctor-results li.verdict').map((li) => [li.dataset.browser, li.dataset.works])),
		facts: Object.fromEntries(all('#doctor-seen div[data-fact]').map((d) => [d.dataset.fact, d.querySelector('dd').textContent])),
	};
})()`

type panel struct {
	Problem, Reasons, Status, Command string
	Works, Facts                      map[string]string
}

// checkDiagnosis holds, after a scenario's observations and in its tab,
// what the doctor tells the page to what the engine did. After a login
// through the form: the login box carries cookie-not-sent (from the me
// that confirmed the login with its receipt) exactly when the page does
// not show the user, with the reason of the first profile of the
// browser's family that the doctor predicts to fail (CredentialsNotIncluded
// if none); and the live check's verdict on each of the family's profiles
// is the doctor's, the suite's own profile's matching what the engine did,
// with the facts it saw. From a page the tenant does not list, the live
// check is refused by CORS, and the panel offers the doctor's command
// instead.
func checkDiagnosis(t *testing.T, d *deployment, x browserTab, prof profile, sc scenario, p page, obs [5]observation) {
	if sc.call != callLoginUI && sc.ID != "disallowed-login" {
		return
	}
	if _, shed := d.Front.Shed(x.Tag()); shed {
		return // the scenario runs again
	}
	// The client runs the live check by itself after a call the browser
	// refused (a NetworkError): count only the Diagnose panel's.
	before := len(d.Front.HitsOf(x.Tag(), p.Origin, "GET", apiPath(t, p, "/doctor")))
	res := eval(t, x, `window.latchkey.diagnose()`)
	var pn panel
	if s := x.EvalJSON(t, panelJS); json.Unmarshal([]byte(s), &pn) != nil {
		t.Fatalf("the doctor's panel: %.300q", s)
	}
	hits := d.Front.HitsOf(x.Tag(), p.Origin, "GET", apiPath(t, p, "/doctor"))[before:]
	t.Logf("  doctor: login box %q %q; live check %s, %s: %v %v", pn.Problem, pn.Reasons, res.Outcome(), pn.Status, pn.Works, pn.Facts)
	if len(hits) != 1 {
		t.Fatalf("the live check reached Latchkey %d times, want once", len(hits))
	}
	if sc.call != callLoginUI {
		if !res.Blocked || hits[0].Status != 403 || !strings.Contains(pn.Status, "status-error") ||
			!strings.Contains(pn.Command, "latchkey doctor ") || !strings.Contains(pn.Command, " --page-origin "+p.Origin+" ") {
			t.Errorf("live check from an unlisted page: page read %s (Latchkey %d), #doctor-status class %q, command %q; want blocked by CORS (403), status-error and the doctor's command for %s",
				res.Outcome(), hits[0].Status, pn.Status, pn.Command, p.Origin)
		}
		return
	}

	// The receipt makes the confirming me preflighted, the page's other
	// me calls are not: one OPTIONS /me, which CORS must pass.
	if pre := d.Front.HitsOf(x.Tag(), p.Origin, "OPTIONS", apiPath(t, p, "/me")); len(pre) != 1 || pre[0].Status != 204 {
		t.Errorf("the me that confirms the login: %d preflights (%+v), want one answered 204", len(pre), pre)
	}
	family, candidates, diag, first := doctorOn(t, p, hits[0].UserAgent)
	if family != familyOf[prof.Engine] || pn.Facts["browser_family"] != family {
		t.Errorf("Latchkey reads the family %s (the panel %q) from %q, want %s", family, pn.Facts["browser_family"], hits[0].UserAgent, familyOf[prof.Engine])
	}
	works := obs[4].Token == "yes"
	_, list, _ := strings.Cut(pn.Reasons, ": ")
	switch reasons := strings.Split(list, ", "); {
	case works && pn.Problem != "":
		t.Errorf("the page shows the user, but the login box says %s (%s)", pn.Problem, pn.Reasons)
	case !works && (pn.Problem != "cookie-not-sent" || reasons[0] != first):
		t.Errorf("the page shows no user, and the login box says %q %q; want cookie-not-sent, first reason %s", pn.Problem, pn.Reasons, first)
	}

	if !res.OK {
		t.Fatalf("live check: page read %s, want 200", res.Outcome())
	}
	if len(pn.Works) != len(candidates) {
		t.Errorf("live check: verdicts %v, want one for each of %v", pn.Works, candidates)
	}
	for _, name := range candidates {
		v, _ := diag.Verdict(name)
		if pn.Works[name] != strconv.FormatBool(v.Works) {
			t.Errorf("live check: %s works=%q, the doctor %v (%v)", name, pn.Works[name], v.Works, v.Reasons)
		}
	}
	if own := doctorProfileOf[prof.Name]; !slices.Contains(candidates, own) || pn.Works[own] != strconv.FormatBool(works) {
		t.Errorf("live check: %s (this engine's) works=%q, but the page shows the user: %v", own, pn.Works[own], works)
	}
	_, next, _ := strings.Cut(obs[3].Token, "/")
	want := map[string]string{"origin_listed": "yes", "cookie_present": yesNo(next == "cookie"), "session_valid": yesNo(works)}
	for fact, v := range want {
		if pn.Facts[fact] != v {
			t.Errorf("live check: %s %q, want %s (the next me %s, the page shows the user: %v)", fact, pn.Facts[fact], v, obs[3].Token, works)
		}
	}
}

// doctorOn is what the doctor says of a login from page p in the browser
// whose User-Agent is ua: the family Latchkey reads from it and that
// family's profiles, the doctor's diagnosis of the page and its API, and
// the reason a cookie-not-sent problem must give first: that of the first
// of those profiles the doctor predicts to fail, or
// CredentialsNotIncluded when it predicts none to (then a setting or an
// extension the rule book does not know dropped the cookie).
func doctorOn(t testing.TB, p page, ua string) (family string, candidates []string, diag session.Diagnosis, first string) {
	t.Helper()
	family, candidates = session.BrowserFamily(ua)
	tn := p.Tenant.Tenant()
	diag, err := tn.Doctor(session.DoctorInput{PageOrigin: p.Origin, API: p.API})
	if err != nil {
		t.Fatalf("Doctor(%s → %s): %v", p.Origin, p.API, err)
	}
	first = session.ReasonCredentialsNotIncluded
	for _, name := range candidates {
		if v, _ := diag.Verdict(name); !v.Works {
			first = v.Reasons[0]
			break
		}
	}
	return family, candidates, diag, first
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
