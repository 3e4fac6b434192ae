package session

import (
	"context"
	"errors"
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
	// Email sets the user's address (NormalizeEmail's rules; kept as
	// typed, in NFC); "" removes it. A new address is unverified unless
	// EmailVerified says otherwise.
	Email *string
	// EmailVerified sets whether the address is verified; true needs one.
	EmailVerified *bool
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
	case !create && in.Password == nil && in.PasswordHash == nil && in.Disabled == nil && in.Email == nil && in.EmailVerified == nil:
		ps.add("", "nothing to change: give password, password_hash, disabled, email or email_verified")
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
	if in.Email != nil && *in.Email != "" {
		if _, msg := NormalizeEmail(*in.Email); msg != "" {
			ps.add("email", "%s", msg)
		}
	}
	if create && in.EmailVerified != nil && *in.EmailVerified && (in.Email == nil || *in.Email == "") {
		ps.add("email_verified", "a user without an email address cannot have it verified")
	}
	return ps.err()
}

// apply sets the fields in changes on u and reports whether the change must
// end the user's sessions (a new password or disabling does).
func (m *Manager) apply(ctx context.Context, u *User, in UserInput) (endSessions bool, err error) {
	if in.Email != nil {
		next := displayEmail(*in.Email)
		if emailKey(next) != emailKey(u.Email) {
			u.EmailVerified = false // another address: not proved yet
		}
		u.Email = next
	}
	if in.EmailVerified != nil {
		if *in.EmailVerified && u.Email == "" {
			return false, &ValidationError{Problems: []Problem{{Field: "email_verified", Message: "a user without an email address cannot have it verified"}}}
		}
		u.EmailVerified = *in.EmailVerified
	}
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

// errEmailTaken is the conflict of an address that another user of the
// tenant holds. It is one value, so that callers can tell it from a
// username's conflict with errors.Is.
var errEmailTaken error = &Error{Kind: KindConflict, Detail: "email address is already another user's"}

// CreateUser adds a user to tenant t under the normalized form of
// in.Username (see newUsername), which the returned User carries. It
// returns ErrConflict if a user of that name exists, in any form that
// normalizes to it, or if another user holds the address (a KindConflict
// *Error saying which), and a *ValidationError for bad input. Of two
// creations racing for one name or address, one succeeds.
func (m *Manager) CreateUser(ctx context.Context, t TenantID, in UserInput) (User, error) {
	if err := in.validate(m, true); err != nil {
		return User{}, err
	}
	now := m.now().UTC().Truncate(time.Second)
	u := User{Username: in.Username, CreatedAt: now, UpdatedAt: now}
	if _, err := m.apply(ctx, &u, in); err != nil {
		return User{}, err
	}
	if err := m.createUser(ctx, t, u); err != nil {
		return User{}, err
	}
	return u, nil
}

// createUser stores a new user atomically (store.CreateUser), telling a
// taken name from a taken address.
func (m *Manager) createUser(ctx context.Context, t TenantID, u User) error {
	err := m.st.CreateUser(ctx, encodeUser(t, u))
	if !errors.Is(err, store.ErrConflict) {
		return err
	}
	if _, gerr := m.st.GetUser(ctx, string(t), u.Username); gerr == nil || u.Email == "" {
		return errorf(KindConflict, "user %q already exists", u.Username)
	}
	return errEmailTaken
}

// UpdateUser changes the user username names (as GetUser finds it). A new
// password or disabling ends the user's sessions in the same atomic step as
// the change. An address another user holds is errEmailTaken (KindConflict).
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
	if err := m.st.PutUser(ctx, encodeUser(t, u), end); errors.Is(err, store.ErrConflict) {
		return User{}, errEmailTaken
	} else if err != nil {
		return User{}, err
	}
	return u, nil
}

// GetUser returns the user username names, or ErrNotFound: the one stored
// under its normalized form, so that "ａｌｉｃｅ" and a decomposed "zoë"
// find "alice" and "zoë". The returned User.Username is the stored name:
// pass that, not the typed one, to DeleteUser, Sessions, Revoke and
// RevokeAll.
func (m *Manager) GetUser(ctx context.Context, t TenantID, username string) (User, error) {
	su, err := m.st.GetUser(ctx, string(t), normalUsername(username))
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
