package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/latchkeyhq/latchkey/session"
)

// logInfo is filled in as a request travels inward (the tenant is known only
// after resolution) and read by logRequests once it returns.
type logInfo struct {
	tenant session.TenantID
}

type logKey struct{}

func setLogTenant(ctx context.Context, t session.TenantID) {
	if li, ok := ctx.Value(logKey{}).(*logInfo); ok {
		li.tenant = t
	}
}

// logRequests writes one line per request: request ID, tenant, route
// template (never the raw path, which can hold usernames), status and
// duration. It never logs headers, so cookies and tokens stay out of logs.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := rand.Text()[:16]
		w.Header().Set("X-Request-Id", id)
		li := &logInfo{}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), logKey{}, li)))
		route := ""
		if rc := chi.RouteContext(r.Context()); rc != nil {
			route = rc.RoutePattern()
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		s.log.InfoContext(r.Context(), "request",
			"request_id", id,
			"tenant", string(li.tenant),
			"method", r.Method,
			"route", route,
			"status", status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000,
		)
	})
}

// recoverer turns a panic into a 500 problem instead of a dropped
// connection, and logs it.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "panic while serving", "method", r.Method, "panic", v)
				writeProblem(w, newProblem(kindInternal, ""))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// requireAdmin checks the admin bearer token in constant time. Comparing
// SHA-256 digests keeps the comparison length-independent too.
func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.adminEnabled {
			s.writeError(w, r, errorf(kindNotFound, "the admin API is disabled: set LATCHKEY_ADMIN_TOKEN to enable it"))
			return
		}
		auth := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(auth, " ")
		sum := sha256.Sum256([]byte(token))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], s.adminToken[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin"`)
			s.writeError(w, r, errorf(kindAdminUnauthorized, "send Authorization: Bearer <admin token>"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
