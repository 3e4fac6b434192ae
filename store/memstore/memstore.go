package memstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

var _ store.Store = (*Store)(nil)

// Config holds the settings of a Store. The zero value is ready to use.
type Config struct {
	// Now returns the current time, against which session expiry is
	// checked. Nil means time.Now.
	Now func() time.Time
}

// Store is an in-memory store.Store. It is safe for concurrent use. Create
// one with New; the zero value is not usable.
type Store struct {
	now func() time.Time

	mu      sync.Mutex
	tenants map[string][]byte                       // tenant ID -> configuration
	revs    tenantRevs                              // tenant changes, for TenantsSince
	users   map[string]map[string]*account          // tenant ID -> user name -> account
	emails  map[string]map[string]string            // tenant ID -> address -> user name
	tokens  map[string]*tokenSet                    // tenant ID -> tokens
	subs    map[chan struct{}]struct{}              // Changes subscribers
	invals  map[*func(tenant, user string)]struct{} // WatchInvalidations subscribers

	counters  map[string]map[string]*counter // tenant ID -> key -> counter
	adminKeys map[string]store.AdminKey      // key ID -> key
	audit     map[string][][]byte            // tenant ID -> entries, oldest first
	applied   map[string][]byte              // tenant ID -> applied record
}

// counter is one fixed-window counter: failures, and the places taken by
// attempts in flight.
type counter struct {
	n       int64
	held    map[string]struct{}
	resetAt time.Time
}

// account is one user record and its sessions, kept together so that
// they change under one lock like they do in one Redis slot.
type account struct {
	email    string // normalized address, or ""
	data     []byte
	sessions map[string]store.Session // by session ID; Data owned by the store
}

// New returns an empty Store.
func New(cfg Config) *Store {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:     now,
		tenants: map[string][]byte{},
		revs:    tenantRevs{epoch: rand.Text(), at: map[string]int64{}},
		users:   map[string]map[string]*account{},
		emails:  map[string]map[string]string{},
		tokens:  map[string]*tokenSet{},
		subs:    map[chan struct{}]struct{}{},
		invals:  map[*func(tenant, user string)]struct{}{},

		counters:  map[string]map[string]*counter{},
		adminKeys: map[string]store.AdminKey{},
		audit:     map[string][][]byte{},
		applied:   map[string][]byte{},
	}
}

// CreateSession stores s if the user's record still equals owner; see
// store.Store.
func (st *Store) CreateSession(ctx context.Context, s store.Session, owner store.User) error {
	return st.do(ctx, "create session", func() error {
		a := st.account(s.Tenant, s.User)
		if a == nil || owner.Tenant != s.Tenant || owner.Name != s.User || !bytes.Equal(a.data, owner.Data) {
			return store.ErrConflict
		}
		now := st.now()
		a.prune(now)
		a.put(s, now)
		return nil
	})
}

// GetSession returns the session, or store.ErrNotFound if it is missing
// or expired.
func (st *Store) GetSession(ctx context.Context, tenant, user, id string) (store.Session, error) {
	return locked(ctx, st, "get session", func() (store.Session, error) {
		s, ok := st.live(tenant, user, id)
		if !ok {
			return store.Session{}, store.ErrNotFound
		}
		return clone(s), nil
	})
}

// UpdateSession replaces an existing, unexpired session; see store.Store.
func (st *Store) UpdateSession(ctx context.Context, s store.Session) error {
	return st.do(ctx, "update session", func() error {
		if _, ok := st.live(s.Tenant, s.User, s.ID); !ok {
			return store.ErrNotFound
		}
		st.account(s.Tenant, s.User).put(s, st.now())
		return nil
	})
}

// DeleteSession removes one session. Deleting a missing one is not an
// error.
func (st *Store) DeleteSession(ctx context.Context, tenant, user, id string) error {
	return st.do(ctx, "delete session", func() error {
		if a := st.account(tenant, user); a != nil {
			delete(a.sessions, id)
		}
		st.invalidate(tenant, user)
		return nil
	})
}

