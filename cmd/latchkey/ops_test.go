package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHSTSMaxAgeSetting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, env string
		args      []string
		want      time.Duration
		wantErr   bool
	}{
		{name: "default: a year", want: 365 * 24 * time.Hour},
		{name: "off", env: "0", want: 0},
		{name: "off, with a unit", env: "0s", want: 0},
		{name: "a day", env: "24h", want: 24 * time.Hour},
		{name: "two years", env: "17520h", want: 2 * 365 * 24 * time.Hour},
		{name: "the flag wins", env: "24h", args: []string{"-hsts-max-age", "0"}, want: 0},
		{name: "beyond two years", env: "17521h", wantErr: true},
		{name: "negative", env: "-1s", wantErr: true},
		{name: "a fraction of a second", env: "1.5s", wantErr: true},
		{name: "seconds without a unit", env: "31536000", wantErr: true},
		{name: "a word", env: "off", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"LATCHKEY_HSTS_MAX_AGE": tc.env}
			c, err := parseConfig(tc.args, func(k string) string { return env[k] }, io.Discard)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "LATCHKEY_HSTS_MAX_AGE: ") {
					t.Errorf("parseConfig = %v, want an error naming LATCHKEY_HSTS_MAX_AGE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.HSTSMaxAge != tc.want {
				t.Errorf("HSTSMaxAge = %v, want %v", c.HSTSMaxAge, tc.want)
			}
		})
	}
}

// TestMetricsTokenSettings checks LATCHKEY_METRICS_TOKEN and its _FILE:
// parseConfig refuses a short token or both, newApp reads the file, and the
// app's /metrics then requires the token.
func TestMetricsTokenSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, empty, short := file("good", "metrics-token-from-a-file-0123\n"), file("empty", "\n"), file("short", "metrics-token-\n")
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "unset", env: map[string]string{}},
		{name: "in the environment", env: map[string]string{"LATCHKEY_METRICS_TOKEN": "metrics-token-0123456789"}, want: "metrics-token-0123456789"},
		{name: "in a file, without its newline", env: map[string]string{"LATCHKEY_METRICS_TOKEN_FILE": good}, want: "metrics-token-from-a-file-0123"},
		{name: "too short", env: map[string]string{"LATCHKEY_METRICS_TOKEN": "short-secret"}, wantErr: "LATCHKEY_METRICS_TOKEN: must be at least 16 bytes"},
		{name: "too short in a file", env: map[string]string{"LATCHKEY_METRICS_TOKEN_FILE": short}, wantErr: "LATCHKEY_METRICS_TOKEN_FILE: must be at least 16 bytes"},
		{name: "both", env: map[string]string{"LATCHKEY_METRICS_TOKEN": "metrics-token-0123456789", "LATCHKEY_METRICS_TOKEN_FILE": good},
			wantErr: "LATCHKEY_METRICS_TOKEN and LATCHKEY_METRICS_TOKEN_FILE are both set"},
		{name: "an empty file", env: map[string]string{"LATCHKEY_METRICS_TOKEN_FILE": empty}, wantErr: "LATCHKEY_METRICS_TOKEN_FILE: "},
		{name: "a missing file", env: map[string]string{"LATCHKEY_METRICS_TOKEN_FILE": filepath.Join(dir, "nope")}, wantErr: "LATCHKEY_METRICS_TOKEN_FILE: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseConfig(nil, func(k string) string { return tc.env[k] }, io.Discard)
			var a *app
			if err == nil {
				out := newLogWriter(io.Discard, defaultLogBuffering)
				defer out.Close()
				a, err = newApp(c, out)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want an error with %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "metrics-token-") {
					t.Errorf("the error echoes the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer a.closeStore()
			metrics := func(token string) int {
				r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				if token != "" {
					r.Header.Set("Authorization", "Bearer "+token)
				}
				w := httptest.NewRecorder()
				a.srv.Admin().ServeHTTP(w, r)
				return w.Code
			}
			if got := metrics(tc.want); got != http.StatusOK {
				t.Errorf("/metrics with %q: %d, want 200", tc.want, got)
			}
			if tc.want != "" {
				if got := metrics(""); got != http.StatusUnauthorized {
					t.Errorf("/metrics without the token: %d, want 401", got)
				}
			}
		})
	}
}

// TestServeMetricsTokenAndHSTS boots the service with a metrics token file
// and a trusted proxy on loopback: /metrics needs the token and follows the
// file, HSTS goes only with answers the proxy says came over HTTPS, and no
// token reaches the log.
func TestServeMetricsTokenAndHSTS(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "metrics-token")
	const first, second = "first-metrics-token-0123", "second-metrics-token-456"
	writeAtomically(t, tokenFile, first+"\n")
	pub, adm, out := boot(t, map[string]string{"LATCHKEY_METRICS_TOKEN_FILE": tokenFile, "LATCHKEY_TRUSTED_PROXIES": "127.0.0.1"})

	metrics := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", adm+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if got := metrics(""); got != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d, want 401", got)
	}
	if got := metrics(first); got != http.StatusOK {
		t.Errorf("/metrics with the token: %d, want 200", got)
	}
	writeAtomically(t, tokenFile, second+"\n")
	deadline := time.Now().Add(5 * time.Second)
	for metrics(second) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the new metrics token was not taken within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := metrics(first); got != http.StatusUnauthorized {
		t.Errorf("/metrics with the old token after a rotation: %d, want 401", got)
	}

	hsts := func(proto string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", pub+"/v1/t/example/me", nil)
		if proto != "" {
			req.Header.Set("X-Forwarded-Proto", proto)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.Header.Get("Strict-Transport-Security")
	}
	if got := hsts("https"); got != "max-age=31536000" {
		t.Errorf("behind a trusted proxy over HTTPS: Strict-Transport-Security = %q, want max-age=31536000", got)
	}
	if got := hsts(""); got != "" {
		t.Errorf("over plain HTTP: Strict-Transport-Security = %q, want none", got)
	}
	logSettled(t, adm, out)
	for _, secret := range []string{first, second} {
		if strings.Contains(out.String(), secret) {
			t.Error("a metrics token reached the log")
		}
	}
}

func TestLoopbackAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8081": true, "[::1]:8081": true, "localhost:8081": true, "127.0.0.2:1": true,
		"0.0.0.0:8081": false, ":8081": false, "[::]:8081": false, "10.0.0.1:8081": false, "nonsense": false,
	} {
		if got := loopbackAddr(addr); got != want {
			t.Errorf("loopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
