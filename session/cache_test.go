package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	m.EnableCache(t.Context(), DefaultCacheSize)
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
	// And leaves the cache when met.
	checkCount(t, m.cache.Load())
	if n := m.cache.Load().n; n != 0 {
		t.Errorf("cached sessions after the only one expired = %d, want 0", n)
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

var cacheNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// testCache returns a cache of size entries whose feed is always current.
func testCache(size int) *cache {
	c := newCache(size)
	c.current = func(time.Duration) bool { return true }
	return c
}

// cacheSession returns a session of tenant and user, idle for an hour
// from cacheNow.
func cacheSession(tenant TenantID, user, id string) Session {
	return Session{ID: id, Tenant: tenant, Username: user, CreatedAt: cacheNow, LastSeenAt: cacheNow,
		IdleExpiresAt: cacheNow.Add(time.Hour), ExpiresAt: cacheNow.Add(24 * time.Hour)}
}

// holds reports whether c holds s, without counting as a use.
func holds(c *cache, s Session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.users[userKey{s.Tenant, s.Username}], func(e entry) bool { return e.id == s.ID })
}

// wantHeld fails the test unless c holds every session of held and none
// of gone, and checkCount holds.
func wantHeld(tb testing.TB, c *cache, held, gone []Session) {
	tb.Helper()
	for _, s := range held {
		if !holds(c, s) {
			tb.Errorf("%s's session %s was dropped, want it cached", s.Username, s.ID)
		}
	}
	for _, s := range gone {
		if holds(c, s) {
			tb.Errorf("%s's session %s is cached, want it dropped", s.Username, s.ID)
		}
	}
	checkCount(tb, c)
}

// checkCount fails the test unless c.n counts c's entries, within its
// size, and no user is kept with none.
func checkCount(tb testing.TB, c *cache) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, es := range c.users {
		if len(es) == 0 {
			tb.Errorf("user %v kept with no entries", k)
		}
		n += len(es)
	}
	if c.n != n || n > c.size {
		tb.Errorf("c.n = %d, want %d (the entries), at most %d", c.n, n, c.size)
	}
}

func TestCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	// With no more users than evictSamples, every user is looked at: the
	// eviction is exact LRU.
	c := testCache(4)
	a, b, cc, d, e, f := cacheSession("acme", "a", "1"), cacheSession("acme", "b", "2"), cacheSession("acme", "c", "3"),
		cacheSession("acme", "d", "4"), cacheSession("acme", "e", "5"), cacheSession("acme", "f", "6")
	for _, s := range []Session{a, b, cc, d} {
		c.put(s, 0, cacheNow)
	}
	for _, s := range []Session{a, cc} {
		if !c.get(s.Tenant, s.Username, []byte(s.ID), cacheNow, time.Minute, new(Session)) {
			t.Fatalf("get(%s) missed", s.Username)
		}
	}
	c.put(e, 0, cacheNow) // b is the least recently used
	c.put(f, 0, cacheNow) // then d
	wantHeld(t, c, []Session{a, cc, e, f}, []Session{b, d})
}

func TestCacheKeepsCachingWhenFull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		size  int
		users int // sessions are spread over this many users
	}{
		{"one entry", 1, 1},
		{"one entry, two users", 1, 2},
		{"users with several sessions", 10, 3},
		{"a session per user", 100, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := testCache(tc.size)
			for i := range 1000 {
				s := cacheSession("acme", fmt.Sprint("u", i%tc.users), fmt.Sprint(i))
				c.put(s, 0, cacheNow)
				if !holds(c, s) {
					t.Fatalf("session %d is not cached in a full cache", i)
				}
			}
			checkCount(t, c)
			if c.n != tc.size {
				t.Errorf("c.n = %d, want %d (full)", c.n, tc.size)
			}
		})
	}
}

