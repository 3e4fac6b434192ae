package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// redisEnv is an env over a real Redis, under a key prefix of its own.
func redisEnv(t *testing.T, token string) (*env, string) {
	t.Helper()
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	e := newEnv(t, envOptions{token: token, newStore: func(now func() time.Time) store.Store {
		st, err := redisstore.New(c, redisstore.Config{Prefix: prefix, Now: now})
		if err != nil {
			t.Fatalf("redisstore.New: %v", err)
		}
		return st
	}})
	return e, prefix
}

func TestRedisLoginMeSessionsLogout(t *testing.T) {
	t.Parallel()
	e, _ := redisEnv(t, "")
	testLoginMeSessionsLogout(t, e, "/v1", acmeHost, acmeApp, "alice", alicePassword)
	testLoginMeSessionsLogout(t, e, "/v1/t/beta", "", betaDev, "bob", bobPassword)
}

// TestRedisReplicas runs two replicas over one Redis: a session made on one
// is valid on the other, a logout on one ends it on both, and a tenant
// change made through one replica's admin API reaches the other's policies
// within a second through Redis pub/sub alone.
func TestRedisReplicas(t *testing.T) {
	t.Parallel()
	a, prefix := redisEnv(t, adminToken)
	stB, err := redisstore.New(redistest.Client(t), redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	testReplicas(t, a, replicaOf(t, a, stB))
}

// TestRedisReplicasParallelGuesses sends 100 wrong passwords for one
// account at once, half to each of two replicas over one Redis, at a
// limit of 10: at most 10 are checked (401), the rest refused unchecked
// (429), and then the right password is refused too. Counting after the
// check let 39-56 of them through.
func TestRedisReplicasParallelGuesses(t *testing.T) {
	t.Parallel()
	const limit, guesses = 10, 100
	a, prefix := redisEnv(t, "")
	tn := acmeTenant()
	tn.LoginLimits = session.LoginLimits{PerAccount: limit, PerIP: 1000, Window: session.Duration(15 * time.Minute)}
	if _, _, err := a.m.PutTenant(t.Context(), tn); err != nil {
		t.Fatal(err)
	}
	a.reload()
	stB, err := redisstore.New(redistest.Client(t), redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	b := replicaOf(t, a, stB)
	deadline := time.Now().Add(5 * time.Second)
	for b.do(req{method: "GET", path: "/v1/me", host: acmeHost, origin: acmeApp}).StatusCode != http.StatusUnauthorized && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // B's first tenant load
	}

	statuses := make(chan int, guesses)
	var wg sync.WaitGroup
	for i := range guesses {
		e := a
		if i%2 == 1 {
			e = b
		}
		wg.Go(func() { statuses <- e.tryLogin("alice", "wrong password", nil).StatusCode })
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for st := range statuses {
		counts[st]++
	}
	if counts[http.StatusUnauthorized] > limit || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != guesses {
		t.Errorf("%d parallel wrong passwords over two replicas at a limit of %d: statuses %v; want at most %d checked (401), the rest 429", guesses, limit, counts, limit)
	}
	for _, e := range []*env{a, b} {
		if r := e.tryLogin("alice", alicePassword, nil); r.StatusCode != http.StatusTooManyRequests {
			t.Errorf("the right password after the guesses: status %d, want 429", r.StatusCode)
		}
	}
}

// replicaOf returns a second replica beside a over st (the same backend):
// its own Manager and Server, its tenants kept current by WatchTenants with
// an hour's interval, so that only change notifications can update them.
func replicaOf(t *testing.T, a *env, st store.Store) *env {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mB, err := session.NewManager(st, session.Config{Keys: [][]byte{testKey}, Logger: log, Password: cheapParams})
	if err != nil {
		t.Fatal(err)
	}
	srvB, err := NewServer(mB, Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); mB.WatchTenants(ctx, time.Hour, srvB.UpdateTenants) }()
	t.Cleanup(func() { cancel(); <-done })
	pubB := httptest.NewServer(srvB.Public())
	t.Cleanup(pubB.Close)
	return &env{tb: t, m: mB, srv: srvB, pub: pubB, adm: a.adm, spec: a.spec}
}

// testReplicas checks two replicas on one backend: a session made on A
// works on B, a logout on B ends it on A, and a tenant change made through
// A's admin API reaches B's policies within a second.
func testReplicas(t *testing.T, a, b *env) {
	t.Helper()
	cookie := a.loginAlice()
	me := func(e *env) int {
		return e.do(req{method: "GET", path: "/v1/me", host: acmeHost, origin: acmeApp, cookies: []*http.Cookie{cookie}}).StatusCode
	}
	deadline := time.Now().Add(5 * time.Second)
	for me(b) != http.StatusOK && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // B's first tenant load
	}
	if got := me(b); got != http.StatusOK {
		t.Fatalf("me on replica B with A's cookie: %d, want 200", got)
	}
	if r := b.do(req{method: "POST", path: "/v1/logout", host: acmeHost, origin: acmeApp, ct: "application/json", cookies: []*http.Cookie{cookie}}); r.StatusCode != http.StatusNoContent {
		t.Fatalf("logout on B: %d", r.StatusCode)
	}
	if got := me(a); got != http.StatusUnauthorized {
		t.Errorf("me on A after logout on B: %d, want 401", got)
	}

	const newOrigin = "https://new.acme.com"
	tn := acmeTenant()
	tn.Origins = append(tn.Origins, newOrigin)
	start := time.Now()
	if r := a.do(adminReq("PUT", "/admin/v1/tenants/acme", tn)); r.StatusCode != http.StatusOK {
		t.Fatalf("PUT acme on A: %d %s", r.StatusCode, r.body)
	}
	acao := func() string {
		return b.do(req{method: "GET", path: "/v1/me", host: acmeHost, origin: newOrigin}).Header.Get("Access-Control-Allow-Origin")
	}
	for acao() != newOrigin && time.Since(start) < time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	if got := acao(); got != newOrigin {
		t.Errorf("replica B's ACAO for the new origin 1s after the change on A = %q, want %q", got, newOrigin)
	}
	t.Logf("tenant change reached replica B in %v", time.Since(start))
}

