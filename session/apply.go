package session

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// The tenants file and the admin API change the same tenants, so one rule
// says which wins: a value of the file is applied only when it changed in
// the file since the file was last applied. The store keeps, per tenant, a
// record of what the file said then (store.GetApplied): a digest of each
// setting and of each user's password hash and disabled flag. Starting,
// restarting or scaling replicas with the same file therefore changes
// nothing, and an admin's change stands until the operator edits that very
// value in the file. In detail:
//
//   - A tenant the store has never had applied (no record) gets all of the
//     file: it is created, or its settings and users set to the file's.
//     That covers the first start and a store that lost everything.
//   - A tenant whose record exists but which is gone was deleted on
//     purpose: it stays deleted until its section of the file changes,
//     and is then created again from the file entirely.
//   - Otherwise each setting (name, origins, cookie, …) whose value in the
//     file changed is set to the file's, the others stay as they are in the
//     store; each user whose password hash or disabled flag changed in the
//     file gets that value (a new hash ends the user's sessions), and a user
//     whose entry changed but who is gone is created again. Users and
//     tenants not in the file are left alone.
//
// The record is claimed by compare-and-swap before the changes are made, so
// of replicas starting together with the same file one applies it and the
// others find it applied; a failed application gives the claim back. Every
// change is written to the tenant's audit log with the actor
// "tenants-file".

// fileActor is the tenants file's name in audit logs.
const fileActor = "tenants-file"

// maxApplyAttempts bounds how often applying one tenant re-reads a record
// that another replica swapped meanwhile.
const maxApplyAttempts = 3

// appliedRecord is what the tenants file last said about one tenant.
// Digests stand for values, so that the record holds no password hash.
type appliedRecord struct {
	Tenant map[string]string            `json:"tenant"`          // setting -> digest of its JSON value
	Users  map[string]map[string]string `json:"users,omitempty"` // username -> field -> digest
}

// User fields in an appliedRecord.
const (
	fieldHash          = "password_hash"
	fieldDisabled      = "disabled"
	fieldEmail         = "email"
	fieldEmailVerified = "email_verified"
)

// userFields are the user fields the file sets, in the order applied.
var userFields = []string{fieldHash, fieldDisabled, fieldEmail, fieldEmailVerified}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// settingsOf returns t's settings, its JSON members but the ID, by name.
// Working on the JSON form keeps every setting, present and future, under
// the same rule.
func settingsOf(t Tenant) map[string]json.RawMessage {
	data, _ := json.Marshal(t) // cannot fail: plain fields only
	var kv map[string]json.RawMessage
	_ = json.Unmarshal(data, &kv)
	delete(kv, "id")
	return kv
}

// recordOf is the record of spec as the file states it.
func recordOf(spec TenantSpec) appliedRecord {
	r := appliedRecord{Tenant: map[string]string{}, Users: map[string]map[string]string{}}
	for k, v := range settingsOf(spec.Tenant) {
		r.Tenant[k] = digest(v)
	}
	for _, u := range spec.Users {
		fields := map[string]string{
			fieldHash:     digest([]byte(u.PasswordHash)),
			fieldDisabled: strconv.FormatBool(u.Disabled),
		}
		// The address fields only when set: a record of a file without
		// them stays byte for byte what it was before they existed, so
		// that such a file still reads as unchanged. A missing one reads
		// as its zero value (see planTenant).
		if u.Email != "" {
			fields[fieldEmail] = digest([]byte(emailKey(u.Email)))
		}
		if u.EmailVerified {
			fields[fieldEmailVerified] = "true"
		}
		r.Users[u.Username] = fields
	}
	return r
}

// tenantPlan is what applying one tenant of the file changes.
type tenantPlan struct {
	create   bool                // (re)create the tenant and every user from the file
	settings []string            // settings to take from the file
	users    map[string][]string // username -> fields to take from the file
}

func (p *tenantPlan) empty() bool { return !p.create && len(p.settings) == 0 && len(p.users) == 0 }

