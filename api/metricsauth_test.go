package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const metricsToken = "test-metrics-token-0123456789"

// TestMetricsToken checks that with Config.MetricsToken set, /metrics
// answers only that bearer token, never the admin token, and that the
// token rotates; the exchanges are checked against openapi.yaml.
func TestMetricsToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	srv := serverOver(t, e, Config{MetricsToken: metricsToken, AdminToken: adminToken})
	adm := httptest.NewServer(srv.Admin())
	t.Cleanup(adm.Close)
	get := func(auth string) (*http.Response, []byte) {
		t.Helper()
		r, err := http.NewRequestWithContext(t.Context(), "GET", adm.URL+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return e.spec.do(t, adm.Client(), r)
	}
	refused := func(what, auth string) {
		t.Helper()
		res, body := get(auth)
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "urn:latchkey:problem:metrics-unauthorized") {
			t.Errorf("%s: status %d, body %s; want 401 metrics-unauthorized", what, res.StatusCode, body)
		}
		if got := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
			t.Errorf("%s: WWW-Authenticate = %q, want Bearer", what, got)
		}
		if strings.Contains(string(body), "latchkey_http_requests_total") {
			t.Errorf("%s: the refusal carries metrics", what)
		}
	}
	served := func(what, auth string) {
		t.Helper()
		res, body := get(auth)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "latchkey_http_requests_total") {
			t.Errorf("%s: status %d; want 200 with the metrics", what, res.StatusCode)
		}
	}
	refused("no Authorization", "")
	refused("a wrong token", "Bearer not-the-metrics-token-0123")
	refused("the admin token", "Bearer "+adminToken)
	refused("the token with another scheme", "Basic "+metricsToken)
	refused("the token without a scheme", metricsToken)
	refused("a prefix of the token", "Bearer "+metricsToken[:len(metricsToken)-1])
	served("the token", "Bearer "+metricsToken)
	served("the token, scheme in lowercase", "bearer "+metricsToken)

	// The health endpoints stay open: the kubelet sends no token.
	for _, path := range []string{"/healthz", "/readyz"} {
		if res, err := adm.Client().Get(adm.URL + path); err != nil || res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %v %v, want 200 without a token", path, res, err)
		} else {
			res.Body.Close()
		}
	}

	const next = "next-metrics-token-9876543210"
	if err := srv.SetMetricsToken(next); err != nil {
		t.Fatalf("SetMetricsToken: %v", err)
	}
	served("the new token", "Bearer "+next)
	refused("the old token after a rotation", "Bearer "+metricsToken)
	if err := srv.SetMetricsToken("short"); err == nil {
		t.Error("SetMetricsToken accepted a 5-byte token")
	}
	served("the new token after a refused rotation", "Bearer "+next)
}

// TestMetricsWithoutToken keeps /metrics open when no token is set, as it
// was, and refuses to protect it only half-way at run time.
func TestMetricsWithoutToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	if r := e.do(req{admin: true, method: "GET", path: "/metrics"}); r.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics without a configured token: %d, want 200", r.StatusCode)
	}
	if err := e.srv.SetMetricsToken(metricsToken); err == nil {
		t.Error("SetMetricsToken on a server started without a token succeeded")
	}
	if _, err := NewServer(e.m, Config{Logger: slog.New(slog.DiscardHandler), MetricsToken: "short"}); err == nil {
		t.Error("NewServer accepted a 5-byte metrics token")
	}
}