func TestCacheEvictsColdSessionsFirst(t *testing.T) {
	t.Parallel()
	// A thousand sessions, of which a hundred stay in use while two
	// hundred new ones arrive. Evicting at random would lose about twenty
	// of the hundred; the sampled LRU loses one in a few runs.
	const size, hot, arrivals = 1000, 100, 200
	c := testCache(size)
	var old []Session
	for i := range size {
		s := cacheSession("acme", fmt.Sprint("old", i), fmt.Sprint(i))
		old = append(old, s)
		c.put(s, 0, cacheNow)
	}
	var fresh []Session
	for i := range arrivals {
		for _, s := range old[:hot] {
			c.get(s.Tenant, s.Username, []byte(s.ID), cacheNow, time.Minute, new(Session))
		}
		s := cacheSession("acme", fmt.Sprint("new", i), fmt.Sprint(i))
		fresh = append(fresh, s)
		c.put(s, 0, cacheNow)
	}
	count := func(ss []Session) (n int) {
		for _, s := range ss {
			if holds(c, s) {
				n++
			}
		}
		return n
	}
	if got := count(old[:hot]); got < hot*9/10 {
		t.Errorf("sessions in use still cached = %d of %d, want at least %d", got, hot, hot*9/10)
	}
	if got := count(fresh); got < arrivals*95/100 {
		t.Errorf("new sessions still cached = %d of %d, want at least %d", got, arrivals, arrivals*95/100)
	}
	checkCount(t, c)
}

func TestCacheNeverServesAnExpiredSession(t *testing.T) {
	t.Parallel()
	c := testCache(3)
	short := cacheSession("acme", "a", "1")
	short.IdleExpiresAt = cacheNow.Add(time.Minute)
	b, cc, d := cacheSession("acme", "b", "2"), cacheSession("acme", "c", "3"), cacheSession("acme", "d", "4")
	for _, s := range []Session{b, cc, short} { // short is the most recently used
		c.put(s, 0, cacheNow)
	}
	later := cacheNow.Add(time.Minute)
	if !c.get(short.Tenant, short.Username, []byte(short.ID), later.Add(-time.Second), time.Hour, new(Session)) {
		t.Errorf("get a second before the idle expiry missed")
	}
	// Full: the expired session goes before the least recently used.
	c.put(d, 0, later)
	wantHeld(t, c, []Session{b, cc, d}, []Session{short})
	// Last seen longer ago than any refresh interval, a session will not
	// be served from memory again: it goes before the least recently used
	// too. Here cc and d are refreshed, then b is used, but its last write
	// of LastSeenAt is older.
	for _, s := range []Session{cc, d} {
		s.LastSeenAt = later
		c.put(s, 0, later)
	}
	if !c.get(b.Tenant, b.Username, []byte(b.ID), cacheNow.Add(4*time.Minute), time.Hour, new(Session)) {
		t.Fatalf("get(b) missed")
	}
	e := cacheSession("acme", "e", "5")
	c.put(e, 0, cacheNow.Add(maxRefreshAfter))
	wantHeld(t, c, []Session{cc, d, e}, []Session{b})

	// Met by a lookup at its end, idle or absolute, a session is dropped.
	for _, tc := range []struct {
		name      string
		idle, abs time.Duration
	}{
		{"idle expiry", time.Hour, 24 * time.Hour},
		{"absolute expiry", 2 * time.Hour, time.Hour},
	} {
		c := testCache(3)
		s := cacheSession("acme", "a", "1")
		s.IdleExpiresAt, s.ExpiresAt = cacheNow.Add(tc.idle), cacheNow.Add(tc.abs)
		c.put(s, 0, cacheNow)
		if c.get(s.Tenant, s.Username, []byte(s.ID), cacheNow.Add(time.Hour), 48*time.Hour, new(Session)) {
			t.Errorf("%s: get at the expiry served the session", tc.name)
		}
		if holds(c, s) {
			t.Errorf("%s: the session is still cached after a lookup at its expiry", tc.name)
		}
		checkCount(t, c)
	}
}

