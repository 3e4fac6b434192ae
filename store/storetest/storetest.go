package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// Harness is one store under test, plus what the suite needs to move its
// clock and to reach it from a second replica.
type Harness struct {
	// Store is the store under test. It must start empty: the suite asserts
	// on exact listings, so every subtest asks for a fresh Harness.
	Store store.Store

	// Peer is another Store value over the same backend as Store, as another
	// replica would hold. The suite changes tenants through Peer and expects
	// Store.Changes to notice. Nil means Store itself.
	Peer store.Store

	// Now is the clock that Store compares expiry times against. Nil means
	// time.Now.
	Now func() time.Time

	// Advance moves Now forward by d. Nil means time.Sleep, for stores on
	// the real clock.
	Advance func(d time.Duration)
}

const (
	// shortLife is the lifetime of sessions that a subtest lets expire. It
	// leaves room for a slow round trip on a real clock, where the suite
	// really waits for it.
	shortLife = 1500 * time.Millisecond

	// pastShortLife is how far expiry subtests advance the clock: far
	// enough past shortLife that millisecond rounding cannot matter.
	pastShortLife = shortLife + 500*time.Millisecond

	// waitTimeout bounds every wait on a Changes channel.
	waitTimeout = 5 * time.Second

	tenantA = "acme"
	tenantB = "globex"
)

// TestStore runs the conformance suite against the stores that newHarness
// builds. newHarness is called once per subtest, possibly concurrently, and
// must return a fresh, empty store; it registers its own cleanup with
// t.Cleanup and may skip or fail t.
func TestStore(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	mk := func(t *testing.T) Harness {
		t.Helper()
		h := newHarness(t)
		if h.Store == nil {
			t.Fatal("storetest: Harness.Store is nil")
		}
		if h.Peer == nil {
			h.Peer = h.Store
		}
		if h.Now == nil {
			h.Now = time.Now
		}
		if h.Advance == nil {
			h.Advance = time.Sleep
		}
		return h
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, mk func(*testing.T) Harness)
	}{
		{"GetMissing", testGetMissing},
		{"RoundTrip", testRoundTrip},
		{"Update", testUpdate},
		{"UpdateMissing", testUpdateMissing},
		{"IdempotentDelete", testIdempotentDelete},
		{"Expiry", testExpiry},
		{"CreateConflict", testCreateConflict},
		{"UserChange", testUserChange},
		{"TenantIsolation", testTenantIsolation},
		{"PerUserIndex", testPerUserIndex},
		{"Users", testUsers},
		{"Tenants", testTenants},
		{"GetTenant", testGetTenant},
		{"TenantsSince", testTenantsSince},
		{"DeleteTenant", testDeleteTenant},
		{"Changes", testChanges},
		{"Concurrency", testConcurrency},
		{"Counters", testCounters},
		{"CountersConcurrent", testCountersConcurrent},
		{"SwapUser", testSwapUser},
		{"Invalidations", testInvalidations},
		{"AdminKeys", testAdminKeys},
		{"Audit", testAudit},
		{"Applied", testApplied},
		{"EmailUnique", testEmailUnique},
		{"EmailReleased", testEmailReleased},
		{"GetUserByEmail", testGetUserByEmail},
		{"CreateUser", testCreateUser},
		{"CreateUserConcurrent", testCreateUserConcurrent},
		{"Tokens", testTokens},
		{"TokenExpiry", testTokenExpiry},
		{"TakeTokenConcurrent", testTakeTokenConcurrent},
		{"DeleteTokens", testDeleteTokens},
		{"DeleteTenantAccounts", testDeleteTenantAccounts},
		{"CancelledContext", testCancelledContext},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, mk)
		})
	}
}

func testGetMissing(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	alice := putUser(t, h.Store, tenantA, "alice", []byte("v1"))
	createSession(t, h.Store, alice, "sid-1", []byte("d"), expiresIn(h, time.Hour))

	tests := []struct {
		name             string
		tenant, user, id string
	}{
		{"unknown tenant", tenantB, "alice", "sid-1"},
		{"unknown user", tenantA, "bob", "sid-1"},
		{"unknown id", tenantA, "alice", "sid-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantNoSession(t, h.Store, tt.tenant, tt.user, tt.id)
		})
	}

	wantErr(t, "GetUser(missing)", errOf(h.Store.GetUser(ctx, tenantA, "bob")), store.ErrNotFound)
	if got := listSessions(t, h.Store, tenantA, "bob"); len(got) != 0 {
		t.Errorf("ListSessions(missing user) len=%d, want 0", len(got))
	}
	users, err := h.Store.ListUsers(ctx, tenantB)
	if err != nil || len(users) != 0 {
		t.Errorf("ListUsers(missing tenant)=%v, %v, want empty, nil", users, err)
	}
}

func testRoundTrip(t *testing.T, mk func(*testing.T) Harness) {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"text", []byte(`{"csrf":"k3","idle":1800}`)},
		{"every byte value", allBytes},
		{"invalid UTF-8", []byte{0xff, 0xfe, 0x00, 0xc3, 0x28}},
		{"digits like an expiry prefix", []byte("00000000000000000000042")},
		{"large", bytes.Repeat([]byte("latchkey\x00"), 8<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mk(t)
			ctx := t.Context()
			owner := putUser(t, h.Store, tenantA, "alice", tt.data)

			wantUser(t, h.Store, owner)

			data := bytes.Clone(tt.data)
			want := store.Session{Tenant: tenantA, User: "alice", ID: "sid-1", Data: data, Expires: expiresIn(h, time.Hour)}
			if err := h.Store.CreateSession(ctx, want, owner); err != nil {
				t.Fatalf("CreateSession err=%v, want nil", err)
			}
			want.Data = bytes.Clone(tt.data)
			// The store must not alias the caller's slice.
			for i := range data {
				data[i] ^= 0xff
			}

			got := getSession(t, h.Store, tenantA, "alice", "sid-1")
			checkSession(t, got, want)
			for i := range got.Data {
				got.Data[i] ^= 0xff
			}
			// Nor may it hand out its own slice.
			checkSession(t, getSession(t, h.Store, tenantA, "alice", "sid-1"), want)

			listed := listSessions(t, h.Store, tenantA, "alice")
			if len(listed) != 1 {
				t.Fatalf("ListSessions len=%d, want 1", len(listed))
			}
			checkSession(t, listed["sid-1"], want)
		})
	}
}