// TestRedisDown checks that a Redis outage is a 503 with Retry-After, never
// a 401 that would log users out, and that readiness fails while health
// does not.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	good, _ := redisEnv(t, "")
	cookie := good.loginAlice()

	down, err := redisstore.New(redistest.Down(t), redisstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelError + 1}))
	m, err := session.NewManager(down, session.Config{Keys: [][]byte{testKey}, Logger: log, Password: cheapParams})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(m, Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv.UpdateTenants(session.TenantsUpdate{Changed: []session.Tenant{acmeTenant(), betaTenant()}})
	srv.MarkReady()
	e := &env{tb: t, m: m, srv: srv, pub: httptest.NewServer(srv.Public()), adm: httptest.NewServer(srv.Admin()), spec: good.spec}
	t.Cleanup(e.pub.Close)
	t.Cleanup(e.adm.Close)

	for name, q := range map[string]req{
		"me":       {method: "GET", path: "/v1/me", host: acmeHost, origin: acmeApp, cookies: []*http.Cookie{cookie}},
		"sessions": {method: "GET", path: "/v1/sessions", host: acmeHost, origin: acmeApp, cookies: []*http.Cookie{cookie}},
		"login":    {method: "POST", path: "/v1/login", host: acmeHost, origin: acmeApp, json: map[string]string{"username": "alice", "password": alicePassword}},
		"logout":   {method: "POST", path: "/v1/logout", host: acmeHost, origin: acmeApp, ct: "application/json", cookies: []*http.Cookie{cookie}},
		"readyz":   {admin: true, method: "GET", path: "/readyz"},
	} {
		start := time.Now()
		r := e.do(q)
		if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || r.problemType() != "unavailable" {
			t.Errorf("%s with Redis down: status %d %s, Retry-After %q; want 503 unavailable with Retry-After", name, r.StatusCode, r.problemType(), r.Header.Get("Retry-After"))
		}
		if q.origin != "" && r.Header.Get("Access-Control-Allow-Origin") != q.origin {
			t.Errorf("%s: the SPA cannot read the 503 (ACAO %q)", name, r.Header.Get("Access-Control-Allow-Origin"))
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %v with Redis down, want a prompt answer", name, d)
		}
	}
	if r := e.do(req{admin: true, method: "GET", path: "/healthz"}); r.StatusCode != http.StatusOK {
		t.Errorf("healthz with Redis down: %d, want 200", r.StatusCode)
	}
}
