package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The doctor's own tests: every reason, its advice, the closest-origin
// hints, the site relation, the dev tenant on loopback, mixed content,
// every field of bad input, and the browser families. What the engines do
// is held against the doctor by e2e/doctor_test.go; the cases here add
// what the suite cannot run (Safari with CHIPS, loopback names, plain
// HTTP), each rule's source being in doctor.go.

// Short names of the profiles, for the tables.
const (
	pC  = ProfileChrome
	pCB = ProfileChrome3PCBlocked
	pF  = ProfileFirefox
	pFS = ProfileFirefoxStrict
	pS  = ProfileSafari
	pSN = ProfileSafariNoCHIPS
)

// allReasons is every Reason* constant: each must come out of some case
// of TestDoctor (TestDoctorCoversEveryReason).
var allReasons = []string{
	ReasonMixedContent, ReasonPreflightNoAllowOrigin, ReasonNoAllowOrigin, ReasonOriginNotListed,
	ReasonContentTypeNotJSON, ReasonCredentialsNotIncluded, ReasonSecureOnly, ReasonSameSiteLax,
	ReasonSameSiteStrict, ReasonSchemefulSameSiteLax, ReasonSchemefulSameSiteStrict, ReasonUserPreferences,
	ReasonThirdPartyPhaseout, ReasonThirdPartyBlocked, ReasonPartitionedBlocked, ReasonNoCHIPS,
	ReasonLoopbackNamesDiffer,
}

// doctorTenant is a valid tenant for the doctor's tests.
func doctorTenant(tb testing.TB, id string, dev bool, origins, hostnames []string, ss SameSite, partitioned bool) *Tenant {
	tb.Helper()
	t := Tenant{ID: TenantID(id), Name: id, Dev: dev, Origins: origins, Hostnames: hostnames,
		Cookie: CookiePolicy{SameSite: ss, Partitioned: partitioned}}.withDefaults()
	if err := t.Validate(); err != nil {
		tb.Fatalf("doctor fixture %s: %v", id, err)
	}
	return &t
}

// doctorTenants are the tenants of the doctor's tests, by name: the four
// policies of the end-to-end suite, Strict variants, and dev tenants on
// loopback.
func doctorTenants(tb testing.TB) map[string]*Tenant {
	tb.Helper()
	acme := []string{"https://app.acme.com", "https://admin.acme.com"}
	local := []string{"http://localhost:5173", "https://localhost:5173", "http://[::1]:5173", "http://app.localhost:5173"}
	return map[string]*Tenant{
		"host-lax":     doctorTenant(tb, "acme", false, acme, []string{"auth.acme.com"}, SameSiteLax, false),
		"host-strict":  doctorTenant(tb, "acme", false, acme, []string{"auth.acme.com"}, SameSiteStrict, false),
		"chips":        doctorTenant(tb, "beta", false, []string{"https://app.beta.com"}, nil, SameSiteNone, true),
		"none":         doctorTenant(tb, "gamma", false, []string{"https://app.gamma.com"}, nil, SameSiteNone, false),
		"lax-cross":    doctorTenant(tb, "delta", false, []string{"https://app.delta.com"}, nil, SameSiteLax, false),
		"strict-cross": doctorTenant(tb, "delta", false, []string{"https://app.delta.com"}, nil, SameSiteStrict, false),
		"dev-lax":      doctorTenant(tb, "demo", true, local, nil, SameSiteLax, false),
		"dev-none":     doctorTenant(tb, "demo", true, local, nil, SameSiteNone, false),
		"dev-chips":    doctorTenant(tb, "demo", true, local, nil, SameSiteNone, true),
		"pages":        doctorTenant(tb, "pages", false, []string{"https://alice.github.io"}, []string{"bob.github.io", "auth.alice.github.io"}, SameSiteLax, false),
		"ip":           doctorTenant(tb, "ip", false, []string{"https://192.0.2.10:8443"}, nil, SameSiteLax, false),
		"idn":          doctorTenant(tb, "idn", false, []string{"https://xn--bcher-kva.example"}, nil, SameSiteNone, true),
	}
}

// fails maps the profiles that fail to their reasons, exactly; every
// profile it leaves out works.
type fails map[string][]string

// every is the same reasons in every profile.
func every(reasons ...string) fails {
	f := fails{}
	for _, p := range DoctorProfiles {
		f[p] = reasons
	}
	return f
}

// with is f with more profiles' reasons.
func (f fails) with(more fails) fails {
	out := fails{}
	for p, r := range f {
		out[p] = r
	}
	for p, r := range more {
		out[p] = r
	}
	return out
}

