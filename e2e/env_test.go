package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/examples/spa"
	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/internal/smtptest"
)

// Tenant roles of the deployment.
const (
	tenantLax     = "lax"      // same-site: own hostname, SameSite=Lax, host form
	tenantChips   = "chips"    // cross-site on the shared host: SameSite=None; Partitioned
	tenantNoChips = "nochips"  // the same without Partitioned
	tenantLaxX    = "laxcross" // cross-site on the shared host, SameSite=Lax: what must fail
)

// Page roles: one SPA host each, configured for one tenant's API.
const (
	pageAcme  = "acme"  // https://app.acme-R.test  → lax (host form, same site)
	pageBeta  = "beta"  // https://app.beta-R.test  → chips (path form, cross-site)
	pageGamma = "gamma" // https://app.gamma-R.test → nochips (path form, cross-site)
	pageOther = "other" // https://app.other-R.test → chips, an origin it does not allow
	pageEvil  = "evil"  // https://app.evil-R.test  → nochips, an origin it does not allow
	pageDelta = "delta" // https://app.delta-R.test → laxcross (path form, cross-site)
)

// page is one SPA origin of the deployment.
type page struct {
	Host   string // app.<site>
	URL    string // https://app.<site>:port/
	Origin string
	API    string // the Latchkey base URL the page calls
	Tenant tenantConfig
}

// deployment is the whole system under test: Latchkey on Redis behind the
// TLS front, the SPA origins and the tenants. The browsers of every engine
// share it; each engine starts its own (see engines).
type deployment struct {
	Run      string // random suffix of this run's tenants and sites
	Password string // every test user's password
	Front    *front
	Proxy    *connectProxy // how Firefox and WebKitGTK reach the front
	PKI      *testPKI
	Latchkey *proctest.Latchkey
	Tenants  map[string]tenantConfig
	Pages    map[string]page
	// Mail, in a deployment of newAccountsDeployment, receives every mail
	// Latchkey sends.
	Mail *smtptest.Server
}

// siteSuffix is the public suffix of every test site. It must be on the
// Public Suffix List: WebKitGTK (libsoup, through libpsl) finds no
// registrable domain under a TLD the list lacks, such as .test, and then
// takes each host name for a site of its own, so that auth.acme.test and
// app.acme.test would be cross-site to it (unless ITP is on), while
// Chromium and Firefox take acme.test for their site. co.uk is in the
// list's ICANN section, which every engine's copy carries. The names exist
// nowhere: each carries the run's random suffix, and every engine resolves
// them to the front on 127.0.0.1 only (Chromium's --host-resolver-rules,
// the e2e proxy for the others), and nothing else at all.
const siteSuffix = "co.uk"

// HostSuffix is what ends every host name of the run: "-R.co.uk".
func (d *deployment) HostSuffix() string { return "-" + d.Run + "." + siteSuffix }

// User returns the tenant's main test user.
func (d *deployment) User(tenant string) string { return d.Tenants[tenant].Users[0].Name }

// newDeployment builds and starts everything but the browsers; tb's
// cleanups stop it all.
func newDeployment(tb testing.TB) *deployment {
	tb.Helper()
	return startDeployment(tb, false)
}

// newAccountsDeployment is newDeployment with self-service accounts on the
// tenant of the SPA's own site (tenantLax: signup, verification required,
// login by email, verify_url and reset_url the page's /verify and /reset),
// and Latchkey's mail sent to an SMTP server in this process (d.Mail).
func newAccountsDeployment(tb testing.TB) *deployment {
	tb.Helper()
	return startDeployment(tb, true)
}

