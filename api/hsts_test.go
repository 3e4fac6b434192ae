package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// serverOver returns a second Server over e's manager and tenants, with
// cfg (its Logger defaulted), for settings newEnv does not take.
func serverOver(tb testing.TB, e *env, cfg Config) *Server {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(tlogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv, err := NewServer(e.m, cfg)
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	ts, err := e.m.ListTenants(tb.Context())
	if err != nil {
		tb.Fatalf("ListTenants: %v", err)
	}
	srv.UpdateTenants(session.TenantsUpdate{Changed: ts})
	srv.MarkReady()
	return srv
}

const oneYear = 365 * 24 * time.Hour

// TestStrictTransportSecurity checks that HSTS goes with every answer to a
// request that came over HTTPS, whatever the route and status, and never
// with one over plain HTTP: X-Forwarded-Proto counts only from a trusted
// proxy, and only its last value.
func TestStrictTransportSecurity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	proxy := netip.MustParsePrefix("10.0.0.0/29")
	srv := serverOver(t, e, Config{HSTSMaxAge: oneYear, TrustedProxies: []netip.Prefix{proxy}, AdminToken: adminToken})
	const want = "max-age=31536000"
	preflight := map[string]string{"Origin": betaDev, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
	tests := []struct {
		name    string
		admin   bool
		method  string
		target  string
		peer    string   // RemoteAddr; "" means httptest's 192.0.2.1:1234
		proto   []string // X-Forwarded-Proto lines
		headers map[string]string
		status  int
		want    string
	}{
		{name: "TLS, me without a session", method: "GET", target: "https://" + sharedHost + "/v1/t/beta/me", status: 401, want: want},
		{name: "TLS, unknown tenant", method: "GET", target: "https://" + sharedHost + "/v1/t/nosuch/me", status: 404, want: want},
		{name: "TLS, preflight", method: "OPTIONS", target: "https://" + sharedHost + "/v1/t/beta/login", headers: preflight, status: 204, want: want},
		{name: "TLS, refused preflight", method: "OPTIONS", target: "https://" + sharedHost + "/v1/t/beta/login",
			headers: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}, status: 403, want: want},
		{name: "TLS, foreign origin", method: "GET", target: "https://" + sharedHost + "/v1/t/beta/me", headers: map[string]string{"Origin": "https://evil.example"}, status: 403, want: want},
		{name: "TLS, admin healthz", admin: true, method: "GET", target: "https://127.0.0.1/healthz", status: 200, want: want},
		{name: "TLS, admin without a token", admin: true, method: "GET", target: "https://127.0.0.1/admin/v1/tenants", status: 401, want: want},
		{name: "plain HTTP", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", status: 401},
		{name: "plain HTTP, admin", admin: true, method: "GET", target: "http://127.0.0.1/healthz", status: 200},
		{name: "client claims https", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", proto: []string{"https"}, status: 401},
		{name: "client claims https, from next to a proxy", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", peer: "10.0.0.8:5000", proto: []string{"https"}, status: 401},
		{name: "trusted proxy says https", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", peer: "10.0.0.5:5000", proto: []string{"https"}, status: 401, want: want},
		{name: "trusted proxy says HTTPS", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", peer: "10.0.0.5:5000", proto: []string{"HTTPS"}, status: 401, want: want},
		{name: "trusted proxy over IPv4-mapped IPv6", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", peer: "[::ffff:10.0.0.5]:5000", proto: []string{"https"}, status: 401, want: want},
		{name: "trusted proxy says http", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", peer: "10.0.0.5:5000", proto: []string{"http"}, status: 401},
		{name: "trusted proxy appends https", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", peer: "10.0.0.5:5000", proto: []string{"http, https"}, status: 401, want: want},
		{name: "trusted proxy appends http", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", peer: "10.0.0.5:5000", proto: []string{"https, http"}, status: 401},
		{name: "trusted proxy's own line says http", method: "GET", target: "http://" + sharedHost + "/v1/t/beta/me", peer: "10.0.0.5:5000", proto: []string{"https", "http"}, status: 401},
		{name: "trusted proxy says https, admin", admin: true, method: "GET", target: "http://127.0.0.1/healthz", peer: "10.0.0.5:5000", proto: []string{"https"}, status: 200, want: want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, tt.target, nil)
			if tt.peer != "" {
				r.RemoteAddr = tt.peer
			}
			for _, p := range tt.proto {
				r.Header.Add("X-Forwarded-Proto", p)
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			h := srv.Public()
			if tt.admin {
				h = srv.Admin()
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d (body %s)", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Values("Strict-Transport-Security"); len(got) > 1 || (len(got) == 1) != (tt.want != "") || (tt.want != "" && got[0] != tt.want) {
				t.Errorf("Strict-Transport-Security = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStrictTransportSecurityOverTLS makes real TLS exchanges, checked
// against openapi.yaml, with HSTS on and off.
func TestStrictTransportSecurityOverTLS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, tt := range []struct {
		name   string
		maxAge time.Duration
		want   string
	}{
		{"a year", oneYear, "max-age=31536000"},
		{"a day and a fraction of a second", 24*time.Hour + 300*time.Millisecond, "max-age=86400"},
		{"off", 0, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := serverOver(t, e, Config{HSTSMaxAge: tt.maxAge})
			ts := httptest.NewTLSServer(srv.Public())
			t.Cleanup(ts.Close)
			for _, path := range []string{"/v1/t/beta/me", "/v1/t/nosuch/me"} {
				r, err := http.NewRequestWithContext(t.Context(), "GET", ts.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				r.Header.Set("Origin", betaDev)
				res, _ := e.spec.do(t, ts.Client(), r)
				if got := res.Header.Get("Strict-Transport-Security"); got != tt.want {
					t.Errorf("GET %s over TLS: Strict-Transport-Security = %q, want %q", path, got, tt.want)
				}
			}
		})
	}
}

func TestHSTSMaxAgeValidated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	if _, err := NewServer(e.m, Config{Logger: slog.New(slog.DiscardHandler), HSTSMaxAge: -time.Second}); err == nil {
		t.Error("NewServer accepted a negative HSTSMaxAge")
	}
}
