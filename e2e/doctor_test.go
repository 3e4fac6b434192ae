package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/session"
)

// The doctor (session.Tenant.Doctor) predicts from a tenant's
// configuration what each browser does with a page's login; the
// expectation table holds what the engines did. TestDoctorAgreesWithExpectations
// holds the one to the other, row by row, through the mappings below: they
// are data, so that a new scenario or profile fails the test until it is
// mapped, rather than going unchecked.

// doctorProfileOf is the doctor's profile that stands for each engine
// profile of the suite (engine_test.go profiles). The doctor's chrome is
// third-party cookies allowed, which chromium/3pc-allowed sets; Chrome's
// phase-out blocks them as the user's setting does; WebKitGTK has no CHIPS,
// as Safari before 26.2, ITP or not.
var doctorProfileOf = map[string]string{
	"chromium/3pc-allowed":  session.ProfileChrome,
	"chromium/3pc-blocked":  session.ProfileChrome3PCBlocked,
	"chromium/3pc-phaseout": session.ProfileChrome3PCBlocked,
	"firefox/default":       session.ProfileFirefox,
	"firefox/3pc-blocked":   session.ProfileFirefoxStrict,
	"webkit/default":        session.ProfileSafariNoCHIPS,
	"webkit/itp":            session.ProfileSafariNoCHIPS,
}

// fetchOf is how each login call of the suite fetches (e2e_test.go do, and
// the example SPA's app.js): its credentials mode and Content-Type, as the
// doctor takes them. URLSearchParams is sent as form-encoded with a
// charset, as every engine does.
var fetchOf = map[callKind]struct{ credentials, contentType string }{
	callLoginUI:         {session.CredentialsInclude, "application/json"}, // app.js login(): jsonPost
	callLogin:           {session.CredentialsInclude, "application/json"},
	callLoginTextPlain:  {session.CredentialsInclude, "text/plain"},
	callLoginURLEncoded: {session.CredentialsInclude, "application/x-www-form-urlencoded;charset=UTF-8"},
	callLoginSameOrigin: {session.CredentialsSameOrigin, "application/json"},
}

// doctorScenarios says, for each scenario, which of its calls the doctor
// judges (the login whose cookie the scenario observes: the call itself,
// or the login a logout follows) and which claims its row makes about the
// verdict. The page is always the scenario's own (for disallowed-me, the
// foreign page: a login from there is what the doctor judges).
var doctorScenarios = map[string]struct {
	login  callKind
	claims []doctorClaim
}{
	"login-host-lax":                     {callLoginUI, loginClaims},
	"login-none-partitioned":             {callLoginUI, loginClaims},
	"login-none":                         {callLoginUI, loginClaims},
	"login-lax-cross-site":               {callLoginUI, loginClaims},
	"logout-host-lax":                    {callLogin, logoutClaims},
	"logout-none-partitioned":            {callLogin, logoutClaims},
	"disallowed-login":                   {callLogin, loginClaims},
	"disallowed-me":                      {callLogin, foreignMeClaims},
	"text-plain-login":                   {callLoginTextPlain, loginClaims},
	"form-login":                         {callLoginURLEncoded, loginClaims},
	"text-plain-login-disallowed":        {callLoginTextPlain, loginClaims},
	"form-login-disallowed":              {callLoginURLEncoded, loginClaims},
	"same-origin-credentials-same-site":  {callLoginSameOrigin, loginClaims},
	"same-origin-credentials-cross-site": {callLoginSameOrigin, loginClaims},
	"everywhere-none-partitioned":        {callLogin, everywhereClaims},
	"everywhere-host-lax":                {callLogin, everywhereClaims},
}

// doctorClaim is one thing a row's observation says about the verdict: the
// observation (an index of observationNames), read by read into a
// boolean (ok false for a token it does not know), must equal the
// verdict's field.
type doctorClaim struct {
	obs   int
	field string
	read  func(token string) (value, ok bool)
	of    func(session.Verdict) bool
}

