package session

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// The browser engines a Warning may concern, named as the end-to-end suite
// names its engine profiles (e2e/expectations.txt): Chromium stands for
// Chrome and Edge, WebKit for Safari.
const (
	EngineChromium = "chromium"
	EngineFirefox  = "firefox"
	EngineWebKit   = "webkit"
)

// Warning is a configuration that validates but fails in some browsers,
// or (with no Engines) that works but gives away more than its operator
// may mean to.
type Warning struct {
	Tenant string
	// Field is the setting the warning is about, such as "origins[0]".
	Field string
	// Message says what fails, in which browsers and settings, and the fix.
	Message string
	// Engines are the engines in which a login from the origin cannot
	// stick in at least one of their settings: EngineChromium,
	// EngineFirefox, EngineWebKit, in that order. Nil for a warning that
	// is not about browsers (the accounts block's).
	Engines []string
}

// LogMessage is the constant message a log line about w carries: what
// kind of trouble it names, the attributes saying the rest.
func (w Warning) LogMessage() string {
	if w.Engines == nil {
		return "this tenant's configuration has a caveat"
	}
	return "this tenant's cookie will not work in browsers for an origin"
}

// Engine sets of the warnings, in the order Warning.Engines documents.
var (
	everyEngine    = []string{EngineChromium, EngineFirefox, EngineWebKit}
	noCHIPSEngines = []string{EngineFirefox, EngineWebKit}
	webKitOnly     = []string{EngineWebKit}
)

// Warnings reports configurations that validate but would fail in a
// browser, each naming the engines and the fix. They are what the
// end-to-end suite observes in Chromium, Firefox and WebKit (see
// e2e/expectations.txt and docs/browsers.md):
//   - A Lax or Strict cookie is never stored from, nor sent to, a cross-site
//     fetch, in any engine: an SPA whose site differs from every hostname
//     of its tenant can only work through SameSite=None.
//   - A SameSite=None cookie without Partitioned is a third-party cookie,
//     dropped by Chrome when third-party cookies are blocked (and in its
//     phase-out), by Safari always and by Firefox when cross-site cookies
//     are blocked; only Firefox's default keeps it, partitioned.
//   - A partitioned one (CHIPS) survives in Chrome and Firefox's default,
//     but Safari before 26.2 has no CHIPS and Firefox with cross-site
//     cookies blocked drops it too: only a hostname on the SPA's site
//     works everywhere.
//   - Two hosts under a TLD missing from the Public Suffix List (.test,
//     .local, .internal) are one site to Chromium and Firefox but two to
//     WebKit without Intelligent Tracking Prevention.
//   - localhost, 127.0.0.1 and [::1] name one machine but are three sites,
//     and http://localhost and https://localhost are two: a page on one
//     calling the API on another is cross-site, however local.
//   - Safari stores no Secure cookie set over http://localhost (WebKit bug
//     281149). Only a dev tenant may list loopback origins, and its Lax or
//     Strict cookie over plain HTTP on loopback is not Secure
//     (Tenant.OverPlainLoopback); but a SameSite=None cookie must be
//     Secure in Chrome and Firefox, so a None tenant there fails in Safari.
//
// A tenant without hostnames is served on the shared host, which Warnings
// does not know (WarningsOn does); its origins are judged as cross-site,
// except loopback ones (a local Latchkey is same-site with a local SPA
// called by the same name and scheme). Loopback origins under more than
// one name or scheme therefore warn: whichever the API is called by, a page
// on another cannot keep its session.
//
// One warning is not about browsers: self-service signup without required
// email verification tells whoever signs up whether an address is taken
// (field accounts.signup, no Engines).
func (t *Tenant) Warnings() []Warning { return t.WarningsOn("") }