// Reasons of a cross-site login, per policy (e2e/expectations.txt: the
// login-* rows; Safari with CHIPS from its release notes).
var (
	laxCrossSite = fails{
		pC: {ReasonSchemefulSameSiteLax}, pCB: {ReasonUserPreferences, ReasonThirdPartyPhaseout, ReasonSchemefulSameSiteLax},
		pF: {ReasonSameSiteLax}, pFS: {ReasonSameSiteLax}, pS: {ReasonSameSiteLax}, pSN: {ReasonSameSiteLax},
	}
	strictCrossSite = fails{
		pC: {ReasonSchemefulSameSiteStrict}, pCB: {ReasonUserPreferences, ReasonThirdPartyPhaseout, ReasonSchemefulSameSiteStrict},
		pF: {ReasonSameSiteStrict}, pFS: {ReasonSameSiteStrict}, pS: {ReasonSameSiteStrict}, pSN: {ReasonSameSiteStrict},
	}
	noneCrossSite = fails{
		pCB: {ReasonUserPreferences, ReasonThirdPartyPhaseout}, pFS: {ReasonUserPreferences},
		pS: {ReasonThirdPartyBlocked}, pSN: {ReasonThirdPartyBlocked},
	}
	chipsCrossSite = fails{pFS: {ReasonPartitionedBlocked}, pSN: {ReasonNoCHIPS}}
	notListed      = every(ReasonPreflightNoAllowOrigin, ReasonOriginNotListed)
)

// doctorCases are TestDoctor's table, also the seeds of FuzzDoctor.
type doctorCaseTest struct {
	name     string
	tenant   string
	in       DoctorInput
	relation string
	fails    fails
	closest  *OriginHint
	// advice: for each profile ("*": every failing one), a substring of
	// its advice, which names the fix.
	advice map[string]string
}