var (
	claimPreflight = func(obs int) doctorClaim {
		return doctorClaim{obs, "preflight_ok", readNotBlocked, func(v session.Verdict) bool { return v.PreflightOK }}
	}
	verdictStored = func(v session.Verdict) bool { return v.CookieStored }
	verdictSent   = func(v session.Verdict) bool { return v.CookieSent }
	verdictWorks  = func(v session.Verdict) bool { return v.Works }

	// A login: the page read the answer unless CORS blocked it; the jar
	// kept the cookie; the next me sent it and read the user; the page
	// shows the user.
	loginClaims = []doctorClaim{
		claimPreflight(1),
		{2, "cookie_stored", readStored, verdictStored},
		{3, "cookie_sent", readNextCookie, verdictSent},
		{3, "works", readNextOK, verdictWorks},
		{4, "works", readYes, verdictWorks},
	}
	// A logout after a login: the cookie the login left is what the
	// logout cleared (or found none of); the rest of the row is the
	// logout's, which ends the session whatever the browser.
	logoutClaims = []doctorClaim{
		claimPreflight(1),
		{2, "cookie_stored", readHeldBefore, verdictStored},
		{2, "works", readHeldBefore, verdictWorks},
	}
	// Log out everywhere after a login in two contexts: A's DELETE
	// /sessions was authenticated (2xx) only if A's login stuck; B's
	// cookie existed after its login, and went with B's next me.
	everywhereClaims = []doctorClaim{
		claimPreflight(1),
		{1, "works", readOK, verdictWorks},
		{2, "cookie_stored", readBKept, verdictStored},
		{3, "cookie_sent", readNextCookie, verdictSent},
	}
	// me from a foreign page, of a user signed in from another page: the
	// cookie is that page's login's, not one the doctor judges here; what
	// a login from the foreign page would do is CORS's alone.
	foreignMeClaims = []doctorClaim{
		claimPreflight(1),
		{4, "works", readYes, verdictWorks},
	}
)

// TestDoctorAgreesWithExpectations evaluates the doctor on every row of
// the expectation table, for tenants and pages configured as the suite's
// (layOut), and fails on any disagreement: every claim of the row, and
// every Chromium reason the row names (no:REASON), which must be among the
// verdict's reasons. It needs no browser.
func TestDoctorAgreesWithExpectations(t *testing.T) {
	t.Parallel()
	x := loadExpectations(t)
	d := &deployment{Run: "doctor"}
	d.layOut(func(host string) string { return "https://" + host + ":8443" })

	for _, p := range profiles() {
		if doctorProfileOf[p.Name] == "" {
			t.Errorf("profile %s has no doctor profile in doctorProfileOf", p.Name)
		}
	}
	known := make(map[string]bool)
	for _, sc := range scenarios() {
		known[sc.ID] = true
		m, ok := doctorScenarios[sc.ID]
		if !ok {
			t.Errorf("scenario %s has no mapping in doctorScenarios", sc.ID)
			continue
		}
		if !makes(sc, m.login) {
			t.Errorf("doctorScenarios[%s] judges %s, a call the scenario does not make", sc.ID, m.login)
			continue
		}
		f, ok := fetchOf[m.login]
		if !ok {
			t.Errorf("call %s has no fetch options in fetchOf", m.login)
			continue
		}
		pg := d.Pages[sc.page]
		tn := pg.Tenant.Tenant()
		in := session.DoctorInput{PageOrigin: pg.Origin, API: pg.API, Credentials: f.credentials, ContentType: f.contentType}
		diag, err := tn.Doctor(in)
		if err != nil {
			t.Errorf("%s: Doctor(%+v) = %v", sc.ID, in, err)
			continue
		}
		for _, p := range profiles() {
			row := x.rows[[2]string{sc.ID, p.Name}]
			if row == nil {
				t.Errorf("%s: no row for %s in %s", expectationsFile, sc.ID, p.Name)
				continue
			}
			if row.Policy != sc.Policy(d) {
				t.Errorf("%s:%d: policy %s, but %s exercises %s", expectationsFile, row.line, row.Policy, sc.ID, sc.Policy(d))
			}
			v, ok := diag.Verdict(doctorProfileOf[p.Name])
			if !ok {
				t.Errorf("%s: the doctor has no verdict for %s (%s)", sc.ID, doctorProfileOf[p.Name], p.Name)
				continue
			}
			for _, msg := range disagreements(row, m.claims, v) {
				t.Errorf("%s:%d %s in %s (doctor %s, %s → %s): %s", expectationsFile, row.line, sc.ID, p.Name, v.Browser, pg.Origin, pg.API, msg)
			}
		}
	}
	for id := range doctorScenarios {
		if !known[id] {
			t.Errorf("doctorScenarios maps %s, which is no scenario", id)
		}
	}
}