func testUpdate(t *testing.T, mk func(*testing.T) Harness) {
	tests := []struct {
		name      string
		life      time.Duration // of the created session
		newLife   time.Duration // of the update
		advance   bool          // advance past shortLife before reading
		wantFound bool
	}{
		{"overwrite", time.Hour, 2 * time.Hour, false, true},
		{"extend past original expiry", shortLife, time.Hour, true, true},
		{"shorten", time.Hour, shortLife, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mk(t)
			ctx := t.Context()
			alice := putUser(t, h.Store, tenantA, "alice", []byte("v1"))
			// A second, long-lived session checks that the update leaves
			// its neighbours alone.
			other := createSession(t, h.Store, alice, "sid-0", []byte("other"), expiresIn(h, time.Hour))
			s := createSession(t, h.Store, alice, "sid-1", []byte("old"), expiresIn(h, tt.life))

			s.Data = []byte("new")
			s.Expires = expiresIn(h, tt.newLife)
			if err := h.Store.UpdateSession(ctx, s); err != nil {
				t.Fatalf("UpdateSession err=%v, want nil", err)
			}
			if tt.advance {
				h.Advance(pastShortLife)
			}
			if tt.wantFound {
				checkSession(t, getSession(t, h.Store, tenantA, "alice", "sid-1"), s)
				wantListed(t, h.Store, tenantA, "alice", other, s)
			} else {
				wantNoSession(t, h.Store, tenantA, "alice", "sid-1")
				wantListed(t, h.Store, tenantA, "alice", other)
			}
			checkSession(t, getSession(t, h.Store, tenantA, "alice", "sid-0"), other)
		})
	}
}

func testUpdateMissing(t *testing.T, mk func(*testing.T) Harness) {
	tests := []struct {
		name string
		// end makes the session "sid-1" of owner unavailable.
		end func(t *testing.T, h Harness, owner store.User)
	}{
		{"never created", func(t *testing.T, h Harness, owner store.User) {}},
		{"deleted", func(t *testing.T, h Harness, owner store.User) {
			createSession(t, h.Store, owner, "sid-1", []byte("d"), expiresIn(h, time.Hour))
			mustOK(t, "DeleteSession", h.Store.DeleteSession(t.Context(), owner.Tenant, owner.Name, "sid-1"))
		}},
		{"ended by DeleteSessions", func(t *testing.T, h Harness, owner store.User) {
			createSession(t, h.Store, owner, "sid-1", []byte("d"), expiresIn(h, time.Hour))
			mustOK(t, "DeleteSessions", h.Store.DeleteSessions(t.Context(), owner.Tenant, owner.Name))
		}},
		{"ended by PutUser", func(t *testing.T, h Harness, owner store.User) {
			createSession(t, h.Store, owner, "sid-1", []byte("d"), expiresIn(h, time.Hour))
			mustOK(t, "PutUser", h.Store.PutUser(t.Context(), owner, true))
		}},
		{"user deleted", func(t *testing.T, h Harness, owner store.User) {
			createSession(t, h.Store, owner, "sid-1", []byte("d"), expiresIn(h, time.Hour))
			mustOK(t, "DeleteUser", h.Store.DeleteUser(t.Context(), owner.Tenant, owner.Name))
		}},
		{"expired", func(t *testing.T, h Harness, owner store.User) {
			createSession(t, h.Store, owner, "sid-1", []byte("d"), expiresIn(h, shortLife))
			h.Advance(pastShortLife)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mk(t)
			alice := putUser(t, h.Store, tenantA, "alice", []byte("v1"))
			// A live sibling keeps the user's sessions in existence, so
			// that the store's own check, not the backend's expiry of a
			// whole record, must refuse the update.
			createSession(t, h.Store, alice, "sid-0", []byte("sibling"), expiresIn(h, time.Hour))
			tt.end(t, h, alice)

			s := store.Session{Tenant: tenantA, User: "alice", ID: "sid-1", Data: []byte("revived"), Expires: expiresIn(h, time.Hour)}
			wantErr(t, "UpdateSession", h.Store.UpdateSession(t.Context(), s), store.ErrNotFound)
			// A refresh racing a revocation must not bring the session back.
			wantNoSession(t, h.Store, tenantA, "alice", "sid-1")
			if got := listSessions(t, h.Store, tenantA, "alice"); got["sid-1"].ID != "" {
				t.Errorf("ListSessions has sid-1=%+v, want it absent", got["sid-1"])
			}
		})
	}
}

func testIdempotentDelete(t *testing.T, mk func(*testing.T) Harness) {
	tests := []struct {
		name string
		del  func(ctx context.Context, st store.Store) error
	}{
		{"DeleteSession", func(ctx context.Context, st store.Store) error {
			return st.DeleteSession(ctx, tenantA, "alice", "sid-1")
		}},
		{"DeleteSession of unknown user", func(ctx context.Context, st store.Store) error {
			return st.DeleteSession(ctx, tenantA, "nobody", "sid-1")
		}},
		{"DeleteSessions", func(ctx context.Context, st store.Store) error { return st.DeleteSessions(ctx, tenantA, "alice") }},
		{"DeleteSessions of unknown user", func(ctx context.Context, st store.Store) error { return st.DeleteSessions(ctx, tenantA, "nobody") }},
		{"DeleteUser", func(ctx context.Context, st store.Store) error { return st.DeleteUser(ctx, tenantA, "alice") }},
		{"DeleteUser of unknown tenant", func(ctx context.Context, st store.Store) error { return st.DeleteUser(ctx, tenantB, "alice") }},
		{"DeleteTenant", func(ctx context.Context, st store.Store) error { return st.DeleteTenant(ctx, tenantA) }},
		{"DeleteTenant of unknown tenant", func(ctx context.Context, st store.Store) error { return st.DeleteTenant(ctx, tenantB) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mk(t)
			ctx := t.Context()
			mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantA, []byte("cfg")))
			alice := putUser(t, h.Store, tenantA, "alice", []byte("v1"))
			createSession(t, h.Store, alice, "sid-1", []byte("d"), expiresIn(h, time.Hour))
			for i := range 3 {
				if err := tt.del(ctx, h.Store); err != nil {
					t.Errorf("%s call %d err=%v, want nil", tt.name, i+1, err)
				}
			}
		})
	}
}