func doctorCases() []doctorCaseTest {
	const shared = "https://auth.latchkey.io/v1/t/"
	return []doctorCaseTest{
		// The end-to-end suite's policies.
		{name: "same-site lax, host form", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.com", API: "https://auth.acme.com/v1"},
			relation: RelationSameSite, advice: map[string]string{"*": "Nothing to fix"}},
		{name: "same-site strict, host form, trailing slash on the base", tenant: "host-strict",
			in:       DoctorInput{PageOrigin: "https://admin.acme.com", API: "https://auth.acme.com/v1/"},
			relation: RelationSameSite},
		{name: "cross-site partitioned", tenant: "chips",
			in:       DoctorInput{PageOrigin: "https://app.beta.com", API: shared + "beta"},
			relation: RelationCrossSite, fails: chipsCrossSite,
			advice: map[string]string{pFS: "drops even a partitioned cookie: add a hostname on the SPA's site to the tenant (e.g. auth.beta.com)", pSN: "(https://auth.beta.com/v1)"}},
		{name: "cross-site unpartitioned", tenant: "none",
			in:       DoctorInput{PageOrigin: "https://app.gamma.com", API: shared + "gamma"},
			relation: RelationCrossSite, fails: noneCrossSite,
			advice: map[string]string{"*": "set cookie.partitioned true", pC: "Nothing to fix"}},
		{name: "cross-site lax", tenant: "lax-cross",
			in:       DoctorInput{PageOrigin: "https://app.delta.com", API: shared + "delta"},
			relation: RelationCrossSite, fails: laxCrossSite,
			advice: map[string]string{"*": "A Lax or Strict cookie never goes with a cross-site fetch", pC: "or set cookie.same_site none with partitioned: true",
				pCB: "this browser blocks third-party cookies too: add a hostname on the SPA's site to the tenant (e.g. auth.delta.com)"}},
		{name: "cross-site strict", tenant: "strict-cross",
			in:       DoctorInput{PageOrigin: "https://app.delta.com", API: shared + "delta"},
			relation: RelationCrossSite, fails: strictCrossSite},

		{name: "a tenant with a hostname on the SPA's site, called on the shared host", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.com", API: shared + "acme"},
			relation: RelationCrossSite, fails: laxCrossSite,
			advice: map[string]string{"*": "call the tenant's own hostname on the SPA's site in host form (https://auth.acme.com/v1) instead of auth.latchkey.io"}},

		// CORS.
		{name: "unlisted host", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.co", API: "https://auth.acme.com/v1"},
			relation: RelationCrossSite, fails: notListed, closest: &OriginHint{"https://app.acme.com", []string{"host"}},
			advice: map[string]string{"*": "Load the page from https://app.acme.com, the listed origin it differs from in host, or add https://app.acme.co to the tenant's origins."}},
		{name: "unlisted scheme", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "http://app.acme.com", API: "https://auth.acme.com/v1"},
			relation: RelationCrossSite, fails: notListed, closest: &OriginHint{"https://app.acme.com", []string{"scheme"}},
			advice: map[string]string{"*": "differs from in scheme"}},
		{name: "unlisted port", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.com:8443", API: "https://auth.acme.com/v1"},
			relation: RelationSameSite, fails: notListed, closest: &OriginHint{"https://app.acme.com", []string{"port"}}},
		{name: "unlisted, with a path", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.co/login", API: "https://auth.acme.com/v1"},
			relation: RelationCrossSite, fails: notListed, closest: &OriginHint{"https://app.acme.com", []string{"host", "path"}},
			advice: map[string]string{"*": "differs from in host and path, or add https://app.acme.co to"}},
		{name: "the nearest of several listed", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://admn.acme.com", API: "https://auth.acme.com/v1"},
			relation: RelationSameSite, fails: notListed, closest: &OriginHint{"https://admin.acme.com", []string{"host"}}},
		{name: "fewest parts differing wins over the closest host", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "http://admin.acme.com:3000", API: "https://auth.acme.com/v1"},
			relation: RelationCrossSite, fails: notListed, closest: &OriginHint{"https://admin.acme.com", []string{"scheme", "port"}}},
		{name: "a trailing slash: the browser sends the listed origin", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.com/", API: "https://auth.acme.com/v1"},
			relation: RelationSameSite, closest: &OriginHint{"https://app.acme.com", []string{"path"}}},
		{name: "capitals and a default port: the browser sends the listed origin", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "HTTPS://App.Acme.com:443", API: "https://auth.acme.com/v1"},
			relation: RelationSameSite},
		{name: "a Unicode host: the browser sends punycode", tenant: "idn",
			in:       DoctorInput{PageOrigin: "https://bücher.example", API: shared + "idn"},
			relation: RelationCrossSite, fails: chipsCrossSite},
		{name: "null page", tenant: "chips",
			in:       DoctorInput{PageOrigin: "null", API: shared + "beta"},
			relation: RelationCrossSite, fails: notListed, advice: map[string]string{"*": "an opaque origin"}},
		{name: "unlisted, simple request: no preflight", tenant: "chips",
			in:       DoctorInput{PageOrigin: "https://app.other.com", API: shared + "beta", ContentType: "text/plain;charset=UTF-8"},
			relation: RelationCrossSite, fails: every(ReasonNoAllowOrigin, ReasonOriginNotListed), closest: &OriginHint{"https://app.beta.com", []string{"host"}}},
		{name: "unlisted, form-encoded: no preflight", tenant: "chips",
			in:       DoctorInput{PageOrigin: "https://app.other.com", API: shared + "beta", ContentType: "application/x-www-form-urlencoded;charset=UTF-8"},
			relation: RelationCrossSite, fails: every(ReasonNoAllowOrigin, ReasonOriginNotListed), closest: &OriginHint{"https://app.beta.com", []string{"host"}}},
		{name: "unlisted, a content type that is not safelisted: preflighted", tenant: "chips",
			in:       DoctorInput{PageOrigin: "https://app.other.com", API: shared + "beta", ContentType: "application/xml"},
			relation: RelationCrossSite, fails: notListed, closest: &OriginHint{"https://app.beta.com", []string{"host"}}},
		{name: "same-origin page need not be listed", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://auth.acme.com", API: "https://auth.acme.com/v1", Credentials: CredentialsSameOrigin},
			relation: RelationSameOrigin},

		// The login itself.
		{name: "text/plain", tenant: "chips",
			in:       DoctorInput{PageOrigin: "https://app.beta.com", API: shared + "beta", ContentType: "text/plain"},
			relation: RelationCrossSite, fails: every(ReasonContentTypeNotJSON), advice: map[string]string{"*": "Content-Type: application/json"}},
		{name: "form-encoded", tenant: "chips",
			in:       DoctorInput{PageOrigin: "https://app.beta.com", API: shared + "beta", ContentType: "application/x-www-form-urlencoded"},
			relation: RelationCrossSite, fails: every(ReasonContentTypeNotJSON)},
		{name: "JSON with a malformed parameter, which Latchkey refuses", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.com", API: "https://auth.acme.com/v1", ContentType: "application/json; charset"},
			relation: RelationSameSite, fails: every(ReasonContentTypeNotJSON)},
		{name: "JSON with a charset, in capitals", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.com", API: "https://auth.acme.com/v1", ContentType: "Application/JSON; charset=utf-8"},
			relation: RelationSameSite},
		{name: "credentials omit", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.com", API: "https://auth.acme.com/v1", Credentials: CredentialsOmit},
			relation: RelationSameSite, fails: every(ReasonCredentialsNotIncluded), advice: map[string]string{"*": "credentials: 'include'"}},
		{name: "credentials same-origin, same-site", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.com", API: "https://auth.acme.com/v1", Credentials: CredentialsSameOrigin},
			relation: RelationSameSite, fails: every(ReasonCredentialsNotIncluded)},
		{name: "credentials same-origin, cross-site", tenant: "chips",
			in:       DoctorInput{PageOrigin: "https://app.beta.com", API: shared + "beta", Credentials: CredentialsSameOrigin},
			relation: RelationCrossSite, fails: every(ReasonCredentialsNotIncluded)},

		// Plain HTTP and mixed content.
		{name: "https page, http API", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "https://app.acme.com", API: "http://auth.acme.com/v1"},
			relation: RelationCrossSite, fails: every(ReasonMixedContent), advice: map[string]string{"*": "Call the API over HTTPS (https://auth.acme.com)"}},
		{name: "plain HTTP API off loopback: no Secure cookie", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "http://auth.acme.com", API: "http://auth.acme.com/v1"},
			relation: RelationSameOrigin, fails: every(ReasonSecureOnly), advice: map[string]string{"*": "Serve the API over HTTPS (https://auth.acme.com)"}},
		{name: "https page, http://localhost API: Chrome and Firefox allow it, Safari not", tenant: "dev-lax",
			in:       DoctorInput{PageOrigin: "https://localhost:5173", API: "http://localhost:8080/v1/t/demo"},
			relation: RelationCrossSite, fails: laxCrossSite.with(fails{pS: {ReasonMixedContent}, pSN: {ReasonMixedContent}}),
			advice: map[string]string{pC: "serve the page and the API over the same scheme", pS: "Safari blocks an https page's fetch of plain http, even on this machine"}},
		{name: "dev tenant, Lax, plain HTTP on loopback: works in Safari too", tenant: "dev-lax",
			in:       DoctorInput{PageOrigin: "http://localhost:5173", API: "http://localhost:8080/v1/t/demo"},
			relation: RelationSameSite},
		{name: "dev tenant, Lax, plain HTTP on loopback, IPv6", tenant: "dev-lax",
			in:       DoctorInput{PageOrigin: "http://[::1]:5173", API: "http://[::1]:8080/v1/t/demo"},
			relation: RelationSameSite},
		{name: "dev tenant, None, plain HTTP on loopback: Secure, which Safari drops", tenant: "dev-none",
			in:       DoctorInput{PageOrigin: "http://localhost:5173", API: "http://localhost:8080/v1/t/demo"},
			relation: RelationSameSite, fails: fails{pS: {ReasonSecureOnly}, pSN: {ReasonSecureOnly}},
			advice: map[string]string{pS: "Set cookie.same_site lax on this dev tenant", pC: "Nothing to fix"}},
		{name: "dev tenant, None partitioned, plain HTTP on loopback", tenant: "dev-chips",
			in:       DoctorInput{PageOrigin: "http://localhost:5173", API: "http://localhost:8080/v1/t/demo"},
			relation: RelationSameSite, fails: fails{pS: {ReasonSecureOnly}, pSN: {ReasonSecureOnly}}},
		{name: "a production tenant's page on its own plain-HTTP loopback host", tenant: "host-lax",
			in:       DoctorInput{PageOrigin: "http://localhost:8080", API: "http://localhost:8080/v1/t/acme"},
			relation: RelationSameOrigin, fails: fails{pS: {ReasonSecureOnly}, pSN: {ReasonSecureOnly}},
			advice: map[string]string{pS: "mark this tenant dev: true with cookie.same_site lax"}},

		// Names of this machine.
		{name: "localhost page, 127.0.0.1 API, Lax", tenant: "dev-lax",
			in:       DoctorInput{PageOrigin: "http://localhost:5173", API: "http://127.0.0.1:8080/v1/t/demo"},
			relation: RelationCrossSite, fails: withLoopback(laxCrossSite),
			advice: map[string]string{"*": "Call the API by the page's own host name (localhost), not 127.0.0.1"}},
		{name: "localhost page, 127.0.0.1 API, None", tenant: "dev-none",
			in:       DoctorInput{PageOrigin: "http://localhost:5173", API: "http://127.0.0.1:8080/v1/t/demo"},
			relation: RelationCrossSite,
			fails: fails{pCB: {ReasonUserPreferences, ReasonThirdPartyPhaseout, ReasonLoopbackNamesDiffer}, pFS: {ReasonUserPreferences, ReasonLoopbackNamesDiffer},
				pS: {ReasonSecureOnly, ReasonLoopbackNamesDiffer}, pSN: {ReasonSecureOnly, ReasonLoopbackNamesDiffer}},
			advice: map[string]string{pS: "not 127.0.0.1"}},
		{name: "[::1] page, localhost API", tenant: "dev-lax",
			in:       DoctorInput{PageOrigin: "http://[::1]:5173", API: "http://localhost:8080/v1/t/demo"},
			relation: RelationCrossSite, fails: withLoopback(laxCrossSite),
			advice: map[string]string{"*": "Call the API by the page's own host name ([::1]), not localhost"}},
		{name: "app.localhost page, localhost API", tenant: "dev-lax",
			in:       DoctorInput{PageOrigin: "http://app.localhost:5173", API: "http://localhost:8080/v1/t/demo"},
			relation: RelationCrossSite, fails: withLoopback(laxCrossSite)},
		{name: "a local page, a hosted API", tenant: "dev-chips",
			in:       DoctorInput{PageOrigin: "http://localhost:5173", API: shared + "demo"},
			relation: RelationCrossSite, fails: chipsCrossSite,
			advice: map[string]string{pFS: "call the API on this machine, by the page's own name and scheme"}},

		// Sites.
		{name: "github.io users are sites of their own", tenant: "pages",
			in:       DoctorInput{PageOrigin: "https://alice.github.io", API: "https://bob.github.io/v1"},
			relation: RelationCrossSite, fails: laxCrossSite, advice: map[string]string{"*": "auth.alice.github.io"}},
		{name: "a hostname under the page's github.io site", tenant: "pages",
			in:       DoctorInput{PageOrigin: "https://alice.github.io", API: "https://auth.alice.github.io/v1"},
			relation: RelationSameSite},
		{name: "IP addresses: another address is another site", tenant: "ip",
			in:       DoctorInput{PageOrigin: "https://192.0.2.10:8443", API: "https://192.0.2.20/v1/t/ip"},
			relation: RelationCrossSite, fails: laxCrossSite, advice: map[string]string{"*": "serve the SPA under a domain name"}},
		{name: "IP addresses: the same address on another port is the same site", tenant: "ip",
			in:       DoctorInput{PageOrigin: "https://192.0.2.10:8443", API: "https://192.0.2.10/v1/t/ip"},
			relation: RelationSameSite},
	}
}