// ListSessions returns the user's unexpired sessions and drops the expired
// ones.
func (st *Store) ListSessions(ctx context.Context, tenant, user string) ([]store.Session, error) {
	return locked(ctx, st, "list sessions", func() ([]store.Session, error) {
		a := st.account(tenant, user)
		if a == nil {
			return nil, nil
		}
		a.prune(st.now())
		list := make([]store.Session, 0, len(a.sessions))
		for _, s := range a.sessions {
			list = append(list, clone(s))
		}
		return list, nil
	})
}

// DeleteSessions removes every session of the user.
func (st *Store) DeleteSessions(ctx context.Context, tenant, user string) error {
	return st.do(ctx, "delete sessions", func() error {
		if a := st.account(tenant, user); a != nil {
			a.sessions = nil
		}
		st.invalidate(tenant, user)
		return nil
	})
}

// GetUser returns the user, or store.ErrNotFound.
func (st *Store) GetUser(ctx context.Context, tenant, name string) (store.User, error) {
	return locked(ctx, st, "get user", func() (store.User, error) {
		a := st.account(tenant, name)
		if a == nil {
			return store.User{}, store.ErrNotFound
		}
		return a.user(tenant, name), nil
	})
}

// PutUser creates or replaces the user and, with endSessions, removes its
// sessions in the same step; see store.Store for its address.
func (st *Store) PutUser(ctx context.Context, u store.User, endSessions bool) error {
	return st.do(ctx, "put user", func() error {
		if st.emailTaken(u) {
			return store.ErrConflict
		}
		a := st.account(u.Tenant, u.Name)
		if a == nil {
			a = st.newAccount(u.Tenant, u.Name)
		}
		st.setUser(a, u)
		if endSessions {
			a.sessions = nil
			st.invalidate(u.Tenant, u.Name)
		}
		return nil
	})
}

// SwapUser replaces the user's record if it still equals old.
func (st *Store) SwapUser(ctx context.Context, old, u store.User) error {
	return st.do(ctx, "swap user", func() error {
		a := st.account(u.Tenant, u.Name)
		if a == nil || old.Tenant != u.Tenant || old.Name != u.Name || a.email != old.Email || !bytes.Equal(a.data, old.Data) ||
			st.emailTaken(u) {
			return store.ErrConflict
		}
		st.setUser(a, u)
		return nil
	})
}

// DeleteUser removes the user, its sessions and tokens, and releases its
// address. Deleting a missing user is not an error.
func (st *Store) DeleteUser(ctx context.Context, tenant, name string) error {
	return st.do(ctx, "delete user", func() error {
		st.deleteTokens(tenant, name)
		if users := st.users[tenant]; users != nil {
			if a := users[name]; a != nil {
				st.setEmail(tenant, name, a.email, "")
			}
			delete(users, name)
			if len(users) == 0 {
				delete(st.users, tenant)
			}
		}
		st.invalidate(tenant, name)
		return nil
	})
}

// ListUsers returns the tenant's users, in no particular order.
func (st *Store) ListUsers(ctx context.Context, tenant string) ([]store.User, error) {
	return locked(ctx, st, "list users", func() ([]store.User, error) {
		users := st.users[tenant]
		list := make([]store.User, 0, len(users))
		for name, a := range users {
			list = append(list, a.user(tenant, name))
		}
		return list, nil
	})
}

// PutTenant creates or replaces a tenant's configuration and notifies the
// subscribers of Changes in this process.
func (st *Store) PutTenant(ctx context.Context, id string, data []byte) error {
	return st.do(ctx, "put tenant", func() error {
		st.tenants[id] = bytes.Clone(data)
		st.revs.change(id)
		st.notify()
		return nil
	})
}

// GetTenant returns one tenant's configuration, or store.ErrNotFound.
func (st *Store) GetTenant(ctx context.Context, id string) ([]byte, error) {
	return locked(ctx, st, "get tenant", func() ([]byte, error) { return cloned(st.tenants, id) })
}

