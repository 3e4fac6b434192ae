package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// The cases of self-service accounts: addresses unique per tenant,
// create-only users, and single-use tokens.

// testEmailUnique checks that an address belongs to at most one user of a
// tenant: every write that would give it to a second user fails with
// store.ErrConflict and changes nothing, while another tenant may use it.
func testEmailUnique(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	alice := putAccount(t, h.Store, tenantA, "alice", "a@example.com", []byte("alice v1"))
	bob := putAccount(t, h.Store, tenantA, "bob", "b@example.com", []byte("bob v1"))

	// Putting alice again with her own address is no conflict.
	mustOK(t, "PutUser(same address)", h.Store.PutUser(ctx, alice, false))

	tests := []struct {
		name string
		call func() error
	}{
		{"PutUser of a new user", func() error {
			return h.Store.PutUser(ctx, store.User{Tenant: tenantA, Name: "carol", Email: "a@example.com", Data: []byte("c")}, false)
		}},
		{"PutUser of another user", func() error {
			return h.Store.PutUser(ctx, store.User{Tenant: tenantA, Name: "bob", Email: "a@example.com", Data: []byte("bob v2")}, true)
		}},
		{"CreateUser", func() error {
			return h.Store.CreateUser(ctx, store.User{Tenant: tenantA, Name: "carol", Email: "a@example.com", Data: []byte("c")})
		}},
		{"CreateUser on the peer", func() error {
			return h.Peer.CreateUser(ctx, store.User{Tenant: tenantA, Name: "carol", Email: "a@example.com", Data: []byte("c")})
		}},
		{"SwapUser", func() error {
			return h.Store.SwapUser(ctx, bob, store.User{Tenant: tenantA, Name: "bob", Email: "a@example.com", Data: []byte("bob v2")})
		}},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, tt.call(), store.ErrConflict)
	}
	wantAccount(t, h.Store, alice)
	wantAccount(t, h.Store, bob)
	wantByEmail(t, h.Store, tenantA, "a@example.com", alice)
	wantByEmail(t, h.Store, tenantA, "b@example.com", bob)
	wantErr(t, "GetUser(carol)", errOf(h.Store.GetUser(ctx, tenantA, "carol")), store.ErrNotFound)
	wantUsers(t, h.Store, tenantA, alice, bob)

	// The same address in another tenant is another address.
	other := putAccount(t, h.Store, tenantB, "zed", "a@example.com", []byte("zed"))
	wantByEmail(t, h.Store, tenantB, "a@example.com", other)
	wantByEmail(t, h.Store, tenantA, "a@example.com", alice)
	created := store.User{Tenant: tenantB, Name: "bob", Email: "b@example.com", Data: []byte("b in B")}
	mustOK(t, "CreateUser in tenant B", h.Store.CreateUser(ctx, created))
	wantByEmail(t, h.Store, tenantB, "b@example.com", created)
	wantByEmail(t, h.Store, tenantA, "b@example.com", bob)

	// A user without an address never conflicts with another one.
	putAccount(t, h.Store, tenantA, "dave", "", []byte("d"))
	putAccount(t, h.Store, tenantA, "erin", "", []byte("e"))
}