func testExpiry(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	alice := putUser(t, h.Store, tenantA, "alice", []byte("v1"))

	// Already expired when created: stored or not, never seen.
	createSession(t, h.Store, alice, "past", []byte("d"), expiresIn(h, -time.Second))
	createSession(t, h.Store, alice, "now", []byte("d"), expiresIn(h, 0))
	wantNoSession(t, h.Store, tenantA, "alice", "past")
	wantNoSession(t, h.Store, tenantA, "alice", "now")

	// The long-lived session comes first so that a store keeping one
	// expiry per user must not let the later, shorter one cut it short.
	long := createSession(t, h.Store, alice, "long", []byte("l"), expiresIn(h, time.Hour))
	short := createSession(t, h.Store, alice, "short", []byte("s"), expiresIn(h, shortLife))
	checkSession(t, getSession(t, h.Store, tenantA, "alice", "short"), short)
	wantListed(t, h.Store, tenantA, "alice", long, short)

	h.Advance(pastShortLife)
	wantNoSession(t, h.Store, tenantA, "alice", "short")
	checkSession(t, getSession(t, h.Store, tenantA, "alice", "long"), long)
	wantListed(t, h.Store, tenantA, "alice", long)
	// Listing may prune; the survivor must outlive that.
	checkSession(t, getSession(t, h.Store, tenantA, "alice", "long"), long)
}

func testCreateConflict(t *testing.T, mk func(*testing.T) Harness) {
	tests := []struct {
		name string
		// owner prepares the store and returns the stale or wrong owner
		// for a session of tenantA/alice.
		owner func(t *testing.T, st store.Store) store.User
	}{
		{"owner missing", func(t *testing.T, st store.Store) store.User {
			return store.User{Tenant: tenantA, Name: "alice", Data: []byte("v1")}
		}},
		{"owner data changed", func(t *testing.T, st store.Store) store.User {
			old := putUser(t, st, tenantA, "alice", []byte("v1"))
			putUser(t, st, tenantA, "alice", []byte("v2 disabled"))
			return old
		}},
		{"owner deleted", func(t *testing.T, st store.Store) store.User {
			old := putUser(t, st, tenantA, "alice", []byte("v1"))
			mustOK(t, "DeleteUser", st.DeleteUser(t.Context(), tenantA, "alice"))
			return old
		}},
		{"owner is another user", func(t *testing.T, st store.Store) store.User {
			putUser(t, st, tenantA, "alice", []byte("v1"))
			return putUser(t, st, tenantA, "bob", []byte("v1"))
		}},
		{"owner in another tenant", func(t *testing.T, st store.Store) store.User {
			putUser(t, st, tenantA, "alice", []byte("v1"))
			return putUser(t, st, tenantB, "alice", []byte("v1"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mk(t)
			owner := tt.owner(t, h.Store)
			s := store.Session{Tenant: tenantA, User: "alice", ID: "sid-1", Data: []byte("d"), Expires: expiresIn(h, time.Hour)}
			wantErr(t, "CreateSession", h.Store.CreateSession(t.Context(), s, owner), store.ErrConflict)
			wantNoSession(t, h.Store, tenantA, "alice", "sid-1")
			wantListed(t, h.Store, tenantA, "alice")
			wantNoSession(t, h.Store, owner.Tenant, owner.Name, "sid-1")
		})
	}
}

// testUserChange checks what PutUser and DeleteUser do to the user's
// record and sessions, and that they leave another user's alone.
func testUserChange(t *testing.T, mk func(*testing.T) Harness) {
	tests := []struct {
		name    string
		change  func(ctx context.Context, st store.Store, alice store.User) error
		kept    bool // alice's sessions survive the change
		deleted bool // alice's record is gone; otherwise it is the new one
	}{
		{"PutUser ending sessions", func(ctx context.Context, st store.Store, alice store.User) error {
			return st.PutUser(ctx, alice, true)
		}, false, false},
		{"PutUser keeping sessions", func(ctx context.Context, st store.Store, alice store.User) error {
			return st.PutUser(ctx, alice, false)
		}, true, false},
		{"DeleteUser", func(ctx context.Context, st store.Store, alice store.User) error {
			return st.DeleteUser(ctx, alice.Tenant, alice.Name)
		}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := mk(t)
			ctx := t.Context()
			alice := putUser(t, h.Store, tenantA, "alice", []byte("v1"))
			bob := putUser(t, h.Store, tenantA, "bob", []byte("v1"))
			s1 := createSession(t, h.Store, alice, "sid-1", []byte("1"), expiresIn(h, time.Hour))
			s2 := createSession(t, h.Store, alice, "sid-2", []byte("2"), expiresIn(h, time.Hour))
			sb := createSession(t, h.Store, bob, "sid-1", []byte("b"), expiresIn(h, time.Hour))

			alice.Data = []byte("v2")
			mustOK(t, tt.name, tt.change(ctx, h.Store, alice))

			if tt.deleted {
				wantErr(t, "GetUser(deleted)", errOf(h.Store.GetUser(ctx, tenantA, "alice")), store.ErrNotFound)
				wantUsers(t, h.Store, tenantA, bob)
			} else {
				wantUser(t, h.Store, alice)
				wantUsers(t, h.Store, tenantA, alice, bob)
			}
			if tt.kept {
				checkSession(t, getSession(t, h.Store, tenantA, "alice", "sid-1"), s1)
				wantListed(t, h.Store, tenantA, "alice", s1, s2)
			} else {
				wantNoSession(t, h.Store, tenantA, "alice", "sid-1")
				wantNoSession(t, h.Store, tenantA, "alice", "sid-2")
				wantListed(t, h.Store, tenantA, "alice")
			}
			wantListed(t, h.Store, tenantA, "bob", sb)

			// An account made anew under the old name starts with no sessions.
			if tt.deleted {
				putUser(t, h.Store, tenantA, "alice", []byte("v1"))
				wantListed(t, h.Store, tenantA, "alice")
				wantNoSession(t, h.Store, tenantA, "alice", "sid-1")
			}
		})
	}
}

func testTenantIsolation(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantA, []byte("cfg A")))
	mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantB, []byte("cfg B")))
	// Same user name and session ID in both tenants, different data.
	ua := putUser(t, h.Store, tenantA, "alice", []byte("user A"))
	ub := putUser(t, h.Store, tenantB, "alice", []byte("user B"))
	sa := createSession(t, h.Store, ua, "sid-1", []byte("session A"), expiresIn(h, time.Hour))
	sb := createSession(t, h.Store, ub, "sid-1", []byte("session B"), expiresIn(h, time.Hour))
	// A user only tenant A has.
	ua2 := putUser(t, h.Store, tenantA, "carol", []byte("user A2"))
	sa2 := createSession(t, h.Store, ua2, "sid-2", []byte("session A2"), expiresIn(h, time.Hour))

	checkSession(t, getSession(t, h.Store, tenantA, "alice", "sid-1"), sa)
	checkSession(t, getSession(t, h.Store, tenantB, "alice", "sid-1"), sb)
	wantNoSession(t, h.Store, tenantB, "carol", "sid-2")
	wantUsers(t, h.Store, tenantA, ua, ua2)
	wantUsers(t, h.Store, tenantB, ub)

	// Ending A's sessions leaves B's alone.
	mustOK(t, "DeleteSession", h.Store.DeleteSession(ctx, tenantA, "alice", "sid-1"))
	checkSession(t, getSession(t, h.Store, tenantB, "alice", "sid-1"), sb)
	createSession(t, h.Store, ua, "sid-1", []byte("session A again"), expiresIn(h, time.Hour))
	mustOK(t, "DeleteSessions", h.Store.DeleteSessions(ctx, tenantA, "alice"))
	wantListed(t, h.Store, tenantB, "alice", sb)

	// Updating B's user does not change A's, so A's owner check still passes.
	ub.Data = []byte("user B v2")
	mustOK(t, "PutUser", h.Store.PutUser(ctx, ub, true))
	sa = createSession(t, h.Store, ua, "sid-1", []byte("session A"), expiresIn(h, time.Hour))
	sb = createSession(t, h.Store, ub, "sid-1", []byte("session B"), expiresIn(h, time.Hour))
	wantListed(t, h.Store, tenantA, "alice", sa)
	wantListed(t, h.Store, tenantA, "carol", sa2)
	wantListed(t, h.Store, tenantB, "alice", sb)

	// Deleting tenant A leaves tenant B intact.
	mustOK(t, "DeleteTenant", h.Store.DeleteTenant(ctx, tenantA))
	wantNoSession(t, h.Store, tenantA, "alice", "sid-1")
	wantTenants(t, h.Store, map[string][]byte{tenantB: []byte("cfg B")})
	wantUsers(t, h.Store, tenantB, ub)
	checkSession(t, getSession(t, h.Store, tenantB, "alice", "sid-1"), sb)
	wantListed(t, h.Store, tenantB, "alice", sb)
}

