package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/memstore"
)

// probeStore counts the tenant reads a Manager makes, over a memstore that
// a test can swap for an empty one (a Redis restarted without
// persistence). Its Changes fire only when the test pokes, so that a test
// decides when WatchTenants looks.
type probeStore struct {
	store.Store
	cur  atomic.Pointer[memstore.Store]
	poke chan struct{}

	mu                 sync.Mutex
	gets, sinces, alls int // alls: TenantsSince answers holding every tenant
	fetched            int // tenants TenantsSince returned, put or deleted
}

func newProbeStore() *probeStore {
	p := &probeStore{poke: make(chan struct{}, 1)}
	p.swap()
	return p
}

// swap replaces the store's contents with nothing, in a new epoch.
func (p *probeStore) swap() *memstore.Store {
	st := memstore.New(memstore.Config{})
	p.cur.Store(st)
	p.Store = st
	return st
}

func (p *probeStore) st() *memstore.Store { return p.cur.Load() }

func (p *probeStore) PutTenant(ctx context.Context, id string, data []byte) error {
	return p.st().PutTenant(ctx, id, data)
}

func (p *probeStore) DeleteTenant(ctx context.Context, id string) error {
	return p.st().DeleteTenant(ctx, id)
}

func (p *probeStore) GetTenant(ctx context.Context, id string) ([]byte, error) {
	p.mu.Lock()
	p.gets++
	p.mu.Unlock()
	return p.st().GetTenant(ctx, id)
}

func (p *probeStore) TenantsSince(ctx context.Context, since store.TenantRevision) (store.TenantChanges, error) {
	c, err := p.st().TenantsSince(ctx, since)
	p.mu.Lock()
	p.sinces++
	if c.All {
		p.alls++
	}
	p.fetched += len(c.Put) + len(c.Deleted)
	p.mu.Unlock()
	return c, err
}

func (p *probeStore) Changes(ctx context.Context) <-chan struct{} { return p.poke }

type probeCounts struct{ gets, sinces, alls, fetched int }

func (p *probeStore) counts() probeCounts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return probeCounts{p.gets, p.sinces, p.alls, p.fetched}
}

