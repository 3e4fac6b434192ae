package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/latchkeyhq/latchkey/session"
)

// reqInfo is the edge's per-request state, one context value filled in as
// the request travels inward and read by instrument once it returns: the
// tenant (known only after resolution) and, on the public listener, the
// route label and the routing context of the tenant routes, which the edge
// resolves itself (see Server.Public).
//
// reqInfo is itself the request's context, answering for its own key and,
// with routing, chi's, and delegating every other key to the context it
// wraps: one allocation where two context.WithValue and a response wrapper
// were three, on every request. Deriving a cancelable context from it
// finds the parent's cancelation through that delegation.
type reqInfo struct {
	context.Context
	routing bool

	id     string // the request ID, also sent as X-Request-Id
	tenant *session.Tenant
	policy *policy // public listener only
	route  string  // metrics and log label; "" means ask chi
	// labels maps the tenant routes' patterns to their labels, once the
	// public listener knows the request's form (path or host).
	labels map[string]string
	rctx   chi.Context
	sw     statusWriter
	// Backing arrays, so that the request allocates none of its own:
	// X-Request-Id's value, and the route patterns chi records (the
	// tenant routes nest one level).
	idValue  [1]string
	patterns [1]string
}

type reqInfoKey struct{}

func (ri *reqInfo) Value(key any) any {
	switch key {
	case reqInfoKey{}:
		return ri
	case chi.RouteCtxKey:
		if ri.routing {
			return &ri.rctx
		}
	}
	return ri.Context.Value(key)
}

func reqInfoFrom(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	return ri
}

// tenantFromContext returns the tenant resolved for the request.
func tenantFromContext(ctx context.Context) *session.Tenant {
	if ri := reqInfoFrom(ctx); ri != nil {
		return ri.tenant
	}
	return nil
}

// withTenant records the tenant the request is for.
func withTenant(r *http.Request, t *session.Tenant) {
	if ri := reqInfoFrom(r.Context()); ri != nil {
		ri.tenant = t
	}
}

// routeOf returns the route template of the request being served, for
// logs: "/admin/v1/tenants/{tenant}/users/{username}", never the path,
// which holds usernames, session IDs and whatever a client sends.
func routeOf(r *http.Request) string {
	ri := reqInfoFrom(r.Context())
	if ri != nil && ri.route != "" {
		return ri.route
	}
	var pattern string
	if rc := chi.RouteContext(r.Context()); rc != nil {
		pattern = rc.RoutePattern()
	}
	if ri != nil && ri.labels != nil {
		if l := ri.labels[pattern]; l != "" {
			return l
		}
		return ri.labels["/*"]
	}
	return pattern
}

// logServerError logs a server error (a 5xx) with what finds the request
// in the logs of every replica (its ID, tenant, method and route template)
// and never its path, query, headers or body. err comes from the store or
// the domain, whose messages name no user.
func (s *Server) logServerError(r *http.Request, msg string, err error) {
	var id, tenant string
	if ri := reqInfoFrom(r.Context()); ri != nil {
		id = ri.id
		if ri.tenant != nil {
			tenant = string(ri.tenant.ID)
		}
	}
	s.log.ErrorContext(r.Context(), msg, "request_id", id, "tenant", tenant, "method", methodLabel(r.Method), "route", routeOf(r), "err", err)
}

// instrument writes one log line and the metrics of each request: request
// ID, tenant, route template (never the raw path, which can hold
// usernames), method (the standard ones; any other is "other", as a client
// chooses it), status, duration and client address. It never logs headers,
// so cookies and tokens stay out of logs. With routing set, it also puts
// the routing context the public listener's own tenant resolution fills
// in, so that each request is copied once for its context, not once per
// layer.
func (s *Server) instrument(listener string, routing bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := newRequestID()
			ri := &reqInfo{Context: r.Context(), routing: routing, id: id}
			ri.idValue[0] = id
			w.Header()["X-Request-Id"] = ri.idValue[:] // len == cap: an Add copies it
			ri.rctx.RoutePatterns = ri.patterns[:0]
			ri.sw.ResponseWriter = w
			sw := &ri.sw
			next.ServeHTTP(sw, r.WithContext(ri))
			route := ri.route
			if route == "" && !routing { // the public listener labels its own routes
				if rc := chi.RouteContext(r.Context()); rc != nil {
					route = rc.RoutePattern()
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			var tenant session.TenantID
			if ri.tenant != nil {
				tenant = ri.tenant.ID
			}
			d := time.Since(start)
			var th *tenantHandles
			if ri.policy != nil {
				th = &ri.policy.metrics
			}
			s.metrics.observe(th, listener, r, route, status, tenant, d)
			if status == http.StatusForbidden && ri.policy != nil && r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				s.preflightRefused(r, ri)
			}
			// Check first: the attributes (the client address in particular)
			// cost work on the hot path even when the line is dropped.
			if !s.log.Enabled(r.Context(), slog.LevelInfo) {
				return
			}
			// InfoContext's record, but for its caller's pc (only a handler
			// with AddSource reads it), built without the stack walk, the
			// boxing of each value into an any and a second reading of the
			// clock; and no record at all for a handler that takes the
			// fields (see requestline.go).
			line := RequestLine{
				Time:       start.Add(d),
				RequestID:  id,
				Listener:   listener,
				Tenant:     string(tenant),
				Method:     methodLabel(r.Method),
				Route:      route,
				Status:     status,
				DurationMS: float64(d.Microseconds()) / 1000,
				ClientIP:   s.clientAddr(r),
			}
			if h, ok := s.log.Handler().(RequestLineHandler); ok {
				_ = h.HandleRequestLine(r.Context(), line)
			} else {
				_ = s.log.Handler().Handle(r.Context(), line.Record())
			}
		})
	}
}

