package session

import (
	"fmt"
	"mime"
	"net"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/idna"
)

// The doctor predicts, from a tenant's configuration alone, what each
// browser will do with a page's login against Latchkey and the `me` that
// follows: whether the CORS checks pass, whether the session cookie is
// stored and sent back, and why not, with the fix. The rules below are the
// ones the end-to-end suite observes in Chromium, Firefox ESR and WebKitGTK
// (e2e/expectations.txt, checked against this code row by row by
// e2e/doctor_test.go); where a profile or a case cannot run here, each
// rule cites its source. The sources, by the short names the rules use:
//   - Fetch: the WHATWG Fetch Standard, https://fetch.spec.whatwg.org/
//     (CORS check, CORS-safelisted request-header, credentials mode).
//   - 6265bis: draft-ietf-httpbis-rfc6265bis, the cookie standard
//     browsers implement, https://datatracker.ietf.org/doc/draft-ietf-httpbis-rfc6265bis/
//     ("same-site" and "site" of a request, schemeful; the storage model,
//     which ignores a Lax or Strict cookie from a cross-site subresource
//     response and a Secure one from a non-secure origin).
//   - Mixed Content: https://w3c.github.io/webappsec-mixed-content/, and
//     which engines exempt loopback: MDN's browser-compat-data
//     http.mixed-content.allow_localhost_url and .allow_loopback_url
//     (https://github.com/mdn/browser-compat-data/blob/main/http/mixed-content.json:
//     Chrome yes, Firefox since 84 and 55, Safari no, WebKit bug 171934,
//     https://bugs.webkit.org/show_bug.cgi?id=171934).
//   - CDP: Chrome's reason names, the DevTools protocol's Network domain,
//     https://chromedevtools.github.io/devtools-protocol/tot/Network/
//     (CorsError, SetCookieBlockedReason, CookieBlockedReason).
//   - CHIPS: Chrome's docs, https://developer.chrome.com/docs/privacy-sandbox/chips
//     (a Partitioned cookie is kept where third-party cookies are blocked).