// withLoopback is f with LoopbackNamesDiffer after each profile's reasons.
func withLoopback(f fails) fails {
	out := fails{}
	for p, r := range f {
		out[p] = append(slices.Clone(r), ReasonLoopbackNamesDiffer)
	}
	return out
}

// corsFailures are the reasons a verdict fails before the CORS checks
// pass.
var corsFailures = []string{ReasonMixedContent, ReasonPreflightNoAllowOrigin, ReasonNoAllowOrigin}

func TestDoctor(t *testing.T) {
	t.Parallel()
	tenants := doctorTenants(t)
	for _, tt := range doctorCases() {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := tenants[tt.tenant].Doctor(tt.in)
			if err != nil {
				t.Fatalf("Doctor(%+v) = %v", tt.in, err)
			}
			if d.Tenant != string(tenants[tt.tenant].ID) || d.PageOrigin != tt.in.PageOrigin || d.API != tt.in.API {
				t.Errorf("Tenant, PageOrigin, API = %q %q %q, want %q %q %q", d.Tenant, d.PageOrigin, d.API, tenants[tt.tenant].ID, tt.in.PageOrigin, tt.in.API)
			}
			if d.SiteRelation != tt.relation {
				t.Errorf("SiteRelation = %q, want %q", d.SiteRelation, tt.relation)
			}
			if fmt.Sprint(d.Closest) != fmt.Sprint(tt.closest) {
				t.Errorf("Closest = %+v, want %+v", d.Closest, tt.closest)
			}
			if len(d.Verdicts) != len(DoctorProfiles) {
				t.Fatalf("%d verdicts, want %d", len(d.Verdicts), len(DoctorProfiles))
			}
			for i, v := range d.Verdicts {
				if v.Browser != DoctorProfiles[i] {
					t.Errorf("Verdicts[%d].Browser = %q, want %q", i, v.Browser, DoctorProfiles[i])
				}
				want, fails := tt.fails[v.Browser]
				if want == nil {
					want = []string{}
				}
				if !slices.Equal(v.Reasons, want) {
					t.Errorf("%s: Reasons = %v, want %v", v.Browser, v.Reasons, want)
				}
				preflight := !fails || !slices.Contains(corsFailures, want[0])
				if v.Works != !fails || v.CookieStored != !fails || v.CookieSent != !fails || v.PreflightOK != preflight {
					t.Errorf("%s: Works, CookieStored, CookieSent, PreflightOK = %v %v %v %v, want %v %v %v %v",
						v.Browser, v.Works, v.CookieStored, v.CookieSent, v.PreflightOK, !fails, !fails, !fails, preflight)
				}
				sub, ok := tt.advice[v.Browser]
				if !ok && fails {
					sub = tt.advice["*"]
				}
				if !ok && !fails {
					sub = "Nothing to fix"
				}
				if !strings.Contains(v.Advice, sub) {
					t.Errorf("%s: Advice = %q, want it to contain %q", v.Browser, v.Advice, sub)
				}
			}
			if d.WorksEverywhere() != (len(tt.fails) == 0) {
				t.Errorf("WorksEverywhere() = %v, want %v", d.WorksEverywhere(), len(tt.fails) == 0)
			}
		})
	}
}

