package api

import (
	"cmp"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// What an operator sees of a refused origin: a warn line saying which
// origin a tenant refused and which listed origin it was probably meant
// to be, so that "my SPA moved to a new origin" is found in the log
// rather than guessed from a rising metric. A scanner, or a page on
// another site, can send refusals as fast as it likes, so the lines are
// rate-limited for the whole replica by one token bucket, which costs one
// atomic word whatever the number of distinct origins, and the doctor is
// asked only for a line that will be written.

// Bounds of the refused-origin log: at most refusalLogBurst lines at once,
// then refusalLogRate a second.
const (
	refusalLogRate  = 2
	refusalLogBurst = 5
)

// refusalLog is the token bucket of the refused-origin log, as a generic
// cell rate algorithm: tat is the time at which the bucket is full again,
// in Unix nanoseconds, and a line may be written while it is less than
// refusalLogBurst intervals ahead of now. The zero value is a full bucket.
// It is safe for concurrent use.
type refusalLog struct {
	tat        atomic.Int64
	suppressed atomic.Int64 // refusals not logged since the last line
}

// allow reports whether a line may be written now, and how many refusals
// went unlogged since the last line.
func (l *refusalLog) allow(now time.Time) (suppressed int64, ok bool) {
	const interval = int64(time.Second / refusalLogRate)
	n := now.UnixNano()
	for {
		tat := l.tat.Load()
		t := max(tat, n)
		if t-n > (refusalLogBurst-1)*interval {
			l.suppressed.Add(1)
			return 0, false
		}
		if l.tat.CompareAndSwap(tat, t+interval) {
			return l.suppressed.Swap(0), true
		}
	}
}

// noteForeignOrigin logs, within the bucket's rate, that ri's tenant
// refused a request (or preflight) r from origin, which it does not list: the
// origin (bounded), the doctor's reason, and the listed origin nearest to
// it with what differs. Never a header but Origin, so no cookie.
func (s *Server) noteForeignOrigin(r *http.Request, ri *reqInfo, origin string) {
	ctx := r.Context()
	if ri == nil || ri.tenant == nil || !s.log.Enabled(ctx, slog.LevelWarn) {
		return
	}
	t := ri.tenant
	suppressed, ok := s.refusals.allow(s.now())
	if !ok {
		return
	}
	attrs := []slog.Attr{
		slog.String("tenant", string(t.ID)),
		slog.String("origin", quoteOrigin(origin)),
		slog.String("method", methodLabel(r.Method)),
		slog.String("route", cmp.Or(ri.route, routeOf(r))),
		slog.String("reason", session.ReasonOriginNotListed),
	}
	if d, err := s.diagnose(r, t, origin); err == nil && d.Closest != nil {
		attrs = append(attrs,
			slog.String("closest_origin", d.Closest.Origin),
			slog.String("differs", strings.Join(d.Closest.Differs, ",")))
	}
	attrs = append(attrs, slog.Int64("suppressed", suppressed))
	s.log.LogAttrs(ctx, slog.LevelWarn, "refused an origin the tenant does not list", attrs...)
}

// Reasons a preflight is refused, the values of
// latchkey_cors_preflights_refused_total's reason label.
const (
	refusedOrigin  = "origin_not_listed"
	refusedMethod  = "method_not_allowed"
	refusedHeaders = "headers_not_allowed"
)

// preflightRefusal says why jub0bs/cors refused r, a preflight to p's
// tenant, in the order it checks (Fetch, CORS-preflight fetch, step 7):
// the origin, then the method, then the headers. The library answers a
// bare 403 for all three; the origin and the method are a lookup each
// here, and what is left is the headers.
func (p *policy) preflightRefusal(r *http.Request) string {
	origin := r.Header["Origin"]
	if len(origin) != 1 || !p.allowed[origin[0]] {
		return refusedOrigin
	}
	if !p.methods[r.Header.Get("Access-Control-Request-Method")] {
		return refusedMethod
	}
	return refusedHeaders
}

// preflightMethods are the methods a preflight of t may ask for: the
// CORS-safelisted ones, which need no grant, and those its configuration
// lists, byte for byte as jub0bs/cors compares them.
func preflightMethods(t *session.Tenant) map[string]bool {
	m := map[string]bool{http.MethodGet: true, http.MethodHead: true, http.MethodPost: true}
	for _, x := range t.CORSConfig().Methods {
		m[x] = true
	}
	return m
}

// preflightRefused counts r, a preflight its tenant's policy p refused,
// by reason, and logs the origin if it is not listed.
func (s *Server) preflightRefused(r *http.Request, ri *reqInfo) {
	p := ri.policy
	reason := p.preflightRefusal(r)
	s.metrics.preflightRefused.WithLabelValues(string(p.tenant.ID), reason).Inc()
	if strings.HasSuffix(r.URL.Path, "/login") {
		s.metrics.logins.WithLabelValues(string(p.tenant.ID), loginCORS).Inc()
	}
	if reason == refusedOrigin {
		s.noteForeignOrigin(r, ri, r.Header.Get("Origin"))
	}
}
