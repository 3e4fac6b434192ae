package session

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// The doctor predicts, from a tenant's configuration alone, what each
// browser will do with a page's login against Latchkey and the `me` that
// follows: whether the CORS checks pass, whether the session cookie is
// stored and sent back, and why not, with the fix. The rules below are the
// ones the end-to-end suite observes in Chromium, Firefox ESR and WebKitGTK
// (e2e/expectations.txt, checked against this code by
// e2e/doctor_test.go); where a profile cannot run here, each rule cites
// its source.

// Browser profiles the doctor predicts for, by their stable ids.
const (
	// ProfileChrome: Chrome (and Edge) with third-party cookies allowed.
	ProfileChrome = "chrome"
	// ProfileChrome3PCBlocked: Chrome with third-party cookies blocked: a
	// user's setting, Incognito (blocked by default since Chrome 83), or
	// the phase-out (e2e: chromium/3pc-blocked, chromium/3pc-phaseout).
	ProfileChrome3PCBlocked = "chrome-3pc-blocked"
	// ProfileFirefox: Firefox's default, Total Cookie Protection, which
	// keeps every third-party cookie partitioned by the top-level site
	// (network.cookie.cookieBehavior 5; e2e: firefox/default).
	ProfileFirefox = "firefox"
	// ProfileFirefoxStrict: Firefox with cross-site cookies blocked
	// (cookieBehavior 1), partitioned ones included (e2e: firefox/3pc-blocked).
	ProfileFirefoxStrict = "firefox-strict"
	// ProfileSafari: Safari 26.2 and later, which blocks third-party cookies
	// but keeps partitioned ones (CHIPS; WebKit features for Safari 26.2,
	// https://webkit.org/blog/17640/webkit-features-for-safari-26-2/).
	ProfileSafari = "safari"
	// ProfileSafariNoCHIPS: Safari before 26.2, which blocks every
	// third-party cookie, partitioned or not (Full Third-Party Cookie
	// Blocking, https://webkit.org/blog/10218/full-third-party-cookie-blocking-and-more/);
	// WebKitGTK does the same today (e2e: webkit/default, webkit/itp).
	ProfileSafariNoCHIPS = "safari-no-chips"
)

// DoctorProfiles are every profile, in the order a Diagnosis lists them.
var DoctorProfiles = []string{ProfileChrome, ProfileChrome3PCBlocked, ProfileFirefox, ProfileFirefoxStrict, ProfileSafari, ProfileSafariNoCHIPS}

// Reasons a Verdict gives. Chrome's own names where DevTools has one
// (Protocol Network.CorsError, SetCookieBlockedReason,
// CookieBlockedReason), so that a developer finds the same word in the
// Issues panel; Latchkey's otherwise.
const (
	ReasonMixedContent            = "MixedContent"                      // Chrome blocks it before CORS: https page, http API
	ReasonPreflightNoAllowOrigin  = "PreflightMissingAllowOriginHeader" // CorsError
	ReasonNoAllowOrigin           = "MissingAllowOriginHeader"          // CorsError
	ReasonOriginNotListed         = "OriginNotListed"
	ReasonContentTypeNotJSON      = "ContentTypeNotJSON"
	ReasonCredentialsNotIncluded  = "CredentialsNotIncluded"
	ReasonSecureOnly              = "SecureOnly" // SetCookieBlockedReason: Secure cookie over plain HTTP
	ReasonSameSiteLax             = "SameSiteLax"
	ReasonSameSiteStrict          = "SameSiteStrict"
	ReasonSchemefulSameSiteLax    = "SchemefulSameSiteLax" // what Chrome reports for a cross-site Lax cookie
	ReasonSchemefulSameSiteStrict = "SchemefulSameSiteStrict"
	ReasonUserPreferences         = "UserPreferences"    // third-party cookies blocked by the user's setting
	ReasonThirdPartyPhaseout      = "ThirdPartyPhaseout" // the same, by Chrome's phase-out
	ReasonThirdPartyBlocked       = "ThirdPartyCookiesBlocked"
	ReasonPartitionedBlocked      = "PartitionedBlockedByUser"
	ReasonNoCHIPS                 = "NoCHIPS"
	ReasonLoopbackNamesDiffer     = "LoopbackNamesDiffer"
)