// disagreements returns what the row says that the verdict does not.
func disagreements(row *expectation, claims []doctorClaim, v session.Verdict) []string {
	var out []string
	for _, c := range claims {
		tok := row.Obs[c.obs]
		want, ok := c.read(tok)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s %q is no token the doctor's claim on %s reads", observationNames[c.obs], tok, c.field))
		case c.of(v) != want:
			out = append(out, fmt.Sprintf("%s %s says %s=%v, the doctor %v (reasons %v)", observationNames[c.obs], tok, c.field, want, c.of(v), v.Reasons))
		}
	}
	// A cookie the engine refused names Chromium's reasons: the doctor
	// must give each.
	if rs, ok := strings.CutPrefix(row.Obs[2], "no:"); ok {
		for _, r := range strings.Split(rs, "+") {
			if !slices.Contains(v.Reasons, r) {
				out = append(out, fmt.Sprintf("stored %s names %s, which the doctor's reasons %v lack", row.Obs[2], r, v.Reasons))
			}
		}
	}
	return out
}

// makes reports whether scenario sc makes call k (a log out everywhere
// logs in with latchkey.login in each context).
func makes(sc scenario, k callKind) bool {
	if sc.everywhere {
		return k == callLogin
	}
	return sc.call == k || slices.Contains(sc.before, k)
}

// Readers of the table's tokens (expectations.txt, its header).

// readNotBlocked: read, the page read a status rather than a CORS failure.
func readNotBlocked(tok string) (bool, bool) {
	if tok == "blocked" {
		return false, true
	}
	_, err := strconv.Atoi(tok)
	return true, err == nil
}

// readOK: read, a 2xx status.
func readOK(tok string) (bool, bool) {
	if tok == "blocked" {
		return false, true
	}
	n, err := strconv.Atoi(tok)
	return n >= 200 && n < 300, err == nil
}

// readStored: stored, the jar kept the login's cookie (the engine's jar,
// or, with none to see, the cookie went with the next me).
func readStored(tok string) (bool, bool) {
	switch {
	case tok == "partitioned" || tok == "unpartitioned" || tok == "inferred:yes":
		return true, true
	case tok == "no" || strings.HasPrefix(tok, "no:") || tok == "inferred:no":
		return false, true
	}
	return false, false
}

// readHeldBefore: stored, for a logout: the jar held the cookie before it
// (cleared), or never did (no).
func readHeldBefore(tok string) (bool, bool) {
	switch tok {
	case "cleared", "inferred:cleared":
		return true, true
	case "no", "inferred:no":
		return false, true
	}
	return false, false
}

// readBKept: stored, for log out everywhere: context B's cookie existed
// (kept in its jar, or sent with its me).
func readBKept(tok string) (bool, bool) {
	_, b, ok := strings.Cut(strings.TrimPrefix(tok, "inferred:"), ",B:")
	switch {
	case !ok:
		return false, false
	case b == "kept" || b == "sent":
		return true, true
	case b == "none":
		return false, true
	}
	return false, false
}

// readNextCookie: next, the cookie went with the next me.
func readNextCookie(tok string) (bool, bool) {
	_, c, ok := strings.Cut(tok, "/")
	switch {
	case ok && c == "cookie":
		return true, true
	case ok && c == "none":
		return false, true
	}
	return false, false
}

// readNextOK: next, the next me read the user (200).
func readNextOK(tok string) (bool, bool) {
	s, _, ok := strings.Cut(tok, "/")
	if !ok {
		return false, false
	}
	return readOK(s)
}

// readYes: user, the page shows the user.
func readYes(tok string) (bool, bool) {
	return tok == "yes", tok == "yes" || tok == "no"
}