// WarningsOn is Warnings for a tenant whose path form is served on
// sharedHost, the host name (no port; an IPv6 address in brackets) that
// SPAs call for tenants without hostnames, such as "auth.example.com" or,
// for a local demo, "localhost" (served over plain HTTP). An empty
// sharedHost means unknown.
func (t *Tenant) WarningsOn(sharedHost string) []Warning {
	sharedHost = strings.TrimSuffix(strings.ToLower(sharedHost), ".")
	// With the shared host unknown, a tenant's loopback origins are
	// taken to call the API by the name and scheme of the first of them.
	firstLoopback := ""
	for _, o := range t.Origins {
		if isLoopbackOrigin(o) {
			firstLoopback = o
			break
		}
	}
	var out []Warning
	add := func(field string, engines []string, format string, args ...any) {
		out = append(out, Warning{Tenant: string(t.ID), Field: field, Message: fmt.Sprintf(format, args...), Engines: engines})
	}
	for i, o := range t.Origins {
		site, ok := siteOf(o)
		if !ok {
			continue
		}
		host := hostOf(o)
		field := fmt.Sprintf("origins[%d]", i)
		loopback := isLoopbackOrigin(o)
		// sameSite: a hostname (or the shared host) is on the page's site
		// in every engine; grouped names the one that is so only by a
		// TLD missing from the Public Suffix List, and suffix that TLD.
		sameSite, grouped, suffix := false, "", ""
		judge := func(h string) {
			hs, ok := siteOf("https://" + h)
			if !ok || hs != site {
				return
			}
			if sfx, ok := unlistedGrouping(host, h); ok {
				grouped, suffix = h, sfx
				return
			}
			sameSite = true
		}
		// otherName is the API's name for this machine when the page is
		// on loopback under another, and otherScheme its scheme when the
		// page is on loopback under the same name but another scheme:
		// the two mistakes a fix names exactly.
		otherName, otherScheme := "", ""
		// plainAPI is the loopback origin the page calls over plain HTTP,
		// same-site: where Safari drops a Secure cookie.
		plainAPI := ""
		localAPI := func(api string) {
			if as, _ := siteOf(api); as == site {
				sameSite = true
				if strings.HasPrefix(api, "http:") {
					plainAPI = as
				}
			} else if loopbackName(api) != loopbackName(o) {
				otherName = loopbackName(api)
			} else {
				otherScheme = strings.SplitN(api, ":", 2)[0]
			}
		}
		for _, h := range t.Hostnames {
			if loopback && IsLoopbackHost(h) {
				// One of this machine's names (a dev tenant's) is taken
				// to be called as the page is, by its scheme: a page on
				// http://localhost calling http://localhost:8080/v1 is
				// one site with it.
				localAPI(strings.SplitN(o, ":", 2)[0] + "://" + h)
				continue
			}
			judge(h)
		}
		if len(t.Hostnames) == 0 {
			switch {
			case sharedHost != "" && loopback && isLoopbackOrigin("http://"+sharedHost):
				// A local shared host is plain HTTP.
				localAPI("http://" + sharedHost)
			case sharedHost != "":
				judge(sharedHost)
			case loopback:
				localAPI(firstLoopback)
			}
		}
		spa := strings.TrimPrefix(strings.TrimPrefix(site, "https://"), "http://")
		hostFix := fmt.Sprintf("add a hostname on the SPA's site (e.g. auth.%s), the one set-up that works in every browser", spa)
		if loopback {
			// A page on this machine has no site to add a hostname on:
			// it is same-site only with an API on this machine.
			hostFix = "call the API on this machine, by the page's own name and scheme (e.g. through the dev server's proxy)"
		}
		// where says why the page is cross-site, and fix what makes it
		// same-site.
		var where, fix string
		switch {
		case sameSite:
			if plainAPI != "" && t.Cookie.SameSite == SameSiteNone {
				add(field, webKitOnly,
					"%q calls the API over plain HTTP on this machine (%s) with a SameSite=None cookie, which Chrome and Firefox accept only Secure, and Safari stores no Secure cookie set over plain HTTP, http://localhost included (WebKit bug 281149): in Safari a login from it cannot stick: set cookie.same_site lax (the page and the API are one site, so Lax works in every browser, and a dev tenant's Lax cookie over plain HTTP on this machine is not Secure)",
					o, plainAPI)
			}
			continue
		case grouped != "":
			add(field, webKitOnly,
				"%q and %s are one site only by grouping under .%s, a TLD missing from the Public Suffix List: Chrome and Firefox group them, but WebKit without Intelligent Tracking Prevention (WebKitGTK and other WebKit browsers by default) takes each such host for its own site, so there the SPA is cross-site and its cookie is dropped: use names under a suffix on the Public Suffix List (a registered domain) for both the SPA and Latchkey",
				o, grouped, suffix)
			continue
		case otherName != "":
			where = fmt.Sprintf("%q calls the API under another name of this machine (%s): browsers take localhost, 127.0.0.1 and [::1] for different sites, so", o, otherName)
			fix = "use the same host name for both the SPA and the API (list only origins on the name the API is called by)"
		case otherScheme != "":
			where = fmt.Sprintf("%q calls the API on this machine over %s: a page and an API on different schemes are different sites, so", o, otherScheme)
			fix = "serve the SPA and the API over the same scheme (list only origins on the scheme the API is called by)"
		case len(t.Hostnames) > 0:
			where = fmt.Sprintf("%q is cross-site to every hostname of this tenant, so", o)
			fix = hostFix
		case sharedHost != "":
			where = fmt.Sprintf("%q will call the shared host %s (this tenant has no hostnames), which is another site, so", o, sharedHost)
			fix = hostFix
		default:
			where = fmt.Sprintf("%q will call the shared host (this tenant has no hostnames); unless that host is on the same site as the SPA,", o)
			fix = hostFix
		}
		switch {
		case t.Cookie.SameSite != SameSiteNone:
			add(field, everyEngine,
				"%s its %s cookie is neither stored nor sent, in every browser (Chrome, Firefox, Safari), and a login from it cannot stick: %s, or set cookie.same_site none with partitioned: true (which Safari before 26.2 and Firefox with cross-site cookies blocked still drop)",
				where, t.Cookie.SameSite, fix)
		case !t.Cookie.Partitioned:
			add(field, everyEngine,
				"%s its SameSite=None cookie is a third-party cookie, which Chrome drops when third-party cookies are blocked (by the user, in incognito or by its phase-out), Safari (WebKit) always, and Firefox when cross-site cookies are blocked (its default keeps it, partitioned): %s, or set cookie.partitioned true (which Chrome keeps in every setting)",
				where, fix)
		default:
			add(field, noCHIPSEngines,
				"%s its SameSite=None cookie is a partitioned third-party cookie (CHIPS), which Chrome and Firefox's default keep, but Safari (WebKit) before 26.2, which has no CHIPS, and Firefox with cross-site cookies blocked drop: %s",
				where, fix)
		}
	}
	if w, ok := t.signupWarning(); ok {
		out = append(out, w)
	}
	return out
}