// newRequestID returns 16 random base-32 characters (80 bits): unique
// enough to find one request in the logs of every replica. They identify,
// they do not authenticate, so math/rand/v2's generator (ChaCha8, seeded
// by the runtime) does, at a fraction of crypto/rand's cost on a path
// every request takes.
func newRequestID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 12 {
		b[i] = alphabet[hi&31]
		hi >>= 5
	}
	for i := 12; i < 16; i++ {
		b[i] = alphabet[lo&31]
		lo >>= 5
	}
	return string(b[:])
}

// statusWriter records the status a handler answered with. Unwrap lets
// http.ResponseController reach the connection's writer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recoverer turns a panic into a 500 problem instead of a dropped
// connection, and logs it. It runs inside instrument, so that the request
// still gets its log line and metrics, and the panic's line its request ID.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logServerError(r, "panic while serving", fmt.Errorf("%v", v))
				writeProblem(w, newProblem(kindInternal, ""))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// strictTransport sends Strict-Transport-Security (RFC 6797) with every
// answer to a request that came over HTTPS, so that a browser that once
// reached the host securely never tries it over plain HTTP again: the
// cookie is Secure anyway, and the CSRF check's Origin-versus-Host
// fallback ignores the scheme (CORS.md R5.8). A plain HTTP answer never
// carries it, as RFC 6797 §7.2 requires. The value has no includeSubDomains
// and no preload: the hosts Latchkey answers for are often a tenant's own
// (auth.acme.com), and what the names below them serve is the domain
// owner's to commit to, at the edge that serves them.
func (s *Server) strictTransport(next http.Handler) http.Handler {
	if s.hsts == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.overHTTPS(r) {
			w.Header()["Strict-Transport-Security"] = s.hsts
		}
		next.ServeHTTP(w, r)
	})
}

// overHTTPS reports whether r reached Latchkey over HTTPS: TLS on the
// connection itself, or, when the connection's peer is a trusted proxy
// (one that ends TLS in front of Latchkey), X-Forwarded-Proto: https. The
// last value counts, the one the proxy next to Latchkey wrote; a client's
// own X-Forwarded-Proto, sent straight to Latchkey, proves nothing.
func (s *Server) overHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	v := r.Header["X-Forwarded-Proto"]
	if len(v) == 0 || len(s.trustedProxies) == 0 {
		return false
	}
	proto := v[len(v)-1]
	if i := strings.LastIndexByte(proto, ','); i >= 0 {
		proto = proto[i+1:]
	}
	if !strings.EqualFold(strings.TrimSpace(proto), "https") {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	return err == nil && s.trustedProxy(peer.Unmap())
}

// principal is who is calling the admin API: the platform (the
// LATCHKEY_ADMIN_TOKEN holder), or a tenant admin key scoped to one tenant.
type principal struct {
	key *session.AdminKey // nil for the platform
}

// actor names the principal in the audit log, never with a secret.
func (p principal) actor() string {
	if p.key == nil {
		return "platform"
	}
	return "key:" + p.key.ID + " (" + p.key.Name + ")"
}

type principalKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// requireAdmin authenticates the admin API's bearer token: the platform
// token, compared in constant time (SHA-256 digests, so length-independent
// too), or a tenant admin key, looked up by its hash.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.adminEnabled {
			s.writeError(w, r, errorf(kindNotFound, "the admin API is disabled: set LATCHKEY_ADMIN_TOKEN to enable it"))
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			s.denyAdmin(w, r)
			return
		}
		sum := sha256.Sum256([]byte(token))
		var p principal
		if subtle.ConstantTimeCompare(sum[:], s.adminToken.Load()[:]) != 1 {
			k, err := s.m.AdminKeyFor(r.Context(), token)
			if errors.Is(err, session.ErrUnauthenticated) {
				s.denyAdmin(w, r)
				return
			}
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			p.key = &k
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func (s *Server) denyAdmin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin"`)
	s.writeError(w, r, errorf(kindAdminUnauthorized, "send Authorization: Bearer <admin token or tenant admin key>"))
}

// requirePlatform refuses tenant admin keys.
func (s *Server) requirePlatform(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if principalFrom(r.Context()).key != nil {
			s.writeError(w, r, errorf(kindForbidden, "only the platform token may do this"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// scopeTenant hides every other tenant from a tenant admin key: their
// routes answer 404, as for a tenant that does not exist, so a key cannot
// even learn which tenants exist.
func (s *Server) scopeTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := principalFrom(r.Context()).key; k != nil && string(k.Tenant) != pathParam(r, "tenant") {
			s.writeError(w, r, errorf(kindNotFound, fmt.Sprintf("tenant %q", pathParam(r, "tenant"))))
			return
		}
		next.ServeHTTP(w, r)
	})
}
