package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/memstore"
	"github.com/latchkeyhq/latchkey/store/redisstore"
	"github.com/latchkeyhq/latchkey/store/storetest"
)

// replicas is one tenant served by two Managers over one backend, as two
// replicas are, each counting the password checks it makes.
type replicas struct {
	t      *Tenant
	ms     [2]*Manager
	checks atomic.Int64
}

// newReplicas builds two Managers over the stores st returns (two values
// over one backend) with acme's limits set to lim.
func newReplicas(tb testing.TB, st func() store.Store, lim LoginLimits, users ...string) *replicas {
	tb.Helper()
	r := &replicas{}
	for i := range r.ms {
		m, err := NewManager(st(), Config{Keys: [][]byte{key1}, Password: cheapParams})
		if err != nil {
			tb.Fatal(err)
		}
		m.onCheck = func(context.Context) { r.checks.Add(1) }
		r.ms[i] = m
	}
	tn := validTenant()
	tn.LoginLimits = lim
	saved, _, err := r.ms[0].PutTenant(tb.Context(), tn)
	if err != nil {
		tb.Fatal(err)
	}
	r.t = &saved
	for _, u := range users {
		pw := "pw of " + u
		if _, err := r.ms[0].CreateUser(tb.Context(), "acme", UserInput{Username: u, Password: &pw}); err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

// backends are the backends the replica tests run on. Each returns, for
// one (sub)test, a function giving a Store per replica over one backend:
// one memstore shared, or one Redis under a prefix of the test's own with a
// client per replica.
var backends = map[string]func(t *testing.T) func() store.Store{
	"memstore": func(*testing.T) func() store.Store {
		st := memstore.New(memstore.Config{})
		return func() store.Store { return st }
	},
	"redis": func(t *testing.T) func() store.Store {
		prefix := redistest.Prefix(t, redistest.Client(t))
		return func() store.Store {
			st, err := redisstore.New(redistest.Client(t), redisstore.Config{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	},
}

// TestParallelGuessesCheckAtMostTheLimit sends 100 wrong passwords at
// once, half to each of two replicas sharing one store: at most the
// limit's number of passwords may be checked, for one account (from one
// address) and for one address (over many accounts). Reading the count
// before hashing and writing it after let 39-56 of 100 through at a limit
// of 10.
func TestParallelGuessesCheckAtMostTheLimit(t *testing.T) {
	t.Parallel()
	const limit, guesses = 10, 100
	for name, backend := range backends {
		for _, per := range []string{"account", "address"} {
			t.Run(name+"/"+per, func(t *testing.T) {
				t.Parallel()
				lim := LoginLimits{PerAccount: limit, PerIP: 1000, Window: Duration(time.Minute)}
				if per == "address" {
					lim = LoginLimits{PerAccount: 1000, PerIP: limit, Window: Duration(time.Minute)}
				}
				r := newReplicas(t, backend(t), lim, "alice")
				var limited, refused atomic.Int64
				var wg sync.WaitGroup
				for i := range guesses {
					wg.Go(func() {
						user := "alice"
						if per == "address" {
							user = "user" + strconv.Itoa(i) // unknown users: checked all the same
						}
						_, _, err := r.ms[i%2].Login(t.Context(), r.t, LoginInput{Username: user, Password: "wrong password", ClientIP: "192.0.2.1"})
						switch {
						case errors.Is(err, ErrRateLimited):
							limited.Add(1)
						case errors.Is(err, ErrInvalidCredentials):
							refused.Add(1)
						default:
							t.Errorf("a wrong password answered %v, want ErrInvalidCredentials or ErrRateLimited", err)
						}
					})
				}
				wg.Wait()
				if n := r.checks.Load(); n > limit || refused.Load() != n {
					t.Errorf("%d parallel wrong passwords per %s over two replicas: %d checked, %d refused as wrong, %d limited; want at most %d checked, each refused as wrong",
						guesses, per, n, refused.Load(), limited.Load(), limit)
				}
				if refused.Load() == 0 {
					t.Error("no guess was checked at all")
				}
			})
		}
	}
}

// floodKey marks the context of a flooding login, whose checks the test
// holds in flight, as slow hashes would be.
type floodKey struct{}

// TestFloodOfCorrectLoginsLeavesOthersAlone floods logins with the right
// password from one client (one account from many addresses, or one
// address for many accounts) and holds every check they start, while six
// other users log in. The flood may hold only its client's share of the
// hashing budget, so the others all get in; before shares it held the
// whole budget and the others got ErrBusy (503).
func TestFloodOfCorrectLoginsLeavesOthersAlone(t *testing.T) {
	t.Parallel()
	const (
		flood  = 128
		budget = 8 // checks at cheapParams' cost
		others = 6 // what the budget holds beside the flood's share, a quarter
	)
	for _, tt := range []struct {
		name   string
		client func(i int) (user, ip string)
	}{
		{"one account", func(i int) (string, string) { return "alice", fmt.Sprintf("198.51.100.%d", i%250) }},
		{"one address", func(i int) (string, string) { return fmt.Sprintf("flood%d", i%16), "192.0.2.1" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := storetest.NewClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
			st := memstore.New(memstore.Config{Now: clock.Now})
			cost := cheapParams.memKiB() << 10
			m, err := NewManager(st, Config{Keys: [][]byte{key1}, Now: clock.Now, Password: cheapParams,
				HashMemory: budget * cost, HashWait: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			entered, hold := make(chan struct{}, flood), make(chan struct{})
			m.onCheck = func(ctx context.Context) {
				if ctx.Value(floodKey{}) != nil {
					entered <- struct{}{}
					<-hold
				}
			}
			tn := validTenant()
			tn.LoginLimits = LoginLimits{PerAccount: 1000, PerIP: 1000, Window: Duration(time.Minute)}
			saved, _, err := m.PutTenant(t.Context(), tn)
			if err != nil {
				t.Fatal(err)
			}
			users := []string{"alice"}
			for i := range 16 {
				users = append(users, fmt.Sprintf("flood%d", i))
			}
			for i := range others {
				users = append(users, fmt.Sprintf("other%d", i))
			}
			for _, u := range users {
				pw := "pw of " + u
				if _, err := m.CreateUser(t.Context(), "acme", UserInput{Username: u, Password: &pw}); err != nil {
					t.Fatal(err)
				}
			}

			floodCtx := context.WithValue(t.Context(), floodKey{}, true)
			floodErrs := make(chan error, flood)
			var wg sync.WaitGroup
			for i := range flood {
				user, ip := tt.client(i)
				wg.Go(func() {
					_, _, err := m.Login(floodCtx, &saved, LoginInput{Username: user, Password: "pw of " + user, ClientIP: ip})
					floodErrs <- err
				})
			}
			// The flood's share: two checks in flight, held there.
			for range 2 {
				select {
				case <-entered:
				case <-time.After(10 * time.Second):
					t.Fatal("the flood started no check")
				}
			}

			var owg sync.WaitGroup
			for i := range others {
				owg.Go(func() {
					u := fmt.Sprintf("other%d", i)
					if _, _, err := m.Login(t.Context(), &saved, LoginInput{Username: u, Password: "pw of " + u, ClientIP: fmt.Sprintf("203.0.113.%d", i)}); err != nil {
						t.Errorf("%s's login during a flood of %s = %v, want nil", u, tt.name, err)
					}
				})
			}
			owg.Wait()
			if n := len(entered); n != 0 {
				t.Errorf("the flood of %s holds %d checks beyond its share of 2", tt.name, n)
			}
			close(hold)
			wg.Wait()
			close(floodErrs)
			ok := 0
			for err := range floodErrs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, ErrBusy):
					t.Errorf("a flooding login with the right password = %v, want nil or ErrBusy", err)
				}
			}
			if ok < 2 {
				t.Errorf("%d of the flood's logins succeeded, want at least the 2 held", ok)
			}
		})
	}
}

// flakyStore fails some counter calls the way an outage does: Settle
// fails while failSettles is above zero, and a Reserve with loseReply set
// takes its place and then reports an error, as when Redis dies between
// writing and answering.
type flakyStore struct {
	store.Store
	failSettles atomic.Int32
	loseReply   atomic.Bool
}

func (f *flakyStore) Reserve(ctx context.Context, tenant, key, id string, limit int64, window time.Duration) (bool, time.Duration, error) {
	ok, left, err := f.Store.Reserve(ctx, tenant, key, id, limit, window)
	if err == nil && f.loseReply.CompareAndSwap(true, false) {
		return false, 0, fmt.Errorf("flaky: reply lost: %w", store.ErrUnavailable)
	}
	return ok, left, err
}

func (f *flakyStore) Settle(ctx context.Context, tenant, key, id string, failed bool) error {
	if f.failSettles.Add(-1) >= 0 {
		return fmt.Errorf("flaky: %w", store.ErrUnavailable)
	}
	return f.Store.Settle(ctx, tenant, key, id, failed)
}

// TestOutagesNeverCountAsFailures checks that places a store failure kept
// are given back: after a correct login whose give-back failed, and after
// a reservation whose answer was lost, a correct login still gets in at
// limits of one failure per account and per address.
func TestOutagesNeverCountAsFailures(t *testing.T) {
	t.Parallel()
	fs := &flakyStore{Store: memstore.New(memstore.Config{})}
	r := newReplicas(t, func() store.Store { return fs }, LoginLimits{PerAccount: 1, PerIP: 1, Window: Duration(time.Hour)}, "alice")
	m := r.ms[0]
	in := LoginInput{Username: "alice", Password: "pw of alice", ClientIP: "192.0.2.1"}
	// loginSoon logs in until it is not refused as rate-limited: a place
	// given back in the background frees the limit a moment later.
	loginSoon := func(what string) {
		t.Helper()
		var err error
		for range 500 {
			if _, _, err = m.Login(t.Context(), r.t, in); !errors.Is(err, ErrRateLimited) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("a correct login %s = %v, want nil", what, err)
		}
	}

	fs.failSettles.Store(4) // both give-backs, and the first background round
	if _, _, err := m.Login(t.Context(), r.t, in); err != nil {
		t.Fatalf("Login while giving back fails = %v, want nil (the session is made)", err)
	}
	loginSoon("after give-backs failed")

	fs.loseReply.Store(true)
	if _, _, err := m.Login(t.Context(), r.t, in); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Login whose reservation lost its answer = %v, want ErrUnavailable", err)
	}
	loginSoon("after a reservation lost its answer")
}
