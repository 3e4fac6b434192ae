package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/latchkeyhq/latchkey/session"
)

// The doctor at the edge: the live check (GET doctor), which answers what
// Latchkey saw of a request and what the doctor (session/doctor.go)
// predicts for its browser; and the diagnosis a session route gives a
// request that came without the session cookie but with a login receipt,
// the proof that this browser was given the cookie and did not send it.

// apiBase is the base URL r was sent to, as the page (of origin page, ""
// for none) calls it, and its origin: the scheme the browser used, its
// Host, and /v1/t/{tenant} (path form) or /v1 (host form), t being the
// tenant servePublic resolved. The scheme is https when r reached
// Latchkey over HTTPS (overHTTPS), and also when an https page sent it
// to a host that is not loopback: a browser fetches no plain http from
// an https page but loopback (mixed content), so the browser spoke
// HTTPS to a TLS proxy that Latchkey does not trust, or that sends no
// X-Forwarded-Proto. Taking such a request for plain HTTP would diagnose
// every login as blocked mixed content.
func (s *Server) apiBase(r *http.Request, t *session.Tenant, page string) (base, origin string) {
	origin = "http://" + r.Host
	if s.overHTTPS(r) || (strings.HasPrefix(page, "https://") && !loopbackHost(r)) {
		origin = "https://" + r.Host
	}
	path := r.URL.RawPath // as servePublic tells the forms apart
	if path == "" {
		path = r.URL.Path
	}
	if strings.HasPrefix(path, pathFormPrefix) {
		return origin + pathFormPrefix + string(t.ID), origin
	}
	return origin + "/v1", origin
}

// maxDoctorHeader bounds the Origin and Host the doctor is asked about:
// past it, a request is none a browser sent, and nothing is parsed.
const maxDoctorHeader = 2048

// maxEchoedHeader bounds a Fetch Metadata header the live check repeats:
// every value the standard defines is a dozen bytes.
const maxEchoedHeader = 64

// diagnose asks the doctor about the page that sent r, with the tenant
// as r resolved it. A request without Origin came from the API's own
// origin (a browser sends Origin on every cross-origin fetch) or from no
// browser: it is diagnosed as a page of that origin.
func (s *Server) diagnose(r *http.Request, t *session.Tenant, origin string) (session.Diagnosis, error) {
	api, own := s.apiBase(r, t, origin)
	if len(origin) > maxDoctorHeader || len(api) > maxDoctorHeader {
		return session.Diagnosis{}, errors.New("api: Origin or Host too long to diagnose")
	}
	page := origin
	if page == "" {
		page = own
	}
	return t.Doctor(session.DoctorInput{PageOrigin: page, API: api})
}

// doctorLive is the live check's answer (openapi.yaml's DoctorLive).
type doctorLive struct {
	Origin        string            `json:"origin"`
	OriginListed  bool              `json:"origin_listed"`
	SecFetchSite  string            `json:"sec_fetch_site"`
	SecFetchMode  string            `json:"sec_fetch_mode"`
	CookiePresent bool              `json:"cookie_present"`
	SessionValid  bool              `json:"session_valid"`
	BrowserFamily string            `json:"browser_family"`
	SiteRelation  string            `json:"site_relation"`
	Results       []session.Verdict `json:"results"`
}

