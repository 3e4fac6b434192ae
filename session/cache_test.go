package session

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// readCounter counts session reads and can pretend its invalidation feed
// has fallen behind.
type readCounter struct {
	store.Store
	reads atomic.Int64
	stale atomic.Bool
}

func (r *readCounter) GetSession(ctx context.Context, tenant, user, id string) (store.Session, error) {
	r.reads.Add(1)
	return r.Store.GetSession(ctx, tenant, user, id)
}

func (r *readCounter) WatchInvalidations(ctx context.Context, fn func(tenant, user string)) func(time.Duration) bool {
	current := r.Store.WatchInvalidations(ctx, fn)
	return func(d time.Duration) bool { return !r.stale.Load() && current(d) }
}

func cachedManager(t *testing.T, f *fixture) (*Manager, *readCounter) {
	t.Helper()
	rc := &readCounter{Store: f.st}
	m, err := NewManager(rc, Config{Keys: [][]byte{key1}, Now: f.clock.Now, Password: cheapParams})
	if err != nil {
		t.Fatal(err)
	}
	m.EnableCache(t.Context())
	return m, rc
}

func TestCacheServesLoadsFromMemory(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m, rc := cachedManager(t, f)
	_, v := f.login(t, m)
	for range 5 {
		if _, err := m.Load(t.Context(), f.t, []string{v}); err != nil {
			t.Fatal(err)
		}
	}
	if got := rc.reads.Load(); got != 1 {
		t.Errorf("store reads for 5 loads = %d, want 1", got)
	}
	// Once the idle expiry is due for a refresh, the load goes to the store.
	f.clock.Advance(6 * time.Minute)
	if _, err := m.Load(t.Context(), f.t, []string{v}); err != nil {
		t.Fatal(err)
	}
	if got := rc.reads.Load(); got != 2 {
		t.Errorf("store reads after the refresh was due = %d, want 2", got)
	}
	// And a cached session still expires on time.
	f.clock.Advance(2 * time.Hour)
	if _, err := m.Load(t.Context(), f.t, []string{v}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Load after the idle timeout = %v, want ErrUnauthenticated", err)
	}
}

func TestCacheHonoursRevocationElsewhere(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a, _ := cachedManager(t, f) // replica A caches
	b := f.manager(t, key1)     // replica B revokes
	s, v := f.login(t, a)
	for _, revoke := range []func() error{
		func() error { return b.Revoke(t.Context(), f.t, "alice", s.ID) },
		func() error { return b.RevokeAll(t.Context(), f.t, "alice") },
		func() error { return b.Logout(t.Context(), f.t, []string{v}) },
		func() error {
			d := true
			_, err := b.UpdateUser(t.Context(), "acme", "alice", UserInput{Disabled: &d})
			return err
		},
	} {
		if _, err := a.Load(t.Context(), f.t, []string{v}); err != nil {
			t.Fatalf("Load before revocation: %v", err)
		}
		if err := revoke(); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Load(t.Context(), f.t, []string{v}); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("A's Load after B revoked = %v, want ErrUnauthenticated", err)
		}
		// Next round: a fresh session (re-enable alice if disabled).
		d := false
		b.UpdateUser(t.Context(), "acme", "alice", UserInput{Disabled: &d})
		s, v = f.login(t, a)
	}
}

func TestCacheDistrustsALaggingFeed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m, rc := cachedManager(t, f)
	_, v := f.login(t, m)
	m.Load(t.Context(), f.t, []string{v})
	rc.stale.Store(true)
	before := rc.reads.Load()
	for range 3 {
		if _, err := m.Load(t.Context(), f.t, []string{v}); err != nil {
			t.Fatal(err)
		}
	}
	if got := rc.reads.Load() - before; got != 3 {
		t.Errorf("store reads with a lagging feed = %d, want 3 (no answer from memory)", got)
	}
}

func TestCacheEntryKeepsTheSession(t *testing.T) {
	t.Parallel()
	// As the store's record does, an entry keeps whole seconds: a cached
	// session equals the one read from the store.
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s := Session{ID: "id", Tenant: "acme", Username: "alice", CreatedAt: now.Add(-time.Hour), LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(24 * time.Hour), UserAgent: "Firefox on Linux"}
	e := newEntry(&s)
	if got := e.session(userKey{s.Tenant, s.Username}); got != s {
		t.Errorf("session from its entry = %+v, want %+v", got, s)
	}
}
