package api

// Micro-benchmarks of the public handler, run by `make bench` (and by any
// `go test -bench`): the CORS decision of a preflight, allowed and refused,
// and allowed actual requests, through Server.Public() with
// httptest.NewRecorder; and the request body decoder on flat and deeply
// nested bodies, alone and under a flood of logins. The process-level
// benchmark is in bench/.

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	runtimemetrics "runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store/memstore"
)

const (
	benchOrigin = "https://app.bench.test"
	benchEvil   = "https://evil.bench.test"
)

// benchPublic returns the public handler of a Server over memstore with
// one tenant, "bench" (path form), and a valid session cookie for it, with
// the per-process session cache on as `latchkey serve` has it. The logger
// discards, as at LATCHKEY_LOG_LEVEL=warn, and the clock stands still, so
// that no request writes a session back.
func benchPublic(b *testing.B) (http.Handler, *http.Cookie) {
	b.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time { return now }
	m, err := session.NewManager(memstore.New(memstore.Config{Now: clock}), session.Config{
		Keys: [][]byte{bytes.Repeat([]byte("b"), 32)}, Now: clock,
		Password: session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	})
	if err != nil {
		b.Fatal(err)
	}
	m.EnableCache(b.Context(), session.DefaultCacheSize)
	srv, err := NewServer(m, Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	t, _, err := m.PutTenant(ctx, session.Tenant{ID: "bench", Name: "Bench", Origins: []string{benchOrigin},
		Cookie: session.CookiePolicy{SameSite: session.SameSiteNone, Partitioned: true}})
	if err != nil {
		b.Fatal(err)
	}
	srv.UpdateTenants(session.TenantsUpdate{Changed: []session.Tenant{t}})
	pw := "bench-password"
	if _, err := m.CreateUser(ctx, t.ID, session.UserInput{Username: "u000042", Password: &pw}); err != nil {
		b.Fatal(err)
	}
	_, c, err := m.Login(ctx, &t, session.LoginInput{Username: "u000042", Password: pw, UserAgent: "Go-http-client/1.1"})
	if err != nil {
		b.Fatal(err)
	}
	return srv.Public(), c
}

// benchServe serves req once per iteration into a fresh recorder and
// checks the status and Access-Control-Allow-Origin.
func benchServe(b *testing.B, h http.Handler, req *http.Request, status int, acao string) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != status || rec.Header().Get("Access-Control-Allow-Origin") != acao {
			b.Fatalf("status %d, ACAO %q; want %d, %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), status, acao)
		}
	}
}