func testPerUserIndex(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	alice := putUser(t, h.Store, tenantA, "alice", []byte("v1"))
	bob := putUser(t, h.Store, tenantA, "bob", []byte("v1"))
	// bob's IDs overlap alice's on purpose: the index is per user.
	a1 := createSession(t, h.Store, alice, "sid-1", []byte("a1"), expiresIn(h, time.Hour))
	a2 := createSession(t, h.Store, alice, "sid-2", []byte("a2"), expiresIn(h, 2*time.Hour))
	a3 := createSession(t, h.Store, alice, "sid-3", []byte("a3"), expiresIn(h, 3*time.Hour))
	createSession(t, h.Store, alice, "sid-4", []byte("gone"), expiresIn(h, -time.Minute))
	b1 := createSession(t, h.Store, bob, "sid-1", []byte("b1"), expiresIn(h, time.Hour))
	b5 := createSession(t, h.Store, bob, "sid-5", []byte("b5"), expiresIn(h, time.Hour))

	wantListed(t, h.Store, tenantA, "alice", a1, a2, a3)
	wantListed(t, h.Store, tenantA, "bob", b1, b5)

	mustOK(t, "DeleteSession", h.Store.DeleteSession(ctx, tenantA, "alice", "sid-2"))
	wantListed(t, h.Store, tenantA, "alice", a1, a3)

	mustOK(t, "DeleteSessions", h.Store.DeleteSessions(ctx, tenantA, "alice"))
	wantListed(t, h.Store, tenantA, "alice")
	wantNoSession(t, h.Store, tenantA, "alice", "sid-1")
	wantListed(t, h.Store, tenantA, "bob", b1, b5)
	checkSession(t, getSession(t, h.Store, tenantA, "bob", "sid-1"), b1)
	// Ending sessions keeps the account.
	wantUsers(t, h.Store, tenantA, alice, bob)
}

func testUsers(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	alice := putUser(t, h.Store, tenantA, "alice", []byte{0, 1, 2, 0xff})
	bob := putUser(t, h.Store, tenantA, "bob@example.com", []byte{})
	carol := putUser(t, h.Store, tenantA, "Čarol {ops}: ünïcode", []byte("c"))
	wantUsers(t, h.Store, tenantA, alice, bob, carol)

	bob.Data = []byte("bob v2")
	mustOK(t, "PutUser", h.Store.PutUser(ctx, bob, false))
	wantUsers(t, h.Store, tenantA, alice, bob, carol)

	mustOK(t, "DeleteUser", h.Store.DeleteUser(ctx, tenantA, "alice"))
	wantUsers(t, h.Store, tenantA, bob, carol)

	wantUser(t, h.Store, carol)
}