// Browser profiles the doctor predicts for, by their stable ids.
const (
	// ProfileChrome: Chrome (and Edge) with third-party cookies allowed,
	// still their default (e2e: chromium/3pc-allowed).
	ProfileChrome = "chrome"
	// ProfileChrome3PCBlocked: Chrome with third-party cookies blocked: a
	// user's setting, Incognito (blocked by default since Chrome 83), or
	// the phase-out; a Partitioned cookie is kept (CHIPS; e2e:
	// chromium/3pc-blocked, chromium/3pc-phaseout).
	ProfileChrome3PCBlocked = "chrome-3pc-blocked"
	// ProfileFirefox: Firefox's default, Total Cookie Protection, which
	// keeps every third-party cookie partitioned by the top-level site
	// (network.cookie.cookieBehavior 5; MDN, State Partitioning,
	// https://developer.mozilla.org/en-US/docs/Web/Privacy/Guides/State_Partitioning;
	// https://blog.mozilla.org/security/2021/02/23/total-cookie-protection/;
	// e2e: firefox/default).
	ProfileFirefox = "firefox"
	// ProfileFirefoxStrict: Firefox with cross-site cookies blocked
	// (cookieBehavior 1), partitioned ones included (e2e: firefox/3pc-blocked).
	ProfileFirefoxStrict = "firefox-strict"
	// ProfileSafari: Safari 26.2 and later, which blocks third-party cookies
	// but keeps partitioned ones: CHIPS shipped in Safari 18.4, was turned
	// off again in 18.5 (WebKit bug 292975) and is back for good in 26.2
	// (Safari 26.2 release notes, Privacy,
	// https://developer.apple.com/documentation/safari-release-notes/safari-26_2-release-notes;
	// MDN browser-compat-data, https://github.com/mdn/browser-compat-data/pull/28470).
	// Not run here: no engine of the suite has CHIPS on WebKit.
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
	ReasonMixedContent            = "MixedContent"                      // blocked before CORS: https page, http API (Chrome's BlockedReason mixed-content)
	ReasonPreflightNoAllowOrigin  = "PreflightMissingAllowOriginHeader" // CorsError: a preflighted request from an unlisted origin
	ReasonNoAllowOrigin           = "MissingAllowOriginHeader"          // CorsError: the same without a preflight
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
	// Closest is, for a page origin the tenant does not list as given,
	// the listed origin nearest to the one the browser sends and what
	// differs. A page origin written with a trailing slash, a path, capitals
	// or a default port is judged as the browser serializes it, so it can
	// work and still get a hint naming its "path".
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
	if !slices.Contains(t.Origins, in.PageOrigin) && c.relation != RelationSameOrigin {
		if h := closestOrigin(c.page, t.Origins); h != nil && len(h.Differs) > 0 {
			d.Closest = h
		}
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
	// preflighted: the login's Content-Type is not CORS-safelisted, so the
	// browser sends a preflight first (Fetch, CORS-safelisted
	// request-header).
	preflighted bool
	// secure: the cookie Latchkey sets there is Secure (all but a dev
	// tenant's over plain HTTP on loopback, Tenant.OverPlainLoopback).
	secure bool
	// namesDiffer: the page and the API are on this machine under two
	// names (localhost, 127.0.0.1, [::1]), which are two sites.
	namesDiffer bool
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
	c.preflighted = !safelistedContentType(ct)

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
		// Judged as the browser serializes it: Latchkey compares the
		// Origin header, which has no path, capitals or default port,
		// byte for byte with the list (Fetch, "serializing a request
		// origin").
		c.pageOrigin = in.PageOrigin
		c.pageCanon = canonicalOrigin(u)
	}

	api, err := url.Parse(in.API)
	switch {
	case len(in.API) > maxDoctorInput:
		ps.add("api", "is longer than %d bytes", maxDoctorInput)
	case err != nil || (api.Scheme != "http" && api.Scheme != "https") || api.Host == "" || api.User != nil:
		ps.add("api", "must be the http or https URL the page calls, such as https://auth.acme.com/v1 or https://auth.example/v1/t/%s, got %q", t.ID, clip(in.API))
	case api.RawQuery != "" || api.ForceQuery || api.Fragment != "" || strings.Contains(in.API, "#"):
		// The page appends /login to the base; after a query or a
		// fragment that is no path at Latchkey.
		ps.add("api", "is a base URL, which has no query or fragment: the page calls it with /login and /me appended, got %q", clip(in.API))
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
			ps.add("api", "%s is this tenant's own hostname, which serves the host form only: call %s://%s/v1", clip(c.apiHost), api.Scheme, clip(api.Host))
		default:
			ps.add("api", "%s does not serve tenant %q: its base URL ends in /v1 on one of its hostnames, or /v1/t/%s on the shared host", clip(in.API), t.ID, t.ID)
		}
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	c.listed = slices.Contains(t.Origins, c.pageCanon)
	c.relation = relationOf(c.pageCanon, c.apiOrig)
	c.secure = !(t.Dev && t.Cookie.SameSite != SameSiteNone && !c.apiHTTPS && IsLoopbackHost(c.apiHost))
	if c.page != nil && IsLoopbackHost(c.page.Hostname()) && IsLoopbackHost(c.apiHost) {
		c.namesDiffer = loopbackName(c.pageCanon) != loopbackName(c.apiOrig)
	}
	return c, nil
}

// clip bounds user input quoted in a problem.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}