// Credentials modes of fetch, as the page passes them.
const (
	CredentialsInclude    = "include"
	CredentialsSameOrigin = "same-origin"
	CredentialsOmit       = "omit"
)

// Site relations of a page to the API it calls (schemeful, RFC 6265bis).
const (
	RelationSameOrigin = "same-origin"
	RelationSameSite   = "same-site"
	RelationCrossSite  = "cross-site"
)

// DoctorInput is what a page does: where it runs, what it calls and how.
type DoctorInput struct {
	// PageOrigin is the page's origin as the browser serializes it
	// (location.origin), or what a user believes it is.
	PageOrigin string `json:"page_origin"`
	// API is the base URL the page calls: https://auth.acme.com/v1 (host
	// form) or https://auth.example/v1/t/acme (path form).
	API string `json:"api"`
	// Credentials is fetch's credentials mode; "" means include.
	Credentials string `json:"credentials,omitempty"`
	// ContentType is the login's Content-Type; "" means application/json.
	ContentType string `json:"content_type,omitempty"`
}

// Diagnosis is the doctor's prediction for one page, in every profile.
type Diagnosis struct {
	Tenant       string `json:"tenant"`
	PageOrigin   string `json:"page_origin"`
	API          string `json:"api"`
	SiteRelation string `json:"site_relation"`
	// Closest is, for a page origin the tenant does not list, the listed
	// origin nearest to it and how the two differ.
	Closest  *OriginHint `json:"closest_origin,omitempty"`
	Verdicts []Verdict   `json:"results"`
}

// OriginHint names the listed origin nearest to an unlisted one.
type OriginHint struct {
	Origin string `json:"origin"`
	// Differs lists what differs: "scheme", "host", "port", "path" (a
	// trailing slash or a path, which an origin never has).
	Differs []string `json:"differs"`
}

// Verdict is what one browser profile will do.
type Verdict struct {
	Browser      string   `json:"browser"`
	PreflightOK  bool     `json:"preflight_ok"` // the CORS checks pass: the preflight, where one is sent, and the answer's
	CookieStored bool     `json:"cookie_stored"`
	CookieSent   bool     `json:"cookie_sent"` // on the next me
	Works        bool     `json:"works"`       // the login then me shows the user
	Reasons      []string `json:"reasons"`
	Advice       string   `json:"advice"`
}

// WorksEverywhere reports whether the login works in every profile.
func (d *Diagnosis) WorksEverywhere() bool {
	return !slices.ContainsFunc(d.Verdicts, func(v Verdict) bool { return !v.Works })
}

// Verdict returns the verdict for profile, false when d has none.
func (d *Diagnosis) Verdict(profile string) (Verdict, bool) {
	i := slices.IndexFunc(d.Verdicts, func(v Verdict) bool { return v.Browser == profile })
	if i < 0 {
		return Verdict{}, false
	}
	return d.Verdicts[i], true
}

// maxDoctorInput bounds each text of a DoctorInput: an origin or a URL
// longer than this is no page's.
const maxDoctorInput = 2048

// Doctor predicts, for a page calling the tenant as in, what each profile
// of DoctorProfiles does. Bad input (an API URL that does not serve this
// tenant, a page origin that is no origin) is a *ValidationError.
func (t *Tenant) Doctor(in DoctorInput) (Diagnosis, error) {
	c, err := t.doctorCase(in)
	if err != nil {
		return Diagnosis{}, err
	}
	d := Diagnosis{Tenant: string(t.ID), PageOrigin: in.PageOrigin, API: in.API, SiteRelation: c.relation}
	if !c.listed && c.relation != RelationSameOrigin {
		d.Closest = closestOrigin(c.page, t.Origins)
	}
	for _, p := range DoctorProfiles {
		v := c.predict(p)
		v.Advice = c.advise(v, d.Closest)
		d.Verdicts = append(d.Verdicts, v)
	}
	return d, nil
}

