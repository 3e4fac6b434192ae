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

// cacheMax bounds the sessions kept in memory per process: about 20 MB.
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

	mu    sync.Mutex
	users map[userKey]map[string]Session
	n     int
}

type userKey struct {
	tenant TenantID
	user   string
}

// EnableCache turns on the per-process session cache until ctx is done,
// subscribing to the store's invalidations. Without it every load reads
// the store.
func (m *Manager) EnableCache(ctx context.Context) {
	c := &cache{users: map[userKey]map[string]Session{}}
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
	s, ok := c.users[userKey{t, user}][id]
	return s, ok
}

// put caches s, read from the store after the generation gen was noted.
func (c *cache) put(s Session, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen.Load() != gen || !c.current(cacheTrust) {
		return
	}
	k := userKey{s.Tenant, s.Username}
	byID := c.users[k]
	if byID == nil {
		if c.n >= cacheMax {
			return
		}
		byID = map[string]Session{}
		c.users[k] = byID
	}
	if _, replace := byID[s.ID]; !replace {
		if c.n >= cacheMax {
			return
		}
		c.n++
	}
	byID[s.ID] = s
}

// invalidate drops what a store invalidation names: a user's sessions, a
// whole tenant's (user ""), or everything (tenant "").
func (c *cache) invalidate(tenant, user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen.Add(1)
	switch {
	case tenant == "":
		c.users = map[userKey]map[string]Session{}
		c.n = 0
	case user == "":
		for k, byID := range c.users {
			if k.tenant == TenantID(tenant) {
				c.n -= len(byID)
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