// testEmailReleased checks that an address a user no longer holds, by a
// change or a deletion, is free at once for another user.
func testEmailReleased(t *testing.T, mk func(*testing.T) Harness) {
	tests := []struct {
		name string
		// release makes alice (holding a@example.com) let go of it.
		release func(t *testing.T, h Harness, alice store.User)
	}{
		{"PutUser with another address", func(t *testing.T, h Harness, alice store.User) {
			alice.Email, alice.Data = "a2@example.com", []byte("alice v2")
			mustOK(t, "PutUser", h.Store.PutUser(t.Context(), alice, false))
			wantByEmail(t, h.Store, tenantA, "a2@example.com", alice)
		}},
		{"PutUser without address", func(t *testing.T, h Harness, alice store.User) {
			alice.Email, alice.Data = "", []byte("alice v2")
			mustOK(t, "PutUser", h.Store.PutUser(t.Context(), alice, true))
			wantAccount(t, h.Store, alice)
		}},
		{"SwapUser with another address", func(t *testing.T, h Harness, alice store.User) {
			u := alice
			u.Email, u.Data = "a2@example.com", []byte("alice v2")
			mustOK(t, "SwapUser", h.Store.SwapUser(t.Context(), alice, u))
			wantByEmail(t, h.Store, tenantA, "a2@example.com", u)
		}},
		{"DeleteUser", func(t *testing.T, h Harness, alice store.User) {
			mustOK(t, "DeleteUser", h.Store.DeleteUser(t.Context(), tenantA, "alice"))
		}},
		{"DeleteUser on the peer", func(t *testing.T, h Harness, alice store.User) {
			mustOK(t, "DeleteUser", h.Peer.DeleteUser(t.Context(), tenantA, "alice"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mk(t)
			ctx := t.Context()
			alice := putAccount(t, h.Store, tenantA, "alice", "a@example.com", []byte("alice v1"))
			tt.release(t, h, alice)
			wantNoEmail(t, h.Store, tenantA, "a@example.com")

			bob := store.User{Tenant: tenantA, Name: "bob", Email: "a@example.com", Data: []byte("bob")}
			mustOK(t, "CreateUser(bob) with the released address", h.Peer.CreateUser(ctx, bob))
			wantByEmail(t, h.Store, tenantA, "a@example.com", bob)
			// And back again, once bob lets go too.
			bob.Email = ""
			mustOK(t, "PutUser(bob)", h.Store.PutUser(ctx, bob, false))
			carol := putAccount(t, h.Store, tenantA, "carol", "a@example.com", []byte("carol"))
			wantByEmail(t, h.Store, tenantA, "a@example.com", carol)
		})
	}
}

// testGetUserByEmail checks lookups by address, and that the address
// comes back with the user from every read.
func testGetUserByEmail(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	wantNoEmail(t, h.Store, tenantA, "a@example.com")
	alice := putAccount(t, h.Store, tenantA, "alice", "a@example.com", []byte{0, 1, 0xff})
	odd := putAccount(t, h.Store, tenantA, "Čarol {ops}: x", "c{x}+tag@bücher.example", []byte("c"))
	plain := putAccount(t, h.Store, tenantA, "dave", "", []byte("d"))

	wantByEmail(t, h.Store, tenantA, "a@example.com", alice)
	wantByEmail(t, h.Peer, tenantA, "a@example.com", alice)
	wantByEmail(t, h.Store, tenantA, "c{x}+tag@bücher.example", odd)
	wantAccount(t, h.Store, plain)
	wantNoEmail(t, h.Store, tenantA, "")
	wantNoEmail(t, h.Store, tenantA, "A@example.com") // the store compares bytes; session normalizes
	wantNoEmail(t, h.Store, tenantB, "a@example.com")
	wantUsers(t, h.Store, tenantA, alice, odd, plain)
	list, err := h.Store.ListUsers(ctx, tenantA)
	if err != nil {
		t.Fatalf("ListUsers err=%v, want nil", err)
	}
	for _, u := range list {
		for _, w := range []store.User{alice, odd, plain} {
			if u.Name == w.Name {
				checkUser(t, "ListUsers", u, w)
			}
		}
	}

	// Data changes without an address change keep the address.
	alice.Data = []byte("v2")
	mustOK(t, "PutUser", h.Store.PutUser(ctx, alice, false))
	wantByEmail(t, h.Store, tenantA, "a@example.com", alice)
}

// testCreateUser checks that CreateUser only ever creates, and that a
// user created under an old name inherits nothing of it.
func testCreateUser(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	alice := store.User{Tenant: tenantA, Name: "alice", Email: "a@example.com", Data: []byte("v1")}
	mustOK(t, "CreateUser", h.Store.CreateUser(ctx, alice))
	wantAccount(t, h.Store, alice)
	wantByEmail(t, h.Store, tenantA, "a@example.com", alice)

	// The name is taken, with the same address, another or none.
	for _, email := range []string{"a@example.com", "other@example.com", ""} {
		u := store.User{Tenant: tenantA, Name: "alice", Email: email, Data: []byte("v2")}
		wantErr(t, fmt.Sprintf("CreateUser(alice, %q)", email), h.Store.CreateUser(ctx, u), store.ErrConflict)
	}
	wantAccount(t, h.Store, alice)
	wantByEmail(t, h.Store, tenantA, "a@example.com", alice)
	// A failed create keeps no claim on its address.
	wantNoEmail(t, h.Store, tenantA, "other@example.com")
	putAccount(t, h.Store, tenantA, "bob", "other@example.com", []byte("b"))

	// Without an address, a free name is enough.
	mustOK(t, "CreateUser(no address)", h.Store.CreateUser(ctx, store.User{Tenant: tenantA, Name: "carol", Data: []byte("c")}))

	// An earlier user of the name leaves nothing behind.
	old := putAccount(t, h.Store, tenantA, "dave", "d@example.com", []byte("old"))
	createSession(t, h.Store, old, "sid-1", []byte("d"), expiresIn(h, time.Hour))
	putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "tok-old", User: "dave", Kind: "reset", Expires: expiresIn(h, time.Hour)})
	mustOK(t, "DeleteUser", h.Store.DeleteUser(ctx, tenantA, "dave"))
	// A token issued for a name nobody holds.
	putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "tok-ghost", User: "dave", Kind: "verify", Expires: expiresIn(h, time.Hour)})
	dave := store.User{Tenant: tenantA, Name: "dave", Email: "d@example.com", Data: []byte("new")}
	mustOK(t, "CreateUser(dave) again", h.Peer.CreateUser(ctx, dave))
	wantAccount(t, h.Store, dave)
	wantListed(t, h.Store, tenantA, "dave")
	wantNoToken(t, h.Store, tenantA, "tok-old")
	wantNoToken(t, h.Store, tenantA, "tok-ghost")
}

