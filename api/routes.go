package api

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkeyhq/latchkey/session"
)

// Config holds a Server's settings.
type Config struct {
	// Logger receives request and error events, never secrets. Required.
	Logger *slog.Logger
	// AdminToken is the bearer token of the admin API, at least
	// MinTokenLen bytes. Empty disables the admin API (health endpoints
	// stay up).
	AdminToken string
	// TrustedProxies are the proxies (an ingress, a load balancer) whose
	// X-Forwarded-For is believed when finding a client's address for the
	// per-IP login limit. Empty means none: the connection's peer is the
	// client.
	TrustedProxies []netip.Prefix
	// IPv6Prefix is the length of the network an IPv6 client is counted
	// under by the per-address login limit and hashing share, from
	// MinIPv6Prefix to 128: one end site usually holds a whole /64 and can use any address
	// in it. IPv4 clients, IPv4-mapped IPv6 ones included, count per
	// address. Zero means DefaultIPv6Prefix.
	IPv6Prefix int
	// Registry receives the HTTP metrics and is served at /metrics on the
	// admin listener, with whatever else the caller registered on it
	// (runtime, Redis). Nil means a registry of the Server's own.
	Registry *prometheus.Registry
	// MetricsToken is the bearer token that /metrics requires (at least
	// MinTokenLen bytes). Empty serves /metrics to whoever reaches the admin listener.
	MetricsToken string
	// HSTSMaxAge is the max-age of the Strict-Transport-Security header
	// sent with every answer to a request that came over HTTPS: TLS on the
	// connection, or X-Forwarded-Proto: https from a trusted proxy. It is
	// counted in whole seconds, up to MaxHSTSMaxAge. Zero sends no such
	// header.
	HSTSMaxAge time.Duration
	// Now returns the current time, for the rate of the refused-origin
	// log. Nil means time.Now. Tests inject a clock.
	Now func() time.Time
}

// DefaultIPv6Prefix is Config.IPv6Prefix's default: the /64 of one subnet,
// the smallest block an ISP hands a site (RFC 6177).
const DefaultIPv6Prefix = 64

// Bounds of Config, which NewServer enforces and the serve command's
// settings quote.
const (
	// MinTokenLen is the shortest admin or metrics token accepted, in
	// bytes.
	MinTokenLen = 16
	// MinIPv6Prefix is the shortest Config.IPv6Prefix: a /32 is the
	// usual allocation of a whole ISP, coarser than any one client.
	MinIPv6Prefix = 32
	// MaxHSTSMaxAge bounds Config.HSTSMaxAge: two years is what HSTS
	// preload lists ask at most; a longer promise is a typo more likely
	// than a plan.
	MaxHSTSMaxAge = 2 * 365 * 24 * time.Hour
)

// Server is Latchkey's HTTP edge: the public API that SPAs call and the
// admin API for operators. It is safe for concurrent use.
type Server struct {
	m   *session.Manager
	log *slog.Logger

	adminEnabled bool
	adminToken   atomic.Pointer[[32]byte] // SHA-256 of the token, for a constant-time compare

	trustedProxies []netip.Prefix
	ipv6Prefix     int
	metrics        *metrics

	metricsAuth  bool
	metricsToken atomic.Pointer[[32]byte] // SHA-256 of the token, for a constant-time compare
	hsts         []string                 // the Strict-Transport-Security value; nil sends none
	now          func() time.Time
	refusals     refusalLog // the refused-origin log's rate (refusals.go)

	policies     atomic.Pointer[policySet]
	policyMu     sync.Mutex // serializes changes to policies
	tenantRoutes *chi.Mux
	// Metrics labels of the tenant routes in path and host form.
	pathFormLabels, hostFormLabels map[string]string
	ready                          atomic.Bool
	draining                       atomic.Bool
}

