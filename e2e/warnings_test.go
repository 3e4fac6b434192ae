package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/session"
)

// TestWarningsAgreeWithExpectations holds the product's browser warnings
// to the expectation table, which holds what the engines did: a login
// scenario whose page does not show the user in some profile must give
// its tenant a warning naming that profile's engine (and its browser in
// the message), and an engine in which it works in every profile must not
// be named. It needs no browser: it judges tenants configured as the
// suite's (layOut), on the same kind of names.
func TestWarningsAgreeWithExpectations(t *testing.T) {
	t.Parallel()
	x := loadExpectations(t)
	d := &deployment{Run: "warnings"}
	d.layOut(func(host string) string { return "https://" + host + ":8443" })
	shared := "auth.latchkey" + d.HostSuffix()
	tenants := make(map[string]session.Tenant)
	for _, tc := range d.Tenants {
		tenants[policyOf(tc)] = tc.Tenant()
	}
	if len(tenants) != 4 {
		t.Fatalf("the suite's tenants have policies %v, want one tenant per login-POLICY scenario", tenants)
	}
	browser := map[string]string{engineChromium: "Chrome", engineFirefox: "Firefox", engineWebKit: "Safari"}
	for policy, tn := range tenants {
		scenario := "login-" + policy
		var engines []string
		var message string
		for _, w := range tn.WarningsOn(shared) {
			engines = append(engines, w.Engines...)
			message += w.Message
		}
		for _, engine := range []string{engineChromium, engineFirefox, engineWebKit} {
			fails := []string{}
			for _, p := range profilesOf(engine) {
				row := x.rows[[2]string{scenario, p.Name}]
				if row == nil {
					t.Fatalf("%s: no row for %s in %s", expectationsFile, scenario, p.Name)
				}
				if row.Obs[4] != "yes" {
					fails = append(fails, p.Name)
				}
			}
			named := slices.Contains(engines, engine)
			switch {
			case len(fails) > 0 && (!named || !strings.Contains(message, browser[engine])):
				t.Errorf("%s fails in %v, but its tenant's warnings (engines %v) do not name %s and %s: %q", scenario, fails, engines, engine, browser[engine], message)
			case len(fails) == 0 && named:
				t.Errorf("%s works in every %s profile, but its tenant's warnings name that engine: %q", scenario, engine, message)
			}
		}
	}
}