func testTenants(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	want := map[string][]byte{
		tenantA:     []byte(`{"origins":["https://acme.example"]}`),
		tenantB:     {0, 0xff, 0x7f},
		"initech-2": {},
	}
	for id, data := range want {
		mustOK(t, "PutTenant", h.Store.PutTenant(ctx, id, data))
	}
	wantTenants(t, h.Store, want)

	want[tenantA] = []byte("replaced")
	mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantA, want[tenantA]))
	wantTenants(t, h.Store, want)

	mustOK(t, "DeleteTenant", h.Store.DeleteTenant(ctx, tenantB))
	delete(want, tenantB)
	wantTenants(t, h.Store, want)
}

func testGetTenant(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	wantErr(t, "GetTenant(missing)", errOf(h.Store.GetTenant(ctx, tenantA)), store.ErrNotFound)
	// Written by the peer, as another replica would.
	mustOK(t, "PutTenant", h.Peer.PutTenant(ctx, tenantA, []byte("cfg a")))
	mustOK(t, "PutTenant", h.Peer.PutTenant(ctx, tenantB, []byte{}))
	wantTenant(t, h.Store, tenantA, []byte("cfg a"))
	wantTenant(t, h.Store, tenantB, []byte{})
	wantErr(t, "GetTenant(initech) with acme and globex stored", errOf(h.Store.GetTenant(ctx, "initech")), store.ErrNotFound)

	mustOK(t, "PutTenant", h.Peer.PutTenant(ctx, tenantA, []byte("cfg a 2")))
	wantTenant(t, h.Store, tenantA, []byte("cfg a 2"))
	mustOK(t, "DeleteTenant", h.Peer.DeleteTenant(ctx, tenantA))
	wantErr(t, "GetTenant(deleted)", errOf(h.Store.GetTenant(ctx, tenantA)), store.ErrNotFound)
	wantTenant(t, h.Store, tenantB, []byte{})
}

func testTenantsSince(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	since := func(rev store.TenantRevision) store.TenantChanges {
		t.Helper()
		c, err := h.Store.TenantsSince(ctx, rev)
		if err != nil {
			t.Fatalf("TenantsSince(%+v) err=%v, want nil", rev, err)
		}
		return c
	}
	check := func(what string, got store.TenantChanges, all bool, put map[string][]byte, deleted ...string) {
		t.Helper()
		slices.Sort(got.Deleted)
		if got.All != all || !maps.EqualFunc(got.Put, put, bytes.Equal) || !slices.Equal(got.Deleted, deleted) {
			t.Errorf("%s: TenantsSince All=%v Put=%q Deleted=%q, want %v, %q, %q", what, got.All, got.Put, got.Deleted, all, put, deleted)
		}
	}

	c0 := since(store.TenantRevision{})
	check("empty store", c0, true, map[string][]byte{})
	check("nothing changed", since(c0.Rev), false, map[string][]byte{})

	mustOK(t, "PutTenant", h.Peer.PutTenant(ctx, tenantA, []byte("a1")))
	mustOK(t, "PutTenant", h.Peer.PutTenant(ctx, tenantB, []byte("b1")))
	c1 := since(c0.Rev)
	check("two created", c1, false, map[string][]byte{tenantA: []byte("a1"), tenantB: []byte("b1")})
	if c1.Rev.Epoch != c0.Rev.Epoch || c1.Rev.N <= c0.Rev.N {
		t.Errorf("revision after two changes = %+v, want the epoch of %+v and a greater N", c1.Rev, c0.Rev)
	}
	c := since(c1.Rev)
	check("nothing changed since", c, false, map[string][]byte{})
	if c.Rev != c1.Rev {
		t.Errorf("revision with nothing changed = %+v, want %+v", c.Rev, c1.Rev)
	}

	// Only what changed comes back: the untouched tenant does not.
	mustOK(t, "PutTenant", h.Peer.PutTenant(ctx, "initech", []byte("i1")))
	mustOK(t, "PutTenant", h.Peer.PutTenant(ctx, tenantA, []byte("a2")))
	mustOK(t, "DeleteTenant", h.Peer.DeleteTenant(ctx, tenantB))
	c2 := since(c1.Rev)
	check("changed, created and deleted", c2, false, map[string][]byte{tenantA: []byte("a2"), "initech": []byte("i1")}, tenantB)

	// Deleting a tenant that does not exist changes nothing.
	mustOK(t, "DeleteTenant", h.Peer.DeleteTenant(ctx, tenantB))
	mustOK(t, "DeleteTenant", h.Peer.DeleteTenant(ctx, "never"))
	c = since(c2.Rev)
	check("missing tenants deleted", c, false, map[string][]byte{})
	if c.Rev != c2.Rev {
		t.Errorf("revision after deleting missing tenants = %+v, want %+v", c.Rev, c2.Rev)
	}

	// Put back, a deleted tenant is put, not deleted; deleted after being
	// put, it is deleted.
	mustOK(t, "PutTenant", h.Peer.PutTenant(ctx, tenantB, []byte("b2")))
	mustOK(t, "DeleteTenant", h.Peer.DeleteTenant(ctx, "initech"))
	c3 := since(c2.Rev)
	check("recreated and deleted", c3, false, map[string][]byte{tenantB: []byte("b2")}, "initech")
	check("from the start of the epoch", since(store.TenantRevision{Epoch: c0.Rev.Epoch, N: c0.Rev.N}), false,
		map[string][]byte{tenantA: []byte("a2"), tenantB: []byte("b2")}, "initech")

	// A revision the store never had means everything, whatever it is.
	all := map[string][]byte{tenantA: []byte("a2"), tenantB: []byte("b2")}
	check("zero revision", since(store.TenantRevision{}), true, all)
	check("another epoch", since(store.TenantRevision{Epoch: c3.Rev.Epoch + "x", N: c3.Rev.N}), true, all)
	check("a revision ahead of the store", since(store.TenantRevision{Epoch: c3.Rev.Epoch, N: c3.Rev.N + 1}), true, all)
	if c := since(store.TenantRevision{}); c.Rev != c3.Rev {
		t.Errorf("revision of a full answer = %+v, want %+v", c.Rev, c3.Rev)
	}
}

