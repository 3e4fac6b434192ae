package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/examples/spa"
	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/internal/redistest"
)

// Tenant roles of the deployment.
const (
	tenantLax     = "lax"     // same-site: own hostname, SameSite=Lax, host form
	tenantChips   = "chips"   // cross-site on the shared host: SameSite=None; Partitioned
	tenantNoChips = "nochips" // the same without Partitioned
)

// Page roles: one SPA host each, configured for one tenant's API.
const (
	pageAcme  = "acme"  // https://app.acme-R.test  → lax (host form, same site)
	pageBeta  = "beta"  // https://app.beta-R.test  → chips (path form, cross-site)
	pageGamma = "gamma" // https://app.gamma-R.test → nochips (path form, cross-site)
	pageOther = "other" // https://app.other-R.test → chips, an origin it does not allow
	pageEvil  = "evil"  // https://app.evil-R.test  → nochips, an origin it does not allow
)

// Browser roles: third-party cookies allowed or blocked.
const (
	browser3PCAllowed = "3pc-allowed"
	browser3PCBlocked = "3pc-blocked"
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
// TLS front, the SPA origins, the tenants and the browsers.
type deployment struct {
	Run      string // random suffix of this run's tenants and sites
	Password string // every test user's password
	Front    *front
	Latchkey *proctest.Latchkey
	Tenants  map[string]tenantConfig
	Pages    map[string]page
	Browsers map[string]*browser
	Version  string // chromium --version
}

// User returns the tenant's main test user.
func (d *deployment) User(tenant string) string { return d.Tenants[tenant].Users[0].Name }

// newDeployment builds and starts everything; tb's cleanups stop it all.
// browsers maps a browser role to its spec.
func newDeployment(tb testing.TB, browsers map[string]browserSpec) *deployment {
	tb.Helper()
	start := time.Now()
	chromium := requireChromium(tb)
	rc := redistest.Client(tb) // fails under CI=true, skips elsewhere, when Redis is missing

	d := &deployment{
		Run:      randHex(tb, 3),
		Password: rand.Text(),
		Tenants:  make(map[string]tenantConfig),
		Pages:    make(map[string]page),
		Browsers: make(map[string]*browser),
	}
	d.Front = listenFront(tb)
	site := func(name string) string { return name + "-" + d.Run + ".test" }
	sharedAuth := "auth.latchkey.test"
	origin := func(s string) string { return d.Front.Origin("app." + s) }

	users := func(prefix string) []testUser {
		// The first user is for the scenarios that leave other sessions
		// alone; "everywhere" ends all of its user's sessions, so it gets
		// one of its own.
		return []testUser{{prefix, d.Password}, {prefix + "-all", d.Password}}
	}
	d.Tenants[tenantLax] = tenantConfig{
		ID: "e2e-lax-" + d.Run, Origins: []string{origin(site("acme"))},
		Hostnames: []string{"auth." + site("acme")}, SameSite: "lax", Users: users("ada"),
	}
	d.Tenants[tenantChips] = tenantConfig{
		ID: "e2e-chips-" + d.Run, Origins: []string{origin(site("beta"))},
		SameSite: "none", Partitioned: true, Users: users("bea"),
	}
	d.Tenants[tenantNoChips] = tenantConfig{
		ID: "e2e-nochips-" + d.Run, Origins: []string{origin(site("gamma"))},
		SameSite: "none", Partitioned: false, Users: users("cy"),
	}
	pathForm := func(tenant string) string {
		return d.Front.Origin(sharedAuth) + "/v1/t/" + d.Tenants[tenant].ID
	}
	for _, p := range []struct{ role, site, api, tenant string }{
		{pageAcme, site("acme"), d.Front.Origin("auth."+site("acme")) + "/v1", tenantLax},
		{pageBeta, site("beta"), pathForm(tenantChips), tenantChips},
		{pageGamma, site("gamma"), pathForm(tenantNoChips), tenantNoChips},
		{pageOther, site("other"), pathForm(tenantChips), tenantChips},
		{pageEvil, site("evil"), pathForm(tenantNoChips), tenantNoChips},
	} {
		host := "app." + p.site
		d.Pages[p.role] = page{Host: host, URL: d.Front.Origin(host) + "/", Origin: d.Front.Origin(host), API: p.api, Tenant: d.Tenants[p.tenant]}
	}

	pki := newPKI(tb, []string{
		"*." + site("acme"), "*." + site("beta"), "*." + site("gamma"), "*." + site("other"), "*." + site("evil"), "*.latchkey.test",
	})
	tenantsFile := writeTenantsFile(tb, []tenantConfig{d.Tenants[tenantLax], d.Tenants[tenantChips], d.Tenants[tenantNoChips]})

	// Build Latchkey while the browsers start.
	proctest.PrebuildLatchkey()
	d.Version = chromiumVersion(tb, chromium)
	for role, spec := range browsers {
		spec.Name = role
		d.Browsers[role] = startBrowser(tb, chromium, spec, pki.SPKIHash)
	}

	// Latchkey keeps everything under a prefix of this run's own, deleted
	// once it has stopped (cleanups run last-in first-out); the checks,
	// registered first, run after that: the Redis may be a developer's.
	for _, tn := range []string{tenantLax, tenantChips, tenantNoChips} {
		redistest.LeavesNoKeyWith(tb, rc, d.Tenants[tn].ID)
	}
	prefix := redistest.Prefix(tb, rc)
	d.Latchkey = proctest.StartLatchkey(tb, proctest.LatchkeyConfig{
		RedisURL:    "redis://" + redistest.Addr() + "/0",
		TenantsFile: tenantsFile,
		Env:         map[string]string{"LATCHKEY_REDIS_PREFIX": prefix},
	})
	for _, p := range d.Pages {
		h, err := spa.Handler(spa.Config{API: p.API})
		if err != nil {
			tb.Fatalf("spa.Handler(%s): %v", p.API, err)
		}
		d.Front.AddApp(p.Host, h)
	}
	d.Front.Serve(tb, pki.Cert, d.Latchkey.Public)
	tb.Logf("deployment %s up in %v: front https://*.test:%d, latchkey public %s admin %s, Redis %s",
		d.Run, time.Since(start).Round(time.Millisecond), d.Front.Port, d.Latchkey.Public, d.Latchkey.Admin, redistest.Addr())
	return d
}

func randHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