// testCreateUserConcurrent races CreateUser calls for one name, and for
// one address, from many goroutines on both replicas: exactly one wins.
func testCreateUserConcurrent(t *testing.T, mk func(*testing.T) Harness) {
	const n = 12
	tests := []struct {
		name string
		user func(i int) store.User
	}{
		{"same name", func(i int) store.User {
			return store.User{Tenant: tenantA, Name: "alice", Email: fmt.Sprintf("a%d@example.com", i), Data: fmt.Appendf(nil, "v%d", i)}
		}},
		{"same address", func(i int) store.User {
			return store.User{Tenant: tenantA, Name: fmt.Sprintf("user-%d", i), Email: "a@example.com", Data: fmt.Appendf(nil, "v%d", i)}
		}},
		{"same name and address", func(i int) store.User {
			return store.User{Tenant: tenantA, Name: "alice", Email: "a@example.com", Data: fmt.Appendf(nil, "v%d", i)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mk(t)
			ctx := t.Context()
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				st := h.Store
				if i%2 == 1 {
					st = h.Peer
				}
				wg.Go(func() { errs[i] = st.CreateUser(ctx, tt.user(i)) })
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("CreateUser %d and %d both succeeded, want exactly one", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, store.ErrConflict):
					t.Errorf("CreateUser %d err=%v, want nil or %v", i, err, store.ErrConflict)
				}
			}
			if winner < 0 {
				t.Fatal("no CreateUser succeeded, want exactly one")
			}
			w := tt.user(winner)
			wantAccount(t, h.Store, w)
			wantByEmail(t, h.Store, tenantA, w.Email, w)
			wantUsers(t, h.Store, tenantA, w)
			// The losers' addresses were not kept.
			for i := range n {
				if u := tt.user(i); u.Email != w.Email {
					wantNoEmail(t, h.Store, tenantA, u.Email)
					putAccount(t, h.Store, tenantA, fmt.Sprintf("later-%d", i), u.Email, []byte("l"))
				}
			}
		})
	}
}