// NewServer returns a Server over m. It serves no tenant until UpdateTenants
// or UpdateTenants is called, and /readyz fails until MarkReady.
func NewServer(m *session.Manager, cfg Config) (*Server, error) {
	var errs []error
	if m == nil {
		errs = append(errs, errors.New("api: nil session manager"))
	}
	if cfg.Logger == nil {
		errs = append(errs, errors.New("api: Logger is required"))
	}
	if cfg.AdminToken != "" && len(cfg.AdminToken) < MinTokenLen {
		errs = append(errs, fmt.Errorf("api: the admin token must be at least %d bytes", MinTokenLen))
	}
	if cfg.MetricsToken != "" && len(cfg.MetricsToken) < MinTokenLen {
		errs = append(errs, fmt.Errorf("api: the metrics token must be at least %d bytes", MinTokenLen))
	}
	if cfg.HSTSMaxAge < 0 || cfg.HSTSMaxAge > MaxHSTSMaxAge {
		errs = append(errs, fmt.Errorf("api: HSTSMaxAge %v is outside 0..%v", cfg.HSTSMaxAge, MaxHSTSMaxAge))
	}
	ipv6Prefix := cmp.Or(cfg.IPv6Prefix, DefaultIPv6Prefix)
	if ipv6Prefix < MinIPv6Prefix || ipv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("api: IPv6Prefix %d is outside %d..128", cfg.IPv6Prefix, MinIPv6Prefix))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{m: m, log: cfg.Logger, adminEnabled: cfg.AdminToken != "", trustedProxies: cfg.TrustedProxies, ipv6Prefix: ipv6Prefix, metrics: newMetrics(reg), now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.adminEnabled {
		sum := sha256.Sum256([]byte(cfg.AdminToken))
		s.adminToken.Store(&sum)
	}
	if cfg.MetricsToken != "" {
		s.metricsAuth = true
		sum := sha256.Sum256([]byte(cfg.MetricsToken))
		s.metricsToken.Store(&sum)
	}
	if secs := int64(cfg.HSTSMaxAge / time.Second); secs > 0 {
		s.hsts = []string{"max-age=" + strconv.FormatInt(secs, 10)}
	}
	s.tenantRoutes = s.newTenantRoutes()
	s.pathFormLabels = routeLabels(s.tenantRoutes, "/v1/t/{tenant}")
	s.hostFormLabels = routeLabels(s.tenantRoutes, "/v1")
	s.policies.Store(&policySet{})
	return s, nil
}

// SetAdminToken replaces the platform token, for a token file that changed.
// It cannot enable an admin API that started disabled.
func (s *Server) SetAdminToken(token string) error {
	if !s.adminEnabled {
		return errors.New("api: the admin API is disabled")
	}
	if len(token) < MinTokenLen {
		return fmt.Errorf("api: the admin token must be at least %d bytes", MinTokenLen)
	}
	sum := sha256.Sum256([]byte(token))
	s.adminToken.Store(&sum)
	return nil
}

// SetMetricsToken replaces the token /metrics requires, for a token file
// that changed. It cannot protect a /metrics that started without a token.
func (s *Server) SetMetricsToken(token string) error {
	if !s.metricsAuth {
		return errors.New("api: /metrics was started without a token")
	}
	if len(token) < MinTokenLen {
		return fmt.Errorf("api: the metrics token must be at least %d bytes", MinTokenLen)
	}
	sum := sha256.Sum256([]byte(token))
	s.metricsToken.Store(&sum)
	return nil
}

// newTenantRoutes lists every public route, relative to the tenant prefix
// (/v1/t/{tenant} in path form, /v1 in host form). Keep in step with
// openapi.yaml.
func (s *Server) newTenantRoutes() *chi.Mux {
	r := chi.NewRouter()
	r.Group(func(r chi.Router) {
		r.Use(s.refuseForeign)
		r.Post("/login", s.handleLogin)
		r.Get("/me", s.handleMe)
		r.Post("/logout", s.handleLogout)
		r.Get("/sessions", s.handleListSessions)
		r.Delete("/sessions", s.handleRevokeAllSessions)
		r.Delete("/sessions/{id}", s.handleRevokeSession)
		r.Get("/doctor", s.handleDoctor)
		// Self-service accounts (accounts.go).
		r.Post("/signup", s.handleSignup)
		r.Post("/email/verify", s.handleVerifyEmail)
		r.Post("/email/verify/resend", s.handleResendVerification)
		r.Post("/password/reset/request", s.handleRequestPasswordReset)
		r.Post("/password/reset", s.handleResetPassword)
		r.Post("/password", s.handleChangePassword)
	})
	r.NotFound(s.handleNotFound)
	r.MethodNotAllowed(s.methodNotAllowed(r, true))
	return r
}

// Public returns the handler of the public listener.
//
// The tenant comes from the URL alone, because a preflight carries no
// cookie or custom header: the path form /v1/t/{tenant}/… on a shared host,
// or the host form /v1/… on one of the tenant's own hostnames. The host is
// the one the request was sent to (r.Host), never X-Forwarded-Host, which a
// client could set. An unknown tenant is a 404 with no CORS headers.
//
// The two prefixes are told apart here rather than by an outer chi router:
// every `me` and preflight of every SPA takes this path, and a second
// router cost a context copy, a route search and a route pattern per
// request. The tenant's own routes are a chi router (newTenantRoutes).
func (s *Server) Public() http.Handler {
	return s.instrument("public", true)(s.recoverer(s.strictTransport(noStore(http.HandlerFunc(s.servePublic)))))
}