// planTenant compares the file's record with the one last applied (nil:
// none) and the tenant's existence.
func planTenant(spec TenantSpec, want appliedRecord, last *appliedRecord, exists bool) tenantPlan {
	switch {
	case !exists && last == nil:
		return tenantPlan{create: true}
	case !exists:
		if recordsEqual(want, *last) {
			return tenantPlan{} // deleted on purpose, and the file has not changed since
		}
		return tenantPlan{create: true}
	case last == nil:
		last = &appliedRecord{}
	}
	var p tenantPlan
	for _, k := range slices.Sorted(maps.Keys(unionKeys(want.Tenant, last.Tenant))) {
		if want.Tenant[k] != last.Tenant[k] {
			p.settings = append(p.settings, k)
		}
	}
	for _, u := range spec.Users {
		var fields []string
		old, ok := last.Users[u.Username]
		for _, f := range userFields {
			// A user new to the record takes every field; otherwise a
			// field missing on either side is its zero value.
			if !ok || old[f] != want.Users[u.Username][f] {
				fields = append(fields, f)
			}
		}
		if len(fields) > 0 {
			if p.users == nil {
				p.users = map[string][]string{}
			}
			p.users[u.Username] = fields
		}
	}
	return p
}

func unionKeys[V any](a, b map[string]V) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func recordsEqual(a, b appliedRecord) bool {
	if !maps.Equal(a.Tenant, b.Tenant) || len(a.Users) != len(b.Users) {
		return false
	}
	for name, fa := range a.Users {
		fb, ok := b.Users[name]
		if !ok || !maps.Equal(fa, fb) {
			return false
		}
	}
	return true
}

// Apply applies the tenants file f at start-up under the precedence
// described above: only what changed in the file since it was last applied
// to a tenant is changed in the store, and every change is audited. It
// applies every tenant it can and reports the others' errors together.
func (m *Manager) Apply(ctx context.Context, f *TenantsFile) error {
	// A hash this replica's budget cannot hold is refused before anything
	// changes (see CheckTenantsFile).
	if err := m.CheckTenantsFile(f); err != nil {
		return err
	}
	// So is a tenant that sends mail on a Manager without a Mailer.
	var ps problems
	for i := range f.Tenants {
		ps.tenant = string(f.Tenants[i].ID)
		m.checkMail(&ps, &f.Tenants[i].Tenant)
	}
	if err := ps.err(); err != nil {
		return err
	}
	stored, err := m.tenantsByID(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, spec := range f.Tenants {
		if _, err := m.applyTenant(ctx, spec, stored, false); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", spec.ID, err))
		}
	}
	return errors.Join(errs...)
}

