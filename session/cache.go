package session

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// cacheTrust is how current the store's invalidation feed must be for the
// cache to answer from memory. A revocation on any replica is published
// atomically with it; with the feed current within 30 ms and delivery
// taking a few milliseconds, no replica serves a revoked session more than
// 50 ms after the revocation. When the feed lags (a dropped or silent
// connection, a stalled process) every load goes to the store.
const cacheTrust = 30 * time.Millisecond

// DefaultCacheSize is the number of sessions a process caches unless told
// otherwise: about 11 MB of live heap at some 220 bytes a session
// (BenchmarkCacheMemory), which the collector scans and the heap's growth
// target doubles. A cached session is served only within five minutes of
// its last write-back, so this covers 50,000 sessions active on one
// replica within five minutes.
const DefaultCacheSize = 50_000

// evictSamples is how many users a full cache looks at to choose what to
// evict, as Redis's approximated LRU does (its maxmemory-samples): the
// least recently used of five sessions met at random is, on average, among
// the least recently used sixth of the cache, at a fixed cost per put.
const evictSamples = 5

// cache keeps sessions loaded from the store, so that most loads (every
// `me` of every SPA) cost a MAC check and a map lookup instead of a store
// round trip. It is keyed by user so that an invalidation, which names a
// user, drops that user's sessions in one step. When full, it evicts a
// session that has not been used for a while, so that a long-running
// process keeps caching its active users rather than those it met first.
type cache struct {
	current func(within time.Duration) bool
	size    int // the most entries kept, at least 1

	// gen counts invalidations. A load notes it before reading the store
	// and caches what it read only if no invalidation came in between: an
	// invalidation that overtakes the read must not be undone by it.
	gen atomic.Uint64
	// lagging counts lookups refused because the feed was not current.
	lagging atomic.Uint64

	mu sync.Mutex
	// users holds each user's cached sessions. A slice, not a map: users
	// have one or a few sessions, and a Go map costs hundreds of bytes
	// even for one entry.
	users map[userKey][]entry
	n     int    // entries in users
	clock uint64 // counts hits and puts: the recency of entry.used
	// Counters for CacheStats.
	hits, misses, evicted, expired uint64
}

type userKey struct {
	tenant TenantID
	user   string
}

// entry is one cached session in compact form: its tenant and username are
// its user's key, and its times Unix seconds, as in the store's record.
// Every byte here is live heap that the collector scans and that each
// argon2id allocation's GC cycle carries.
type entry struct {
	id, userAgent                           string
	created, lastSeen, idleExpires, expires int64
	used                                    uint64 // cache.clock at the last hit or put
}

func newEntry(s *Session) entry {
	return entry{
		id: s.ID, userAgent: s.UserAgent,
		created: s.CreatedAt.Unix(), lastSeen: s.LastSeenAt.Unix(),
		idleExpires: s.IdleExpiresAt.Unix(), expires: s.ExpiresAt.Unix(),
	}
}

// session rebuilds the Session that e caches for k, without allocating.
func (e *entry) session(k userKey) Session {
	return Session{
		ID: e.id, Tenant: k.tenant, Username: k.user,
		CreatedAt:     time.Unix(e.created, 0).UTC(),
		LastSeenAt:    time.Unix(e.lastSeen, 0).UTC(),
		IdleExpiresAt: time.Unix(e.idleExpires, 0).UTC(),
		ExpiresAt:     time.Unix(e.expires, 0).UTC(),
		UserAgent:     e.userAgent,
	}
}

// expiredAt reports whether e's session has ended by now: at the earlier
// of its idle and absolute expiry, both whole seconds.
func (e *entry) expiredAt(now time.Time) bool {
	return now.Unix() >= min(e.idleExpires, e.expires)
}

// deadAt reports whether e can no longer be served at now: its session has
// ended, or it was last seen longer ago than any refresh interval, so that
// the next load of it reads the store and caches it again anyway.
func (e *entry) deadAt(now time.Time) bool {
	return e.expiredAt(now) || now.Sub(time.Unix(e.lastSeen, 0)) >= maxRefreshAfter
}

// EnableCache turns on the per-process session cache until ctx is done,
// subscribing to the store's invalidations. It keeps at most size
// sessions, evicting the least recently used; a size of 0 leaves the cache
// off. Without it every load reads the store. It panics if size is
// negative.
func (m *Manager) EnableCache(ctx context.Context, size int) {
	if size < 0 {
		panic("session: negative cache size")
	}
	if size == 0 {
		return
	}
	c := newCache(size)
	c.current = m.st.WatchInvalidations(ctx, c.invalidate)
	m.cache.Store(c)
	context.AfterFunc(ctx, func() { m.cache.CompareAndSwap(c, nil) })
}

func newCache(size int) *cache {
	return &cache{size: size, users: map[userKey][]entry{}}
}