func newProbeManager(t testing.TB) (*Manager, *probeStore) {
	t.Helper()
	p := newProbeStore()
	m, err := NewManager(p, Config{Keys: [][]byte{benchCodecKey}, Password: PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		t.Fatal(err)
	}
	return m, p
}

func viewTenant(id string, hosts ...string) Tenant {
	return Tenant{ID: TenantID(id), Name: "Tenant " + id, Origins: []string{"https://app." + id + ".example"},
		Hostnames: hosts, Cookie: CookiePolicy{SameSite: SameSiteLax}}
}

// storeTenant writes t straight into st, as another replica racing this
// one could, without PutTenant's hostname check.
func storeTenant(t testing.TB, st store.Store, tn Tenant) {
	t.Helper()
	data, err := json.Marshal(tn.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutTenant(t.Context(), string(tn.ID), data); err != nil {
		t.Fatal(err)
	}
}

// TestGetTenantReadsOne: an admin read of one tenant reads that record
// alone, however many tenants there are (it listed them all).
func TestGetTenantReadsOne(t *testing.T) {
	t.Parallel()
	m, p := newProbeManager(t)
	for i := range 50 {
		storeTenant(t, p, viewTenant(fmt.Sprintf("t%02d", i)))
	}
	got, err := m.GetTenant(t.Context(), "t07")
	if err != nil || got.ID != "t07" || got.Name != "Tenant t07" {
		t.Fatalf("GetTenant(t07) = %+v, %v; want t07", got, err)
	}
	if _, err := m.GetTenant(t.Context(), "nope"); !isNotFound(err) {
		t.Errorf("GetTenant(nope) err=%v, want ErrNotFound", err)
	}
	if c := p.counts(); c.gets != 2 || c.sinces != 0 {
		t.Errorf("store reads for two GetTenant = %+v, want 2 gets and nothing else", c)
	}
}

// TestPutTenantReadsChanges: creating n tenants reads each once more (the
// view catching up), not n times n.
func TestPutTenantReadsChanges(t *testing.T) {
	t.Parallel()
	m, p := newProbeManager(t)
	const n = 40
	for i := range n {
		tn, created, err := m.PutTenant(t.Context(), viewTenant(fmt.Sprintf("t%02d", i), fmt.Sprintf("auth.t%02d.example", i)))
		if err != nil || !created || tn.ID != TenantID(fmt.Sprintf("t%02d", i)) {
			t.Fatalf("PutTenant %d = %v, %v, %v; want created", i, tn.ID, created, err)
		}
	}
	if _, created, err := m.PutTenant(t.Context(), viewTenant("t03", "auth.t03.example")); err != nil || created {
		t.Errorf("PutTenant(t03) again: created %v, err %v; want an update", created, err)
	}
	if _, _, err := m.PutTenant(t.Context(), viewTenant("x", "auth.t05.example")); !isConflict(err) {
		t.Errorf("PutTenant claiming t05's hostname: err=%v, want ErrConflict", err)
	}
	// Each write reads what the one before it wrote: n creations and an
	// update, so n+1 tenants in all.
	if c := p.counts(); c.alls != 1 || c.fetched != n+1 {
		t.Errorf("store reads for %d creations, an update and a conflict = %+v, want one full read (of nothing) and %d tenants fetched", n, c, n+1)
	}
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
func isConflict(err error) bool { return errors.Is(err, ErrConflict) }

// watchUpdates runs WatchTenants on m until the test ends and returns its
// updates.
func watchUpdates(t *testing.T, m *Manager) <-chan TenantsUpdate {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	updates := make(chan TenantsUpdate, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.WatchTenants(ctx, time.Hour, func(u TenantsUpdate) { updates <- u })
	}()
	t.Cleanup(func() { cancel(); <-done })
	return updates
}

// nextUpdate pokes the watch and returns its next update.
func nextUpdate(t *testing.T, p *probeStore, updates <-chan TenantsUpdate) TenantsUpdate {
	t.Helper()
	select {
	case p.poke <- struct{}{}:
	default:
	}
	select {
	case u := <-updates:
		return u
	case <-time.After(5 * time.Second):
		t.Fatal("no tenants update within 5 s")
		return TenantsUpdate{}
	}
}

// updateSummary renders an update as "+id[hosts] -id".
func updateSummary(u TenantsUpdate) string {
	var out []string
	for _, tn := range u.Changed {
		out = append(out, fmt.Sprintf("+%s%v", tn.ID, tn.Hostnames))
	}
	for _, id := range u.Deleted {
		out = append(out, "-"+string(id))
	}
	return fmt.Sprint(out)
}

// TestWatchTenantsReportsChanges: the first update holds every tenant,
// each later one what changed alone, and a look at the store with nothing
// changed fetches no tenant and reports nothing.
func TestWatchTenantsReportsChanges(t *testing.T) {
	t.Parallel()
	m, p := newProbeManager(t)
	for _, id := range []string{"a", "b", "c"} {
		storeTenant(t, p, viewTenant(id))
	}
	updates := watchUpdates(t, m)
	if got, want := updateSummary(<-updates), "[+a[] +b[] +c[]]"; got != want {
		t.Errorf("first update = %s, want %s", got, want)
	}
	before := p.counts()
	// Nothing changed: the poke makes the watch look, and the next update
	// must be the change after it, not an empty one.
	p.poke <- struct{}{}
	for p.counts().sinces == before.sinces {
		time.Sleep(time.Millisecond)
	}
	if c := p.counts(); c.fetched != before.fetched {
		t.Errorf("a look with nothing changed fetched %d tenants, want none", c.fetched-before.fetched)
	}
	b := viewTenant("b")
	b.Name = "Bee"
	storeTenant(t, p, b)
	u := nextUpdate(t, p, updates)
	if got, want := updateSummary(u), "[+b[]]"; got != want || u.Changed[0].Name != "Bee" {
		t.Errorf("update after changing b = %s (%+v), want %s named Bee", got, u.Changed, want)
	}
	if err := m.DeleteTenant(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if got, want := updateSummary(nextUpdate(t, p, updates)), "[-a]"; got != want {
		t.Errorf("update after deleting a = %s, want %s", got, want)
	}
	// Stored again unchanged: nothing to report, so the next update is the
	// change after it.
	storeTenant(t, p, viewTenant("c"))
	storeTenant(t, p, viewTenant("d"))
	if got, want := updateSummary(nextUpdate(t, p, updates)), "[+d[]]"; got != want {
		t.Errorf("update after rewriting c as it was and creating d = %s, want %s", got, want)
	}
	if c := p.counts(); c.alls != 1 || c.gets != 0 {
		t.Errorf("store reads of the watch = %+v, want TenantsSince alone, reading everything once", c)
	}
}

// TestWatchTenantsHostnameClaims: a hostname two tenants claim (replicas
// racing) is served by the first in ID order, and passes to the other when
// that one lets it go, one update at a time.
func TestWatchTenantsHostnameClaims(t *testing.T) {
	t.Parallel()
	m, p := newProbeManager(t)
	storeTenant(t, p, viewTenant("b", "auth.shared.example", "auth.b.example"))
	updates := watchUpdates(t, m)
	if got, want := updateSummary(<-updates), "[+b[auth.shared.example auth.b.example]]"; got != want {
		t.Errorf("first update = %s, want %s", got, want)
	}
	storeTenant(t, p, viewTenant("a", "auth.shared.example"))
	if got, want := updateSummary(nextUpdate(t, p, updates)), "[+a[auth.shared.example] +b[auth.b.example]]"; got != want {
		t.Errorf("update after a claims b's hostname = %s, want %s", got, want)
	}
	storeTenant(t, p, viewTenant("a"))
	if got, want := updateSummary(nextUpdate(t, p, updates)), "[+a[] +b[auth.shared.example auth.b.example]]"; got != want {
		t.Errorf("update after a drops the hostname = %s, want %s", got, want)
	}
	storeTenant(t, p, viewTenant("a", "auth.shared.example"))
	nextUpdate(t, p, updates)
	if err := m.DeleteTenant(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if got, want := updateSummary(nextUpdate(t, p, updates)), "[+b[auth.shared.example auth.b.example] -a]"; got != want {
		t.Errorf("update after deleting a = %s, want %s", got, want)
	}
}

// TestWatchTenantsStoreLost: when the store loses its tenants (a new
// epoch), every replica drops them, rather than serving tenants the store
// no longer has; an unreadable tenant is dropped too, until it is fixed.
func TestWatchTenantsStoreLost(t *testing.T) {
	t.Parallel()
	m, p := newProbeManager(t)
	storeTenant(t, p, viewTenant("a"))
	storeTenant(t, p, viewTenant("b"))
	updates := watchUpdates(t, m)
	<-updates

	if err := p.st().PutTenant(t.Context(), "b", []byte(`{"id":"b"`)); err != nil {
		t.Fatal(err)
	}
	if got, want := updateSummary(nextUpdate(t, p, updates)), "[-b]"; got != want {
		t.Errorf("update after b became unreadable = %s, want %s", got, want)
	}
	storeTenant(t, p, viewTenant("b"))
	if got, want := updateSummary(nextUpdate(t, p, updates)), "[+b[]]"; got != want {
		t.Errorf("update after b was fixed = %s, want %s", got, want)
	}

	fresh := p.swap()
	if got, want := updateSummary(nextUpdate(t, p, updates)), "[-a -b]"; got != want {
		t.Errorf("update after the store lost everything = %s, want %s", got, want)
	}
	storeTenant(t, fresh, viewTenant("b"))
	if got, want := updateSummary(nextUpdate(t, p, updates)), "[+b[]]"; got != want {
		t.Errorf("update after b was restored = %s, want %s", got, want)
	}
	if ts, err := m.ListTenants(t.Context()); err != nil || len(ts) != 1 || ts[0].ID != "b" {
		t.Errorf("ListTenants = %v, %v; want b alone", ts, err)
	}
}