func benchPreflight(origin string) *http.Request {
	req := httptest.NewRequest(http.MethodOptions, "http://auth.bench.test/v1/t/bench/login", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	return req
}

func BenchmarkPublicPreflight(b *testing.B) {
	h, _ := benchPublic(b)
	benchServe(b, h, benchPreflight(benchOrigin), http.StatusNoContent, benchOrigin)
}

func BenchmarkPublicPreflightRefused(b *testing.B) {
	h, _ := benchPublic(b)
	benchServe(b, h, benchPreflight(benchEvil), http.StatusForbidden, "")
}

// BenchmarkPublicMe is an allowed actual request with a valid session:
// CORS, the CSRF check, routing, the session lookup and the JSON answer.
func BenchmarkPublicMe(b *testing.B) {
	h, c := benchPublic(b)
	req := httptest.NewRequest(http.MethodGet, "http://auth.bench.test/v1/t/bench/me", nil)
	req.Header.Set("Origin", benchOrigin)
	req.AddCookie(c)
	benchServe(b, h, req, http.StatusOK, benchOrigin)
}

// BenchmarkPublicMeNoCookie is an allowed actual request without a cookie:
// the same path without the session lookup (401 problem).
func BenchmarkPublicMeNoCookie(b *testing.B) {
	h, _ := benchPublic(b)
	req := httptest.NewRequest(http.MethodGet, "http://auth.bench.test/v1/t/bench/me", nil)
	req.Header.Set("Origin", benchOrigin)
	benchServe(b, h, req, http.StatusUnauthorized, benchOrigin)
}

// The refusals the issue wants no dearer than a preflight: a cookie with a
// wrong signature, a valid cookie from a disallowed origin, an unknown
// tenant.

func BenchmarkPublicMeBadSignature(b *testing.B) {
	h, c := benchPublic(b)
	req := httptest.NewRequest(http.MethodGet, "http://auth.bench.test/v1/t/bench/me", nil)
	req.Header.Set("Origin", benchOrigin)
	bad := *c
	bad.Value = c.Value[:len(c.Value)-8] + "AAAAAAA="
	req.AddCookie(&bad)
	benchServe(b, h, req, http.StatusUnauthorized, benchOrigin)
}

func BenchmarkPublicMeDisallowedOrigin(b *testing.B) {
	h, c := benchPublic(b)
	req := httptest.NewRequest(http.MethodGet, "http://auth.bench.test/v1/t/bench/me", nil)
	req.Header.Set("Origin", benchEvil)
	req.AddCookie(c)
	benchServe(b, h, req, http.StatusForbidden, "")
}

func BenchmarkPublicUnknownTenant(b *testing.B) {
	h, c := benchPublic(b)
	req := httptest.NewRequest(http.MethodGet, "http://auth.bench.test/v1/t/nosuch/me", nil)
	req.Header.Set("Origin", benchOrigin)
	req.AddCookie(c)
	benchServe(b, h, req, http.StatusNotFound, "")
}

// Bodies of the JSON benchmarks, each refused with a 400 so that no
// password is checked: flat ones (an unknown member; a password over its
// 1,024 bytes, decoded in full), and the deep ones that once cost memory
// quadratic in their nesting (27 MB for the 4 KiB login).
var benchBodies = []struct{ name, body string }{
	{"flat-login", `{"username":"u000042","password":"a password","remember":true}`},
	{"flat-login-4KiB", `{"username":"u000042","password":"` + strings.Repeat("p", maxLoginBody-len(`{"username":"u000042","password":""}`)) + `"}`},
	{"deep-login-4KiB", `{"username":` + strings.Repeat("[", maxLoginBody-len(`{"username":`))},
	{"deep-bare-4KiB", strings.Repeat("[", maxLoginBody)},
	{"deep-20000", strings.Repeat("[", 20000)},
	{"deep-admin-64KiB", strings.Repeat("[", maxAdminBody)},
}

// BenchmarkDecodeJSON decodes each body as a login request: B/op and
// B/body-byte (bytes allocated per byte of body) show the cost is linear in
// the body's size, whatever its shape.
func BenchmarkDecodeJSON(b *testing.B) {
	for _, bb := range benchBodies {
		b.Run(bb.name, func(b *testing.B) {
			body := []byte(bb.body)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				var in loginRequest
				decodeJSON(body, &in)
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(len(body)), "B/body-byte")
		})
	}
}

// BenchmarkPublicLoginFlood posts each body to the login of the public
// handler from 64 goroutines per CPU at once, as the attack did, and
// reports the peak of the live heap above where it started (peak-heap-MiB,
// sampled every millisecond), besides B/op.
func BenchmarkPublicLoginFlood(b *testing.B) {
	for _, bb := range benchBodies {
		if len(bb.body) > maxLoginBody {
			continue // a 413 measures nothing here
		}
		b.Run(bb.name, func(b *testing.B) {
			h, _ := benchPublic(b)
			const want = http.StatusBadRequest
			b.ReportAllocs()
			b.SetParallelism(64)
			peak := sampleHeapPeak(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "http://auth.bench.test/v1/t/bench/login", strings.NewReader(bb.body))
					req.Header.Set("Origin", benchOrigin)
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != want {
						b.Errorf("status %d, want %d: %s", rec.Code, want, rec.Body)
						return
					}
				}
			})
			b.ReportMetric(float64(peak())/(1<<20), "peak-heap-MiB")
		})
	}
}

// sampleHeapPeak samples the live heap every millisecond from now until the
// returned function is called, which returns its peak above the first
// sample, in bytes.
func sampleHeapPeak(b *testing.B) func() uint64 {
	b.Helper()
	sample := []runtimemetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { runtimemetrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	base := read()
	var peak atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > base && v-base > peak.Load() {
				peak.Store(v - base)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return peak.Load()
	}
}

// BenchmarkCookieValues reads the session cookie out of a Cookie header
// that also carries a site's other cookies: the part of every `me` that
// Request.CookiesNamed does.
func BenchmarkCookieValues(b *testing.B) {
	t := &session.Tenant{ID: "bench"}
	req := httptest.NewRequest(http.MethodGet, "http://auth.bench.test/v1/t/bench/me", nil)
	req.Header.Set("Cookie", "_ga=GA1.1.1234567890.1795780800; theme=dark; "+t.CookieName()+"="+
		strings.Repeat("A", 128)+"; csrftoken=0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		if vs := cookieValues(nil, req, t); len(vs) != 1 {
			b.Fatalf("cookieValues = %q, want one value", vs)
		}
	}
}