// testTokens checks that PutToken keeps one token per user and kind, that
// TakeToken hands a token out once, and that tokens stay in their tenant.
func testTokens(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	putAccount(t, h.Store, tenantA, "alice", "a@example.com", []byte("a"))
	putAccount(t, h.Store, tenantA, "bob", "b@example.com", []byte("b"))
	putAccount(t, h.Store, tenantB, "alice", "a@example.com", []byte("a"))
	tok := func(tenant, id, user, kind string) store.Token {
		return store.Token{Tenant: tenant, ID: id, User: user, Kind: kind, Data: []byte("data of " + id + "\x00\xff"), Expires: expiresIn(h, time.Hour)}
	}

	putToken(t, h.Store, tok(tenantA, "v1", "alice", "verify"))
	r1 := putToken(t, h.Store, tok(tenantA, "r1", "alice", "reset"))
	bv := putToken(t, h.Store, tok(tenantA, "bv", "bob", "verify"))
	other := putToken(t, h.Store, tok(tenantB, "v1", "alice", "verify"))

	// A newer token of the kind replaces the older one, on either replica;
	// other kinds and other users keep theirs.
	v2 := putToken(t, h.Peer, tok(tenantA, "v2", "alice", "verify"))
	v3 := putToken(t, h.Store, tok(tenantA, "v3", "alice", "verify"))
	wantNoToken(t, h.Store, tenantA, "v1")
	wantNoToken(t, h.Store, tenantA, v2.ID)
	wantToken(t, h.Store, v3)
	wantNoToken(t, h.Store, tenantA, v3.ID) // single use
	wantToken(t, h.Peer, r1)
	wantToken(t, h.Store, bv)
	// Tenant B's token of the same ID was untouched by all of that.
	wantToken(t, h.Store, other)
	wantNoToken(t, h.Store, tenantB, "v1")

	// Taking a token in the wrong tenant neither finds nor spends it.
	a := putToken(t, h.Store, tok(tenantA, "shared-id", "alice", "verify"))
	wantNoToken(t, h.Store, tenantB, "shared-id")
	wantToken(t, h.Store, a)
	wantNoToken(t, h.Store, tenantA, "never-issued")

	// Free-text kinds are kinds like any other.
	x := putToken(t, h.Store, tok(tenantA, "x1", "alice", "custom kind: ü"))
	putToken(t, h.Store, tok(tenantA, "x2", "alice", "custom kind: u"))
	wantToken(t, h.Store, x)

	// Putting the same token again is harmless.
	again := putToken(t, h.Store, tok(tenantA, "same", "bob", "reset"))
	putToken(t, h.Store, again)
	wantToken(t, h.Store, again)
}

// testTokenExpiry checks that a token is missing once its expiry is not
// after the store's clock, to the millisecond it was given.
func testTokenExpiry(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	putAccount(t, h.Store, tenantA, "alice", "", []byte("a"))
	putAccount(t, h.Store, tenantA, "bob", "", []byte("b"))
	putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "past", User: "alice", Kind: "verify", Expires: expiresIn(h, -time.Second)})
	putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "now", User: "alice", Kind: "reset", Expires: expiresIn(h, 0)})
	wantNoToken(t, h.Store, tenantA, "past")
	wantNoToken(t, h.Store, tenantA, "now")

	short := putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "short", User: "alice", Kind: "verify", Expires: expiresIn(h, shortLife)})
	long := putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "long", User: "bob", Kind: "verify", Expires: expiresIn(h, time.Hour)})
	h.Advance(pastShortLife)
	wantNoToken(t, h.Store, tenantA, short.ID)
	wantToken(t, h.Store, long)
}

// testTakeTokenConcurrent races TakeToken calls for one token from many
// goroutines on both replicas: exactly one gets it.
func testTakeTokenConcurrent(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	putAccount(t, h.Store, tenantA, "alice", "", []byte("a"))
	for round := range 3 {
		want := putToken(t, h.Store, store.Token{Tenant: tenantA, ID: fmt.Sprintf("tok-%d", round), User: "alice", Kind: "reset",
			Data: []byte("d"), Expires: expiresIn(h, time.Hour)})
		const n = 12
		got := make([]store.Token, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			st := h.Store
			if i%2 == 1 {
				st = h.Peer
			}
			wg.Go(func() { got[i], errs[i] = st.TakeToken(ctx, tenantA, want.ID) })
		}
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
				checkToken(t, got[i], want)
			case !errors.Is(err, store.ErrNotFound):
				t.Errorf("TakeToken %d err=%v, want nil or %v", i, err, store.ErrNotFound)
			}
		}
		if wins != 1 {
			t.Errorf("round %d: %d of %d concurrent TakeToken calls succeeded, want exactly 1", round, wins, n)
		}
	}
}

