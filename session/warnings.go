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
//
// A tenant without hostnames is served on the shared host, which Latchkey
// does not know; its origins are judged as cross-site, except loopback ones
// (a local Latchkey is same-site with a local SPA).
func (t *Tenant) Warnings() []Problem {
	var out []Problem
	for i, o := range t.Origins {
		site, ok := siteOf(o)
		if !ok {
			continue
		}
		sameSite := false
		for _, h := range t.Hostnames {
			if hs, ok := siteOf("https://" + h); ok && hs == site {
				sameSite = true
			}
		}
		if len(t.Hostnames) == 0 && isLoopbackOrigin(o) {
			sameSite = true // a local SPA calling a local Latchkey
		}
		field := fmt.Sprintf("origins[%d]", i)
		switch {
		case sameSite:
		case t.Cookie.SameSite != SameSiteNone && len(t.Hostnames) > 0:
			out = append(out, Problem{Tenant: string(t.ID), Field: field, Message: fmt.Sprintf(
				"%q is cross-site to every hostname of this tenant, so browsers will neither store nor send its %s cookie: add a hostname on the SPA's site (e.g. auth.%s), or set cookie.same_site none with partitioned: true",
				o, t.Cookie.SameSite, strings.TrimPrefix(site, "https://"))})
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
