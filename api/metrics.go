package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/latchkeyhq/latchkey/session"
)

// metrics are the HTTP edge's Prometheus metrics. Every label set is
// bounded: routes are chi templates (never raw paths), tenants come from
// configuration, statuses and outcomes are fixed sets.
type metrics struct {
	gatherer prometheus.Gatherer

	mu    sync.RWMutex
	byKey map[obsKey]obsHandles

	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	logins           *prometheus.CounterVec
	sessionsCreated  *prometheus.CounterVec
	sessionsRevoked  *prometheus.CounterVec
	preflightRefused *prometheus.CounterVec
	csrfRefused      *prometheus.CounterVec
	cookieNotSent    *prometheus.CounterVec
	accounts         *prometheus.CounterVec
}

// Login outcomes, the values of latchkey_logins_total's outcome label.
const (
	loginSuccess     = "success"
	loginBadCreds    = "bad_credentials"
	loginRateLimited = "rate_limited"
	loginUnverified  = "email_unverified"
	loginBusy        = "busy"
	loginError       = "error"
	loginCSRF        = "csrf_refused"
	loginCORS        = "cors_refused"
)

func newMetrics(reg *prometheus.Registry) *metrics {
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &metrics{
		gatherer: reg,
		byKey:    map[obsKey]obsHandles{},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_http_requests_total",
			Help: "HTTP requests answered, by listener, route template, method, status and tenant.",
		}, []string{"listener", "route", "method", "status", "tenant"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "latchkey_http_request_duration_seconds",
			Help: "Time to answer HTTP requests, by listener, route template and method.",
			// From a cached me (well under a millisecond) to an argon2id
			// login queued behind others (a second or more).
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"listener", "route", "method"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_logins_total",
			Help: "Login attempts by tenant and outcome: success, bad_credentials, rate_limited, email_unverified, busy, error, csrf_refused, cors_refused (a refused preflight).",
		}, []string{"tenant", "outcome"}),
		sessionsCreated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_sessions_created_total",
			Help: "Sessions created, by tenant.",
		}, []string{"tenant"}),
		sessionsRevoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_sessions_revoked_total",
			Help: "Session revocations, by tenant and reason: logout, revoke, revoke_all, admin.",
		}, []string{"tenant", "reason"}),
		preflightRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_cors_preflights_refused_total",
			Help: "CORS preflights refused, by tenant and reason: origin_not_listed, method_not_allowed, headers_not_allowed.",
		}, []string{"tenant", "reason"}),
		csrfRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_csrf_refused_total",
			Help: "State-changing requests refused by the CSRF origin check, by tenant.",
		}, []string{"tenant"}),
		cookieNotSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_cookie_not_sent_total",
			Help: "Requests to a session route that came with a login receipt but without the session cookie, by tenant and the doctor's first reason (UserPreferences, CredentialsNotIncluded, ...).",
		}, []string{"tenant", "reason"}),
		accounts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_accounts_requests_total",
			Help: "Self-service account requests, by tenant, route (signup, verify, resend, reset_request, reset, change_password) and outcome: success, or the slug of the problem answered (rate-limited, weak-password, invalid-token, not-enabled, ...).",
		}, []string{"tenant", "route", "outcome"}),
	}
	f(m.requests)
	f(m.duration)
	f(m.logins)
	f(m.sessionsCreated)
	f(m.sessionsRevoked)
	f(m.preflightRefused)
	f(m.csrfRefused)
	f(m.cookieNotSent)
	f(m.accounts)
	return m
}

// obsKey is one label set of the request metrics.
type obsKey struct {
	listener, route, method string
	status                  int
	tenant                  session.TenantID
}

// obsHandles are the request metrics' children for one obsKey.
type obsHandles struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// handles returns the children for k, resolved once: WithLabelValues hashes
// and compares every label on each call, a cost every `me` paid twice. The
// table holds one entry per label set the Vecs hold anyway, so it is as
// bounded as they are.
func (m *metrics) handles(k obsKey) obsHandles {
	m.mu.RLock()
	h, ok := m.byKey[k]
	m.mu.RUnlock()
	if ok {
		return h
	}
	h = obsHandles{
		requests: m.requests.WithLabelValues(k.listener, k.route, k.method, strconv.Itoa(k.status), string(k.tenant)),
		duration: m.duration.WithLabelValues(k.listener, k.route, k.method),
	}
	m.mu.Lock()
	m.byKey[k] = h
	m.mu.Unlock()
	return h
}

// tenantHandles caches the request metrics' children of one tenant's
// requests on the public listener, by the rest of their label set. Unlike
// metrics.handles, a lookup takes no lock, only an atomic load: the read
// lock's counter, written by every request on every core, was most of what
// a lookup cost under load. A change copies the map, which holds at most
// maxTenantHandles entries (the routes, methods and statuses one tenant's
// requests see); past that, lookups go to metrics.handles.
type tenantHandles struct {
	m  atomic.Pointer[map[tenantObsKey]obsHandles]
	mu sync.Mutex
}

type tenantObsKey struct {
	route, method string
	status        int
}

const maxTenantHandles = 256

func (t *tenantHandles) get(m *metrics, k obsKey) obsHandles {
	tk := tenantObsKey{k.route, k.method, k.status}
	cur := t.m.Load()
	if cur != nil {
		if h, ok := (*cur)[tk]; ok {
			return h
		}
	}
	h := m.handles(k)
	if cur != nil && len(*cur) >= maxTenantHandles {
		return h
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	next := map[tenantObsKey]obsHandles{}
	if cur := t.m.Load(); cur != nil {
		if len(*cur) >= maxTenantHandles {
			return h
		}
		next = maps.Clone(*cur)
	}
	next[tk] = h
	t.m.Store(&next)
	return h
}

// observe records one answered request; th, when not nil, holds the
// children of its tenant's requests on the public listener.
func (m *metrics) observe(th *tenantHandles, listener string, r *http.Request, route string, status int, tenant session.TenantID, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	k := obsKey{listener, route, methodLabel(r.Method), status, tenant}
	var h obsHandles
	if th != nil {
		h = th.get(m, k)
	} else {
		h = m.handles(k)
	}
	h.requests.Inc()
	h.duration.Observe(d.Seconds())
}

// methodLabel returns a request's method for metrics and logs: clients
// choose methods, so any but the standard ones is "other", which keeps the
// label set fixed and a client's text out of the logs.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// loginOutcome is the outcome label of a login that returned err, as
// classify gives it.
func loginOutcome(err error) string {
	if err == nil {
		return loginSuccess
	}
	return classify(err).outcome
}

// accountsOutcome is the outcome label of a self-service account request
// that returned err: "success", or the problem's slug (a fixed set).
func accountsOutcome(err error, route accountsRoute) string {
	if err == nil {
		return loginSuccess
	}
	return strings.TrimPrefix(classifyAccounts(err, route).Type, problemTypePrefix)
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// requireMetricsToken guards /metrics with Config.MetricsToken, when one is
// set: the metrics name every tenant and how its logins fare, which is
// nobody's business but the operator's monitoring. The token is compared
// in constant time (SHA-256 digests, so length-independent too); the
// admin token is not accepted, so that Prometheus never holds it.
func (s *Server) requireMetricsToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.metricsAuth {
			scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			sum := sha256.Sum256([]byte(token))
			if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], s.metricsToken.Load()[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-metrics"`)
				s.writeError(w, r, errorf(kindMetricsUnauth, "send Authorization: Bearer <metrics token>"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
