package api

import (
	"fmt"
	"hash/maphash"
	"maps"
	"net/http"
	"strings"

	"github.com/jub0bs/cors"

	"github.com/latchkeyhq/latchkey/session"
)

// policy is one tenant's immutable request policy: its configuration and the
// handler chain built from its origin list alone,
//
//	preflight Vary → CORS (jub0bs/cors) → CSRF origin check (COP) → routes,
//	each route behind refuseForeign
//
// CORS comes first so that preflights are answered before any session or
// routing logic and every response, errors included, carries the CORS
// headers an allowed origin needs to read it. The CSRF check uses the very
// same origin list as its trusted origins (CORS.md §2.4); it refuses
// state-changing requests, and refuseForeign then refuses the safe ones
// (a `me` from another site) before any route reads a session. A change to
// the tenant builds a new policy; nothing is ever mutated in place.
type policy struct {
	tenant *session.Tenant
	// plain is the tenant as it answers over plain HTTP on loopback
	// (session.Tenant.OverPlainLoopback): a dev tenant's copy with a
	// cookie that Safari keeps there, nil where there is none.
	plain   *session.Tenant
	allowed map[string]bool // t.Origins, for refuseForeign
	methods map[string]bool // what a preflight may ask for (preflightMethods)
	h       http.Handler
	// cors is h's CORS layers alone, around corsPassed, and inner what
	// they pass requests on to: see corsanswers.go, which answers
	// requests from the tenant's origins as they did before.
	cors, inner http.Handler
	answers     corsAnswers
	metrics     tenantHandles // the tenant's request metrics, resolved once
}

// policySet is the immutable lookup table swapped atomically on change.
type policySet struct {
	byID   policyMap[session.TenantID]
	byHost policyMap[string]
}

// claims reports whether a tenant claims host (a request's Host).
func (ps *policySet) claims(host string) bool {
	return ps.byHost.get(session.NormalizeHost(host)) != nil
}

// policyShards is how many shards a policyMap has. A changed copy copies
// the table of shards (2 KiB) and the few shards it touches, never the
// whole map, so that changing one tenant costs the same at 10 tenants as
// at 10,000, in copying and in garbage alike.
const policyShards = 256

var policySeed = maphash.MakeSeed()

func policyShard(k string) uint8 { return uint8(maphash.String(policySeed, k)) }

// policyMap is an immutable map to policies, cut into shards that copies
// share. The zero value is empty.
type policyMap[K ~string] struct {
	shards *[policyShards]map[K]*policy
	n      int
}

func (m *policyMap[K]) get(k K) *policy {
	if m.shards == nil {
		return nil
	}
	return m.shards[policyShard(string(k))][k]
}

// edit returns a copy of m to change; m itself never changes.
func (m *policyMap[K]) edit() *policyEdit[K] {
	e := &policyEdit[K]{m: policyMap[K]{shards: new([policyShards]map[K]*policy), n: m.n}}
	if m.shards != nil {
		*e.m.shards = *m.shards
	}
	return e
}

// policyEdit is a policyMap being changed: each shard is copied on its
// first change.
type policyEdit[K ~string] struct {
	m     policyMap[K]
	owned [policyShards]bool
}

func (e *policyEdit[K]) shard(k K) map[K]*policy {
	i := policyShard(string(k))
	if !e.owned[i] {
		e.owned[i] = true
		e.m.shards[i] = maps.Clone(e.m.shards[i])
		if e.m.shards[i] == nil {
			e.m.shards[i] = map[K]*policy{}
		}
	}
	return e.m.shards[i]
}

func (e *policyEdit[K]) get(k K) *policy { return e.m.get(k) }

func (e *policyEdit[K]) set(k K, p *policy) {
	sh := e.shard(k)
	if sh[k] == nil {
		e.m.n++
	}
	sh[k] = p
}

func (e *policyEdit[K]) del(k K) {
	if e.m.get(k) == nil {
		return
	}
	delete(e.shard(k), k)
	e.m.n--
}

func (s *Server) newPolicy(t session.Tenant) (*policy, error) {
	mw, err := cors.NewMiddleware(t.CORSConfig())
	if err != nil {
		return nil, fmt.Errorf("cors: %w", err)
	}
	// One CrossOriginProtection per tenant: AddTrustedOrigin is global to an
	// instance and cannot be undone, so a shared one would let any tenant's
	// SPA forge requests to every other tenant (CORS.md R2.1).
	cop := http.NewCrossOriginProtection()
	for _, o := range t.Origins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("csrf: %w", err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(s.denyOrigin))
	allowed := make(map[string]bool, len(t.Origins))
	for _, o := range t.Origins {
		allowed[o] = true
	}
	inner := cop.Handler(s.tenantRoutes)
	var plain *session.Tenant
	if p := t.OverPlainLoopback(); p.SecureCookie() != t.SecureCookie() {
		plain = p
	}
	return &policy{
		tenant:  &t,
		plain:   plain,
		allowed: allowed,
		methods: preflightMethods(&t),
		h:       preflightVary(mw.Wrap(inner)),
		cors:    preflightVary(mw.Wrap(corsPassed)),
		inner:   inner,
	}, nil
}