const pathFormPrefix = "/v1/t/"

func (s *Server) servePublic(w http.ResponseWriter, r *http.Request) {
	ri := reqInfoFrom(r.Context())
	path := r.URL.RawPath // as chi routes: escaped slashes stay in their segment
	if path == "" {
		path = r.URL.Path
	}
	set := s.policies.Load()
	var (
		p      *policy
		rest   string
		labels map[string]string
	)
	switch {
	case strings.HasPrefix(path, pathFormPrefix):
		id, _, _ := strings.Cut(path[len(pathFormPrefix):], "/")
		rest = path[len(pathFormPrefix)+len(id):]
		labels = s.pathFormLabels
		// A tenant's own hostname serves that tenant in host form only, so
		// that one host never answers for two tenants' cookies. No tenant
		// can claim a public host (UpdateTenants), so the path form always
		// works there. Most deployments claim no hostname: then skip
		// normalizing the Host.
		if set.byHost.n == 0 || !set.claims(r.Host) {
			p = set.byID.get(session.TenantID(unescapeParam(r, id)))
		}
	case path == "/v1" || strings.HasPrefix(path, "/v1/"):
		rest = path[len("/v1"):]
		labels = s.hostFormLabels
		p = set.byHost.get(session.NormalizeHost(r.Host))
	}
	if p == nil {
		s.handleUnknownTenant(w, r)
		return
	}
	if rest == "" {
		rest = "/"
	}
	ri.tenant, ri.policy, ri.labels = p.tenant, p, labels
	if p.plain != nil && s.overPlainLoopback(r) {
		ri.tenant = p.plain
	}
	ri.rctx.RoutePath = rest
	s.serveTenant(w, r, p)
	// A request the policy answered (a preflight, a refused origin) never
	// reached the routes: label it with the tenant prefix alone.
	ri.route = labels[ri.rctx.RoutePattern()]
	if ri.route == "" {
		ri.route = labels["/*"]
	}
}

// pathParam returns the path parameter key of the route chi matched,
// decoded exactly once. Every handler reads its parameters through it
// (TestPathParamsReadOnce), so that "ops%2Feve" and "%61lice" name the
// users "ops/eve" and "alice" on every route alike, never a user named by
// the escaped text.
func pathParam(r *http.Request, key string) string {
	return unescapeParam(r, chi.URLParam(r, key))
}

// unescapeParam decodes v, a segment of the path r was routed on. chi,
// like servePublic, routes on r.URL.RawPath when it is set (the path had
// escapes that its decoded form would lose, such as %2F, so that an
// escaped slash stays in its segment) and on r.URL.Path otherwise: a
// segment is still escaped in the first case and already decoded in the
// second, where decoding it again would turn "a%2Fb" (sent as a%252Fb)
// into "a/b". Malformed escapes, which net/http refuses before any
// handler, decode to "", which names nothing.
func unescapeParam(r *http.Request, v string) string {
	if r.URL.RawPath == "" {
		return v
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return ""
	}
	return u
}

// overPlainLoopback reports whether r was sent over plain HTTP to a name of
// the sender's own machine (http://localhost:8080): neither TLS on the
// connection nor X-Forwarded-Proto: https from a trusted proxy, and a
// loopback Host. The Host is the browser's: it stores the answer's cookie
// for that name, so a client naming loopback falsely only misfiles its own
// cookie. The peer's address is not asked, because a local container's
// published port shows another.
func (s *Server) overPlainLoopback(r *http.Request) bool {
	return loopbackHost(r) && !s.overHTTPS(r)
}

// loopbackHost reports whether r's Host (its port aside) names the
// sender's own machine.
func loopbackHost(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	return session.IsLoopbackHost(host)
}

func (s *Server) serveTenant(w http.ResponseWriter, r *http.Request, p *policy) {
	origin := r.Header["Origin"]
	switch {
	case len(origin) > 1:
		// Browsers send one Origin. jub0bs/cors and CrossOriginProtection
		// both read the first line only, so "allowed, then evil" would be
		// granted; refuse the request before either sees it.
		w.Header().Add("Vary", "Origin")
		s.writeError(w, r, errorf(kindBadRequest, "several Origin headers"))
		return
	case len(origin) == 1 && p.allowed[origin[0]]:
		if k, ok := corsKeyOf(r, origin[0]); ok && p.serveCORS(w, r, k) {
			return
		}
	}
	p.h.ServeHTTP(w, r)
}

