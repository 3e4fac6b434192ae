package session

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/latchkeyhq/latchkey/store"
)

// TenantsUpdate is one change to the tenants, as WatchTenants reports it:
// the tenants created or changed since the previous update, as they are
// now, and the IDs of those gone, both in ID order. The first update of a
// watch holds every tenant. Hostnames claimed twice (two replicas racing)
// are given to the tenant first in ID order, in Changed already.
type TenantsUpdate struct {
	Changed []Tenant
	Deleted []TenantID
}

func (u *TenantsUpdate) empty() bool { return len(u.Changed) == 0 && len(u.Deleted) == 0 }

// tenantView is the Manager's decoded copy of the stored tenants, which
// store.TenantsSince keeps current at a cost in proportion to what changed:
// each tenant is decoded and validated once per change, not once per read.
// It backs the hostname check of PutTenant, ListTenants and WatchTenants.
// The zero value is an empty view that loads everything on first use.
type tenantView struct {
	mu     sync.Mutex // held over a refresh and the write that follows it
	rev    store.TenantRevision
	byID   map[TenantID]*Tenant  // valid tenants as stored
	claims map[string][]TenantID // hostname -> tenants listing it, in ID order
	// watches are the WatchTenants in progress, each told which tenants
	// a refresh touched.
	watches map[*tenantWatch]struct{}
}

// tenantWatch is what one WatchTenants has reported.
type tenantWatch struct {
	started bool
	pending map[TenantID]struct{} // touched since the last update
	sent    map[TenantID]*Tenant  // as last reported
}

// refresh brings v up to date with the store. The caller holds v.mu.
func (v *tenantView) refresh(ctx context.Context, m *Manager) error {
	c, err := m.st.TenantsSince(ctx, v.rev)
	if err != nil {
		return err
	}
	if v.byID == nil {
		v.byID, v.claims = map[TenantID]*Tenant{}, map[string][]TenantID{}
	}
	if c.All {
		for id := range v.byID {
			if _, ok := c.Put[string(id)]; !ok {
				v.set(id, nil)
			}
		}
	}
	for id, data := range c.Put {
		t, err := decodeTenant(data)
		if err == nil && string(t.ID) != id {
			err = fmt.Errorf("stored under %q but names %q", id, t.ID)
		}
		if err != nil {
			m.log.ErrorContext(ctx, "ignoring unreadable tenant", "tenant", id, "err", err)
			v.set(TenantID(id), nil)
			continue
		}
		v.set(t.ID, &t)
	}
	for _, id := range c.Deleted {
		v.set(TenantID(id), nil)
	}
	v.rev = c.Rev
	return nil
}

// set replaces tenant id with t (nil: none), keeping the hostname claims
// and telling every watch which tenants to look at again: id, and each
// tenant sharing a hostname with it, whose share may have changed.
func (v *tenantView) set(id TenantID, t *Tenant) {
	old := v.byID[id]
	if old == nil && t == nil {
		return
	}
	v.touch(id)
	if old != nil {
		for _, h := range old.Hostnames {
			v.claims[h] = slices.DeleteFunc(v.claims[h], func(o TenantID) bool { return o == id })
			if len(v.claims[h]) == 0 {
				delete(v.claims, h)
			}
			v.touchAll(v.claims[h])
		}
		delete(v.byID, id)
	}
	if t != nil {
		for _, h := range t.Hostnames {
			v.touchAll(v.claims[h])
			i, found := slices.BinarySearchFunc(v.claims[h], id, func(a, b TenantID) int { return strings.Compare(string(a), string(b)) })
			if !found {
				v.claims[h] = slices.Insert(v.claims[h], i, id)
			}
		}
		v.byID[id] = t
	}
}

func (v *tenantView) touch(id TenantID) {
	for w := range v.watches {
		w.pending[id] = struct{}{}
	}
}

func (v *tenantView) touchAll(ids []TenantID) {
	for _, id := range ids {
		v.touch(id)
	}
}

// served returns tenant id as requests are to see it, nil if there is
// none: with only the hostnames it is first in ID order to claim, which
// every replica decides alike. The caller holds v.mu.
func (v *tenantView) served(m *Manager, id TenantID) *Tenant {
	t := v.byID[id]
	if t == nil {
		return nil
	}
	contested := false
	for _, h := range t.Hostnames {
		contested = contested || len(v.claims[h]) > 1
	}
	if !contested {
		return t
	}
	s := *t
	s.Hostnames = nil
	for i, h := range t.Hostnames {
		if owner := v.claims[h][0]; owner != id {
			m.log.Error("hostname claimed by two tenants; keeping the first", "tenant", id, "field", fmt.Sprintf("hostnames[%d]", i),
				"problem", fmt.Sprintf("%q is already claimed by tenant %q", h, owner))
			continue
		}
		s.Hostnames = append(s.Hostnames, h)
	}
	if s.Hostnames == nil {
		s.Hostnames = []string{}
	}
	return &s
}

// next refreshes v and returns what changed for w since its last update;
// on w's first call, every tenant.
func (v *tenantView) next(ctx context.Context, m *Manager, w *tenantWatch) (TenantsUpdate, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.refresh(ctx, m); err != nil {
		return TenantsUpdate{}, err
	}
	if !w.started {
		w.started = true
		for id := range v.byID {
			w.pending[id] = struct{}{}
		}
	}
	var u TenantsUpdate
	for id := range w.pending {
		now, before := v.served(m, id), w.sent[id]
		switch {
		case now == nil && before != nil:
			u.Deleted = append(u.Deleted, id)
			delete(w.sent, id)
		case now != nil && (before == nil || !now.equal(before)):
			u.Changed = append(u.Changed, *now)
			w.sent[id] = now
		}
	}
	clear(w.pending)
	slices.SortFunc(u.Changed, func(a, b Tenant) int { return strings.Compare(string(a.ID), string(b.ID)) })
	slices.Sort(u.Deleted)
	return u, nil
}

func (v *tenantView) watch() *tenantWatch {
	w := &tenantWatch{pending: map[TenantID]struct{}{}, sent: map[TenantID]*Tenant{}}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.watches == nil {
		v.watches = map[*tenantWatch]struct{}{}
	}
	v.watches[w] = struct{}{}
	return w
}

func (v *tenantView) unwatch(w *tenantWatch) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.watches, w)
}

// equal reports whether t and o are the same configuration, every field
// compared, present and future. Both come from decodeTenant or served,
// which never leave a list nil.
func (t *Tenant) equal(o *Tenant) bool { return reflect.DeepEqual(t, o) }