// DeleteTenant removes the tenant's configuration, users, sessions,
// addresses and tokens, and notifies the subscribers of Changes in this
// process.
func (st *Store) DeleteTenant(ctx context.Context, id string) error {
	return st.do(ctx, "delete tenant", func() error {
		if _, ok := st.tenants[id]; ok {
			st.revs.change(id)
		}
		delete(st.tenants, id)
		delete(st.users, id)
		delete(st.emails, id)
		delete(st.tokens, id)
		maps.DeleteFunc(st.adminKeys, func(_ string, k store.AdminKey) bool { return k.Tenant == id })
		st.invalidate(id, "")
		st.notify()
		return nil
	})
}

// TenantsSince returns the tenants changed after since; see store.Store.
// It costs in proportion to the changes (a binary search of the log).
func (st *Store) TenantsSince(ctx context.Context, since store.TenantRevision) (store.TenantChanges, error) {
	return locked(ctx, st, "tenants since", func() (store.TenantChanges, error) {
		out := store.TenantChanges{Rev: store.TenantRevision{Epoch: st.revs.epoch, N: st.revs.n}, Put: map[string][]byte{}}
		var ids []string // to report: every tenant, or those changed since
		if since.Epoch != st.revs.epoch || since.N > st.revs.n {
			out.All, ids = true, slices.Collect(maps.Keys(st.tenants))
		} else {
			ids = st.revs.since(since.N)
		}
		for _, id := range ids {
			if data, ok := st.tenants[id]; ok {
				out.Put[id] = bytes.Clone(data)
			} else {
				out.Deleted = append(out.Deleted, id)
			}
		}
		return out, nil
	})
}

// tenantRevs numbers tenant changes, as redisstore's index does: n counts
// them, at holds each tenant's latest (deletions included, so that they
// can be reported), and log lists them in order, one entry per change,
// compacted when most of it is stale.
type tenantRevs struct {
	epoch string
	n     int64
	at    map[string]int64
	log   []revEntry
}

type revEntry struct {
	n  int64
	id string
}

// change records a change of id.
func (r *tenantRevs) change(id string) {
	r.n++
	r.at[id] = r.n
	r.log = append(r.log, revEntry{r.n, id})
	if len(r.log) > 2*len(r.at)+64 {
		live := r.log[:0]
		for _, e := range r.log {
			if r.at[e.id] == e.n {
				live = append(live, e)
			}
		}
		r.log = live
	}
}

// since returns the IDs changed after revision n, each once.
func (r *tenantRevs) since(n int64) []string {
	i, _ := slices.BinarySearchFunc(r.log, n+1, func(e revEntry, n int64) int { return cmp.Compare(e.n, n) })
	var ids []string
	for _, e := range r.log[i:] {
		if r.at[e.id] == e.n {
			ids = append(ids, e.id)
		}
	}
	return ids
}

// Changes returns a channel that receives a value after each PutTenant or
// DeleteTenant on this Store. Values coalesce: the channel holds at most
// one. It is closed when ctx is done.
func (st *Store) Changes(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	if ctx.Err() != nil {
		close(ch)
		return ch
	}
	st.mu.Lock()
	st.subs[ch] = struct{}{}
	st.mu.Unlock()
	context.AfterFunc(ctx, func() {
		// Under the lock, so that notify never sends on a closed channel.
		st.mu.Lock()
		defer st.mu.Unlock()
		delete(st.subs, ch)
		close(ch)
	})
	return ch
}

// Ping reports whether the store answers, which it always does unless ctx
// is done.
func (st *Store) Ping(ctx context.Context) error {
	return st.do(ctx, "ping", func() error { return nil })
}

// locked runs fn under st.mu unless ctx is done, and prefixes the error
// with op.
func locked[T any](ctx context.Context, st *Store, op string, fn func() (T, error)) (T, error) {
	var v T
	err := ctx.Err()
	if err == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		v, err = fn()
	}
	if err != nil {
		err = fmt.Errorf("memstore: %s: %w", op, err)
	}
	return v, err
}

// do is locked for a method that returns only an error.
func (st *Store) do(ctx context.Context, op string, fn func() error) error {
	_, err := locked(ctx, st, op, func() (struct{}, error) { return struct{}{}, fn() })
	return err
}

// account returns the user's account, or nil. The caller holds st.mu.
func (st *Store) account(tenant, user string) *account {
	return st.users[tenant][user]
}