func testDeleteTenant(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantA, []byte("cfg")))
	var users []store.User
	for i := range 3 {
		u := putUser(t, h.Store, tenantA, fmt.Sprintf("user-%d", i), []byte("v1"))
		createSession(t, h.Store, u, "sid-1", []byte("d"), expiresIn(h, time.Hour))
		createSession(t, h.Store, u, "sid-2", []byte("d"), expiresIn(h, time.Hour))
		users = append(users, u)
	}

	mustOK(t, "DeleteTenant", h.Store.DeleteTenant(ctx, tenantA))
	wantTenants(t, h.Store, map[string][]byte{})
	wantUsers(t, h.Store, tenantA)
	for _, u := range users {
		wantErr(t, fmt.Sprintf("GetUser(%q)", u.Name), errOf(h.Store.GetUser(ctx, tenantA, u.Name)), store.ErrNotFound)
		wantNoSession(t, h.Store, tenantA, u.Name, "sid-1")
		wantListed(t, h.Store, tenantA, u.Name)
	}

	// A tenant recreated under the same ID starts empty.
	mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantA, []byte("cfg 2")))
	putUser(t, h.Store, tenantA, "user-0", []byte("v1"))
	wantListed(t, h.Store, tenantA, "user-0")
}

func testChanges(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := h.Store.Changes(ctx)

	mustOK(t, "PutTenant", h.Peer.PutTenant(t.Context(), tenantA, []byte("cfg")))
	waitChange(t, ch, "PutTenant")
	mustOK(t, "DeleteTenant", h.Peer.DeleteTenant(t.Context(), tenantA))
	waitChange(t, ch, "DeleteTenant")

	// Several subscribers each get their own notification.
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	ch2 := h.Store.Changes(ctx2)
	mustOK(t, "PutTenant", h.Peer.PutTenant(t.Context(), tenantB, []byte("cfg")))
	waitChange(t, ch, "PutTenant")
	waitChange(t, ch2, "PutTenant")

	cancel()
	waitClosed(t, ch)
	// The other subscription lives on.
	mustOK(t, "PutTenant", h.Peer.PutTenant(t.Context(), tenantB, []byte("cfg 2")))
	waitChange(t, ch2, "PutTenant")
	cancel2()
	waitClosed(t, ch2)
}

func testConcurrency(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	alice := putUser(t, h.Store, tenantA, "alice", []byte("v1"))
	const (
		workers  = 8
		rounds   = 40
		ownIDs   = 3 // per worker, touched by that worker only
		sharedID = 4 // touched by every worker
	)
	// want[w] is worker w's expectation for its own IDs: Data, or absent.
	want := make([]map[string][]byte, workers)
	var wg sync.WaitGroup
	for w := range workers {
		want[w] = map[string][]byte{}
		wg.Go(func() {
			mine := want[w]
			for i := range rounds {
				own := fmt.Sprintf("w%d-%d", w, i%ownIDs)
				shared := fmt.Sprintf("shared-%d", i%sharedID)
				data := fmt.Appendf(nil, "w%d-r%d", w, i)
				s := store.Session{Tenant: tenantA, User: "alice", ID: own, Data: data, Expires: expiresIn(h, time.Hour)}
				switch i % 5 {
				case 0:
					if err := h.Store.CreateSession(ctx, s, alice); err != nil {
						t.Errorf("CreateSession(%s) err=%v, want nil", own, err)
					}
					mine[own] = data
					s.ID = shared
					if err := h.Store.CreateSession(ctx, s, alice); err != nil {
						t.Errorf("CreateSession(%s) err=%v, want nil", shared, err)
					}
				case 1:
					err := h.Store.UpdateSession(ctx, s)
					if _, ok := mine[own]; ok {
						if err != nil {
							t.Errorf("UpdateSession(%s) err=%v, want nil", own, err)
						}
						mine[own] = data
					} else if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("UpdateSession(%s) err=%v, want %v", own, err, store.ErrNotFound)
					}
					s.ID = shared
					if err := h.Store.UpdateSession(ctx, s); err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("UpdateSession(%s) err=%v, want nil or %v", shared, err, store.ErrNotFound)
					}
				case 2:
					list, err := h.Store.ListSessions(ctx, tenantA, "alice")
					if err != nil {
						t.Errorf("ListSessions err=%v, want nil", err)
					}
					for _, got := range list {
						if got.Tenant != tenantA || got.User != "alice" {
							t.Errorf("ListSessions gave Tenant=%q User=%q, want %q %q", got.Tenant, got.User, tenantA, "alice")
						}
					}
				case 3:
					if err := h.Store.DeleteSession(ctx, tenantA, "alice", own); err != nil {
						t.Errorf("DeleteSession(%s) err=%v, want nil", own, err)
					}
					delete(mine, own)
					if err := h.Store.DeleteSession(ctx, tenantA, "alice", shared); err != nil {
						t.Errorf("DeleteSession(%s) err=%v, want nil", shared, err)
					}
				case 4:
					got, err := h.Store.GetSession(ctx, tenantA, "alice", own)
					if d, ok := mine[own]; ok {
						if err != nil || !bytes.Equal(got.Data, d) {
							t.Errorf("GetSession(%s)=%q, %v, want %q, nil", own, got.Data, err, d)
						}
					} else if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("GetSession(%s) err=%v, want %v", own, err, store.ErrNotFound)
					}
					if _, err := h.Store.GetSession(ctx, tenantA, "alice", shared); err != nil && !errors.Is(err, store.ErrNotFound) {
						t.Errorf("GetSession(%s) err=%v, want nil or %v", shared, err, store.ErrNotFound)
					}
				}
			}
		})
	}
	wg.Wait()

	// The dust has settled: ListSessions and GetSession must agree, and
	// each worker's own IDs must hold what it last wrote.
	listed := listSessions(t, h.Store, tenantA, "alice")
	var ids []string
	for w := range workers {
		for i := range ownIDs {
			id := fmt.Sprintf("w%d-%d", w, i)
			ids = append(ids, id)
			if d, ok := want[w][id]; ok {
				if s, ok := listed[id]; !ok || !bytes.Equal(s.Data, d) {
					t.Errorf("ListSessions[%s]=%q, %v, want %q, true", id, s.Data, ok, d)
				}
			} else if _, ok := listed[id]; ok {
				t.Errorf("ListSessions has deleted %s", id)
			}
		}
	}
	for i := range sharedID {
		ids = append(ids, fmt.Sprintf("shared-%d", i))
	}
	for _, id := range ids {
		got, err := h.Store.GetSession(ctx, tenantA, "alice", id)
		if l, ok := listed[id]; ok {
			if err != nil {
				t.Errorf("GetSession(%s) err=%v, want nil as it is listed", id, err)
				continue
			}
			checkSession(t, got, l)
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession(%s) err=%v, want %v as it is not listed", id, err, store.ErrNotFound)
		}
	}
	if len(listed) > len(ids) {
		t.Errorf("ListSessions len=%d, want at most %d", len(listed), len(ids))
	}
}

