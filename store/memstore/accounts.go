package memstore

import (
	"bytes"
	"context"

	"github.com/latchkeyhq/latchkey/store"
)

// tokenSet is one tenant's tokens: by ID, and the ID of each user's token
// of each kind, so that PutToken finds the one it replaces without a scan.
type tokenSet struct {
	byID   map[string]store.Token       // Data owned by the store
	byUser map[string]map[string]string // user -> kind -> token ID
}

// GetUserByEmail returns the tenant's user holding the address, or
// store.ErrNotFound.
func (st *Store) GetUserByEmail(ctx context.Context, tenant, email string) (store.User, error) {
	return locked(ctx, st, "get user by email", func() (store.User, error) {
		name, ok := st.emails[tenant][email]
		if !ok || email == "" {
			return store.User{}, store.ErrNotFound
		}
		return st.account(tenant, name).user(tenant, name), nil
	})
}

// CreateUser stores u only if neither its name nor its address is taken;
// see store.Store. Tokens left under the name are dropped.
func (st *Store) CreateUser(ctx context.Context, u store.User) error {
	return st.do(ctx, "create user", func() error {
		if st.account(u.Tenant, u.Name) != nil || st.emailTaken(u) {
			return store.ErrConflict
		}
		st.deleteTokens(u.Tenant, u.Name)
		st.setUser(st.newAccount(u.Tenant, u.Name), u)
		return nil
	})
}

// PutToken stores t and drops the user's older token of its kind.
func (st *Store) PutToken(ctx context.Context, t store.Token) error {
	return st.do(ctx, "put token", func() error {
		ts := st.tokens[t.Tenant]
		if ts == nil {
			ts = &tokenSet{byID: map[string]store.Token{}, byUser: map[string]map[string]string{}}
			st.tokens[t.Tenant] = ts
		}
		kinds := ts.byUser[t.User]
		if kinds == nil {
			kinds = map[string]string{}
			ts.byUser[t.User] = kinds
		}
		if old, ok := kinds[t.Kind]; ok {
			delete(ts.byID, old)
		}
		// An ID reused for another user or kind leaves its old place.
		if old, ok := ts.byID[t.ID]; ok {
			ts.forget(old)
		}
		t.Data = bytes.Clone(t.Data)
		ts.byID[t.ID] = t
		kinds[t.Kind] = t.ID
		return nil
	})
}

// TakeToken returns and removes the token, or returns store.ErrNotFound
// if it is missing or expired (an expired one is dropped too).
func (st *Store) TakeToken(ctx context.Context, tenant, id string) (store.Token, error) {
	return locked(ctx, st, "take token", func() (store.Token, error) {
		ts := st.tokens[tenant]
		if ts == nil {
			return store.Token{}, store.ErrNotFound
		}
		t, ok := ts.byID[id]
		if !ok {
			return store.Token{}, store.ErrNotFound
		}
		ts.forget(t)
		if !t.Expires.After(st.now()) {
			return store.Token{}, store.ErrNotFound
		}
		return t, nil
	})
}

// DeleteTokens removes every token of the user.
func (st *Store) DeleteTokens(ctx context.Context, tenant, user string) error {
	return st.do(ctx, "delete tokens", func() error {
		st.deleteTokens(tenant, user)
		return nil
	})
}

// deleteTokens removes every token of the user. The caller holds st.mu.
func (st *Store) deleteTokens(tenant, user string) {
	ts := st.tokens[tenant]
	if ts == nil {
		return
	}
	for _, id := range ts.byUser[user] {
		delete(ts.byID, id)
	}
	delete(ts.byUser, user)
}

// forget removes t, which ts holds, from ts.
func (ts *tokenSet) forget(t store.Token) {
	delete(ts.byID, t.ID)
	if kinds := ts.byUser[t.User]; kinds[t.Kind] == t.ID {
		delete(kinds, t.Kind)
		if len(kinds) == 0 {
			delete(ts.byUser, t.User)
		}
	}
}

// emailTaken reports whether u.Email is set and held by another user of
// its tenant. The caller holds st.mu.
func (st *Store) emailTaken(u store.User) bool {
	if u.Email == "" {
		return false
	}
	holder, ok := st.emails[u.Tenant][u.Email]
	return ok && holder != u.Name
}

// newAccount adds an empty account for the user. The caller holds st.mu.
func (st *Store) newAccount(tenant, name string) *account {
	if st.users[tenant] == nil {
		st.users[tenant] = map[string]*account{}
	}
	a := &account{}
	st.users[tenant][name] = a
	return a
}

// setUser writes u's record and address into its account a, releasing the
// address a held before. The caller holds st.mu and has checked that the
// address is free.
func (st *Store) setUser(a *account, u store.User) {
	st.setEmail(u.Tenant, u.Name, a.email, u.Email)
	a.email = u.Email
	a.data = bytes.Clone(u.Data)
}

// setEmail moves the user's claim from address old to address new (either
// may be ""). The caller holds st.mu.
func (st *Store) setEmail(tenant, name, old, new string) {
	if old == new {
		return
	}
	emails := st.emails[tenant]
	if old != "" && emails[old] == name {
		delete(emails, old)
		if len(emails) == 0 {
			delete(st.emails, tenant)
		}
	}
	if new != "" {
		if st.emails[tenant] == nil {
			st.emails[tenant] = map[string]string{}
		}
		st.emails[tenant][new] = name
	}
}

// user returns the account as a store.User with its own copy of Data.
func (a *account) user(tenant, name string) store.User {
	return store.User{Tenant: tenant, Name: name, Email: a.email, Data: bytes.Clone(a.data)}
}
