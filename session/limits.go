package session

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// loginLimit is one of a tenant's LoginLimits as a login meets it: the
// store counter it takes a place in, and the most places per window.
type loginLimit struct {
	key string
	max int
}

// checkKeys returns the limits and the hashing-share keys of a password
// check: under accountKey ("a:<username>", "e:<address>", or "" for
// none) and the client's address (clientIP, "" for none).
func checkKeys(t *Tenant, accountKey, clientIP string) (limits []loginLimit, shareKeys []string) {
	if accountKey != "" {
		limits = append(limits, loginLimit{accountKey, t.LoginLimits.PerAccount})
		shareKeys = append(shareKeys, accountKey[:2]+string(t.ID)+":"+accountKey[2:])
	}
	if clientIP != "" {
		limits = append(limits, loginLimit{"ip:" + clientIP, t.LoginLimits.PerIP})
		shareKeys = append(shareKeys, "ip:"+clientIP)
	}
	return limits, shareKeys
}

// checkGuard is what a password check holds while it runs: its client's
// share of the hashing budget and its places under the login limits.
type checkGuard struct {
	limits    []loginLimit
	id        string
	window    time.Duration
	waitUntil time.Time // when waiting for hashing memory gives up
	release   func()
}

// guardCheck waits for the shares (shareKeys) that a check of a hash of
// kib KiB needs, then takes the check's places under limits (reserve), so
// that however many checks run on however many replicas, at most the
// limits' number of passwords are checked per window. The caller ends it
// with settle once the check is done.
func (m *Manager) guardCheck(ctx context.Context, t *Tenant, limits []loginLimit, shareKeys []string, kib int64) (*checkGuard, error) {
	g := &checkGuard{limits: limits, id: rand.Text(), window: time.Duration(t.LoginLimits.Window), waitUntil: time.Now().Add(m.hashWait)}
	release, err := m.shares.acquire(ctx, g.waitUntil, shareKeys, kib)
	if err != nil {
		return nil, err
	}
	if err := m.reserve(ctx, t, limits, g.id, g.window); err != nil {
		release()
		return nil, err
	}
	g.release = release
	return g, nil
}

// settle ends g: with failed (a password checked and found wrong) its
// places become counted failures; any other outcome gives them back, so
// that only failed checks count.
func (m *Manager) settle(ctx context.Context, t *Tenant, g *checkGuard, failed bool) {
	if failed {
		m.countFailure(ctx, t, g.limits, g.id)
	} else {
		m.giveBack(ctx, t, g.limits, g.id, g.window)
	}
	g.release()
}

// reserve takes a place for attempt id under every limit, or none: past a
// limit it gives back what it took and returns a KindRateLimited *Error; on a
// store error it gives back every place, including the one whose answer
// was lost (it may have been taken), and returns the error.
func (m *Manager) reserve(ctx context.Context, t *Tenant, limits []loginLimit, id string, window time.Duration) error {
	for i, l := range limits {
		ok, left, err := m.st.Reserve(ctx, string(t.ID), l.key, id, int64(l.max), window)
		if err != nil {
			// The store just failed: give back later, not now.
			m.giveBackLater(ctx, t, limits[:i+1], id, window, err)
			return err
		}
		if !ok {
			m.giveBack(ctx, t, limits[:i], id, window)
			return &Error{Kind: KindRateLimited, RetryAfter: left}
		}
	}
	return nil
}

// countFailure turns attempt id's places into counted failures. A place
// the store fails to turn stays a place, which counts the same until its
// window ends.
func (m *Manager) countFailure(ctx context.Context, t *Tenant, limits []loginLimit, id string) {
	ctx = context.WithoutCancel(ctx)
	for _, l := range limits {
		cctx, cancel := context.WithTimeout(ctx, giveBackTimeout)
		err := m.st.Settle(cctx, string(t.ID), l.key, id, true)
		cancel()
		if err != nil {
			m.log.WarnContext(ctx, "could not count a failed login; it counts until its window ends", "tenant", t.ID, "err", err)
		}
	}
}

// giveBack gives back attempt id's places under limits. What the store
// does not take back now is retried in the background until the store
// answers or the place's window is over, so that a login cut short by an
// outage never counts as a failed one.
func (m *Manager) giveBack(ctx context.Context, t *Tenant, limits []loginLimit, id string, window time.Duration) {
	ctx = context.WithoutCancel(ctx) // a client that went away still gives back
	for i, l := range limits {
		cctx, cancel := context.WithTimeout(ctx, giveBackTimeout)
		err := m.st.Settle(cctx, string(t.ID), l.key, id, false)
		cancel()
		if err != nil {
			// Do not make the client wait for a failing store once more.
			m.giveBackLater(ctx, t, limits[i:], id, window, err)
			return
		}
	}
}