func testCancelledContext(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	alice := putAccount(t, h.Store, tenantA, "alice", "a@example.com", []byte("v1"))
	s := createSession(t, h.Store, alice, "sid-1", []byte("d"), expiresIn(h, time.Hour))
	mustOK(t, "PutTenant", h.Store.PutTenant(t.Context(), tenantA, []byte("cfg")))
	putToken(t, h.Store, store.Token{Tenant: tenantA, ID: "tok-1", User: "alice", Kind: "verify", Expires: expiresIn(h, time.Hour)})

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	st := h.Store
	tests := []struct {
		name string
		call func() error
	}{
		{"CreateSession", func() error { return st.CreateSession(ctx, s, alice) }},
		{"GetSession", func() error { return errOf(st.GetSession(ctx, tenantA, "alice", "sid-1")) }},
		{"UpdateSession", func() error { return st.UpdateSession(ctx, s) }},
		{"DeleteSession", func() error { return st.DeleteSession(ctx, tenantA, "alice", "sid-1") }},
		{"ListSessions", func() error { return errOf(st.ListSessions(ctx, tenantA, "alice")) }},
		{"DeleteSessions", func() error { return st.DeleteSessions(ctx, tenantA, "alice") }},
		{"GetUser", func() error { return errOf(st.GetUser(ctx, tenantA, "alice")) }},
		{"GetUserByEmail", func() error { return errOf(st.GetUserByEmail(ctx, tenantA, "a@example.com")) }},
		{"CreateUser", func() error {
			return st.CreateUser(ctx, store.User{Tenant: tenantA, Name: "new", Email: "n@example.com"})
		}},
		{"PutToken", func() error {
			return st.PutToken(ctx, store.Token{Tenant: tenantA, ID: "tok-2", User: "alice", Kind: "verify", Expires: expiresIn(h, time.Hour)})
		}},
		{"TakeToken", func() error { return errOf(st.TakeToken(ctx, tenantA, "tok-1")) }},
		{"DeleteTokens", func() error { return st.DeleteTokens(ctx, tenantA, "alice") }},
		{"PutUser", func() error { return st.PutUser(ctx, alice, true) }},
		{"SwapUser", func() error { return st.SwapUser(ctx, alice, alice) }},
		{"DeleteUser", func() error { return st.DeleteUser(ctx, tenantA, "alice") }},
		{"ListUsers", func() error { return errOf(st.ListUsers(ctx, tenantA)) }},
		{"PutTenant", func() error { return st.PutTenant(ctx, tenantA, []byte("x")) }},
		{"DeleteTenant", func() error { return st.DeleteTenant(ctx, tenantA) }},
		{"GetTenant", func() error { return errOf(st.GetTenant(ctx, tenantA)) }},
		{"TenantsSince", func() error { return errOf(st.TenantsSince(ctx, store.TenantRevision{})) }},
		{"Reserve", func() error { _, _, err := st.Reserve(ctx, tenantA, "k", "id", 1, time.Minute); return err }},
		{"Settle", func() error { return st.Settle(ctx, tenantA, "k", "id", true) }},
		{"ResetCount", func() error { return st.ResetCount(ctx, tenantA, "k") }},
		{"PutAdminKey", func() error { return st.PutAdminKey(ctx, store.AdminKey{ID: "k", Tenant: tenantA}) }},
		{"GetAdminKey", func() error { return errOf(st.GetAdminKey(ctx, "k")) }},
		{"ListAdminKeys", func() error { return errOf(st.ListAdminKeys(ctx, tenantA)) }},
		{"DeleteAdminKey", func() error { return st.DeleteAdminKey(ctx, tenantA, "k") }},
		{"AppendAudit", func() error { return st.AppendAudit(ctx, tenantA, []byte("e")) }},
		{"ListAudit", func() error { return errOf(st.ListAudit(ctx, tenantA, 1)) }},
		{"GetApplied", func() error { return errOf(st.GetApplied(ctx, tenantA)) }},
		{"SwapApplied", func() error { return st.SwapApplied(ctx, tenantA, nil, []byte("x")) }},
		{"Ping", func() error { return st.Ping(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantErr(t, tt.name, tt.call(), context.Canceled)
		})
	}
	t.Run("Changes", func(t *testing.T) {
		t.Parallel()
		waitClosed(t, h.Store.Changes(ctx))
	})
}

func testPing(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	if err := h.Store.Ping(t.Context()); err != nil {
		t.Errorf("Ping err=%v, want nil", err)
	}
}

// expiresIn returns the store's current time plus d, at the millisecond
// precision that every store must keep.
func expiresIn(h Harness, d time.Duration) time.Time {
	return h.Now().Add(d).Truncate(time.Millisecond)
}

func mustOK(t testing.TB, op string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s err=%v, want nil", op, err)
	}
}

// wantErr checks that err is, or wraps, want.
func wantErr(t testing.TB, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s err=%v, want %v", op, err, want)
	}
}

// errOf returns the error of a call that also returns a value, so that
// the call fits in wantErr or in a func() error.
func errOf[T any](_ T, err error) error { return err }

