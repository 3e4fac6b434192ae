package e2e

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// accountsProfiles are the profiles TestSignupInEngines runs in, one per
// engine: the tenant of the SPA's own site keeps its session in each.
var accountsProfiles = clientProfiles

// mailTimeout bounds how long a mail may take from Latchkey's outbox to
// the test's SMTP server.
const mailTimeout = 30 * time.Second

// TestSignupInEngines signs up through the example SPA's form on the
// tenant of its own site, which requires a verified address, in one
// profile of each engine, the engines at once, on a deployment of its own
// whose mail goes to an SMTP server in this process: the page shows
// "check your mail", the mail carries the link to the page's /verify with
// the token in the fragment, and opening it in the tab signs the new user
// in (the verification's session, confirmed by a me with its receipt),
// with the token gone from the address bar, and me answers the user.
func TestSignupInEngines(t *testing.T) {
	d := newAccountsDeployment(t)
	table := loadExpectations(t)
	dir := artifactsDir(t, "e2e-signup")
	for _, e := range engines() {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ps := slices.DeleteFunc(profilesOf(e.Name), func(p profile) bool { return !slices.Contains(accountsProfiles, p.Name) })
			prof := ps[0]
			// What the scenario relies on, from the table.
			if row := table.rows[[2]string{"login-host-lax", prof.Name}]; row == nil || row.Obs[4] != "yes" {
				t.Fatalf("expectations.txt: login-host-lax in %s shows the user=%v, want yes", prof.Name, row)
			}
			set := e.Start(t, d, ps)
			t.Logf("%s: %s", prof.Name, set.Version)
			x := set.Tabs[prof.Name](t, "signup-"+fileName(prof.Name), scenarioTimeout)
			t.Cleanup(func() { x.Screenshot(t, filepath.Join(dir, fileName(prof.Name)+".png")) })
			signupVerify(t, d, x, "sig-"+strings.ReplaceAll(prof.Name, "/", "-"))
		})
	}
}

// signupVerify signs user up through the form of the page of the SPA's
// own site, reads the verification link from the mail and opens it in x.
func signupVerify(t *testing.T, d *deployment, x browserTab, user string) {
	p := d.Pages[pageAcme]
	email := user + "@Mail" + d.HostSuffix()
	x.Open(t, p.URL)
	if w := who(t, x, ""); w != "Not signed in" {
		t.Fatalf("a fresh tab: #who %q, want Not signed in", w)
	}

	x.Type(t, "#signup-username", user)
	x.Type(t, "#signup-email", email)
	x.Type(t, "#signup-password", d.Password)
	x.Click(t, "#signup")
	waitFor(t, x, `document.querySelector('#log li.call[data-path="/signup"]') !== null`)
	var status string
	jsEval(t, x, `document.querySelector('#log li.call[data-path="/signup"]').dataset.status`, &status)
	if status != "202" {
		t.Fatalf("signup: %s (%q), want 202: a verification mail on its way", status, text(t, x, "#signup-status"))
	}
	waitFor(t, x, `!document.getElementById('check-mail').hidden`)
	if s := text(t, x, "#check-mail"); !strings.Contains(s, "Check your mail") || !strings.Contains(s, email) {
		t.Errorf("#check-mail %q, want check your mail for %s", s, email)
	}
	if w := who(t, x, ""); w != "Not signed in" || clientState(t, x) != "" {
		t.Errorf("after signup: #who %q, the client's session %q; want nobody until the address is verified", w, clientState(t, x))
	}

	m := d.Mail.WaitMessage(t, email, mailTimeout)
	prefix := p.Origin + "/verify#token="
	if !strings.HasPrefix(m.Link, prefix) || len(m.Link) != len(prefix)+43 {
		// Only its form: the link is a secret.
		t.Fatalf("the mail's link %q…, want %s and a 43-character token", m.Link[:min(len(m.Link), len(prefix))], prefix)
	}

	x.Open(t, m.Link) // waits for a me: the one that confirms the verification
	signedIn := "Signed in as " + user
	waitFor(t, x, `document.getElementById('who').textContent === `+jsString(signedIn))
	var loc struct{ Path, Hash string }
	jsEval(t, x, `({Path: location.pathname, Hash: location.hash})`, &loc)
	if loc.Path != "/verify" || loc.Hash != "" {
		t.Errorf("the address bar after the link: path %q, fragment %q; want /verify with the token taken out", loc.Path, loc.Hash)
	}
	if s := text(t, x, "#link-status"); !strings.Contains(s, "verified") {
		t.Errorf("#link-status %q, want the address verified", s)
	}
	if h, ok := after(d, x, p, "POST", apiPath(t, p, "/email/verify"), "GET", apiPath(t, p, "/me")); !ok || h.Status != 200 || !slices.Contains(h.Cookies, p.Tenant.CookieName()) {
		t.Errorf("the me after the verification: %+v (seen %v), want 200 with the cookie %s", h, ok, p.Tenant.CookieName())
	}
	if hs := d.Front.HitsOf(x.Tag(), p.Origin, "POST", apiPath(t, p, "/email/verify")); len(hs) != 1 || hs[0].Status != 200 {
		t.Errorf("POST email/verify: %+v, want one, 200", hs)
	}

	me := eval(t, x, `window.latchkey.me()`)
	var mv struct {
		User struct {
			Username string `json:"username"`
		} `json:"user"`
	}
	if json.Unmarshal(me.Body, &mv); me.Status != 200 || me.Thrown != nil || mv.User.Username != user {
		t.Errorf("me: %s, thrown %+v, user %q; want 200 and %s", me.Outcome(), me.Thrown, mv.User.Username, user)
	}
	if cs := changes(t, x); !slices.Equal(cs, []string{user}) || clientState(t, x) != user {
		t.Errorf("onChange told %q, the client's session %q; want %s", cs, clientState(t, x), user)
	}
}