// testDeleteTokens checks that DeleteTokens, DeleteUser and DeleteTenant
// remove a user's tokens of every kind and leave others' alone.
func testDeleteTokens(t *testing.T, mk func(*testing.T) Harness) {
	tests := []struct {
		name string
		del  func(t *testing.T, h Harness)
	}{
		{"DeleteTokens", func(t *testing.T, h Harness) {
			mustOK(t, "DeleteTokens", h.Store.DeleteTokens(t.Context(), tenantA, "alice"))
			mustOK(t, "DeleteTokens again", h.Store.DeleteTokens(t.Context(), tenantA, "alice"))
			mustOK(t, "DeleteTokens of nobody", h.Store.DeleteTokens(t.Context(), tenantA, "nobody"))
		}},
		{"DeleteTokens on the peer", func(t *testing.T, h Harness) {
			mustOK(t, "DeleteTokens", h.Peer.DeleteTokens(t.Context(), tenantA, "alice"))
		}},
		{"DeleteUser", func(t *testing.T, h Harness) {
			mustOK(t, "DeleteUser", h.Store.DeleteUser(t.Context(), tenantA, "alice"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mk(t)
			alice := putAccount(t, h.Store, tenantA, "alice", "a@example.com", []byte("a"))
			putAccount(t, h.Store, tenantA, "bob", "b@example.com", []byte("b"))
			putAccount(t, h.Store, tenantB, "alice", "a@example.com", []byte("a"))
			for _, kind := range []string{"verify", "reset", "other"} {
				putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "a-" + kind, User: "alice", Kind: kind, Expires: expiresIn(h, time.Hour)})
			}
			bob := putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "b-verify", User: "bob", Kind: "verify", Expires: expiresIn(h, time.Hour)})
			inB := putToken(t, h.Store, store.Token{Tenant: tenantB, ID: "a-verify", User: "alice", Kind: "verify", Expires: expiresIn(h, time.Hour)})

			tt.del(t, h)
			for _, kind := range []string{"verify", "reset", "other"} {
				wantNoToken(t, h.Store, tenantA, "a-"+kind)
			}
			wantToken(t, h.Store, bob)
			wantToken(t, h.Store, inB)

			// A new token after the deletion works, whoever holds the name.
			if _, err := h.Store.GetUser(t.Context(), tenantA, "alice"); errors.Is(err, store.ErrNotFound) {
				putAccount(t, h.Store, tenantA, "alice", "", []byte("new"))
			} else {
				wantAccount(t, h.Store, alice)
			}
			fresh := putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "a-new", User: "alice", Kind: "verify", Expires: expiresIn(h, time.Hour)})
			wantToken(t, h.Store, fresh)
		})
	}
}

// testDeleteTenantAccounts checks that DeleteTenant removes the tenant's
// addresses and tokens, and leaves another tenant's alone.
func testDeleteTenantAccounts(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantA, []byte("cfg")))
	for i := range 3 {
		name := fmt.Sprintf("user-%d", i)
		putAccount(t, h.Store, tenantA, name, name+"@example.com", []byte("v1"))
		putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "tok-" + name, User: name, Kind: "verify", Expires: expiresIn(h, time.Hour)})
	}
	// A token of a user that does not exist.
	putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "tok-ghost", User: "ghost", Kind: "verify", Expires: expiresIn(h, time.Hour)})
	keptUser := putAccount(t, h.Store, tenantB, "user-0", "user-0@example.com", []byte("b"))
	kept := putToken(t, h.Store, store.Token{Tenant: tenantB, ID: "tok-user-0", User: "user-0", Kind: "verify", Expires: expiresIn(h, time.Hour)})

	mustOK(t, "DeleteTenant", h.Peer.DeleteTenant(ctx, tenantA))
	for i := range 3 {
		name := fmt.Sprintf("user-%d", i)
		wantNoEmail(t, h.Store, tenantA, name+"@example.com")
		wantNoToken(t, h.Store, tenantA, "tok-"+name)
	}
	wantNoToken(t, h.Store, tenantA, "tok-ghost")
	wantByEmail(t, h.Store, tenantB, "user-0@example.com", keptUser)
	wantToken(t, h.Store, kept)

	// Recreated, the tenant has every address free.
	mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantA, []byte("cfg 2")))
	u := store.User{Tenant: tenantA, Name: "someone-else", Email: "user-1@example.com", Data: []byte("n")}
	mustOK(t, "CreateUser with an address of the deleted tenant", h.Store.CreateUser(ctx, u))
	wantByEmail(t, h.Store, tenantA, "user-1@example.com", u)
}

