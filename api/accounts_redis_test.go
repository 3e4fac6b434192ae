package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// accountsReplicas are two replicas over one Redis, each with a mailbox,
// acme and beta with accounts (verification required); B caches sessions.
func accountsReplicas(t *testing.T) (a, b *env, mbA, mbB *mailbox) {
	t.Helper()
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	mbA, mbB = &mailbox{}, &mailbox{}
	a = newEnv(t, envOptions{token: adminToken, manager: func(cfg *session.Config) { cfg.Mailer = mbA }, newStore: func(now func() time.Time) store.Store {
		st, err := redisstore.New(c, redisstore.Config{Prefix: prefix, Now: now})
		if err != nil {
			t.Fatalf("redisstore.New: %v", err)
		}
		return st
	}})
	for _, f := range forms {
		a.setAccounts(f.tenant, accountsOf(f.origin, session.VerificationRequired))
	}
	stB, err := redisstore.New(redistest.Client(t), redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mB, err := session.NewManager(stB, session.Config{Keys: [][]byte{testKey}, Logger: log, Password: cheapParams, Mailer: mbB})
	if err != nil {
		t.Fatal(err)
	}
	srvB, err := NewServer(mB, Config{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mB.EnableCache(ctx, 1000)
	done := make(chan struct{})
	go func() { defer close(done); mB.WatchTenants(ctx, time.Hour, srvB.UpdateTenants) }()
	t.Cleanup(func() { cancel(); <-done })
	pubB := httptest.NewServer(srvB.Public())
	t.Cleanup(pubB.Close)
	b = &env{tb: t, m: mB, srv: srvB, pub: pubB, adm: a.adm, spec: a.spec}
	deadline := time.Now().Add(5 * time.Second)
	for b.do(forms[0].req("/email/verify/resend", map[string]string{"email": "warmup@example.com"})).StatusCode != http.StatusAccepted && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // B's first tenant load
	}
	return a, b, mbA, mbB
}

// TestRedisAccountsLimitsAcrossReplicas: the per-address limit counts the
// requests of both replicas together.
func TestRedisAccountsLimitsAcrossReplicas(t *testing.T) {
	t.Parallel()
	a, b, _, _ := accountsReplicas(t)
	acc := accountsOf(acmeApp, session.VerificationRequired)
	acc.Limits = session.AccountLimits{PerIP: 1000, PerAddress: 3, Window: session.Duration(time.Hour)}
	if r := a.do(adminReq("PUT", "/admin/v1/tenants/acme", func() session.Tenant { tn := acmeTenant(); tn.Accounts = acc; return tn }())); r.StatusCode != http.StatusOK {
		t.Fatalf("PUT acme: %d %s", r.StatusCode, r.body)
	}
	a.reload()
	f := forms[0]
	body := map[string]string{"email": "limited@example.com"}
	// B learns of the new limits through the store's change notification.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := b.srv.policies.Load().byID.get("acme")
		if p != nil && p.tenant.Accounts != nil && p.tenant.Accounts.Limits.PerAddress == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i, e := range []*env{a, b, a} {
		if r := e.do(f.req("/password/reset/request", body)); r.StatusCode != http.StatusAccepted {
			t.Fatalf("request %d: %d %s, want 202", i+1, r.StatusCode, r.body)
		}
	}
	for name, e := range map[string]*env{"A": a, "B": b} {
		r := e.do(f.req("/password/reset/request", body))
		wantProblem(t, "the 4th request on "+name, r, http.StatusTooManyRequests, "rate-limited")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("429 on %s without Retry-After", name)
		}
	}
}

// TestRedisAccountsResetEndsCachedSessions: a password reset on replica A
// ends a session that replica B holds in its cache.
func TestRedisAccountsResetEndsCachedSessions(t *testing.T) {
	t.Parallel()
	a, b, mbA, _ := accountsReplicas(t)
	f := forms[0]
	const addr = "alice@replicas.example"
	if r := a.do(adminReq("PATCH", "/admin/v1/tenants/acme/users/alice", map[string]any{"email": addr, "email_verified": true})); r.StatusCode != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.StatusCode, r.body)
	}
	cookie := wantLogin(t, f, b.do(f.req("/login", map[string]string{"username": "alice", "password": alicePassword})), http.StatusOK, "alice")
	for range 2 { // the second one is answered from B's cache
		if got := b.me(f, cookie); got != http.StatusOK {
			t.Fatalf("me on B: %d", got)
		}
	}
	if r := a.do(f.req("/password/reset/request", map[string]string{"email": addr})); r.StatusCode != http.StatusAccepted {
		t.Fatalf("reset request on A: %d %s", r.StatusCode, r.body)
	}
	_, token := link(t, mbA.next(t, addr, session.MailReset))
	wantLogin(t, f, a.do(f.req("/password/reset", map[string]string{"token": token, "password": newPassword})), http.StatusOK, "alice")
	deadline := time.Now().Add(time.Second)
	for b.me(f, cookie) != http.StatusUnauthorized && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := b.me(f, cookie); got != http.StatusUnauthorized {
		t.Errorf("me on B with the session from before the reset on A, 1s later: %d, want 401", got)
	}
}