// jsonMediaType reports whether a Content-Type is the JSON the login takes:
// exactly what the api's requireJSON accepts (mime.ParseMediaType, then
// application/json; parameters allowed, malformed ones not).
func jsonMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// safelistedContentType reports whether a Content-Type value is a
// CORS-safelisted request-header, which a POST may carry without a
// preflight (Fetch, "CORS-safelisted request-header": at most 128 bytes,
// no CORS-unsafe request-header byte, and the essence of its MIME type
// application/x-www-form-urlencoded, multipart/form-data or text/plain).
// Any other, JSON included, makes the browser send a preflight first.
func safelistedContentType(ct string) bool {
	if len(ct) > 128 {
		return false
	}
	for i := 0; i < len(ct); i++ {
		b := ct[i]
		if (b < 0x20 && b != '\t') || b == 0x7f || strings.IndexByte(`"():<>?@[\]{}`, b) >= 0 {
			return false
		}
	}
	essence, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.Trim(essence, " \t\r\n")) {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
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
	// A cookie dropped between two names of this machine is dropped for
	// that first: the fix is the name (6265bis: localhost and 127.0.0.1
	// are two hosts, so two sites).
	dropped := func(reasons ...string) Verdict {
		if c.namesDiffer {
			reasons = append(reasons, ReasonLoopbackNamesDiffer)
		}
		return fail(reasons...)
	}
	safari := p == ProfileSafari || p == ProfileSafariNoCHIPS
	apiLoopback := IsLoopbackHost(c.apiHost)

	// Mixed content: an https page may not fetch http (Mixed Content),
	// except from a potentially trustworthy origin, which loopback is to
	// Chrome and Firefox but not to Safari (browser-compat-data
	// allow_localhost_url and allow_loopback_url; WebKit bug 171934). Chrome
	// blocks it before any CORS check.
	if c.pageHTTPS && !c.apiHTTPS && (!apiLoopback || safari) {
		return fail(ReasonMixedContent)
	}
	// CORS: a listed origin gets the credentialed grant; any other the
	// refusal, with no Access-Control-Allow-Origin, before any work
	// (api refuseForeign; e2e disallowed-*). The reason Chrome gives
	// depends on whether a preflight went first (CDP CorsError).
	if c.relation != RelationSameOrigin && !c.listed {
		if c.preflighted {
			return fail(ReasonPreflightNoAllowOrigin, ReasonOriginNotListed)
		}
		return fail(ReasonNoAllowOrigin, ReasonOriginNotListed)
	}
	v.PreflightOK = true
	if !c.json {
		// Refused 415, so nothing is set (e2e text-plain-login,
		// form-login); readable, the origin being listed.
		return fail(ReasonContentTypeNotJSON)
	}
	// Without credentials the browser ignores Set-Cookie and sends none
	// (Fetch, credentials mode); same-origin counts only a same-origin
	// API, not a same-site one (e2e same-origin-credentials-*).
	if c.credentials == CredentialsOmit || (c.credentials == CredentialsSameOrigin && c.relation != RelationSameOrigin) {
		return fail(ReasonCredentialsNotIncluded)
	}
	// A Secure cookie over plain HTTP is ignored (6265bis storage model),
	// but Chrome and Firefox take loopback for a secure context and keep
	// it there; Safari does not (WebKit bug 281149,
	// https://bugs.webkit.org/show_bug.cgi?id=281149; browser-compat-data
	// notes it on Set-Cookie, https://github.com/mdn/browser-compat-data/pull/28461;
	// WebKit's fix, https://github.com/WebKit/WebKit/pull/61338, is only
	// the first half, so the rule stands until a Safari release note says
	// otherwise).
	if c.secure && !c.apiHTTPS && (!apiLoopback || safari) {
		return dropped(ReasonSecureOnly)
	}
	if c.relation == RelationCrossSite {
		if r := c.thirdParty(p); len(r) > 0 {
			return dropped(r...)
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
	// A Lax or Strict cookie is neither stored from nor sent with a
	// cross-site fetch in any engine (6265bis storage model and "same-site"
	// requests; e2e login-lax-cross-site in every profile).
	switch p {
	case ProfileChrome:
		// Chrome names it Schemeful even when only the hosts differ, as
		// schemeful same-site is on (e2e: no:SchemefulSameSiteLax).
		if lax {
			return []string{schemeful}
		}
	case ProfileChrome3PCBlocked:
		// Chrome reports the block of third-party cookies first, for a
		// Lax cookie too: UserPreferences for the user's setting,
		// ThirdPartyPhaseout for the phase-out (e2e login-none,
		// login-lax-cross-site); a partitioned cookie is kept (CHIPS; e2e
		// login-none-partitioned).
		switch {
		case lax:
			return []string{ReasonUserPreferences, ReasonThirdPartyPhaseout, schemeful}
		case !c.t.Cookie.Partitioned:
			return []string{ReasonUserPreferences, ReasonThirdPartyPhaseout}
		}
	case ProfileFirefox:
		// Total Cookie Protection keeps a None cookie, partitioned by the
		// page's site, Partitioned or not (e2e login-none: partitioned).
		if lax {
			return []string{sameSite}
		}
	case ProfileFirefoxStrict:
		// Cross-site cookies blocked drops them all, Partitioned ones
		// too (e2e login-none-partitioned, login-none: no).
		switch {
		case lax:
			return []string{sameSite}
		case c.t.Cookie.Partitioned:
			return []string{ReasonPartitionedBlocked}
		default:
			return []string{ReasonUserPreferences}
		}
	case ProfileSafari:
		// Third-party cookies blocked, but CHIPS keeps a Partitioned one
		// (Safari 26.2 release notes; see ProfileSafari).
		switch {
		case lax:
			return []string{sameSite}
		case !c.t.Cookie.Partitioned:
			return []string{ReasonThirdPartyBlocked}
		}
	case ProfileSafariNoCHIPS:
		// Every third-party cookie blocked (Full Third-Party Cookie
		// Blocking; e2e webkit/*: inferred:no for none and
		// none-partitioned alike).
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
		return fmt.Sprintf("Call the API by the page's own host name (%s), not %s: browsers take localhost, 127.0.0.1 and [::1] for different sites.", loopbackName(c.pageCanon), loopbackName(c.apiOrig))
	}
	apiHost := c.apiHost
	if strings.Contains(apiHost, ":") {
		apiHost = "[" + apiHost + "]"
	}
	hostFix := c.hostFix()
	lax := c.t.Cookie.SameSite != SameSiteNone
	switch v.Reasons[0] {
	case ReasonMixedContent:
		if IsLoopbackHost(c.apiHost) {
			return fmt.Sprintf("Serve the API over HTTPS too (https://%s), or the page over plain HTTP like the API: Safari blocks an https page's fetch of plain http, even on this machine.", apiHost)
		}
		return fmt.Sprintf("Call the API over HTTPS (https://%s): a page on https may not fetch plain http.", apiHost)
	case ReasonPreflightNoAllowOrigin, ReasonNoAllowOrigin:
		if c.pageOrigin == "null" {
			return "Serve the page from an http(s) origin: an opaque origin (a sandboxed iframe, a file: page) can never be listed."
		}
		if hint != nil {
			return fmt.Sprintf("Load the page from %s, the listed origin it differs from in %s, or add %s to the tenant's origins.", hint.Origin, strings.Join(hint.Differs, " and "), c.pageCanon)
		}
		return fmt.Sprintf("Add %s to the tenant's origins.", c.pageCanon)
	case ReasonContentTypeNotJSON:
		return "Send the login as JSON with Content-Type: application/json (e.g. fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(...)}))."
	case ReasonCredentialsNotIncluded:
		return "Call fetch with credentials: 'include' (axios: withCredentials: true) on every call to the API, the login included."
	case ReasonSecureOnly:
		switch {
		case !IsLoopbackHost(c.apiHost):
			return fmt.Sprintf("Serve the API over HTTPS (https://%s): browsers store no Secure cookie from plain HTTP.", apiHost)
		case !c.t.Dev:
			return "Serve the API over HTTPS, or mark this tenant dev: true with cookie.same_site lax: Safari stores no Secure cookie from plain HTTP, even on this machine, and only a dev tenant's Lax or Strict cookie over plain HTTP here is not Secure."
		}
		return "Set cookie.same_site lax on this dev tenant (the page and the API are one site here, and a dev tenant's Lax cookie over plain HTTP on this machine is not Secure), or serve both over HTTPS: Safari stores no Secure cookie from plain HTTP, even on this machine."
	case ReasonSchemefulSameSiteLax, ReasonSchemefulSameSiteStrict, ReasonSameSiteLax, ReasonSameSiteStrict:
		return "A Lax or Strict cookie never goes with a cross-site fetch: " + hostFix + "; or set cookie.same_site none with partitioned: true, which Safari before 26.2 and Firefox blocking cross-site cookies still drop."
	case ReasonUserPreferences, ReasonThirdPartyBlocked:
		if lax {
			return "A Lax or Strict cookie never goes with a cross-site fetch, and this browser blocks third-party cookies too: " + hostFix + "."
		}
		return "This browser blocks third-party cookies: " + hostFix + "; or set cookie.partitioned true, which Chrome and Safari 26.2+ keep."
	case ReasonPartitionedBlocked, ReasonNoCHIPS:
		return "This browser drops even a partitioned cookie: " + hostFix + "."
	}
	return hostFix + "."
}

// hostFix is the fix of a cross-site page: make the API same-site.
func (c *doctorCase) hostFix() string {
	switch {
	case c.page != nil && IsLoopbackHost(c.page.Hostname()) && IsLoopbackHost(c.apiHost):
		// Same name (namesDiffer would have named the fix), so the
		// schemes differ: two sites (6265bis, schemeful).
		return "serve the page and the API over the same scheme (both http or both https): http://localhost and https://localhost are different sites"
	case c.page != nil && IsLoopbackHost(c.page.Hostname()):
		return "call the API on this machine, by the page's own name and scheme (e.g. through the dev server's proxy), so that the two are one site"
	case c.page != nil && net.ParseIP(c.page.Hostname()) != nil:
		return "serve the SPA under a domain name, add a hostname on its site to the tenant and call it in host form: an IP address is a site of its own"
	}
	site := siteName(c.pageCanon)
	for _, h := range c.t.Hostnames {
		if hs, ok := siteOf("https://" + h); ok && hs == "https://"+site {
			// The tenant already has one: the page should call it.
			return "call the tenant's own hostname on the SPA's site in host form (https://" + h + "/v1) instead of " + c.apiHost + ", the one set-up that works in every browser"
		}
	}
	return "add a hostname on the SPA's site to the tenant (e.g. auth." + site + ") and call it in host form (https://auth." + site + "/v1), the one set-up that works in every browser"
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
// given, not listed as given), and what differs between the listed one
// and the origin the browser sends from page, plus "path" when page has a
// path, a trailing slash or a query; nil when nothing is listed or page is
// opaque. Nearest means the fewest differing parts, then the closest host.
func closestOrigin(page *url.URL, listed []string) *OriginHint {
	if page == nil || len(listed) == 0 {
		return nil
	}
	scheme, host, port := originParts(page)
	var best *OriginHint
	bestScore := 0
	for _, o := range listed {
		u, err := url.Parse(o)
		if err != nil {
			continue
		}
		ls, lh, lp := originParts(u)
		var differs []string
		if ls != scheme {
			differs = append(differs, "scheme")
		}
		if lh != host {
			differs = append(differs, "host")
		}
		if lp != port {
			differs = append(differs, "port")
		}
		if page.Path != "" || page.RawQuery != "" || page.ForceQuery {
			differs = append(differs, "path")
		}
		score := len(differs)*10_000 + editDistance(lh, host)
		if best == nil || score < bestScore {
			best, bestScore = &OriginHint{Origin: o, Differs: differs}, score
		}
	}
	return best
}

// originParts are the scheme, host and port of u as a browser serializes
// its origin (canonicalOrigin), the port "" when it is the default.
func originParts(u *url.URL) (scheme, host, port string) {
	scheme = strings.ToLower(u.Scheme)
	host = strings.ToLower(u.Hostname())
	if !strings.Contains(host, ":") {
		// The URL Standard's host parser: domain to ASCII (punycode),
		// lowercase. A name it refuses stays as written, and unlisted.
		if a, err := idna.Lookup.ToASCII(host); err == nil {
			host = a
		}
	}
	port = u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	return scheme, host, port
}

// canonicalOrigin is the origin of u as a browser serializes it (Fetch,
// "serializing a request origin"; URL Standard): scheme and host in
// lowercase, a name in punycode, an IPv6 address in brackets, no default
// port, no path. A trailing dot stays: it names another host.
func canonicalOrigin(u *url.URL) string {
	scheme, host, port := originParts(u)
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// editDistance is the Levenshtein distance of two host names, each cut to
// MaxHostnameLen bytes (a longer one is no DNS name, and the cut bounds a
// diagnosis of a hostile Origin): O(len(a)·len(b)) time, O(len(b)) space.
func editDistance(a, b string) int {
	a, b = a[:min(len(a), MaxHostnameLen)], b[:min(len(b), MaxHostnameLen)]
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