// doctorCase is a DoctorInput checked and resolved against the tenant.
type doctorCase struct {
	t                   *Tenant
	page                *url.URL // nil for an opaque origin ("null")
	pageOrigin          string   // as given
	pageCanon, apiOrig  string   // the origins a browser serializes
	apiHost             string
	apiHTTPS, pageHTTPS bool
	relation            string
	listed              bool
	credentials         string
	json                bool
	// secure: the cookie Latchkey sets there is Secure (all but a dev
	// tenant's over plain HTTP on loopback, Tenant.OverPlainLoopback).
	secure bool
}

func (t *Tenant) doctorCase(in DoctorInput) (*doctorCase, error) {
	ps := &problems{tenant: string(t.ID)}
	c := &doctorCase{t: t, credentials: in.Credentials}
	if c.credentials == "" {
		c.credentials = CredentialsInclude
	}
	switch c.credentials {
	case CredentialsInclude, CredentialsSameOrigin, CredentialsOmit:
	default:
		ps.add("credentials", "must be include, same-origin or omit, got %q", clip(c.credentials))
	}
	ct := in.ContentType
	if ct == "" {
		ct = "application/json"
	}
	if len(ct) > maxDoctorInput {
		ps.add("content_type", "is longer than %d bytes", maxDoctorInput)
	}
	c.json = jsonMediaType(ct)

	switch {
	case len(in.PageOrigin) > maxDoctorInput:
		ps.add("page_origin", "is longer than %d bytes", maxDoctorInput)
	case in.PageOrigin == "null":
		// An opaque origin: a sandboxed iframe, a file: page. No tenant
		// lists it, and no site holds its cookies.
		c.pageOrigin, c.pageCanon = "null", "null"
	default:
		u, err := url.Parse(in.PageOrigin)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			ps.add("page_origin", "must be an http or https origin such as https://app.acme.com (or null), got %q", clip(in.PageOrigin))
			break
		}
		c.page = u
		c.pageHTTPS = strings.EqualFold(u.Scheme, "https")
		// Listed or not as given, exactly as the browser's Origin is
		// compared; its site from the origin the browser would send.
		c.pageOrigin = in.PageOrigin
		c.pageCanon = canonicalOrigin(u)
	}

	api, err := url.Parse(in.API)
	switch {
	case len(in.API) > maxDoctorInput:
		ps.add("api", "is longer than %d bytes", maxDoctorInput)
	case err != nil || (api.Scheme != "http" && api.Scheme != "https") || api.Host == "" || api.User != nil:
		ps.add("api", "must be the http or https URL the page calls, such as https://auth.acme.com/v1 or https://auth.example/v1/t/%s, got %q", t.ID, clip(in.API))
	default:
		c.apiHost = strings.TrimSuffix(strings.ToLower(api.Hostname()), ".")
		c.apiHTTPS = api.Scheme == "https"
		c.apiOrig = canonicalOrigin(api)
		path := strings.TrimSuffix(api.EscapedPath(), "/")
		claimed := slices.Contains(t.Hostnames, c.apiHost)
		switch {
		case path == "/v1/t/"+string(t.ID) && !claimed:
		case path == "/v1" && claimed:
		case path == "/v1":
			ps.add("api", "%s is the host form, which serves a tenant on its own hostnames only (%s); call %s://HOST/v1/t/%s on the shared host", clip(in.API), strings.Join(t.Hostnames, ", "), api.Scheme, t.ID)
		case claimed:
			ps.add("api", "%s is this tenant's own hostname, which serves the host form only: call %s://%s/v1", c.apiHost, api.Scheme, api.Host)
		default:
			ps.add("api", "%s does not serve tenant %q: its base URL ends in /v1 on one of its hostnames, or /v1/t/%s on the shared host", clip(in.API), t.ID, t.ID)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	c.listed = slices.Contains(t.Origins, c.pageOrigin)
	c.relation = relationOf(c.pageCanon, c.apiOrig)
	c.secure = !(t.Dev && t.Cookie.SameSite != SameSiteNone && !c.apiHTTPS && IsLoopbackHost(c.apiHost))
	return c, nil
}

// clip bounds user input quoted in a problem.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// jsonMediaType reports whether a Content-Type is the JSON the login takes
// (application/json, parameters allowed), which also makes the request
// need a preflight (Fetch: a CORS-safelisted request-header's Content-Type
// is only text/plain, multipart/form-data or application/x-www-form-urlencoded).
func jsonMediaType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// relationOf is the schemeful relation of a page origin to an API origin.
// An opaque page is cross-site to everything.
func relationOf(page, api string) string {
	switch {
	case page == api:
		return RelationSameOrigin
	case page == "null":
		return RelationCrossSite
	}
	ps, ok1 := siteOf(page)
	as, ok2 := siteOf(api)
	if ok1 && ok2 && ps == as {
		return RelationSameSite
	}
	return RelationCrossSite
}

// predict is the doctor's rule book for one profile, in the order a
// browser meets the problems: a request it will not send, a CORS answer it
// will not expose, a login Latchkey refuses, a cookie it will not store.
func (c *doctorCase) predict(p string) Verdict {
	v := Verdict{Browser: p, Reasons: []string{}}
	fail := func(reasons ...string) Verdict { v.Reasons = append(v.Reasons, reasons...); return v }
	safari := p == ProfileSafari || p == ProfileSafariNoCHIPS
	apiLoopback := IsLoopbackHost(c.apiHost)

	// Mixed content: an https page may not fetch http, except from a
	// potentially trustworthy origin, which loopback is (W3C Secure
	// Contexts §3.2; Mixed Content §4.3).
	if c.pageHTTPS && !c.apiHTTPS && !apiLoopback {
		return fail(ReasonMixedContent)
	}
	// CORS: a listed origin gets the credentialed grant; any other the
	// refusal, with no Access-Control-Allow-Origin, before any work.
	if c.relation != RelationSameOrigin && !c.listed {
		if c.json {
			return fail(ReasonPreflightNoAllowOrigin, ReasonOriginNotListed)
		}
		return fail(ReasonNoAllowOrigin, ReasonOriginNotListed)
	}
	v.PreflightOK = true
	if !c.json {
		// A simple request: sent without a preflight, refused 415, so
		// nothing is set.
		return fail(ReasonContentTypeNotJSON)
	}
	// Without credentials the browser ignores Set-Cookie and sends none
	// (Fetch: "credentials mode"); same-origin counts only same-origin.
	if c.credentials == CredentialsOmit || (c.credentials == CredentialsSameOrigin && c.relation != RelationSameOrigin) {
		return fail(ReasonCredentialsNotIncluded)
	}
	// A Secure cookie over plain HTTP: refused, but Chrome and Firefox
	// take loopback for a secure context and keep it there; Safari does
	// not (WebKit bug 281149).
	if c.secure && !c.apiHTTPS && (!apiLoopback || safari) {
		return fail(ReasonSecureOnly)
	}
	if c.relation == RelationCrossSite {
		if r := c.thirdParty(p); len(r) > 0 {
			if c.page != nil && IsLoopbackHost(c.page.Hostname()) && apiLoopback {
				r = append(r, ReasonLoopbackNamesDiffer)
			}
			return fail(r...)
		}
	}
	v.CookieStored, v.CookieSent, v.Works = true, true, true
	return v
}

// thirdParty returns why profile p drops the cookie of a cross-site
// login, or nothing when it keeps it.
func (c *doctorCase) thirdParty(p string) []string {
	lax := c.t.Cookie.SameSite != SameSiteNone
	sameSite, schemeful := ReasonSameSiteLax, ReasonSchemefulSameSiteLax
	if c.t.Cookie.SameSite == SameSiteStrict {
		sameSite, schemeful = ReasonSameSiteStrict, ReasonSchemefulSameSiteStrict
	}
	switch p {
	case ProfileChrome:
		// A Lax or Strict cookie never goes with a cross-site fetch
		// (RFC 6265bis §5.2); Chrome names it Schemeful (e2e).
		if lax {
			return []string{schemeful}
		}
	case ProfileChrome3PCBlocked:
		// Chrome reports the block of third-party cookies first, for a
		// Lax cookie too (e2e); a partitioned cookie is kept (CHIPS).
		switch {
		case lax:
			return []string{ReasonUserPreferences, ReasonThirdPartyPhaseout, schemeful}
		case !c.t.Cookie.Partitioned:
			return []string{ReasonUserPreferences, ReasonThirdPartyPhaseout}
		}
	case ProfileFirefox:
		// Total Cookie Protection keeps a None cookie, partitioned.
		if lax {
			return []string{sameSite}
		}
	case ProfileFirefoxStrict:
		switch {
		case lax:
			return []string{sameSite}
		case c.t.Cookie.Partitioned:
			return []string{ReasonPartitionedBlocked}
		default:
			return []string{ReasonUserPreferences}
		}
	case ProfileSafari:
		switch {
		case lax:
			return []string{sameSite}
		case !c.t.Cookie.Partitioned:
			return []string{ReasonThirdPartyBlocked}
		}
	case ProfileSafariNoCHIPS:
		switch {
		case lax:
			return []string{sameSite}
		case c.t.Cookie.Partitioned:
			return []string{ReasonNoCHIPS}
		default:
			return []string{ReasonThirdPartyBlocked}
		}
	}
	return nil
}

// advise names the one fix for v's first reason.
func (c *doctorCase) advise(v Verdict, hint *OriginHint) string {
	if v.Works {
		return "Nothing to fix: the login sticks in this browser."
	}
	if slices.Contains(v.Reasons, ReasonLoopbackNamesDiffer) {
		return fmt.Sprintf("Call the API by the page's own host name (%s), not %s: browsers take localhost, 127.0.0.1 and [::1] for different sites.", c.page.Hostname(), c.apiHost)
	}
	site := siteName(c.pageCanon)
	hostFix := "add a hostname on the SPA's site to the tenant (e.g. auth." + site + ") and call it in host form (https://auth." + site + "/v1), the one set-up that works in every browser"
	switch v.Reasons[0] {
	case ReasonMixedContent:
		return fmt.Sprintf("Call the API over HTTPS (https://%s): a page on https may not fetch plain http.", c.apiHost)
	case ReasonPreflightNoAllowOrigin, ReasonNoAllowOrigin:
		if c.pageOrigin == "null" {
			return "Serve the page from an http(s) origin: an opaque origin (a sandboxed iframe, a file: page) can never be listed."
		}
		switch {
		case hint != nil && slices.Equal(hint.Differs, []string{"path"}):
			return fmt.Sprintf("An origin has no path or trailing slash: the browser sends %s, which is listed; compare the Origin header, not the page's URL.", hint.Origin)
		case hint != nil:
			return fmt.Sprintf("Load the page from %s, the listed origin it differs from in %s, or add %s to the tenant's origins.", hint.Origin, strings.Join(hint.Differs, " and "), c.pageCanon)
		}
		return fmt.Sprintf("Add %s to the tenant's origins.", c.pageCanon)
	case ReasonContentTypeNotJSON:
		return "Send the login as JSON with Content-Type: application/json (e.g. fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(...)}))."
	case ReasonCredentialsNotIncluded:
		return "Call fetch with credentials: 'include' (axios: withCredentials: true) on every call to the API, the login included."
	case ReasonSecureOnly:
		if IsLoopbackHost(c.apiHost) {
			return "Set cookie.same_site lax on this dev tenant (the page and the API are one site here, and a dev tenant's Lax cookie over plain HTTP on this machine is not Secure), or serve both over HTTPS."
		}
		return fmt.Sprintf("Serve the API over HTTPS (https://%s): browsers store no Secure cookie from plain HTTP.", c.apiHost)
	case ReasonSchemefulSameSiteLax, ReasonSchemefulSameSiteStrict, ReasonSameSiteLax, ReasonSameSiteStrict:
		return "A Lax or Strict cookie never goes with a cross-site fetch: " + hostFix + "; or set cookie.same_site none with partitioned: true, which Safari before 26.2 and Firefox blocking cross-site cookies still drop."
	case ReasonUserPreferences, ReasonThirdPartyBlocked:
		if c.t.Cookie.SameSite != SameSiteNone {
			return "Third-party cookies are blocked here: " + hostFix + "."
		}
		return "This browser blocks third-party cookies: " + hostFix + "; or set cookie.partitioned true, which Chrome and Safari 26.2+ keep."
	case ReasonPartitionedBlocked, ReasonNoCHIPS:
		return "This browser drops even a partitioned cookie: " + hostFix + "."
	}
	return hostFix + "."
}

// siteName is the registrable domain of an origin, for advice.
func siteName(origin string) string {
	s, ok := siteOf(origin)
	if !ok {
		return "your-spa.example"
	}
	_, host, _ := strings.Cut(s, "://")
	return host
}

// closestOrigin returns the listed origin nearest to page (an origin as
// given, not listed), and what differs; nil when nothing is listed or page
// is opaque. Nearest means the fewest differing parts, then the closest
// host.
func closestOrigin(page *url.URL, listed []string) *OriginHint {
	if page == nil || len(listed) == 0 {
		return nil
	}
	var best *OriginHint
	bestScore := 0
	for _, o := range listed {
		u, err := url.Parse(o)
		if err != nil {
			continue
		}
		var differs []string
		if u.Scheme != page.Scheme {
			differs = append(differs, "scheme")
		}
		if u.Hostname() != page.Hostname() {
			differs = append(differs, "host")
		}
		if u.Port() != page.Port() {
			differs = append(differs, "port")
		}
		if page.Path != "" || page.RawQuery != "" || page.ForceQuery {
			differs = append(differs, "path")
		}
		score := len(differs)*10_000 + editDistance(u.Hostname(), page.Hostname())
		if best == nil || score < bestScore {
			best, bestScore = &OriginHint{Origin: o, Differs: differs}, score
		}
	}
	return best
}

// canonicalOrigin is the origin of u as a browser serializes it: scheme and
// host in lowercase, no default port, no path.
func canonicalOrigin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(scheme == "http" && p == "80") && !(scheme == "https" && p == "443") {
		host += ":" + p
	}
	return scheme + "://" + host
}