func startDeployment(tb testing.TB, accounts bool) *deployment {
	tb.Helper()
	start := time.Now()
	rc := redistest.Client(tb) // fails under CI=true, skips elsewhere, when Redis is missing
	// Build Latchkey while the rest is set up.
	proctest.PrebuildLatchkey()

	d := &deployment{
		Run:      randHex(tb, 3),
		Password: rand.Text(),
	}
	d.Front = listenFront(tb)
	d.Proxy = startProxy(tb, d.Front.Port, d.HostSuffix())
	d.layOut(d.Front.Origin)
	site := func(name string) string { return name + d.HostSuffix() }

	var names []string
	for _, s := range []string{"acme", "beta", "gamma", "other", "evil", "delta"} {
		names = append(names, "*."+site(s))
	}
	d.PKI = newPKI(tb, append(names, "*."+site("latchkey")))
	env := map[string]string{}
	if accounts {
		d.Mail = smtptest.Start(tb, smtptest.Config{})
		env["LATCHKEY_SMTP_URL"] = d.Mail.URL()
		env["LATCHKEY_MAIL_FROM"] = "Latchkey e2e <latchkey@mail" + d.HostSuffix() + ">"
		p := d.Pages[pageAcme]
		p.Tenant.Accounts = &accountsConfig{
			Signup: true, EmailVerification: "required", LoginWithEmail: true,
			VerifyURL: p.Origin + "/verify", ResetURL: p.Origin + "/reset",
		}
		d.Tenants[tenantLax], d.Pages[pageAcme] = p.Tenant, p
	}
	tenantsFile := writeTenantsFile(tb, []tenantConfig{d.Tenants[tenantLax], d.Tenants[tenantChips], d.Tenants[tenantNoChips], d.Tenants[tenantLaxX]})

	// Latchkey keeps everything under a prefix of this run's own, deleted
	// once it has stopped (cleanups run last-in first-out); the checks,
	// registered first, run after that: the Redis may be a developer's.
	for _, tn := range []string{tenantLax, tenantChips, tenantNoChips, tenantLaxX} {
		redistest.LeavesNoKeyWith(tb, rc, d.Tenants[tn].ID)
	}
	prefix := redistest.Prefix(tb, rc)
	env["LATCHKEY_REDIS_PREFIX"], env["LATCHKEY_TRUSTED_PROXIES"] = prefix, "127.0.0.1"
	d.Latchkey = proctest.StartLatchkey(tb, proctest.LatchkeyConfig{
		RedisURL:    "redis://" + redistest.Addr() + "/0",
		TenantsFile: tenantsFile,
		// The front is the proxy next to Latchkey (front.Serve).
		Env: env,
	})
	for _, p := range d.Pages {
		h, err := spa.Handler(spa.Config{API: p.API})
		if err != nil {
			tb.Fatalf("spa.Handler(%s): %v", p.API, err)
		}
		d.Front.AddApp(p.Host, h)
	}
	d.Front.Serve(tb, d.PKI.Cert, d.Latchkey.Public)
	tb.Logf("deployment %s up in %v: front https://*%s:%d, proxy %s, latchkey public %s admin %s, Redis %s",
		d.Run, time.Since(start).Round(time.Millisecond), d.HostSuffix(), d.Front.Port, d.Proxy.Addr(), d.Latchkey.Public, d.Latchkey.Admin, redistest.Addr())
	return d
}

// layOut fills d.Tenants and d.Pages, the suite's tenants and SPA origins
// on this run's names, for a front that serves host at origin(host). It
// starts nothing, so that the tests that judge the suite's configuration
// without a browser (TestWarningsAgreeWithExpectations,
// TestDoctorAgreesWithExpectations) judge exactly this one.
func (d *deployment) layOut(origin func(host string) string) {
	site := func(name string) string { return name + d.HostSuffix() }
	sharedAuth := "auth." + site("latchkey")
	appOrigin := func(s string) string { return origin("app." + s) }

	users := func(prefix string) []testUser {
		// The first user is for the scenarios that leave other sessions
		// alone; "everywhere" ends all of its user's sessions, so it gets
		// one of its own per engine profile (it runs in each at once).
		us := []testUser{{prefix, d.Password}}
		for _, p := range profiles() {
			us = append(us, testUser{everywhereUser(prefix, p.Name), d.Password})
		}
		return us
	}
	d.Tenants = map[string]tenantConfig{
		tenantLax: {
			ID: "e2e-lax-" + d.Run, Origins: []string{appOrigin(site("acme"))},
			Hostnames: []string{"auth." + site("acme")}, SameSite: "lax", Users: users("ada"),
		},
		tenantChips: {
			ID: "e2e-chips-" + d.Run, Origins: []string{appOrigin(site("beta"))},
			SameSite: "none", Partitioned: true, Users: users("bea"),
		},
		tenantNoChips: {
			ID: "e2e-nochips-" + d.Run, Origins: []string{appOrigin(site("gamma"))},
			SameSite: "none", Partitioned: false, Users: users("cy"),
		},
		tenantLaxX: {
			ID: "e2e-laxcross-" + d.Run, Origins: []string{appOrigin(site("delta"))},
			SameSite: "lax", Users: users("dee"),
		},
	}
	pathForm := func(tenant string) string {
		return origin(sharedAuth) + "/v1/t/" + d.Tenants[tenant].ID
	}
	d.Pages = make(map[string]page)
	for _, p := range []struct{ role, site, api, tenant string }{
		{pageAcme, site("acme"), origin("auth."+site("acme")) + "/v1", tenantLax},
		{pageBeta, site("beta"), pathForm(tenantChips), tenantChips},
		{pageGamma, site("gamma"), pathForm(tenantNoChips), tenantNoChips},
		{pageOther, site("other"), pathForm(tenantChips), tenantChips},
		{pageEvil, site("evil"), pathForm(tenantNoChips), tenantNoChips},
		{pageDelta, site("delta"), pathForm(tenantLaxX), tenantLaxX},
	} {
		host := "app." + p.site
		d.Pages[p.role] = page{Host: host, URL: origin(host) + "/", Origin: origin(host), API: p.api, Tenant: d.Tenants[p.tenant]}
	}
}

// everywhereUser is the user that "log out everywhere" signs in as in
// profile: every profile has its own, since that scenario ends all of its
// user's sessions and the profiles run at once.
func everywhereUser(prefix, profile string) string {
	return prefix + "-all-" + strings.ReplaceAll(profile, "/", "-")
}

func randHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
