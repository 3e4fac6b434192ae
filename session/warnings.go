package session

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// Warnings reports configurations that validate but would fail in a
// browser, each naming the fix. They are what the end-to-end suite shows
// Chromium doing:
//   - A Lax or Strict cookie is never stored from, nor sent to, a cross-site
//     fetch: an SPA whose site differs from every hostname of its tenant can
//     only work through SameSite=None.
//   - A SameSite=None cookie without Partitioned is a third-party cookie,
//     dropped by browsers that block those (Safari always, Chrome in
//     incognito or when the user opts in, Debian's Chromium by default).
//   - localhost, 127.0.0.1 and [::1] name one machine but are three sites:
//     a page on one calling the API on another is cross-site, however
//     local.
//
// A tenant without hostnames is served on the shared host, which Warnings
// does not know (WarningsOn does); its origins are judged as cross-site,
// except loopback ones (a local Latchkey is same-site with a local SPA
// called by the same name). Loopback origins under more than one name
// therefore warn: whichever name the API is called by, a page on another
// cannot keep its session.
func (t *Tenant) Warnings() []Problem { return t.WarningsOn("") }

// WarningsOn is Warnings for a tenant whose path form is served on
// sharedHost, the host name (no port; an IPv6 address in brackets) that
// SPAs call for tenants without hostnames, such as "auth.example.com" or,
// for a local demo, "localhost". An empty sharedHost means unknown.
func (t *Tenant) WarningsOn(sharedHost string) []Problem {
	sharedHost = strings.TrimSuffix(strings.ToLower(sharedHost), ".")
	shared := "http://" + sharedHost // an origin on it, for loopbackName
	// With the shared host unknown, a tenant's loopback origins are
	// taken to call the API by the name of the first of them.
	firstLoopback := ""
	for _, o := range t.Origins {
		if isLoopbackOrigin(o) {
			firstLoopback = loopbackName(o)
			break
		}
	}
	var out []Problem
	for i, o := range t.Origins {
		site, ok := siteOf(o)
		if !ok {
			continue
		}
		field := fmt.Sprintf("origins[%d]", i)
		loopback := isLoopbackOrigin(o)
		sameSite := false
		// otherName is the API's name for this machine when the page is
		// on loopback under another: the one mistake a fix names exactly.
		otherName := ""
		for _, h := range t.Hostnames {
			if hs, ok := siteOf("https://" + h); ok && hs == site {
				sameSite = true
			}
			if hn := loopbackName("http://" + h); loopback && isLoopbackOrigin("http://"+h) && hn != loopbackName(o) {
				otherName = hn
			}
		}
		if len(t.Hostnames) == 0 {
			switch {
			case sharedHost != "" && loopback && isLoopbackOrigin(shared):
				// A local shared host is plain HTTP, like the local SPA.
				if sameSite = loopbackName(shared) == loopbackName(o); !sameSite {
					otherName = loopbackName(shared)
				}
			case sharedHost != "":
				hs, ok := siteOf("https://" + sharedHost)
				sameSite = ok && hs == site
			case loopback:
				if sameSite = loopbackName(o) == firstLoopback; !sameSite {
					otherName = firstLoopback
				}
			}
		}
		switch {
		case sameSite:
		case t.Cookie.SameSite != SameSiteNone && otherName != "":
			out = append(out, Problem{Tenant: string(t.ID), Field: field, Message: fmt.Sprintf(
				"%q calls the API under another name of this machine (%s): browsers take localhost, 127.0.0.1 and [::1] for different sites, so they will neither store nor send its %s cookie and a login from it cannot stick: use the same host name for both the SPA and the API (list only origins on the name the API is called by)",
				o, otherName, t.Cookie.SameSite)})
		case t.Cookie.SameSite != SameSiteNone && len(t.Hostnames) > 0:
			out = append(out, Problem{Tenant: string(t.ID), Field: field, Message: fmt.Sprintf(
				"%q is cross-site to every hostname of this tenant, so browsers will neither store nor send its %s cookie: add a hostname on the SPA's site (e.g. auth.%s), or set cookie.same_site none with partitioned: true",
				o, t.Cookie.SameSite, strings.TrimPrefix(site, "https://"))})
		case t.Cookie.SameSite != SameSiteNone && sharedHost != "":
			out = append(out, Problem{Tenant: string(t.ID), Field: field, Message: fmt.Sprintf(
				"%q will call the shared host %s (this tenant has no hostnames), which is another site, so browsers will neither store nor send its %s cookie: add a hostname on the SPA's site (e.g. auth.%s), or set cookie.same_site none with partitioned: true",
				o, sharedHost, t.Cookie.SameSite, strings.TrimPrefix(site, "https://"))})
		case t.Cookie.SameSite != SameSiteNone:
			out = append(out, Problem{Tenant: string(t.ID), Field: field, Message: fmt.Sprintf(
				"%q will call the shared host (this tenant has no hostnames); unless that host is on the same site as the SPA, browsers will neither store nor send its %s cookie: add a hostname on the SPA's site (e.g. auth.%s), or set cookie.same_site none with partitioned: true",
				o, t.Cookie.SameSite, strings.TrimPrefix(site, "https://"))})
		case !t.Cookie.Partitioned:
			out = append(out, Problem{Tenant: string(t.ID), Field: field, Message: fmt.Sprintf(
				"%q is cross-site, so its SameSite=None cookie is a third-party cookie, which Safari, Chrome in incognito and other browsers that block third-party cookies drop: set cookie.partitioned true, or add a hostname on the SPA's site",
				o)})
		}
	}
	return out
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