// editDistance is the Levenshtein distance of two short host names
// (bounded by maxDoctorInput), in O(len(a)·len(b)) time and O(len(b)) space.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Browser families a User-Agent is told apart by, for the live check and
// the cookie-not-sent diagnosis: which profiles of DoctorProfiles it may be.
const (
	FamilyChrome  = "chrome"
	FamilyFirefox = "firefox"
	FamilySafari  = "safari"
	FamilyUnknown = "unknown"
)

// BrowserFamily returns the family of a User-Agent and the profiles it may
// be in; every profile for FamilyUnknown. A User-Agent says nothing of a
// user's cookie settings, hence several profiles. Every browser on iOS and
// iPadOS is WebKit, whatever it calls itself (App Store Review Guidelines
// 2.5.6, outside the EU), so CriOS and FxiOS count as Safari.
func BrowserFamily(userAgent string) (family string, profiles []string) {
	ua := userAgent
	if len(ua) > maxDoctorInput {
		ua = ua[:maxDoctorInput]
	}
	switch {
	case strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPad") || strings.Contains(ua, "CriOS/") || strings.Contains(ua, "FxiOS/"):
		return FamilySafari, []string{ProfileSafari, ProfileSafariNoCHIPS}
	case strings.Contains(ua, "Firefox/"):
		return FamilyFirefox, []string{ProfileFirefox, ProfileFirefoxStrict}
	case strings.Contains(ua, "Chrome/") || strings.Contains(ua, "Chromium/"):
		return FamilyChrome, []string{ProfileChrome, ProfileChrome3PCBlocked}
	case strings.Contains(ua, "Safari/") || strings.Contains(ua, "AppleWebKit/"):
		return FamilySafari, []string{ProfileSafari, ProfileSafariNoCHIPS}
	}
	return FamilyUnknown, slices.Clone(DoctorProfiles)
}