// routeLabels maps each tenant route's pattern to its metrics label under
// prefix ("/me" to "/v1/t/{tenant}/me"), computed once so that labelling a
// request allocates nothing. "/*" labels requests no route took.
func routeLabels(routes chi.Routes, prefix string) map[string]string {
	labels := map[string]string{"/*": prefix + "/*"}
	chi.Walk(routes, func(_, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		labels[route] = prefix + route
		return nil
	})
	return labels
}

// handleUnknownTenant fails closed: no CORS headers, so no origin can read
// even the error. Vary still says the answer could depend on Origin.
func (s *Server) handleUnknownTenant(w http.ResponseWriter, r *http.Request) {
	if h := w.Header(); h["Vary"] == nil {
		h["Vary"] = hdrVaryOrigin
	} else {
		h["Vary"] = append(h["Vary"], "Origin")
	}
	writeCanned(w, problemUnknownTenant)
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, errorf(kindNotFound, "no such route"))
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 requires.
// chi computes the allowed methods only for its default handler, so ask the
// router itself which methods match the path: the path within the mount for
// the tenant routes (relative), the whole path for a top-level router.
func (s *Server) methodNotAllowed(routes chi.Routes, relative bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.RawPath // as chi routes (see unescapeParam)
		if path == "" {
			path = r.URL.Path
		}
		if rc := chi.RouteContext(r.Context()); relative && rc != nil {
			path = rc.RoutePath
		}
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if routes.Match(chi.NewRouteContext(), m, path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, errorf(kindMethodNotAllowed, r.Method+" is not allowed here"))
	}
}

// Admin returns the handler of the admin listener: health, readiness and,
// when a token is configured, the admin API.
func (s *Server) Admin() http.Handler {
	r := chi.NewRouter()
	r.Use(s.instrument("admin", false), s.recoverer, s.strictTransport, noStore)
	r.Get("/healthz", s.handleHealth)
	r.Get("/readyz", s.handleReady)
	r.With(s.requireMetricsToken).Get("/metrics", s.metrics.handler().ServeHTTP)
	r.Route("/admin/v1", func(r chi.Router) {
		r.Use(s.requireAdmin)
		r.Get("/tenants", s.handleListTenants)
		r.Route("/tenants/{tenant}", func(r chi.Router) {
			r.Use(s.scopeTenant)
			r.Get("/", s.handleGetTenant)
			r.Put("/", s.handlePutTenant)
			r.With(s.requirePlatform).Delete("/", s.handleDeleteTenant)
			r.Get("/audit", s.handleListAudit)
			r.Group(func(r chi.Router) {
				r.Use(s.requirePlatform, s.requireAdminTenant)
				r.Get("/keys", s.handleListKeys)
				r.Post("/keys", s.handleCreateKey)
				r.Delete("/keys/{id}", s.handleDeleteKey)
			})
			r.Group(func(r chi.Router) {
				r.Use(s.requireAdminTenant)
				r.Post("/doctor", s.handleAdminDoctor)
				r.Get("/users", s.handleListUsers)
				r.Post("/users", s.handleCreateUser)
				r.Get("/users/{username}", s.handleGetUser)
				r.Patch("/users/{username}", s.handleUpdateUser)
				r.Delete("/users/{username}", s.handleDeleteUser)
				r.Post("/users/{username}/verification", s.handleSendVerification)
				r.Get("/users/{username}/sessions", s.handleAdminListSessions)
				r.Delete("/users/{username}/sessions", s.handleAdminRevokeSessions)
				r.Delete("/users/{username}/sessions/{id}", s.handleAdminRevokeSession)
			})
		})
	})
	r.NotFound(s.handleNotFound)
	r.MethodNotAllowed(s.methodNotAllowed(r, false))
	return r
}

// noStore keeps every answer out of shared and browser caches: they carry
// sessions, users or per-origin CORS headers (CORS.md R1.11).
//
// Answers to OPTIONS (preflights above all) go without: RFC 9110 §9.3.7
// makes them uncacheable whatever they say, and each header line costs
// net/http a copy, a sort and a write on every preflight.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions {
			w.Header()["Cache-Control"] = hdrNoStore
		}
		next.ServeHTTP(w, r)
	})
}