// RestoreLostTenants applies the file's tenants that the store has lost:
// those it has neither as a tenant nor as a record of an application,
// which is how a store that lost its data (a Redis restarted without
// persistence) comes back. A tenant deleted through the admin API is not
// lost, nor is anything the running file may since have been superseded
// by, so that a replica running an older file never re-applies it. It
// reports how many tenants it created.
func (m *Manager) RestoreLostTenants(ctx context.Context, f *TenantsFile) (int, error) {
	stored, err := m.tenantsByID(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, spec := range f.Tenants {
		done, err := m.applyTenant(ctx, spec, stored, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", spec.ID, err))
		}
		if done {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// tenantsByID lists the stored tenants once for a whole application, which
// keeps a start with an unchanged file linear in the number of tenants.
func (m *Manager) tenantsByID(ctx context.Context) (map[TenantID]Tenant, error) {
	ts, err := m.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[TenantID]Tenant, len(ts))
	for _, t := range ts {
		out[t.ID] = t
	}
	return out, nil
}

// applyTenant applies one tenant of the file, or in restoreOnly mode only
// a lost one, and reports whether it claimed the application. stored is
// the tenants as listed before; a retry reads the tenant again.
func (m *Manager) applyTenant(ctx context.Context, spec TenantSpec, stored map[TenantID]Tenant, restoreOnly bool) (bool, error) {
	spec.Tenant = spec.Tenant.withDefaults()
	id := spec.ID
	want := recordOf(spec)
	wantData, _ := json.Marshal(want) // cannot fail: maps of strings
	cur, exists := stored[id]
	for attempt := range maxApplyAttempts {
		lastData, err := m.st.GetApplied(ctx, string(id))
		if errors.Is(err, store.ErrNotFound) {
			lastData, err = nil, nil
		}
		if err != nil {
			return false, err
		}
		var last *appliedRecord
		if lastData != nil {
			var r appliedRecord
			if err := json.Unmarshal(lastData, &r); err != nil {
				m.log.ErrorContext(ctx, "unreadable record of the tenants file's last application; applying the whole file to the tenant", "tenant", id, "err", err)
			} else {
				last = &r
			}
		}
		if attempt > 0 {
			// Another replica swapped the record: it may have changed
			// the tenant too.
			cur, err = m.GetTenant(ctx, id)
			exists = err == nil
			if err != nil && !errors.Is(err, ErrNotFound) {
				return false, err
			}
		}
		if restoreOnly && (exists || last != nil) {
			return false, nil
		}
		plan := planTenant(spec, want, last, exists)
		if plan.empty() && bytes.Equal(lastData, wantData) {
			if !exists {
				m.log.InfoContext(ctx, "a tenant of the tenants file was deleted through the admin API and stays deleted; change its section of the file to create it again", "tenant", id)
			}
			return false, nil
		}
		// Claim the application first: of replicas racing with the same
		// file, the losers re-read and find it applied.
		if err := m.st.SwapApplied(ctx, string(id), lastData, wantData); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return false, err
		}
		if err := m.execute(ctx, spec, cur, exists, plan); err != nil {
			// Give the claim back, so that the next start tries again.
			if rerr := m.st.SwapApplied(context.WithoutCancel(ctx), string(id), wantData, lastData); rerr != nil {
				m.log.ErrorContext(ctx, "could not undo the record of a failed application of the tenants file; edit the tenant's section to apply it again", "tenant", id, "err", rerr)
			}
			return false, err
		}
		return true, nil
	}
	return false, fmt.Errorf("session: the record of the tenants file's application kept changing under %d attempts", maxApplyAttempts)
}

// execute makes the changes of plan, auditing each.
func (m *Manager) execute(ctx context.Context, spec TenantSpec, cur Tenant, exists bool, plan tenantPlan) error {
	id := spec.ID
	if exists && !plan.create {
		// Merge into the tenant as it is now, after the claim, not as it
		// was listed: an admin may have changed it meanwhile.
		fresh, err := m.GetTenant(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil // deleted meanwhile, on purpose: it stays so
		}
		if err != nil {
			return err
		}
		cur = fresh
	}
	tenantChanged := false
	if plan.create || len(plan.settings) > 0 {
		next := spec.Tenant
		if !plan.create {
			next = mergeSettings(cur, spec.Tenant, plan.settings)
		}
		curJSON, _ := json.Marshal(cur)
		nextJSON, _ := json.Marshal(next)
		if !exists || !bytes.Equal(curJSON, nextJSON) {
			saved, created, err := m.PutTenant(ctx, next)
			if err != nil {
				return err
			}
			if created {
				m.fileAudit(ctx, id, "tenant.create", string(id), nil, saved)
			} else {
				m.fileAudit(ctx, id, "tenant.update", string(id), cur, saved)
			}
			tenantChanged = true
		}
	}
	usersChanged := 0
	for j, us := range spec.Users {
		fields, ok := plan.users[us.Username]
		if !plan.create && !ok {
			continue
		}
		if plan.create {
			fields = nil // the whole entry
		}
		changed, err := m.applyUser(ctx, id, us, fields)
		if err != nil {
			// By position in the file: the error may be logged, and
			// usernames never are.
			return fmt.Errorf("users[%d]: %w", j, err)
		}
		if changed {
			usersChanged++
		}
	}
	if tenantChanged || usersChanged > 0 {
		m.log.InfoContext(ctx, "tenants file applied to a tenant", "tenant", id, "created", plan.create, "settings_changed", tenantChanged, "users_changed", usersChanged)
	}
	return nil
}

// mergeSettings returns cur with the named settings taken from file. If the
// result is not a valid tenant (an admin's change contradicts the file's
// new value, like a localhost origin on a tenant the file makes non-dev),
// the file's whole configuration wins: it is valid, and the audit log shows
// what it replaced.
func mergeSettings(cur, file Tenant, names []string) Tenant {
	kv, fv := settingsOf(cur), settingsOf(file)
	for _, k := range names {
		if v, ok := fv[k]; ok {
			kv[k] = v
		} else {
			delete(kv, k)
		}
	}
	kv["id"], _ = json.Marshal(cur.ID)
	data, _ := json.Marshal(kv)
	var next Tenant
	if err := json.Unmarshal(data, &next); err != nil {
		return file
	}
	next = next.withDefaults()
	if next.Validate() != nil {
		return file
	}
	return next
}

// applyUser sets the named fields (nil: the whole entry) of a user from
// the file, creating the user if it is gone, and reports whether it
// changed anything. Its errors never name the user: the session errors
// that do (not found, conflict) are retried instead.
func (m *Manager) applyUser(ctx context.Context, t TenantID, us UserSpec, fields []string) (bool, error) {
	take := func(f string) bool { return fields == nil || slices.Contains(fields, f) }
	for range maxApplyAttempts {
		u, err := m.GetUser(ctx, t, us.Username)
		if errors.Is(err, ErrNotFound) {
			hash, disabled := us.PasswordHash, us.Disabled
			in := UserInput{Username: us.Username, PasswordHash: &hash, Disabled: &disabled}
			if us.Email != "" {
				email, verified := us.Email, us.EmailVerified
				in.Email, in.EmailVerified = &email, &verified
			}
			nu, err := m.CreateUser(ctx, t, in)
			if errors.Is(err, errEmailTaken) {
				return false, errFileEmailTaken
			}
			if errors.Is(err, ErrConflict) {
				continue // created meanwhile: update it instead
			}
			if err != nil {
				return false, err
			}
			m.fileAudit(ctx, t, "user.create", nu.Username, nil, userAuditOf(nu))
			return true, nil
		}
		if err != nil {
			return false, err
		}
		var in UserInput
		if take(fieldHash) && u.PasswordHash != us.PasswordHash {
			hash := us.PasswordHash
			in.PasswordHash = &hash
		}
		if take(fieldDisabled) && u.Disabled != us.Disabled {
			disabled := us.Disabled
			in.Disabled = &disabled
		}
		// A new address comes with the file's verified flag, whether or
		// not the flag changed in the file: the address it is about did.
		emailChanged := take(fieldEmail) && u.Email != displayEmail(us.Email)
		if emailChanged {
			email := us.Email
			in.Email = &email
		}
		switch {
		case emailChanged && emailKey(u.Email) != emailKey(us.Email):
			verified := us.EmailVerified && us.Email != ""
			in.EmailVerified = &verified
		case take(fieldEmailVerified) && u.EmailVerified != us.EmailVerified && (u.Email != "" || !us.EmailVerified):
			verified := us.EmailVerified
			in.EmailVerified = &verified
		}
		if in.PasswordHash == nil && in.Disabled == nil && in.Email == nil && in.EmailVerified == nil {
			return false, nil
		}
		nu, err := m.UpdateUser(ctx, t, us.Username, in)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile: create it instead
		}
		if errors.Is(err, errEmailTaken) {
			return false, errFileEmailTaken
		}
		if err != nil {
			return false, err
		}
		// The fact of a password change, never the hash.
		after := struct {
			userAudit
			PasswordChanged bool `json:"password_changed"`
		}{userAuditOf(nu), in.PasswordHash != nil}
		m.fileAudit(ctx, t, "user.update", nu.Username, userAuditOf(u), after)
		return true, nil
	}
	return false, fmt.Errorf("session: the user kept changing under %d attempts", maxApplyAttempts)
}

// errFileEmailTaken is applyUser's failure for a file's address that
// another user of the tenant holds, on create and on update alike.
var errFileEmailTaken = errors.New("email: the address is another user's")

// userAudit is a user as the audit log shows it, as the admin API records
// it: without its hash.
type userAudit struct {
	Username      string    `json:"username"`
	Disabled      bool      `json:"disabled"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"email_verified,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func userAuditOf(u User) userAudit {
	return userAudit{Username: u.Username, Disabled: u.Disabled, Email: u.Email, EmailVerified: u.EmailVerified, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC()}
}

// fileAudit records a change the tenants file made. A failure to record is
// logged, not returned: the change itself has happened.
func (m *Manager) fileAudit(ctx context.Context, t TenantID, action, target string, before, after any) {
	e := AuditEntry{Actor: fileActor, Action: action, Target: target}
	if before != nil {
		e.Before, _ = json.Marshal(before)
	}
	if after != nil {
		e.After, _ = json.Marshal(after)
	}
	if err := m.Audit(context.WithoutCancel(ctx), t, e); err != nil {
		m.log.ErrorContext(ctx, "could not write the audit log", "tenant", t, "action", action, "err", err)
	}
}