// live returns the stored session and reports whether it exists and has
// not expired, dropping it if it has. The caller holds st.mu.
func (st *Store) live(tenant, user, id string) (store.Session, bool) {
	a := st.account(tenant, user)
	if a == nil {
		return store.Session{}, false
	}
	s, ok := a.sessions[id]
	if ok && !s.Expires.After(st.now()) {
		delete(a.sessions, id)
		ok = false
	}
	return s, ok
}

// notify wakes every subscriber without blocking: a subscriber that has a
// value pending already knows to reload. The caller holds st.mu.
func (st *Store) notify() {
	for ch := range st.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// put stores s, or drops it if it has expired by now: storing it would
// only store something invisible.
func (a *account) put(s store.Session, now time.Time) {
	if !s.Expires.After(now) {
		delete(a.sessions, s.ID)
		return
	}
	if a.sessions == nil {
		a.sessions = map[string]store.Session{}
	}
	a.sessions[s.ID] = clone(s)
}

// prune drops the account's expired sessions.
func (a *account) prune(now time.Time) {
	for id, s := range a.sessions {
		if !s.Expires.After(now) {
			delete(a.sessions, id)
		}
	}
}

// clone returns s with its own copy of Data, so that neither the caller
// nor the store can change the other's bytes.
func clone(s store.Session) store.Session {
	s.Data = bytes.Clone(s.Data)
	return s
}

// Reserve takes a place in a fixed-window counter; see store.Store.
func (st *Store) Reserve(ctx context.Context, tenant, key, id string, limit int64, window time.Duration) (bool, time.Duration, error) {
	var left time.Duration
	ok, err := locked(ctx, st, "reserve", func() (bool, error) {
		now := st.now()
		cs := st.counters[tenant]
		c := liveCounter(cs, key, now)
		switch {
		case c != nil:
			left = c.resetAt.Sub(now)
			if _, ok := c.held[id]; ok {
				return true, nil
			}
			if c.n+int64(len(c.held)) >= limit {
				return false, nil
			}
		case limit < 1:
			return false, nil
		default:
			if cs == nil {
				cs = map[string]*counter{}
				st.counters[tenant] = cs
			}
			c = &counter{held: map[string]struct{}{}, resetAt: now.Add(window)}
			cs[key] = c
			left = window
		}
		c.held[id] = struct{}{}
		st.pruneCounters(cs, now)
		return true, nil
	})
	return ok, left, err
}

// Settle ends a place in a fixed-window counter; see store.Store.
func (st *Store) Settle(ctx context.Context, tenant, key, id string, failed bool) error {
	return st.do(ctx, "settle", func() error {
		cs := st.counters[tenant]
		c := liveCounter(cs, key, st.now())
		if c == nil {
			return nil
		}
		if _, ok := c.held[id]; !ok {
			return nil
		}
		delete(c.held, id)
		if failed {
			c.n++
		}
		if c.n == 0 && len(c.held) == 0 {
			delete(cs, key)
		}
		return nil
	})
}

// liveCounter returns the counter of key in cs, or nil if there is none or
// its window is over (then it is removed). The caller holds st.mu.
func liveCounter(cs map[string]*counter, key string, now time.Time) *counter {
	c := cs[key]
	if c != nil && !now.Before(c.resetAt) {
		delete(cs, key)
		return nil
	}
	return c
}

// pruneCounters drops a few expired counters, so that counters of
// addresses never seen again do not pile up. The caller holds st.mu.
func (st *Store) pruneCounters(cs map[string]*counter, now time.Time) {
	checked := 0
	for k, c := range cs {
		if !now.Before(c.resetAt) {
			delete(cs, k)
		}
		if checked++; checked == 8 {
			return
		}
	}
}

// ResetCount forgets a counter's failures; see store.Store.
func (st *Store) ResetCount(ctx context.Context, tenant, key string) error {
	return st.do(ctx, "reset count", func() error {
		cs := st.counters[tenant]
		if c := liveCounter(cs, key, st.now()); c != nil {
			c.n = 0
			if len(c.held) == 0 {
				delete(cs, key)
			}
		}
		return nil
	})
}

// PutAdminKey creates or replaces an admin key.
func (st *Store) PutAdminKey(ctx context.Context, k store.AdminKey) error {
	return st.do(ctx, "put admin key", func() error {
		k.Data = bytes.Clone(k.Data)
		st.adminKeys[k.ID] = k
		return nil
	})
}

// GetAdminKey returns the admin key with that ID, or store.ErrNotFound.
func (st *Store) GetAdminKey(ctx context.Context, id string) (store.AdminKey, error) {
	return locked(ctx, st, "get admin key", func() (store.AdminKey, error) {
		k, ok := st.adminKeys[id]
		if !ok {
			return store.AdminKey{}, store.ErrNotFound
		}
		k.Data = bytes.Clone(k.Data)
		return k, nil
	})
}

// ListAdminKeys returns the tenant's admin keys.
func (st *Store) ListAdminKeys(ctx context.Context, tenant string) ([]store.AdminKey, error) {
	return locked(ctx, st, "list admin keys", func() ([]store.AdminKey, error) {
		var out []store.AdminKey
		for _, k := range st.adminKeys {
			if k.Tenant == tenant {
				k.Data = bytes.Clone(k.Data)
				out = append(out, k)
			}
		}
		return out, nil
	})
}

// DeleteAdminKey removes the tenant's admin key with that ID.
func (st *Store) DeleteAdminKey(ctx context.Context, tenant, id string) error {
	return st.do(ctx, "delete admin key", func() error {
		if k, ok := st.adminKeys[id]; ok && k.Tenant == tenant {
			delete(st.adminKeys, id)
		}
		return nil
	})
}

// AppendAudit records one audit entry, keeping the newest store.MaxAudit.
func (st *Store) AppendAudit(ctx context.Context, tenant string, entry []byte) error {
	return st.do(ctx, "append audit", func() error {
		log := append(st.audit[tenant], bytes.Clone(entry))
		if len(log) > store.MaxAudit {
			log = append([][]byte(nil), log[len(log)-store.MaxAudit:]...)
		}
		st.audit[tenant] = log
		return nil
	})
}

// ListAudit returns up to limit of the tenant's newest entries, newest first.
func (st *Store) ListAudit(ctx context.Context, tenant string, limit int) ([][]byte, error) {
	return locked(ctx, st, "list audit", func() ([][]byte, error) {
		log := st.audit[tenant]
		out := make([][]byte, 0, min(max(limit, 0), len(log)))
		for i := len(log) - 1; i >= 0 && len(out) < limit; i-- {
			out = append(out, bytes.Clone(log[i]))
		}
		return out, nil
	})
}

// GetApplied returns the tenant's applied record, or store.ErrNotFound.
func (st *Store) GetApplied(ctx context.Context, tenant string) ([]byte, error) {
	return locked(ctx, st, "get applied", func() ([]byte, error) { return cloned(st.applied, tenant) })
}

// SwapApplied replaces the tenant's applied record if it still equals old;
// DeleteTenant leaves it alone.
func (st *Store) SwapApplied(ctx context.Context, tenant string, old, data []byte) error {
	return st.do(ctx, "swap applied", func() error {
		if !bytes.Equal(st.applied[tenant], old) {
			return store.ErrConflict
		}
		if len(data) == 0 {
			delete(st.applied, tenant)
		} else {
			st.applied[tenant] = bytes.Clone(data)
		}
		return nil
	})
}

// cloned returns a copy of m[key], or store.ErrNotFound.
func cloned(m map[string][]byte, key string) ([]byte, error) {
	data, ok := m[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(data), nil
}

// WatchInvalidations calls fn synchronously, under the store's lock, from
// every method that ends sessions, so the returned function always reports
// true: nothing published can still be on its way.
func (st *Store) WatchInvalidations(ctx context.Context, fn func(tenant, user string)) func(time.Duration) bool {
	st.mu.Lock()
	st.invals[&fn] = struct{}{}
	st.mu.Unlock()
	context.AfterFunc(ctx, func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		delete(st.invals, &fn)
	})
	return func(time.Duration) bool { return true }
}

// invalidate tells every watcher. The caller holds st.mu.
func (st *Store) invalidate(tenant, user string) {
	for fn := range st.invals {
		(*fn)(tenant, user)
	}
}