// TestDoctorCoversEveryReason: every reason comes out of some case, in a
// profile that fails, and no case gives a reason outside allReasons.
func TestDoctorCoversEveryReason(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for _, tt := range doctorCases() {
		for _, rs := range tt.fails {
			for _, r := range rs {
				if !slices.Contains(allReasons, r) {
					t.Errorf("%s: reason %q is no Reason* constant", tt.name, r)
				}
				seen[r] = true
			}
		}
	}
	for _, r := range allReasons {
		if !seen[r] {
			t.Errorf("no case of TestDoctor gives %s", r)
		}
	}
}

// TestDoctorAdviceNamesEachFix: each reason, first in a verdict, gets the
// advice that names its fix.
func TestDoctorAdviceNamesEachFix(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		ReasonMixedContent:            "over HTTPS",
		ReasonPreflightNoAllowOrigin:  "to the tenant's origins",
		ReasonNoAllowOrigin:           "to the tenant's origins",
		ReasonContentTypeNotJSON:      "Content-Type: application/json",
		ReasonCredentialsNotIncluded:  "credentials: 'include'",
		ReasonSecureOnly:              "HTTPS",
		ReasonSameSiteLax:             "add a hostname on the SPA's site",
		ReasonSameSiteStrict:          "add a hostname on the SPA's site",
		ReasonSchemefulSameSiteLax:    "add a hostname on the SPA's site",
		ReasonSchemefulSameSiteStrict: "add a hostname on the SPA's site",
		ReasonUserPreferences:         "add a hostname on the SPA's site",
		ReasonThirdPartyBlocked:       "set cookie.partitioned true",
		ReasonPartitionedBlocked:      "add a hostname on the SPA's site",
		ReasonNoCHIPS:                 "add a hostname on the SPA's site",
		ReasonLoopbackNamesDiffer:     "by the page's own host name",
	}
	tenants := doctorTenants(t)
	got := make(map[string]bool)
	for _, tt := range doctorCases() {
		d, err := tenants[tt.tenant].Doctor(tt.in)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		for _, v := range d.Verdicts {
			if v.Works {
				continue
			}
			first := v.Reasons[0]
			switch {
			case slices.Contains(v.Reasons, ReasonLoopbackNamesDiffer):
				first = ReasonLoopbackNamesDiffer
			case tt.tenant == "ip" || tt.in.PageOrigin == "null" || isLoopbackOrigin(tt.in.PageOrigin):
				continue // a page with no site to add a hostname on: TestDoctor checks its advice
			case strings.Contains(v.Advice, "call the tenant's own hostname on the SPA's site"):
				continue // the tenant has that hostname already: TestDoctor checks its advice
			}
			w, ok := want[first]
			if !ok {
				continue // second reasons only: OriginNotListed, ThirdPartyPhaseout
			}
			got[first] = true
			if !strings.Contains(v.Advice, w) {
				t.Errorf("%s, %s: advice for %s = %q, want it to contain %q", tt.name, v.Browser, first, v.Advice, w)
			}
		}
	}
	for r := range want {
		if !got[r] {
			t.Errorf("no case has %s first", r)
		}
	}
}

