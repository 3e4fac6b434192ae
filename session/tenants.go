package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// PutTenant creates or replaces a tenant's configuration, after applying
// defaults and validating it, and reports whether it was created. A hostname
// that another tenant claims is ErrConflict; one of Config.PublicHosts is a
// *ValidationError. The claims are checked against the Manager's view of
// the tenants, brought up to date first (at the cost of what changed since
// it last was), and writes through one Manager are serialized, so that two
// of them never claim one hostname.
func (m *Manager) PutTenant(ctx context.Context, t Tenant) (Tenant, bool, error) {
	t = t.withDefaults()
	ps := &problems{tenant: string(t.ID)}
	t.validate(ps)
	checkPublicHosts(ps, t.Hostnames, m.publicHosts)
	m.checkMail(ps, &t)
	if err := ps.err(); err != nil {
		return Tenant{}, false, err
	}
	v := &m.tenants
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.refresh(ctx, m); err != nil {
		return Tenant{}, false, err
	}
	_, exists := v.byID[t.ID]
	for _, h := range t.Hostnames {
		if i := slices.IndexFunc(v.claims[h], func(o TenantID) bool { return o != t.ID }); i >= 0 {
			return Tenant{}, false, errorf(KindConflict, "hostname %q is claimed by tenant %q", h, v.claims[h][i])
		}
	}
	data, err := json.Marshal(t)
	if err != nil {
		return Tenant{}, false, fmt.Errorf("session: encode tenant: %w", err)
	}
	if err := m.st.PutTenant(ctx, string(t.ID), data); err != nil {
		return Tenant{}, false, err
	}
	return t, !exists, nil
}

// needsMailMessage is the problem of a tenant that sends mail on a
// Manager without a Mailer.
const needsMailMessage = "needs mail: set LATCHKEY_SMTP_URL and LATCHKEY_MAIL_FROM"

// checkMail adds the problem of a tenant that needs mail
// (Tenant.NeedsMail) when the Manager has no Mailer.
func (m *Manager) checkMail(ps *problems, t *Tenant) {
	if m.mailer == nil && t.NeedsMail() {
		ps.add("accounts", needsMailMessage)
	}
}

// GetTenant returns one tenant's configuration from the store, or
// ErrNotFound: one record read, decoded and validated. Requests use the
// in-memory view WatchTenants maintains; this is for administration.
func (m *Manager) GetTenant(ctx context.Context, id TenantID) (Tenant, error) {
	if !id.Valid() {
		return Tenant{}, fmt.Errorf("%w: tenant %q", ErrNotFound, id)
	}
	data, err := m.st.GetTenant(ctx, string(id))
	if errors.Is(err, store.ErrNotFound) {
		return Tenant{}, fmt.Errorf("%w: tenant %q", ErrNotFound, id)
	}
	if err != nil {
		return Tenant{}, err
	}
	t, err := decodeTenant(data)
	if err == nil && t.ID != id {
		err = fmt.Errorf("stored under %q but names %q", id, t.ID)
	}
	if err != nil {
		// As ListTenants leaves it out: an unreadable tenant is not served.
		m.log.ErrorContext(ctx, "ignoring unreadable tenant", "tenant", id, "err", err)
		return Tenant{}, errorf(KindNotFound, "tenant %q", id)
	}
	return t, nil
}

// ListTenants returns every readable tenant, sorted by ID, from the
// Manager's view brought up to date with the store. An unreadable one is
// logged (once per change) and left out rather than taking every other
// tenant down.
func (m *Manager) ListTenants(ctx context.Context) ([]Tenant, error) {
	v := &m.tenants
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.refresh(ctx, m); err != nil {
		return nil, err
	}
	out := make([]Tenant, 0, len(v.byID))
	for _, t := range v.byID {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b Tenant) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out, nil
}

func decodeTenant(data []byte) (Tenant, error) {
	var t Tenant
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Tenant{}, err
	}
	t = t.withDefaults()
	if err := t.Validate(); err != nil {
		return Tenant{}, err
	}
	return t, nil
}

// DeleteTenant removes a tenant with its users and their sessions.
func (m *Manager) DeleteTenant(ctx context.Context, id TenantID) error {
	defer m.forget(id, "")
	return m.st.DeleteTenant(ctx, string(id))
}

// WatchTenants keeps a caller's in-memory view of the tenants current: it
// calls apply with every tenant now, then again with what changed whenever
// the store reports a change (a publish from any replica) or every
// interval, whichever comes first, but only when something changed. Each
// look at the store costs in proportion to what changed since the last
// (store.TenantsSince), and only changed tenants are decoded and passed
// on. Store errors keep the last view and are retried. Hostnames claimed
// twice (two replicas racing) are given to the tenant first in ID order.
// It returns when ctx is done; the first error-free load is signalled by
// apply being called. apply may call the Manager (PutTenant included).
func (m *Manager) WatchTenants(ctx context.Context, interval time.Duration, apply func(TenantsUpdate)) {
	changes := m.st.Changes(ctx)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	w := m.tenants.watch()
	defer m.tenants.unwatch(w)
	first := true
	for {
		if u, err := m.tenants.next(ctx, m, w); err != nil {
			if ctx.Err() == nil {
				m.log.WarnContext(ctx, "could not reload tenants; keeping the current ones", "err", err)
			}
		} else if first || !u.empty() {
			first = false
			apply(u)
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				changes = nil // closed: fall back to polling alone
			}
		case <-tick.C:
		}
	}
}
