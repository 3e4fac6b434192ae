package api

// What operators see of refused origins: the 403's detail, the
// rate-limited log line, the refused-preflight metric's reason.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// TestForeignOriginDetail: the 403 of a refused origin names it, its first
// maxQuotedOrigin bytes, JSON-escaped exactly as json.Encoder escapes.
func TestForeignOriginDetail(t *testing.T) {
	t.Parallel()
	for _, origin := range []string{
		corsEvil, "null", `https://evil.example/"quoted"\`, "https://<script>&.example", "https://caf\u00e9.example",
		"https://" + strings.Repeat("a", 300), "https://" + strings.Repeat("\u00e9", 150), "bad \xff utf8",
	} {
		rec := httptest.NewRecorder()
		writeForeignOrigin(rec, origin)
		var want bytes.Buffer
		json.NewEncoder(&want).Encode(newProblem(kindForbiddenOrigin, foreignOriginDetail(origin)))
		if !bytes.Equal(rec.Body.Bytes(), want.Bytes()) {
			t.Errorf("origin %q:\n got %s\nwant %s", origin, rec.Body.Bytes(), want.Bytes())
		}
		if rec.Code != http.StatusForbidden || rec.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("origin %q: status %d, Content-Type %q", origin, rec.Code, rec.Header().Get("Content-Type"))
		}
		if q := quoteOrigin(origin); len(q) > maxQuotedOrigin+len("…") || !strings.HasPrefix(origin, strings.TrimSuffix(q, "…")) {
			t.Errorf("quoteOrigin(%q) = %q: longer than %d bytes or not its start", origin, q, maxQuotedOrigin)
		}
	}

	e := newEnv(t, envOptions{})
	alice := e.loginAlice()
	const evil = `https://evil.example"<x>`
	long := "https://" + strings.Repeat("a", 1000) + ".example"
	for _, q := range []req{
		{method: "GET", path: "/v1/me", host: acmeHost, origin: evil, cookies: []*http.Cookie{alice}},
		{method: "POST", path: "/v1/logout", host: acmeHost, origin: evil, cookies: []*http.Cookie{alice}},
		{method: "POST", path: "/v1/t/beta/login", origin: acmeApp, json: map[string]string{"username": "bob", "password": bobPassword}},
		{method: "GET", path: "/v1/t/beta/sessions", origin: long},
	} {
		r := e.do(q)
		p := answerProblem(t, r)
		if r.StatusCode != http.StatusForbidden || p.Type != "forbidden-origin" {
			t.Fatalf("%s %s from %.40s: %d %s, want 403 forbidden-origin", q.method, q.path, q.origin, r.StatusCode, p.Type)
		}
		if !strings.Contains(p.Detail, quoteOrigin(q.origin)) || len(p.Detail) > maxQuotedOrigin+100 {
			t.Errorf("%s %s: detail %q does not name the origin in at most %d bytes", q.method, q.path, p.Detail, maxQuotedOrigin)
		}
	}
	if !e.aliveAcme(alice) {
		t.Error("a refused logout ended the session")
	}
}

// TestRefusedOriginLog: every refusal of a foreign origin (a request, a
// state-changing request, a preflight) may log a warn line naming the
// tenant, the origin, the doctor's reason and the closest listed origin;
// a flood of them logs at most the bucket's burst while the clock stands
// still, never a cookie, and the next line counts what was left out.
func TestRefusedOriginLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.loginAlice()
	var logs syncBuffer
	var mu sync.Mutex
	now := e.clock.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv := serverOver(t, e, Config{Now: clock, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	pub := httptest.NewServer(srv.Public())
	t.Cleanup(pub.Close)

	const typo = "https://app.acme.co" // the listed https://app.acme.com, mistyped
	send := func(method, path, origin string, h map[string]string) (int, error) {
		r, err := http.NewRequestWithContext(t.Context(), method, pub.URL+path, nil)
		if err != nil {
			return 0, err
		}
		r.Host = acmeHost
		r.Header.Set("Origin", origin)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		r.AddCookie(alice)
		res, err := pub.Client().Do(r)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	kinds := []struct {
		method, path string
		h            map[string]string
	}{
		{"GET", "/v1/me", nil},
		{"POST", "/v1/logout", nil},
		{"OPTIONS", "/v1/login", map[string]string{corsHdrACRM: "POST", corsHdrACRH: "content-type"}},
	}
	const flood = 1000
	var wg sync.WaitGroup
	errs := make(chan error, flood)
	sem := make(chan struct{}, 32)
	for i := range flood {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			k := kinds[i%len(kinds)]
			status, err := send(k.method, k.path, typo, k.h)
			if err == nil && status != http.StatusForbidden {
				err = fmt.Errorf("%s %s: status %d, want 403", k.method, k.path, status)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	type line struct {
		Level, Msg, Tenant, Origin, Reason, Method, Route, Differs string
		Closest                                                    string `json:"closest_origin"`
		Suppressed                                                 int64
	}
	readLines := func() []line {
		var out []line
		for l := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
			if l == "" {
				continue
			}
			var v line
			if err := json.Unmarshal([]byte(l), &v); err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			if v.Msg == "refused an origin the tenant does not list" {
				out = append(out, v)
			}
		}
		return out
	}
	lines := readLines()
	if len(lines) == 0 || len(lines) > refusalLogBurst {
		t.Fatalf("%d refused-origin lines for %d refusals with the clock still, want 1 to %d", len(lines), flood, refusalLogBurst)
	}
	for _, l := range lines {
		if l.Level != "WARN" || l.Tenant != "acme" || l.Origin != typo || l.Reason != session.ReasonOriginNotListed ||
			l.Closest != acmeApp || l.Differs != "host" || l.Route == "" || l.Method == "" {
			t.Errorf("line %+v, want a warning on acme naming %s, OriginNotListed, closest %s differing in host", l, typo, acmeApp)
		}
	}
	if out := logs.String(); strings.Contains(out, alice.Value) {
		t.Errorf("the log holds the session cookie:\n%s", out)
	}

	mu.Lock()
	now = now.Add(time.Second)
	mu.Unlock()
	if status, err := send("GET", "/v1/me", typo, nil); err != nil || status != http.StatusForbidden {
		t.Fatalf("me after a second: %d, %v", status, err)
	}
	after := readLines()
	if len(after) != len(lines)+1 {
		t.Fatalf("%d lines a second later, want %d", len(after), len(lines)+1)
	}
	if got, want := after[len(after)-1].Suppressed, int64(flood-len(lines)); got != want {
		t.Errorf("suppressed=%d on the next line, want %d (the refusals left out)", got, want)
	}
}

// TestPreflightRefusedReason: the refused-preflight metric says why, with
// a bounded label: an origin the tenant does not list, a method it does
// not allow, or headers it does not allow; and only a foreign origin's
// refusal is one an operator needs in the log.
func TestPreflightRefusedReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, q := range []struct {
		origin, acrm, acrh string
	}{
		{corsEvil, "POST", "content-type"},
		{"null", "GET", ""},
		{acmeApp + "/", "POST", "content-type"},
		{acmeApp, "PUT", "content-type"},
		{acmeApp, "delete", ""},
		{acmeApp, "POST", "content-type,x-foo"},
		{acmeAdmin, "GET", "authorization"},
		{acmeAdmin, "GET", "latchkey-receipt"},
	} {
		h := map[string]string{corsHdrACRM: q.acrm}
		if q.acrh != "" {
			h[corsHdrACRH] = q.acrh
		}
		e.do(req{method: "OPTIONS", path: "/v1/me", host: acmeHost, origin: q.origin, header: h})
	}
	body := string(e.do(req{admin: true, method: "GET", path: "/metrics"}).body)
	for _, want := range []string{
		`latchkey_cors_preflights_refused_total{reason="origin_not_listed",tenant="acme"} 3`,
		`latchkey_cors_preflights_refused_total{reason="method_not_allowed",tenant="acme"} 2`,
		`latchkey_cors_preflights_refused_total{reason="headers_not_allowed",tenant="acme"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