func TestCacheInvalidationDropsWhatItNames(t *testing.T) {
	t.Parallel()
	// A full cache that evicts as it goes: every invalidation still drops
	// all it names and nothing else, and the count stays exact.
	c := testCache(8)
	var all []Session
	for i := range 40 {
		tenant := TenantID([]string{"acme", "other"}[i%2])
		s := cacheSession(tenant, fmt.Sprint("u", i%5), fmt.Sprint(i))
		all = append(all, s)
		c.put(s, 0, cacheNow)
		if i%3 == 0 {
			s.LastSeenAt = s.LastSeenAt.Add(time.Minute)
			c.put(s, 0, cacheNow) // a refreshed session replaces its entry
		}
		checkCount(t, c)
	}
	heldBefore := func() map[Session]bool {
		m := map[Session]bool{}
		for _, s := range all {
			m[s] = holds(c, s)
		}
		return m
	}
	for _, inv := range []struct{ tenant, user string }{{"acme", "u0"}, {"other", "u1"}, {"acme", ""}, {"", ""}} {
		before := heldBefore()
		c.invalidate(inv.tenant, inv.user)
		for _, s := range all {
			named := inv.tenant == "" || (TenantID(inv.tenant) == s.Tenant && (inv.user == "" || inv.user == s.Username))
			if got, want := holds(c, s), before[s] && !named; got != want {
				t.Errorf("after invalidate(%q, %q): holds(%s/%s/%s) = %v, want %v", inv.tenant, inv.user, s.Tenant, s.Username, s.ID, got, want)
			}
		}
		checkCount(t, c)
	}
	if c.n != 0 {
		t.Errorf("c.n after invalidating everything = %d, want 0", c.n)
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	c := testCache(10)
	s := cacheSession("acme", "alice", "1")
	c.put(s, 0, cacheNow)
	var got Session
	if n := testing.AllocsPerRun(100, func() { c.get(s.Tenant, s.Username, []byte(s.ID), cacheNow, time.Minute, &got) }); n != 0 {
		t.Errorf("allocations per hit = %v, want 0", n)
	}
}

func TestCacheSizeZeroLeavesItOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := &readCounter{Store: f.st}
	m, err := NewManager(rc, Config{Keys: [][]byte{key1}, Now: f.clock.Now, Password: cheapParams})
	if err != nil {
		t.Fatal(err)
	}
	m.EnableCache(t.Context(), 0)
	_, v := f.login(t, m)
	for range 3 {
		if _, err := m.Load(t.Context(), f.t, []string{v}); err != nil {
			t.Fatal(err)
		}
	}
	if got := rc.reads.Load(); got != 3 {
		t.Errorf("store reads for 3 loads with size 0 = %d, want 3", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("EnableCache(-1) did not panic")
		}
	}()
	m.EnableCache(t.Context(), -1)
}

func TestCacheStats(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rc := &readCounter{Store: f.st}
	m, err := NewManager(rc, Config{Keys: [][]byte{key1}, Now: f.clock.Now, Password: cheapParams})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.CacheStats(); got != (CacheStats{}) {
		t.Errorf("CacheStats with the cache off = %+v, want zero", got)
	}
	m.EnableCache(t.Context(), 1)
	_, v1 := f.login(t, m)
	_, v2 := f.login(t, m)
	load := func(v string) {
		t.Helper()
		if _, err := m.Load(t.Context(), f.t, []string{v}); err != nil {
			t.Fatal(err)
		}
	}
	load(v1) // miss, cached
	load(v1) // hit
	load(v2) // miss, cached in place of v1's session
	rc.stale.Store(true)
	load(v2) // lagging
	rc.stale.Store(false)
	f.clock.Advance(6 * time.Minute)
	load(v2) // miss: due for its write-back, then cached again
	f.clock.Advance(2 * time.Hour)
	m.Load(t.Context(), f.t, []string{v2}) // miss: expired, dropped
	want := CacheStats{Size: 1, Entries: 0, Hits: 1, Misses: 4, Lagging: 1, Evicted: 1, Expired: 1}
	if got := m.CacheStats(); got != want {
		t.Errorf("CacheStats = %+v, want %+v", got, want)
	}
}