// unlistedGrouping reports whether hosts a and b, on one site, are so only
// because a TLD missing from the Public Suffix List groups them: the
// suffix is then publicsuffix's default rule, the last label alone, with
// icann false. Two equal hosts rely on no grouping.
func unlistedGrouping(a, b string) (string, bool) {
	if strings.EqualFold(a, b) || net.ParseIP(a) != nil {
		return "", false
	}
	ps, icann := publicsuffix.PublicSuffix(a)
	if icann || strings.Contains(ps, ".") {
		return "", false
	}
	return ps, true
}

// hostOf returns the host of an origin, lowercase and without a trailing
// dot.
func hostOf(origin string) string {
	u, err := url.Parse(origin)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
}

// loopbackName returns the site of a loopback origin without its scheme:
// "localhost", "127.0.0.1" or "[::1]" (and "app.localhost" for that name,
// its own site). Two origins on different names are cross-site.
func loopbackName(origin string) string {
	site, _ := siteOf(origin)
	_, host, _ := strings.Cut(site, "://")
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

// siteOf returns the schemeful site of an origin: scheme and registrable
// domain (RFC 6265bis "same-site"), or the host itself for IP addresses and
// hosts that are a public suffix.
func siteOf(origin string) (string, bool) {
	u, err := url.Parse(origin)
	if err != nil || u.Hostname() == "" {
		return "", false
	}
	h := u.Hostname()
	if net.ParseIP(h) != nil {
		return u.Scheme + "://" + h, true
	}
	d, err := publicsuffix.EffectiveTLDPlusOne(h)
	if err != nil {
		d = h
	}
	return u.Scheme + "://" + d, true
}

// signupWarning warns of a signup that tells whether an address is taken:
// with email_verification required every signup answers alike ("check
// your mail") and the owner of a taken address is told by mail, but
// without it a signup signs the user in at once, so a taken username or
// address must be refused in the answer (409 conflict), and whoever asks
// learns that the address has an account here.
func (t *Tenant) signupWarning() (Warning, bool) {
	a := t.Accounts
	if a == nil || !a.Signup || a.EmailVerification == VerificationRequired {
		return Warning{}, false
	}
	msg := fmt.Sprintf("signup with email_verification %s answers a signup of a taken username or address with 409 conflict, which tells anyone who tries an address whether it has an account at this tenant; set email_verification required to answer every signup alike and mail the address's owner instead", a.EmailVerification)
	if a.EmailVerification == VerificationOff {
		msg += "; with off, moreover, no address is ever proven: anyone can sign up with an address that is not theirs and hold it, so that its owner cannot sign up with it (only reset the password of the account it names)"
	}
	return Warning{Tenant: string(t.ID), Field: "accounts.signup", Message: msg}, true
}