// TestDoctorBadInput: every field of a ValidationError, alone and at once.
func TestDoctorBadInput(t *testing.T) {
	t.Parallel()
	tenants := doctorTenants(t)
	long := "https://" + strings.Repeat("a", maxDoctorInput) + ".com"
	good := DoctorInput{PageOrigin: "https://app.acme.com", API: "https://auth.acme.com/v1"}
	set := func(f func(*DoctorInput)) DoctorInput { in := good; f(&in); return in }
	tests := []struct {
		name   string
		tenant string
		in     DoctorInput
		fields []string
		msg    string // a substring of the first problem
	}{
		{"no scheme", "host-lax", set(func(in *DoctorInput) { in.PageOrigin = "app.acme.com" }), []string{"page_origin"}, "must be an http or https origin"},
		{"empty page origin", "host-lax", set(func(in *DoctorInput) { in.PageOrigin = "" }), []string{"page_origin"}, ""},
		{"ftp page", "host-lax", set(func(in *DoctorInput) { in.PageOrigin = "ftp://app.acme.com" }), []string{"page_origin"}, ""},
		{"file page", "host-lax", set(func(in *DoctorInput) { in.PageOrigin = "file:///index.html" }), []string{"page_origin"}, ""},
		{"userinfo in the page origin", "host-lax", set(func(in *DoctorInput) { in.PageOrigin = "https://u@app.acme.com" }), []string{"page_origin"}, ""},
		{"query in the page origin", "host-lax", set(func(in *DoctorInput) { in.PageOrigin = "https://app.acme.com?x=1" }), []string{"page_origin"}, ""},
		{"fragment in the page origin", "host-lax", set(func(in *DoctorInput) { in.PageOrigin = "https://app.acme.com#x" }), []string{"page_origin"}, ""},
		{"over-long page origin", "host-lax", set(func(in *DoctorInput) { in.PageOrigin = long }), []string{"page_origin"}, "is longer than 2048 bytes"},
		{"no API", "host-lax", set(func(in *DoctorInput) { in.API = "" }), []string{"api"}, "must be the http or https URL"},
		{"API without a scheme", "host-lax", set(func(in *DoctorInput) { in.API = "auth.acme.com/v1" }), []string{"api"}, ""},
		{"wrong tenant in the path form", "chips", set(func(in *DoctorInput) {
			in.PageOrigin, in.API = "https://app.beta.com", "https://auth.latchkey.io/v1/t/gamma"
		}),
			[]string{"api"}, `does not serve tenant "beta"`},
		{"host form on a host the tenant does not claim", "chips", set(func(in *DoctorInput) { in.API = "https://auth.latchkey.io/v1" }),
			[]string{"api"}, "call https://HOST/v1/t/beta on the shared host"},
		{"path form on the tenant's own hostname", "host-lax", set(func(in *DoctorInput) { in.API = "https://auth.acme.com/v1/t/acme" }),
			[]string{"api"}, "serves the host form only: call https://auth.acme.com/v1"},
		{"another version", "host-lax", set(func(in *DoctorInput) { in.API = "https://auth.latchkey.io/v2/t/acme" }), []string{"api"}, `does not serve tenant "acme"`},
		{"another version on the tenant's own hostname", "host-lax", set(func(in *DoctorInput) { in.API = "https://auth.acme.com/v2" }), []string{"api"}, "serves the host form only"},
		{"query in the API", "host-lax", set(func(in *DoctorInput) { in.API = "https://auth.acme.com/v1?tenant=acme" }), []string{"api"}, "no query or fragment"},
		{"empty query in the API", "host-lax", set(func(in *DoctorInput) { in.API = "https://auth.acme.com/v1?" }), []string{"api"}, "no query or fragment"},
		{"fragment in the API", "host-lax", set(func(in *DoctorInput) { in.API = "https://auth.acme.com/v1#x" }), []string{"api"}, "no query or fragment"},
		{"userinfo in the API", "host-lax", set(func(in *DoctorInput) { in.API = "https://u:p@auth.acme.com/v1" }), []string{"api"}, ""},
		{"over-long API", "host-lax", set(func(in *DoctorInput) { in.API = long + "/v1" }), []string{"api"}, "is longer than 2048 bytes"},
		{"bad credentials", "host-lax", set(func(in *DoctorInput) { in.Credentials = "includes" }), []string{"credentials"}, `must be include, same-origin or omit, got "includes"`},
		{"over-long content type", "host-lax", set(func(in *DoctorInput) { in.ContentType = "application/json;" + strings.Repeat("a", maxDoctorInput) }), []string{"content_type"}, ""},
		{"everything at once", "host-lax", DoctorInput{PageOrigin: "nope", API: "nope", Credentials: strings.Repeat("x", 500), ContentType: strings.Repeat("x", maxDoctorInput+1)},
			[]string{"credentials", "content_type", "page_origin", "api"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := tenants[tt.tenant]
			d, err := tn.Doctor(tt.in)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Doctor(%.100q) = %+v, %v, want a *ValidationError", tt.in, d, err)
			}
			var fields []string
			for _, p := range ve.Problems {
				fields = append(fields, p.Field)
				if p.Tenant != string(tn.ID) {
					t.Errorf("Problem %+v: Tenant, want %q", p, tn.ID)
				}
				if len(p.Message) > 500 {
					t.Errorf("Problem of %s is %d bytes long: user input must be clipped", p.Field, len(p.Message))
				}
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("fields = %v, want %v (%v)", fields, tt.fields, err)
			}
			if !strings.Contains(ve.Problems[0].Message, tt.msg) {
				t.Errorf("Message = %q, want it to contain %q", ve.Problems[0].Message, tt.msg)
			}
		})
	}
}

