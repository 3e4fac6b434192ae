package api

// The tenant scale benchmark (docs/performance.md): a replica over 10 and
// over 10,000 tenants, in memstore and in Redis (when REDIS_ADDR answers),
// measuring what must not grow with the number of tenants: an admin read
// of one tenant, a tenant's `me`, an admin write of one tenant, and the
// periodic re-read with nothing changed and with one tenant changed
// (store read, decode, validation and the policy rebuild, to the new
// policy set being served); and what does: start-up (the first load,
// every policy built) and the memory each tenant costs a replica.
//
//	REDIS_ADDR=127.0.0.1:6379 go test -run '^$' -bench TenantScale -benchtime 2s ./api/

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/memstore"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// pokedStore is a replica's store whose change notifications the
// benchmark sends itself, and which reports each TenantsSince answered,
// so that one iteration is exactly one re-read.
type pokedStore struct {
	store.Store
	poke  chan struct{}
	since chan struct{}
}

func (p *pokedStore) Changes(ctx context.Context) <-chan struct{} { return p.poke }

func (p *pokedStore) TenantsSince(ctx context.Context, rev store.TenantRevision) (store.TenantChanges, error) {
	c, err := p.Store.TenantsSince(ctx, rev)
	p.since <- struct{}{}
	return c, err
}

func scaleTenant(i int, name string) session.Tenant {
	id := fmt.Sprintf("t%05d", i)
	return session.Tenant{ID: session.TenantID(id), Name: name,
		Origins:   []string{"https://app." + id + ".example", "https://admin." + id + ".example"},
		Hostnames: []string{"auth." + id + ".example"},
		Cookie:    session.CookiePolicy{SameSite: session.SameSiteLax}}
}

func scaleManager(b *testing.B, st store.Store) *session.Manager {
	b.Helper()
	m, err := session.NewManager(st, session.Config{Keys: [][]byte{testKey}, Password: cheapParams})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// replica is one Latchkey over a store: a Manager, a Server and the
// WatchTenants loop that keeps the Server's policies current.
type replica struct {
	srv     *Server
	store   *pokedStore
	applied chan struct{}
	stop    func()
}

// startReplica starts a replica over st and returns once its first load
// is served.
func startReplica(b *testing.B, st store.Store) *replica {
	b.Helper()
	r := &replica{store: &pokedStore{Store: st, poke: make(chan struct{}, 1), since: make(chan struct{}, 1)}, applied: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(b.Context())
	m := scaleManager(b, r.store)
	m.EnableCache(ctx, session.DefaultCacheSize)
	var err error
	if r.srv, err = NewServer(m, Config{Logger: slog.New(slog.DiscardHandler), AdminToken: adminToken}); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.WatchTenants(ctx, time.Hour, func(u session.TenantsUpdate) {
			r.srv.UpdateTenants(u)
			r.applied <- struct{}{}
		})
	}()
	r.stop = func() {
		cancel()
		for {
			select {
			case <-r.store.since:
			case <-done:
				return
			}
		}
	}
	<-r.store.since
	<-r.applied
	return r
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func BenchmarkTenantScale(b *testing.B) {
	for _, kind := range []string{"memstore", "redis"} {
		for _, n := range []int{10, 10_000} {
			b.Run(fmt.Sprintf("%s/tenants=%d", kind, n), func(b *testing.B) { benchTenantScale(b, kind, n) })
		}
	}
}

func benchTenantScale(b *testing.B, kind string, n int) {
	var st store.Store = memstore.New(memstore.Config{})
	var redisBytes func() int64 // what the tenants take in Redis
	if kind == "redis" {
		c := redistest.Client(b)
		prefix := redistest.Prefix(b, c)
		rs, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		st = rs
		redisBytes = func() int64 {
			var sum int64
			h := prefix + "tenants"
			for _, k := range []string{h, h + ":rev{" + h + "}", h + ":log{" + h + "}"} {
				n, err := c.MemoryUsage(b.Context(), k, 0).Result()
				if err != nil {
					b.Fatal(err)
				}
				sum += n
			}
			return sum
		}
	}
	ctx := b.Context()
	// The writer stands for the admin API of another replica.
	writer := scaleManager(b, st)
	for i := range n {
		if _, _, err := writer.PutTenant(ctx, scaleTenant(i, "Tenant")); err != nil {
			b.Fatal(err)
		}
	}
	const target = 5 // the tenant every request is about
	tn, err := writer.GetTenant(ctx, scaleTenant(target, "").ID)
	if err != nil {
		b.Fatal(err)
	}
	pw := "scale-password"
	if _, err := writer.CreateUser(ctx, tn.ID, session.UserInput{Username: "alice", Password: &pw}); err != nil {
		b.Fatal(err)
	}
	_, cookie, err := writer.Login(ctx, &tn, session.LoginInput{Username: "alice", Password: pw, UserAgent: "Go-http-client/1.1"})
	if err != nil {
		b.Fatal(err)
	}

	base := heapInUse()
	r := startReplica(b, st)
	perTenant := float64(heapInUse()-base) / float64(n)
	b.Cleanup(r.stop)

	serve := func(b *testing.B, h http.Handler, req *http.Request, status int) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != status {
				b.Fatalf("status %d, want %d: %s", rec.Code, status, rec.Body)
			}
		}
	}
	b.Run("admin-get", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, "/admin/v1/tenants/"+string(tn.ID), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		serve(b, r.srv.Admin(), req, http.StatusOK)
	})
	b.Run("me", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, "http://auth.latchkey.test/v1/t/"+string(tn.ID)+"/me", nil)
		req.Header.Set("Origin", tn.Origins[0])
		req.AddCookie(cookie)
		serve(b, r.srv.Public(), req, http.StatusOK)
	})
	b.Run("admin-put", func(b *testing.B) {
		// One tenant written through a Manager: validation, the view
		// catching up with the previous write, the hostname check and
		// the store write.
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, _, err := writer.PutTenant(ctx, scaleTenant(target, fmt.Sprint("Tenant ", i))); err != nil {
				b.Fatal(err)
			}
		}
		r.store.poke <- struct{}{} // let the watch catch up before the next case
		<-r.store.since
		<-r.applied
	})
	b.Run("reread-unchanged", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.store.poke <- struct{}{}
			<-r.store.since
		}
	})
	b.Run("reread-one-changed", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			if _, _, err := writer.PutTenant(ctx, scaleTenant(target+1, fmt.Sprint("Changed ", i))); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			r.store.poke <- struct{}{}
			<-r.store.since
			<-r.applied
		}
	})
	b.Run("startup", func(b *testing.B) {
		for b.Loop() {
			startReplica(b, st).stop()
		}
		b.ReportMetric(perTenant, "B/tenant")
		if redisBytes != nil {
			b.ReportMetric(float64(redisBytes())/float64(n), "redis-B/tenant")
		}
	})
}