// get reports whether the session of t, user and id is cached, live at
// now and was last seen less than fresh ago, and if so stores it in s;
// past fresh, the load reads the store and writes the idle expiry back. An
// expired session met here is dropped, never served.
func (c *cache) get(t TenantID, user string, id []byte, now time.Time, fresh time.Duration, s *Session) bool {
	if !c.current(cacheTrust) {
		c.lagging.Add(1)
		return false
	}
	c.mu.Lock()
	k := userKey{t, user}
	es := c.users[k]
	for i := range es {
		e := &es[i]
		if e.id != string(id) {
			continue
		}
		if e.expiredAt(now) {
			c.remove(k, es, i)
			c.expired++
			break
		}
		if now.Sub(time.Unix(e.lastSeen, 0)) >= fresh {
			break
		}
		c.clock++
		e.used = c.clock
		c.hits++
		*s = e.session(k)
		c.mu.Unlock()
		return true
	}
	c.misses++
	c.mu.Unlock()
	return false
}

// put caches s, read from the store after the generation gen was noted,
// evicting another session if the cache is full.
func (c *cache) put(s Session, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen || !c.current(cacheTrust) {
		return
	}
	c.clock++
	e := newEntry(&s)
	e.used = c.clock
	k := userKey{s.Tenant, s.Username}
	es := c.users[k]
	for i := range es {
		if es[i].id == s.ID {
			es[i] = e
			return
		}
	}
	if c.n >= c.size && c.evict(now) == k {
		es = c.users[k] // the victim was one of k's
	}
	c.users[k] = append(es, e)
	c.n++
}

// evict drops one entry: the first dead one met, or else the least
// recently used session of evictSamples users met in Go's randomized map
// order (which starts anywhere, and goes on in hash order, unrelated to
// use). It returns the user whose session it dropped.
func (c *cache) evict(now time.Time) userKey {
	var (
		victim userKey
		ves    []entry
		vi     = -1
		oldest uint64
		seen   int
	)
	for k, es := range c.users {
		for i := range es {
			if es[i].deadAt(now) {
				c.remove(k, es, i)
				c.expired++
				return k
			}
			if vi < 0 || es[i].used < oldest {
				victim, ves, vi, oldest = k, es, i, es[i].used
			}
		}
		if seen++; seen == evictSamples {
			break
		}
	}
	if vi >= 0 {
		c.remove(victim, ves, vi)
		c.evicted++
	}
	return victim
}

// remove drops the i-th of es, the entries of k. The caller holds c.mu.
func (c *cache) remove(k userKey, es []entry, i int) {
	if len(es) == 1 {
		delete(c.users, k)
	} else {
		c.users[k] = slices.Delete(es, i, i+1) // zeroes the freed slot
	}
	c.n--
}

// invalidate drops what a store invalidation names: a user's sessions, a
// whole tenant's (user ""), or everything (tenant "").
func (c *cache) invalidate(tenant, user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	switch {
	case tenant == "":
		c.users = map[userKey][]entry{}
		c.n = 0
	case user == "":
		for k, es := range c.users {
			if k.tenant == TenantID(tenant) {
				c.n -= len(es)
				delete(c.users, k)
			}
		}
	default:
		k := userKey{TenantID(tenant), user}
		c.n -= len(c.users[k])
		delete(c.users, k)
	}
}

// CacheStats is a snapshot of the session cache's state and counters. The
// counters start at zero when EnableCache turns the cache on.
type CacheStats struct {
	// Size is the most sessions the cache keeps, and Entries the sessions
	// it holds; both are 0 while the cache is off.
	Size, Entries int
	// Hits counts loads answered from memory. Misses counts loads that
	// read the store although the invalidation feed was current: the
	// session was not cached, had ended, or was due to have its idle
	// expiry written back. Lagging counts loads that read the store
	// because the feed was not proven current.
	Hits, Misses, Lagging uint64
	// Evicted counts sessions dropped to make room, the least recently
	// used; Expired counts those dropped because they could no longer be
	// served (ended, or due to be read from the store again).
	// Invalidations are not counted.
	Evicted, Expired uint64
}

// CacheStats returns the session cache's state and counters.
func (m *Manager) CacheStats() CacheStats {
	c := m.cache.Load()
	if c == nil {
		return CacheStats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return CacheStats{
		Size: c.size, Entries: c.n,
		Hits: c.hits, Misses: c.misses, Lagging: c.lagging.Load(),
		Evicted: c.evicted, Expired: c.expired,
	}
}

// forget drops a user's cached sessions in this process at once, after
// this process ended some; the store's invalidation tells the others.
func (m *Manager) forget(t TenantID, user string) {
	if c := m.cache.Load(); c != nil {
		c.invalidate(string(t), user)
	}
}
