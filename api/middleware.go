package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
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

// instrument writes one log line and the metrics of each request: request
// ID, tenant, route template (never the raw path, which can hold
// usernames), status, duration and client address. It never logs headers,
// so cookies and tokens stay out of logs.
func (s *Server) instrument(listener string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
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
			d := time.Since(start)
			s.metrics.observe(listener, r, route, status, li.tenant, d)
			// Check first: the attributes (the client address in particular)
			// cost work on the hot path even when the line is dropped.
			if !s.log.Enabled(r.Context(), slog.LevelInfo) {
				return
			}
			s.log.InfoContext(r.Context(), "request",
				"request_id", id,
				"listener", listener,
				"tenant", string(li.tenant),
				"method", r.Method,
				"route", route,
				"status", status,
				"duration_ms", float64(d.Microseconds())/1000,
				"client_ip", s.clientIP(r),
			)
		})
	}
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
			s.writeError(w, r, fmt.Errorf("%w: only the platform token may do this", session.ErrForbidden))
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
		if k := principalFrom(r.Context()).key; k != nil && string(k.Tenant) != chi.URLParam(r, "tenant") {
			s.writeError(w, r, fmt.Errorf("%w: tenant %q", session.ErrNotFound, chi.URLParam(r, "tenant")))
			return
		}
		next.ServeHTTP(w, r)
	})
}