func putAccount(t testing.TB, st store.Store, tenant, name, email string, data []byte) store.User {
	t.Helper()
	u := store.User{Tenant: tenant, Name: name, Email: email, Data: data}
	if err := st.PutUser(t.Context(), u, false); err != nil {
		t.Fatalf("PutUser(%q, %q, %q) err=%v, want nil", tenant, name, email, err)
	}
	return u
}

func putToken(t testing.TB, st store.Store, tok store.Token) store.Token {
	t.Helper()
	if err := st.PutToken(t.Context(), tok); err != nil {
		t.Fatalf("PutToken(%q, %q) err=%v, want nil", tok.Tenant, tok.ID, err)
	}
	tok.Data = bytes.Clone(tok.Data)
	return tok
}

// wantAccount checks that GetUser returns want, its address included.
func wantAccount(t testing.TB, st store.Store, want store.User) {
	t.Helper()
	got, err := st.GetUser(t.Context(), want.Tenant, want.Name)
	if err != nil {
		t.Errorf("GetUser(%q, %q) err=%v, want nil", want.Tenant, want.Name, err)
		return
	}
	checkUser(t, "GetUser", got, want)
}

// wantByEmail checks that GetUserByEmail finds want under email.
func wantByEmail(t testing.TB, st store.Store, tenant, email string, want store.User) {
	t.Helper()
	got, err := st.GetUserByEmail(t.Context(), tenant, email)
	if err != nil {
		t.Errorf("GetUserByEmail(%q, %q) err=%v, want user %q", tenant, email, err, want.Name)
		return
	}
	checkUser(t, fmt.Sprintf("GetUserByEmail(%q, %q)", tenant, email), got, want)
}

func wantNoEmail(t testing.TB, st store.Store, tenant, email string) {
	t.Helper()
	u, err := st.GetUserByEmail(t.Context(), tenant, email)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUserByEmail(%q, %q)=%+v, %v, want %v", tenant, email, u, err, store.ErrNotFound)
	}
}

func checkUser(t testing.TB, op string, got, want store.User) {
	t.Helper()
	if got.Tenant != want.Tenant || got.Name != want.Name || got.Email != want.Email || !bytes.Equal(got.Data, want.Data) {
		t.Errorf("%s=%+v, want %+v", op, got, want)
	}
}

// wantToken takes the token and checks it is want.
func wantToken(t testing.TB, st store.Store, want store.Token) {
	t.Helper()
	got, err := st.TakeToken(t.Context(), want.Tenant, want.ID)
	if err != nil {
		t.Errorf("TakeToken(%q, %q) err=%v, want nil", want.Tenant, want.ID, err)
		return
	}
	checkToken(t, got, want)
}

func wantNoToken(t testing.TB, st store.Store, tenant, id string) {
	t.Helper()
	tok, err := st.TakeToken(t.Context(), tenant, id)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeToken(%q, %q)=%+v, %v, want %v", tenant, id, tok, err, store.ErrNotFound)
	}
}

func checkToken(t testing.TB, got, want store.Token) {
	t.Helper()
	if got.Tenant != want.Tenant || got.ID != want.ID || got.User != want.User || got.Kind != want.Kind ||
		!bytes.Equal(got.Data, want.Data) || !got.Expires.Equal(want.Expires) {
		t.Errorf("TakeToken=%+v, want %+v", got, want)
	}
}