// TestDoctorJSON: the Diagnosis JSON is the shape the CLI, the admin
// route and openapi.yaml promise.
func TestDoctorJSON(t *testing.T) {
	t.Parallel()
	d, err := doctorTenants(t)["host-lax"].Doctor(DoctorInput{PageOrigin: "https://app.acme.co", API: "https://auth.acme.com/v1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tenant", "page_origin", "api", "site_relation", "closest_origin", "results"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s has no %q", b, k)
		}
	}
	rs := m["results"].([]any)
	r := rs[0].(map[string]any)
	for _, k := range []string{"browser", "preflight_ok", "cookie_stored", "cookie_sent", "works", "reasons", "advice"} {
		if _, ok := r[k]; !ok {
			t.Errorf("results[0] %v has no %q", r, k)
		}
	}
	if h := m["closest_origin"].(map[string]any); h["origin"] != "https://app.acme.com" {
		t.Errorf("closest_origin = %v", h)
	}
	if v, ok := d.Verdict(ProfileSafari); !ok || v.Browser != ProfileSafari {
		t.Errorf("Verdict(safari) = %+v, %v", v, ok)
	}
	if _, ok := d.Verdict("netscape"); ok {
		t.Error("Verdict(netscape) found one")
	}
	works, _ := doctorTenants(t)["host-lax"].Doctor(DoctorInput{PageOrigin: "https://app.acme.com", API: "https://auth.acme.com/v1"})
	if b, _ := json.Marshal(works); strings.Contains(string(b), "closest_origin") || !strings.Contains(string(b), `"reasons":[]`) {
		t.Errorf("a working diagnosis is %s: want no closest_origin and empty reasons, not null", b)
	}
}

