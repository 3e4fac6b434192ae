package session

import (
	"context"
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

// cacheMax bounds the sessions kept in memory per process: about 20 MB
// (BenchmarkCacheMemory).
const cacheMax = 100_000

// cache keeps sessions loaded from the store, so that most loads (every
// `me` of every SPA) cost a MAC check and a map lookup instead of a store
// round trip. It is keyed by user so that an invalidation, which names a
// user, drops that user's sessions in one step.
type cache struct {
	current func(within time.Duration) bool

	// gen counts invalidations. A load notes it before reading the store
	// and caches what it read only if no invalidation came in between: an
	// invalidation that overtakes the read must not be undone by it.
	gen atomic.Uint64

	mu sync.Mutex
	// users holds each user's cached sessions. A slice, not a map: users
	// have one or a few sessions, and a Go map costs hundreds of bytes
	// even for one entry.
	users map[userKey][]entry
	n     int // entries in users
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

// EnableCache turns on the per-process session cache until ctx is done,
// subscribing to the store's invalidations. Without it every load reads
// the store.
func (m *Manager) EnableCache(ctx context.Context) {
	c := &cache{users: map[userKey][]entry{}}
	c.current = m.st.WatchInvalidations(ctx, c.invalidate)
	m.cache.Store(c)
	context.AfterFunc(ctx, func() { m.cache.CompareAndSwap(c, nil) })
}

func (c *cache) get(t TenantID, user, id string) (Session, bool) {
	if !c.current(cacheTrust) {
		return Session{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := userKey{t, user}
	es := c.users[k]
	for i := range es {
		if es[i].id == id {
			return es[i].session(k), true
		}
	}
	return Session{}, false
}

// put caches s, read from the store after the generation gen was noted.
func (c *cache) put(s Session, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen || !c.current(cacheTrust) {
		return
	}
	k := userKey{s.Tenant, s.Username}
	es := c.users[k]
	for i := range es {
		if es[i].id == s.ID {
			es[i] = newEntry(&s)
			return
		}
	}
	if c.n >= cacheMax {
		return
	}
	c.users[k] = append(es, newEntry(&s))
	c.n++
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

// forget drops a user's cached sessions in this process at once, after
// this process ended some; the store's invalidation tells the others.
func (m *Manager) forget(t TenantID, user string) {
	if c := m.cache.Load(); c != nil {
		c.invalidate(string(t), user)
	}
}