func putUser(t testing.TB, st store.Store, tenant, name string, data []byte) store.User {
	t.Helper()
	u := store.User{Tenant: tenant, Name: name, Data: data}
	if err := st.PutUser(t.Context(), u, false); err != nil {
		t.Fatalf("PutUser(%q, %q) err=%v, want nil", tenant, name, err)
	}
	return u
}

func createSession(t testing.TB, st store.Store, owner store.User, id string, data []byte, expires time.Time) store.Session {
	t.Helper()
	s := store.Session{Tenant: owner.Tenant, User: owner.Name, ID: id, Data: data, Expires: expires}
	if err := st.CreateSession(t.Context(), s, owner); err != nil {
		t.Fatalf("CreateSession(%q, %q, %q) err=%v, want nil", owner.Tenant, owner.Name, id, err)
	}
	return s
}

func getSession(t testing.TB, st store.Store, tenant, user, id string) store.Session {
	t.Helper()
	s, err := st.GetSession(t.Context(), tenant, user, id)
	if err != nil {
		t.Fatalf("GetSession(%q, %q, %q) err=%v, want nil", tenant, user, id, err)
	}
	return s
}

func wantNoSession(t testing.TB, st store.Store, tenant, user, id string) {
	t.Helper()
	s, err := st.GetSession(t.Context(), tenant, user, id)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession(%q, %q, %q)=%+v, %v, want %v", tenant, user, id, s, err, store.ErrNotFound)
	}
}

func listSessions(t testing.TB, st store.Store, tenant, user string) map[string]store.Session {
	t.Helper()
	list, err := st.ListSessions(t.Context(), tenant, user)
	if err != nil {
		t.Fatalf("ListSessions(%q, %q) err=%v, want nil", tenant, user, err)
	}
	byID := make(map[string]store.Session, len(list))
	for _, s := range list {
		if _, dup := byID[s.ID]; dup {
			t.Errorf("ListSessions(%q, %q) lists ID %q twice", tenant, user, s.ID)
		}
		byID[s.ID] = s
	}
	return byID
}

// wantListed checks that ListSessions returns exactly want.
func wantListed(t testing.TB, st store.Store, tenant, user string, want ...store.Session) {
	t.Helper()
	got := listSessions(t, st, tenant, user)
	wantIDs := make([]string, 0, len(want))
	for _, w := range want {
		wantIDs = append(wantIDs, w.ID)
		if g, ok := got[w.ID]; ok {
			checkSession(t, g, w)
		}
	}
	gotIDs := slices.Sorted(maps.Keys(got))
	slices.Sort(wantIDs)
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("ListSessions(%q, %q) IDs=%q, want %q", tenant, user, gotIDs, wantIDs)
	}
}

func checkSession(t testing.TB, got, want store.Session) {
	t.Helper()
	if got.Tenant != want.Tenant {
		t.Errorf("session %q: Tenant=%q, want %q", want.ID, got.Tenant, want.Tenant)
	}
	if got.User != want.User {
		t.Errorf("session %q: User=%q, want %q", want.ID, got.User, want.User)
	}
	if got.ID != want.ID {
		t.Errorf("session %q: ID=%q, want %q", want.ID, got.ID, want.ID)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Errorf("session %q: Data=%q, want %q", want.ID, got.Data, want.Data)
	}
	if !got.Expires.Equal(want.Expires) {
		t.Errorf("session %q: Expires=%v, want %v", want.ID, got.Expires, want.Expires)
	}
}

// wantUser checks that GetUser returns want.
func wantUser(t testing.TB, st store.Store, want store.User) {
	t.Helper()
	got, err := st.GetUser(t.Context(), want.Tenant, want.Name)
	if err != nil || got.Tenant != want.Tenant || got.Name != want.Name || !bytes.Equal(got.Data, want.Data) {
		t.Errorf("GetUser(%q, %q)=%+v, %v, want %+v, nil", want.Tenant, want.Name, got, err, want)
	}
}

// wantUsers checks that ListUsers returns exactly want.
func wantUsers(t testing.TB, st store.Store, tenant string, want ...store.User) {
	t.Helper()
	list, err := st.ListUsers(t.Context(), tenant)
	if err != nil {
		t.Fatalf("ListUsers(%q) err=%v, want nil", tenant, err)
	}
	got := make(map[string][]byte, len(list))
	for _, u := range list {
		if u.Tenant != tenant {
			t.Errorf("ListUsers(%q) gave user %q with Tenant=%q", tenant, u.Name, u.Tenant)
		}
		got[u.Name] = u.Data
	}
	if len(got) != len(list) {
		t.Errorf("ListUsers(%q) len=%d with %d distinct names", tenant, len(list), len(got))
	}
	wantMap := make(map[string][]byte, len(want))
	for _, u := range want {
		wantMap[u.Name] = u.Data
	}
	if !maps.EqualFunc(got, wantMap, bytes.Equal) {
		t.Errorf("ListUsers(%q)=%q, want %q", tenant, got, wantMap)
	}
}

// wantTenant checks that GetTenant returns want.
func wantTenant(t testing.TB, st store.Store, id string, want []byte) {
	t.Helper()
	got, err := st.GetTenant(t.Context(), id)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("GetTenant(%s)=%q, %v, want %q, nil", id, got, err, want)
	}
}

// wantTenants checks that TenantsSince from the zero revision returns
// exactly want, as every tenant.
func wantTenants(t testing.TB, st store.Store, want map[string][]byte) {
	t.Helper()
	got, err := st.TenantsSince(t.Context(), store.TenantRevision{})
	if err != nil {
		t.Fatalf("TenantsSince(zero) err=%v, want nil", err)
	}
	if !got.All || len(got.Deleted) != 0 || !maps.EqualFunc(got.Put, want, bytes.Equal) {
		t.Errorf("TenantsSince(zero) All=%v Put=%q Deleted=%q, want all of %q", got.All, got.Put, got.Deleted, want)
	}
}

func waitChange(t testing.TB, ch <-chan struct{}, after string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("Changes channel closed while waiting for %s, want a value", after)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Changes gave nothing within %v after %s", waitTimeout, after)
	}
}

func waitClosed(t testing.TB, ch <-chan struct{}) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("Changes channel still open %v after its context ended", waitTimeout)
		}
	}
}