func TestBrowserFamily(t *testing.T) {
	t.Parallel()
	chrome := []string{pC, pCB}
	firefox := []string{pF, pFS}
	safari := []string{pS, pSN}
	tests := []struct {
		name, ua, family string
		profiles         []string
	}{
		{"Chrome", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", FamilyChrome, chrome},
		{"Chrome on Android", "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", FamilyChrome, chrome},
		{"Edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", FamilyChrome, chrome},
		{"Opera", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0", FamilyChrome, chrome},
		{"HeadlessChrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", FamilyChrome, chrome},
		{"Chromium", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/131.0.0.0 Safari/537.36", FamilyChrome, chrome},
		{"Firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", FamilyFirefox, firefox},
		{"Firefox on Android", "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", FamilyFirefox, firefox},
		{"Safari on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Safari/605.1.15", FamilySafari, safari},
		{"Safari on iOS", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.2 Mobile/15E148 Safari/604.1", FamilySafari, safari},
		{"Safari on iPad", "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", FamilySafari, safari},
		{"CriOS is WebKit", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", FamilySafari, safari},
		{"FxiOS is WebKit", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15", FamilySafari, safari},
		{"WebKitGTK (GNOME Web)", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15 Epiphany/605.1.15", FamilySafari, safari},
		{"curl", "curl/8.11.1", FamilyUnknown, DoctorProfiles},
		{"Go", "Go-http-client/1.1", FamilyUnknown, DoctorProfiles},
		{"empty", "", FamilyUnknown, DoctorProfiles},
		{"over-long, the family token late", strings.Repeat("x", maxDoctorInput) + " Firefox/128.0", FamilyUnknown, DoctorProfiles},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			family, profiles := BrowserFamily(tt.ua)
			if family != tt.family || !slices.Equal(profiles, tt.profiles) {
				t.Errorf("BrowserFamily(%.80q) = %q %v, want %q %v", tt.ua, family, profiles, tt.family, tt.profiles)
			}
		})
	}
	// The profiles of an unknown family are a copy: changing them
	// changes no one else's.
	_, ps := BrowserFamily("")
	ps[0] = "changed"
	if DoctorProfiles[0] != ProfileChrome {
		t.Errorf("DoctorProfiles[0] = %q after changing BrowserFamily's answer", DoctorProfiles[0])
	}
}

// maxDiagnosisJSON bounds the JSON of any Diagnosis: each input text is
// at most maxDoctorInput bytes, and advice quotes a few of them.
const maxDiagnosisJSON = 64 << 10

// FuzzDoctor: whatever a page, an API URL, a credentials mode and a
// Content-Type, the doctor does not panic and answers in bounded size
// either a *ValidationError whose problems name the input's fields, or a
// Diagnosis of every profile, in order, in which a login that works has
// passed CORS and had its cookie stored and sent, and one that does not
// says why with known reasons and advises a fix.
func FuzzDoctor(f *testing.F) {
	for _, tt := range doctorCases() {
		f.Add(tt.tenant, tt.in.PageOrigin, tt.in.API, tt.in.Credentials, tt.in.ContentType)
	}
	f.Add("host-lax", "https://app.acme.com", "https://auth.acme.com/v1/t/acme/../..", "", "")
	f.Add("chips", "https://[::1", "https://auth.latchkey.io:99999/v1/t/beta", "omit", "text/plain; charset=\"x\"")
	f.Add("dev-lax", "http://localhost.:5173", "HTTP://LOCALHOST.:8080/v1/t/demo", "same-origin", "multipart/form-data")
	f.Add("ip", "https://[2001:db8::1]:8443", "https://[2001:db8::1%25eth0]/v1/t/ip", "", "\x00")
	tenants := doctorTenants(f)
	var names []string
	for n := range tenants {
		names = append(names, n)
	}
	slices.Sort(names)
	fields := []string{"page_origin", "api", "credentials", "content_type"}
	f.Fuzz(func(t *testing.T, tenant, page, api, credentials, contentType string) {
		tn := tenants[tenant]
		if tn == nil {
			tn = tenants[names[len(tenant)%len(names)]]
		}
		in := DoctorInput{PageOrigin: page, API: api, Credentials: credentials, ContentType: contentType}
		d, err := tn.Doctor(in)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 {
				t.Fatalf("Doctor() = %T %v, want a *ValidationError with problems", err, err)
			}
			for _, p := range ve.Problems {
				if !slices.Contains(fields, p.Field) || p.Message == "" || len(p.Message) > 1024 {
					t.Errorf("problem %s: %.200q: want a field of the input and a message of at most 1 KiB", p.Field, p.Message)
				}
			}
			return
		}
		if d.Tenant != string(tn.ID) || d.PageOrigin != page || d.API != api {
			t.Errorf("Diagnosis names %q %q %q, want the input's", d.Tenant, d.PageOrigin, d.API)
		}
		if !slices.Contains([]string{RelationSameOrigin, RelationSameSite, RelationCrossSite}, d.SiteRelation) {
			t.Errorf("SiteRelation = %q", d.SiteRelation)
		}
		if d.Closest != nil && (!slices.Contains(tn.Origins, d.Closest.Origin) || len(d.Closest.Differs) == 0) {
			t.Errorf("Closest = %+v: want a listed origin and what differs", d.Closest)
		}
		if len(d.Verdicts) != len(DoctorProfiles) {
			t.Fatalf("%d verdicts, want %d", len(d.Verdicts), len(DoctorProfiles))
		}
		for i, v := range d.Verdicts {
			if v.Browser != DoctorProfiles[i] {
				t.Errorf("Verdicts[%d] is %q, want %q", i, v.Browser, DoctorProfiles[i])
			}
			switch {
			case v.Works && (!v.CookieStored || !v.CookieSent || !v.PreflightOK || len(v.Reasons) != 0):
				t.Errorf("%s works with %+v", v.Browser, v)
			case !v.Works && len(v.Reasons) == 0:
				t.Errorf("%s fails with no reason: %+v", v.Browser, v)
			}
			for _, r := range v.Reasons {
				if !slices.Contains(allReasons, r) {
					t.Errorf("%s: reason %q is no Reason* constant", v.Browser, r)
				}
			}
			if v.Advice == "" || !utf8.ValidString(v.Advice) && utf8.ValidString(page+api) {
				t.Errorf("%s: advice %.200q", v.Browser, v.Advice)
			}
		}
		b, err := json.Marshal(d)
		if err != nil || len(b) > maxDiagnosisJSON {
			t.Errorf("json.Marshal: %d bytes, %v; want at most %d", len(b), err, maxDiagnosisJSON)
		}
	})
}