// giveBackLater gives back attempt id's places under limits in the
// background.
func (m *Manager) giveBackLater(ctx context.Context, t *Tenant, limits []loginLimit, id string, window time.Duration, cause error) {
	m.log.WarnContext(ctx, "could not give back a login attempt; retrying in the background", "tenant", t.ID, "err", cause)
	until := time.Now().Add(window)
	for _, l := range limits {
		m.givebacks.add(m, giveback{tenant: string(t.ID), key: l.key, id: id}, until)
	}
}

// Bounds of giving back in the background: each try's timeout, the pause
// between rounds (doubling from the first to the last while the store
// fails), and how many places wait at most; past that a place is dropped
// (logged), and counts until its window ends.
const (
	giveBackTimeout = time.Second
	giveBackFirst   = 100 * time.Millisecond
	giveBackLast    = time.Second
	maxGiveBacks    = 10_000
)

type giveback struct{ tenant, key, id string }

// givebacks holds the places a login could not give back, each with the
// end of its window, and one goroutine retrying them while there are any.
// The zero value is ready to use.
type givebacks struct {
	mu      sync.Mutex
	pending map[giveback]time.Time
	running bool
}

func (g *givebacks) add(m *Manager, p giveback, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) >= maxGiveBacks {
		m.log.Error("too many login attempts to give back; dropping one, which counts as a failed login until its window ends", "tenant", p.tenant)
		return
	}
	if g.pending == nil {
		g.pending = map[giveback]time.Time{}
	}
	g.pending[p] = until
	if !g.running {
		g.running = true
		go g.run(m)
	}
}

// run retries every pending place until none is left.
func (g *givebacks) run(m *Manager) {
	pause := giveBackFirst
	for {
		time.Sleep(pause)
		g.mu.Lock()
		batch := make(map[giveback]time.Time, len(g.pending))
		for p, until := range g.pending {
			batch[p] = until
		}
		g.mu.Unlock()
		pause = min(pause*2, giveBackLast)
		for p, until := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), giveBackTimeout)
			err := m.st.Settle(ctx, p.tenant, p.key, p.id, false)
			cancel()
			if err == nil {
				pause = giveBackFirst
			}
			if err == nil || time.Now().After(until) {
				g.mu.Lock()
				delete(g.pending, p)
				g.mu.Unlock()
			}
		}
		g.mu.Lock()
		if len(g.pending) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
	}
}

// clientShares bounds the hashing memory that one client's checks hold at
// once in this process: each key (an account, an address) gets at most
// size KiB, and a key holding nothing may always start one check, however
// costly. Within its share a client's checks queue in order. Keys live
// only while a check holds or awaits them.
type clientShares struct {
	size int64
	mu   sync.Mutex
	keys map[string]*clientShare
}

type clientShare struct {
	sem  *semaphore.Weighted
	refs int // checks holding or awaiting the share
}

func newClientShares(sizeKiB int64) *clientShares {
	return &clientShares{size: sizeKiB, keys: map[string]*clientShare{}}
}

// acquire waits until waitUntil at most for kib of the share of every key,
// in order, and returns the function that releases them. Past waitUntil it
// returns ErrBusy; a done ctx returns ctx.Err().
func (cs *clientShares) acquire(ctx context.Context, waitUntil time.Time, keys []string, kib int64) (func(), error) {
	// A check larger than a share takes the whole share: alone.
	w := min(kib, cs.size)
	wctx, cancel := context.WithDeadline(ctx, waitUntil)
	defer cancel()
	held := make([]*clientShare, 0, len(keys))
	release := func() {
		for i, s := range held {
			s.sem.Release(w)
			cs.drop(keys[i], s)
		}
	}
	for _, k := range keys {
		s := cs.ref(k)
		if err := s.sem.Acquire(wctx, w); err != nil {
			cs.drop(k, s)
			release()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, ErrBusy
		}
		held = append(held, s)
	}
	return release, nil
}

func (cs *clientShares) ref(key string) *clientShare {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	s := cs.keys[key]
	if s == nil {
		s = &clientShare{sem: semaphore.NewWeighted(cs.size)}
		cs.keys[key] = s
	}
	s.refs++
	return s
}

func (cs *clientShares) drop(key string, s *clientShare) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if s.refs--; s.refs == 0 {
		delete(cs.keys, key)
	}
}