// refuseForeign answers 403 to a request for one of the tenant's routes
// whose Origin is neither one of the tenant's origins nor the service's
// own, whatever its method. The browser would withhold the answer anyway
// (it carries no CORS grant, CORS.md R1.7), so refusing changes nothing
// for a page that may read it, and it means a foreign origin never costs a
// session lookup: a page on any site can make its visitors' browsers send
// `me` with their cookies. It sits on the routes, after routing, so that
// paths and methods no route takes keep their 404 and 405. Requests without
// Origin (navigations, same-origin GETs, server-side clients) pass, as does
// an empty one, which no browser sends. "Own origin" follows
// CrossOriginProtection: Sec-Fetch-Site same-origin or none, or, from
// browsers too old to send it, an Origin naming the Host.
func (s *Server) refuseForeign(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header["Origin"] // serveTenant refused several
		ri := reqInfoFrom(r.Context())
		if len(origin) == 0 || origin[0] == "" || ri.policy.allowed[origin[0]] {
			next.ServeHTTP(w, r)
			return
		}
		switch r.Header.Get("Sec-Fetch-Site") {
		case "same-origin", "none":
			next.ServeHTTP(w, r)
			return
		case "":
			// CrossOriginProtection parses the Origin as a URL; a browser's
			// Origin is scheme://host[:port], so the host is what follows
			// "://" (anything else, userinfo included, fails to match).
			if _, host, ok := strings.Cut(origin[0], "://"); ok && host == r.Host {
				next.ServeHTTP(w, r)
				return
			}
		}
		writeForeignOrigin(w, origin[0])
		s.noteForeignOrigin(r, ri, origin[0])
	})
}

// UpdateTenants applies one change to the tenants the public API serves. It
// is what session.Manager.WatchTenants calls on every change: only the
// changed tenants' policies are built, the others are shared with the
// current set, and the new set replaces it atomically. A tenant whose
// policy cannot be built (which validation should make impossible) is
// logged and left out, so that one bad tenant does not take the others
// down.
func (s *Server) UpdateTenants(u session.TenantsUpdate) {
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	old := s.policies.Load()
	byID, byHost := old.byID.edit(), old.byHost.edit()
	drop := func(id session.TenantID) {
		p := byID.get(id)
		if p == nil {
			return
		}
		byID.del(id)
		for _, h := range p.tenant.Hostnames {
			if byHost.get(h) == p {
				byHost.del(h)
			}
		}
	}
	for _, id := range u.Deleted {
		drop(id)
	}
	for _, t := range u.Changed {
		drop(t.ID)
	}
	for _, t := range u.Changed {
		p, err := s.newPolicy(t)
		if err != nil {
			s.log.Error("tenant left out: its policy cannot be built", "tenant", t.ID, "err", err)
			continue
		}
		byID.set(t.ID, p)
		for _, h := range t.Hostnames {
			if s.m.IsPublicHost(h) {
				// Stored before the host was listed as public: honouring
				// it would take the path form away from every tenant.
				s.log.Error("ignoring a tenant's claim on a public host (LATCHKEY_PUBLIC_HOSTS); remove it from the tenant's hostnames", "tenant", t.ID, "hostname", h)
				continue
			}
			byHost.set(h, p)
		}
	}
	s.policies.Store(&policySet{byID: byID.m, byHost: byHost.m})
	s.log.Info("tenants updated", "count", byID.m.n, "changed", len(u.Changed), "deleted", len(u.Deleted))
}

var hdrPreflightVary = []string{"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}

// preflightVary lists the preflight's inputs in Vary. jub0bs/cors leaves
// Vary off preflight responses (RFC 9110 makes OPTIONS uncacheable), but a
// misconfigured cache in front of Latchkey could otherwise serve one
// origin's preflight answer to another (CORS.md §1.2). For other methods
// jub0bs/cors adds Vary: Origin itself.
func preflightVary(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			// Appended under the canonical name, from a shared value when
			// nothing came before (a later append copies it).
			if h := w.Header(); h["Vary"] == nil {
				h["Vary"] = hdrPreflightVary
			} else {
				h["Vary"] = append(h["Vary"], hdrPreflightVary[0])
			}
		}
		h.ServeHTTP(w, r)
	})
}

// denyOrigin answers a state-changing request that the CSRF origin check
// refused, naming its origin; it refuses none the tenant lists. Without
// an Origin, what refused it is its Sec-Fetch-Site.
func (s *Server) denyOrigin(w http.ResponseWriter, r *http.Request) {
	if t := tenantFromContext(r.Context()); t != nil {
		s.metrics.csrfRefused.WithLabelValues(string(t.ID)).Inc()
		if strings.HasSuffix(r.URL.Path, "/login") {
			s.metrics.logins.WithLabelValues(string(t.ID), loginCSRF).Inc()
		}
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		s.writeError(w, r, errorf(kindForbiddenOrigin, "a "+clipHeader(r.Header.Get("Sec-Fetch-Site"))+" request without Origin may not make state-changing requests to this tenant"))
		return
	}
	s.writeError(w, r, errorf(kindForbiddenOrigin, foreignOriginDetail(origin)+": it may not make state-changing requests"))
	s.noteForeignOrigin(r, reqInfoFrom(r.Context()), origin)
}
