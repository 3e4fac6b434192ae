package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// UserInput creates or changes a user. Nil fields are left as they are (or
// get their zero value on create). At most one of Password and PasswordHash.
type UserInput struct {
	Username     string
	Password     *string // plaintext, hashed here with the Manager's parameters
	PasswordHash *string // an argon2id PHC string made elsewhere
	Disabled     *bool
}

// validate checks in, and on create replaces Username with its normalized
// form, the one the user is stored under (see newUsername).
func (in *UserInput) validate(m *Manager, create bool) error {
	ps := &problems{}
	if create {
		n, msg := newUsername(in.Username)
		if msg != "" {
			ps.add("username", "%s", msg)
		}
		in.Username = n
	}
	switch {
	case in.Password != nil && in.PasswordHash != nil:
		ps.add("password", "give either password or password_hash, not both")
	case create && in.Password == nil && in.PasswordHash == nil:
		ps.add("password", "a password or password_hash is required")
	case !create && in.Password == nil && in.PasswordHash == nil && in.Disabled == nil:
		ps.add("", "nothing to change: give password, password_hash or disabled")
	}
	if in.Password != nil {
		if n := len(*in.Password); n < MinPasswordLen || n > MaxPasswordLen {
			ps.add("password", "must be %d to %d bytes long, got %d", MinPasswordLen, MaxPasswordLen, n)
		}
	}
	if in.PasswordHash != nil {
		if err := m.CheckPasswordHash(*in.PasswordHash); err != nil {
			ps.add("password_hash", "%v", err)
		}
	}
	return ps.err()
}

// apply sets the fields in changes on u and reports whether the change must
// end the user's sessions (a new password or disabling does).
func (m *Manager) apply(ctx context.Context, u *User, in UserInput) (endSessions bool, err error) {
	if in.Password != nil {
		if u.PasswordHash, err = m.hash(ctx, *in.Password); err != nil {
			return false, err
		}
		endSessions = true
	}
	if in.PasswordHash != nil && *in.PasswordHash != u.PasswordHash {
		u.PasswordHash = *in.PasswordHash
		endSessions = true
	}
	if in.Disabled != nil && *in.Disabled != u.Disabled {
		u.Disabled = *in.Disabled
		endSessions = endSessions || u.Disabled
	}
	return endSessions, nil
}

// CreateUser adds a user to tenant t under the normalized form of
// in.Username (see newUsername), which the returned User carries. It
// returns ErrConflict if a user of that name exists, in any form that
// normalizes to it or, for a user created before normalization, exactly as
// typed, and a *ValidationError for bad input.
func (m *Manager) CreateUser(ctx context.Context, t TenantID, in UserInput) (User, error) {
	typed := in.Username
	if err := in.validate(m, true); err != nil {
		return User{}, err
	}
	if su, err := m.findUser(ctx, t, typed); err == nil {
		return User{}, errorf(KindConflict, "user %q already exists", su.Name)
	} else if !errors.Is(err, store.ErrNotFound) {
		return User{}, err
	}
	now := m.now().UTC().Truncate(time.Second)
	u := User{Username: in.Username, CreatedAt: now, UpdatedAt: now}
	if _, err := m.apply(ctx, &u, in); err != nil {
		return User{}, err
	}
	// A user of this name may have existed before; nothing of it survives.
	if err := m.st.PutUser(ctx, encodeUser(t, u), true); err != nil {
		return User{}, err
	}
	return u, nil
}

// UpdateUser changes the user username names (as GetUser finds it). A new
// password or disabling ends the user's sessions in the same atomic step as
// the change.
func (m *Manager) UpdateUser(ctx context.Context, t TenantID, username string, in UserInput) (User, error) {
	if err := in.validate(m, false); err != nil {
		return User{}, err
	}
	u, err := m.GetUser(ctx, t, username)
	if err != nil {
		return User{}, err
	}
	end, err := m.apply(ctx, &u, in)
	if err != nil {
		return User{}, err
	}
	u.UpdatedAt = m.now().UTC().Truncate(time.Second)
	if end {
		defer m.forget(t, u.Username)
	}
	if err := m.st.PutUser(ctx, encodeUser(t, u), end); err != nil {
		return User{}, err
	}
	return u, nil
}

// GetUser returns the user username names, or ErrNotFound: the user stored
// under exactly that name (users created before usernames were normalized
// keep the name they were typed with), else the one stored under its
// normalized form, so that "ａｌｉｃｅ" and a decomposed "zoë" find
// "alice" and "zoë". The returned User.Username is the stored name: pass
// that, not the typed one, to DeleteUser, Sessions, Revoke and RevokeAll.
func (m *Manager) GetUser(ctx context.Context, t TenantID, username string) (User, error) {
	su, err := m.findUser(ctx, t, username)
	if errors.Is(err, store.ErrNotFound) {
		return User{}, errorf(KindNotFound, "user %q", username)
	}
	if err != nil {
		return User{}, err
	}
	return decodeUser(su)
}

// ListUsers returns the tenant's users sorted by username.
func (m *Manager) ListUsers(ctx context.Context, t TenantID) ([]User, error) {
	sus, err := m.st.ListUsers(ctx, string(t))
	if err != nil {
		return nil, err
	}
	out := decodeEach(ctx, m.log, "unreadable user record", t, sus, decodeUser)
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Username, b.Username) })
	return out, nil
}

// DeleteUser removes the user stored under exactly username (a
// User.Username) and ends its sessions. Deleting a missing user is not an
// error: callers that must tell look the user up first (GetUser).
func (m *Manager) DeleteUser(ctx context.Context, t TenantID, username string) error {
	defer m.forget(t, username)
	return m.st.DeleteUser(ctx, string(t), username)
}

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

// decodeEach decodes stored records, logging and leaving out any that
// cannot be read, so that one corrupt record does not hide the others.
func decodeEach[S, T any](ctx context.Context, log *slog.Logger, msg string, t TenantID, in []S, decode func(S) (T, error)) []T {
	out := make([]T, 0, len(in))
	for _, rec := range in {
		v, err := decode(rec)
		if err != nil {
			log.ErrorContext(ctx, msg, "tenant", t, "err", err)
			continue
		}
		out = append(out, v)
	}
	return out
}