// handleDoctor is the live check: what Latchkey saw of this request (its
// Origin, whether the tenant lists it, its Fetch Metadata, whether a
// session cookie came and names a live session, the browser family of its
// User-Agent) and the doctor's verdict for each profile of that family.
// A page calls it with its login's fetch options. It sets no cookie and
// answers nothing secret: whether the session is valid is what me tells
// the same caller anyway, and the session is only read, never slid, so
// that checking changes nothing. Foreign origins were refused before
// (refuseForeign), as on every route.
func (s *Server) handleDoctor(w http.ResponseWriter, r *http.Request) {
	t := tenantFromContext(r.Context())
	origin := r.Header.Get("Origin") // serveTenant refused several
	d, err := s.diagnose(r, t, origin)
	if err != nil {
		s.writeError(w, r, errorf(kindBadRequest, "the doctor cannot check this request: its Origin is no http(s) origin, or its Host no host name"))
		return
	}
	values := cookieValues(nil, r, t)
	valid, err := s.m.Valid(r.Context(), t, values)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	family, profiles := session.BrowserFamily(r.UserAgent())
	v := doctorLive{
		Origin:        origin,
		OriginListed:  origin != "" && slices.Contains(t.Origins, origin),
		SecFetchSite:  clipHeader(r.Header.Get("Sec-Fetch-Site")),
		SecFetchMode:  clipHeader(r.Header.Get("Sec-Fetch-Mode")),
		CookiePresent: len(values) > 0,
		SessionValid:  valid,
		BrowserFamily: family,
		SiteRelation:  d.SiteRelation,
		Results:       make([]session.Verdict, 0, len(profiles)),
	}
	for _, p := range profiles {
		if vd, ok := d.Verdict(p); ok {
			v.Results = append(v.Results, vd)
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// clipHeader bounds a header value the live check repeats.
func clipHeader(v string) string {
	if len(v) > maxEchoedHeader {
		return v[:maxEchoedHeader]
	}
	return v
}

// profileNames name the doctor's profiles in a sentence.
var profileNames = map[string]string{
	session.ProfileChrome:           "Chrome",
	session.ProfileChrome3PCBlocked: "Chrome with third-party cookies blocked (a setting, Incognito, or the phase-out)",
	session.ProfileFirefox:          "Firefox",
	session.ProfileFirefoxStrict:    "Firefox blocking cross-site cookies",
	session.ProfileSafari:           "Safari",
	session.ProfileSafariNoCHIPS:    "Safari before 26.2",
}

// familyNames name the browser families in a sentence.
var familyNames = map[string]string{
	session.FamilyChrome:  "Chrome",
	session.FamilyFirefox: "Firefox",
	session.FamilySafari:  "Safari",
	session.FamilyUnknown: "this browser",
}

// adviceCredentials is the advice when the doctor predicts that the
// browser keeps and sends the cookie: then the page did not ask it to.
const adviceCredentials = "Call fetch with credentials: 'include' (axios: withCredentials: true) on every call to the API, the login included; if the page already does, a privacy setting or an extension of this browser blocks the cookie."

// cookieNotSent is the problem for r, a request to one of t's session
// routes that came with a valid login receipt and no session cookie: the
// browser was given the cookie and dropped it. The diagnosis is the
// doctor's for the request's page (its Origin) and the API as it was
// called, in the first profile of the User-Agent's family that fails;
// when every one works, the page sent no credentials (or a setting or an
// extension stopped the cookie), CredentialsNotIncluded. It returns
// ErrUnauthenticated when the doctor cannot read the request, which only
// a client of its own making sends. It is never inlined: `me` without a
// cookie is every logged-out page load, and most carry no receipt.
//
//go:noinline
func (s *Server) cookieNotSent(r *http.Request, t *session.Tenant) error {
	origin := r.Header.Get("Origin")
	d, err := s.diagnose(r, t, origin)
	if err != nil {
		return session.ErrUnauthenticated
	}
	family, profiles := session.BrowserFamily(r.UserAgent())
	e := &cookieNotSentError{browser: family}
	for _, p := range profiles {
		v, ok := d.Verdict(p)
		if !ok || v.Works {
			continue
		}
		e.reasons, e.advice = v.Reasons, v.Advice
		e.detail = "Latchkey set the session cookie at login, but this request came without it: for a page on " +
			quoteOrigin(d.PageOrigin) + " calling " + quoteOrigin(d.API) + ", " + profileNames[p] +
			" does not keep or send it (" + strings.Join(v.Reasons, ", ") + ")."
		break
	}
	if e.reasons == nil {
		e.reasons, e.advice = []string{session.ReasonCredentialsNotIncluded}, adviceCredentials
		e.detail = "Latchkey set the session cookie at login, but this request came without it, though " +
			familyNames[family] + " keeps it for a page on " + quoteOrigin(d.PageOrigin) + " calling " + quoteOrigin(d.API) +
			": the page most likely calls fetch without credentials: 'include', or a privacy setting or an extension blocks the cookie."
	}
	s.metrics.cookieNotSent.WithLabelValues(string(t.ID), reasonLabel(e.reasons[0])).Inc()
	return e
}

// knownReasons are the doctor's reasons, the values of
// latchkey_cookie_not_sent_total's reason label; any other is "other", so
// that the label set stays fixed whatever the doctor learns.
var knownReasons = map[string]bool{
	session.ReasonMixedContent: true, session.ReasonPreflightNoAllowOrigin: true, session.ReasonNoAllowOrigin: true,
	session.ReasonOriginNotListed: true, session.ReasonContentTypeNotJSON: true, session.ReasonCredentialsNotIncluded: true,
	session.ReasonSecureOnly: true, session.ReasonSameSiteLax: true, session.ReasonSameSiteStrict: true,
	session.ReasonSchemefulSameSiteLax: true, session.ReasonSchemefulSameSiteStrict: true, session.ReasonUserPreferences: true,
	session.ReasonThirdPartyPhaseout: true, session.ReasonThirdPartyBlocked: true, session.ReasonPartitionedBlocked: true,
	session.ReasonNoCHIPS: true, session.ReasonLoopbackNamesDiffer: true,
}

func reasonLabel(reason string) string {
	if knownReasons[reason] {
		return reason
	}
	return "other"
}
