package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// testCounters checks the fixed-window counters behind brute-force limits:
// places are taken up to the limit and no further, a retried reservation
// or settlement changes nothing, a failed place counts and a given-back one
// does not, a reset forgets failures but not places in flight, windows
// expire, and counters stay within their tenant.
func testCounters(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	const window = 2 * time.Second
	reserve := func(tenant, key, id string, limit int64) bool {
		t.Helper()
		ok, left, err := h.Store.Reserve(ctx, tenant, key, id, limit, window)
		if err != nil {
			t.Fatalf("Reserve(%s, %s, %s, %d) err=%v, want nil", tenant, key, id, limit, err)
		}
		if left <= 0 || left > window {
			t.Errorf("Reserve(%s, %s, %s, %d): time left=%v, want in (0, %v]", tenant, key, id, limit, left, window)
		}
		return ok
	}
	settle := func(tenant, key, id string, failed bool) {
		t.Helper()
		mustOK(t, fmt.Sprintf("Settle(%s, %s, %s, %v)", tenant, key, id, failed), h.Store.Settle(ctx, tenant, key, id, failed))
	}
	if ok, left, err := h.Store.Reserve(ctx, tenantA, "a:nobody", "x", 0, window); err != nil || ok || left != 0 {
		t.Errorf("Reserve with limit 0 = %v, %v, %v; want false, 0, nil", ok, left, err)
	}
	settle(tenantA, "a:nobody", "x", true) // never reserved: nothing to count

	for i, id := range []string{"1", "2", "3"} {
		if !reserve(tenantA, "a:alice", id, 3) {
			t.Errorf("place %d of 3 refused", i+1)
		}
	}
	if reserve(tenantA, "a:alice", "4", 3) {
		t.Error("a fourth place under limit 3 was given")
	}
	if !reserve(tenantA, "a:alice", "2", 3) {
		t.Error("a retried Reserve of a place held was refused")
	}
	if !reserve(tenantB, "a:alice", "1", 1) {
		t.Error("tenant B's counter is full of tenant A's places")
	}
	settle(tenantA, "a:alice", "1", false) // given back: a place is free again
	if !reserve(tenantA, "a:alice", "4", 3) {
		t.Error("a place given back was not free again")
	}
	settle(tenantA, "a:alice", "2", true)
	settle(tenantA, "a:alice", "2", true) // a retry counts nothing more
	settle(tenantA, "a:alice", "3", true)
	settle(tenantA, "a:alice", "4", false)
	// Two failures counted, no place held: one more place under 3.
	if !reserve(tenantA, "a:alice", "5", 3) || reserve(tenantA, "a:alice", "6", 3) {
		t.Error("after two failures, want exactly one more place under limit 3")
	}
	// A reset forgets the failures, not the place of "5" in flight.
	mustOK(t, "ResetCount", h.Store.ResetCount(ctx, tenantA, "a:alice"))
	mustOK(t, "ResetCount of a missing counter", h.Store.ResetCount(ctx, tenantA, "a:missing"))
	if !reserve(tenantA, "a:alice", "6", 2) || reserve(tenantA, "a:alice", "7", 2) {
		t.Error("after ResetCount with one place in flight, want exactly one more place under limit 2")
	}
	settle(tenantA, "a:alice", "5", true)
	settle(tenantA, "a:alice", "6", false)
	if !reserve(tenantA, "a:alice", "8", 2) || reserve(tenantA, "a:alice", "9", 2) {
		t.Error("the failure of a place taken before ResetCount did not count")
	}

	// The window is fixed: it runs from the first place, and places inside
	// it do not extend it; failures and places in flight go with it.
	if !reserve(tenantA, "ip:192.0.2.1", "1", 2) {
		t.Fatal("first place refused")
	}
	settle(tenantA, "ip:192.0.2.1", "1", true)
	h.Advance(window / 2)
	reserve(tenantA, "ip:192.0.2.1", "2", 2)
	if reserve(tenantA, "ip:192.0.2.1", "3", 2) {
		t.Error("a place beyond the limit was given")
	}
	h.Advance(window/2 + 200*time.Millisecond)
	settle(tenantA, "ip:192.0.2.1", "2", true) // its window is over: nothing to count
	if !reserve(tenantA, "ip:192.0.2.1", "3", 1) {
		t.Error("the first place of a new window was refused")
	}
	// A counter whose places were all given back is gone, window and all.
	settle(tenantA, "ip:192.0.2.1", "3", false)
	if ok, left, err := h.Store.Reserve(ctx, tenantA, "ip:192.0.2.1", "4", 1, window); err != nil || !ok || left < window-time.Second {
		t.Errorf("Reserve after every place was given back = %v, %v, %v; want a place in a new window of %v", ok, left, err, window)
	}
}

// testCountersConcurrent checks that places are taken atomically: however
// many attempts race on two replicas, exactly limit of them get one.
func testCountersConcurrent(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	const limit, attempts = 10, 60
	var mu sync.Mutex
	var got, errs int
	var wg sync.WaitGroup
	for i := range attempts {
		st := h.Store
		if i%2 == 1 {
			st = h.Peer
		}
		wg.Go(func() {
			ok, _, err := st.Reserve(ctx, tenantA, "a:alice", strconv.Itoa(i), limit, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
			} else if ok {
				got++
			}
		})
	}
	wg.Wait()
	if errs > 0 || got != limit {
		t.Errorf("%d racing Reserve calls under limit %d: %d places, %d errors; want %d, 0", attempts, limit, got, errs, limit)
	}
}

// testAdminKeys checks admin key storage: lookup by ID, per-tenant listing
// and deletion, and removal with the tenant.
func testAdminKeys(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	id := func(s string) string { return fmt.Sprintf("%s-%d", s, time.Now().UnixNano()) }
	ka := store.AdminKey{ID: id("ka"), Tenant: tenantA, Data: []byte("a\x00\xff")}
	kb := store.AdminKey{ID: id("kb"), Tenant: tenantB, Data: []byte("b")}
	mustOK(t, "PutAdminKey", h.Store.PutAdminKey(ctx, ka))
	mustOK(t, "PutAdminKey", h.Store.PutAdminKey(ctx, kb))
	got, err := h.Store.GetAdminKey(ctx, ka.ID)
	if err != nil || got.Tenant != tenantA || !bytes.Equal(got.Data, ka.Data) {
		t.Errorf("GetAdminKey = %+v, %v; want %+v", got, err, ka)
	}
	wantErr(t, "GetAdminKey(missing)", errOf(h.Store.GetAdminKey(ctx, "missing")), store.ErrNotFound)
	list, err := h.Store.ListAdminKeys(ctx, tenantA)
	if err != nil || len(list) != 1 || list[0].ID != ka.ID {
		t.Errorf("ListAdminKeys(A) = %+v, %v; want [%s]", list, err, ka.ID)
	}
	// Tenant A cannot delete tenant B's key.
	mustOK(t, "DeleteAdminKey", h.Store.DeleteAdminKey(ctx, tenantA, kb.ID))
	if _, err := h.Store.GetAdminKey(ctx, kb.ID); err != nil {
		t.Errorf("B's key after A deleted it: err=%v, want still there", err)
	}
	mustOK(t, "DeleteAdminKey", h.Store.DeleteAdminKey(ctx, tenantB, kb.ID))
	mustOK(t, "DeleteAdminKey again", h.Store.DeleteAdminKey(ctx, tenantB, kb.ID))
	wantErr(t, "GetAdminKey(deleted)", errOf(h.Store.GetAdminKey(ctx, kb.ID)), store.ErrNotFound)
	// Deleting the tenant deletes its keys.
	mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantA, []byte("cfg")))
	mustOK(t, "DeleteTenant", h.Store.DeleteTenant(ctx, tenantA))
	wantErr(t, "GetAdminKey(key of a deleted tenant)", errOf(h.Store.GetAdminKey(ctx, ka.ID)), store.ErrNotFound)
	if list, _ := h.Store.ListAdminKeys(ctx, tenantA); len(list) != 0 {
		t.Errorf("keys listed for a deleted tenant: %+v", list)
	}
}

// testAudit checks the audit log: newest first, limited, capped at
// store.MaxAudit, per tenant, and kept when the tenant is deleted.
func testAudit(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	for i := range 5 {
		mustOK(t, "AppendAudit", h.Store.AppendAudit(ctx, tenantA, []byte(fmt.Sprintf("e%d", i))))
	}
	mustOK(t, "AppendAudit", h.Store.AppendAudit(ctx, tenantB, []byte("other")))
	got, err := h.Store.ListAudit(ctx, tenantA, 3)
	want := [][]byte{[]byte("e4"), []byte("e3"), []byte("e2")}
	if err != nil || !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("ListAudit(A, 3) = %q, %v; want %q", got, err, want)
	}
	mustOK(t, "DeleteTenant", h.Store.DeleteTenant(ctx, tenantA))
	if got, _ := h.Store.ListAudit(ctx, tenantA, 100); len(got) != 5 {
		t.Errorf("audit entries after the tenant's deletion = %d, want 5 (kept)", len(got))
	}
	for i := range store.MaxAudit + 5 {
		mustOK(t, "AppendAudit", h.Store.AppendAudit(ctx, tenantB, []byte(fmt.Sprintf("f%d", i))))
	}
	got, _ = h.Store.ListAudit(ctx, tenantB, store.MaxAudit+100)
	if len(got) != store.MaxAudit || string(got[0]) != fmt.Sprintf("f%d", store.MaxAudit+4) {
		t.Errorf("capped log: %d entries, newest %q; want %d, f%d", len(got), got[0], store.MaxAudit, store.MaxAudit+4)
	}
}

// testSwapUser checks the compare-and-swap of a user record.
func testSwapUser(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	v1 := putUser(t, h.Store, tenantA, "alice", []byte("v1"))
	s := createSession(t, h.Store, v1, "sid-1", []byte("d"), expiresIn(h, time.Hour))
	v2 := store.User{Tenant: tenantA, Name: "alice", Data: []byte("v2")}
	mustOK(t, "SwapUser", h.Store.SwapUser(ctx, v1, v2))
	wantUser(t, h.Store, v2)
	checkSession(t, getSession(t, h.Store, tenantA, "alice", s.ID), s) // sessions are kept
	// A stale expectation changes nothing.
	v3 := store.User{Tenant: tenantA, Name: "alice", Data: []byte("v3")}
	wantErr(t, "SwapUser from a stale record", h.Store.SwapUser(ctx, v1, v3), store.ErrConflict)
	wantUser(t, h.Store, v2) // a failed swap changes nothing
	nobody := store.User{Tenant: tenantA, Name: "nobody"}
	wantErr(t, "SwapUser of a missing user", h.Store.SwapUser(ctx, nobody, store.User{Tenant: tenantA, Name: "nobody", Data: []byte("x")}), store.ErrConflict)
}

// testInvalidations checks that ending sessions through one Store reaches
// the invalidation watchers of another on the same backend, and that the
// feed becomes current.
func testInvalidations(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	got := make(chan [2]string, 16)
	current := h.Store.WatchInvalidations(ctx, func(tenant, user string) {
		select {
		case got <- [2]string{tenant, user}:
		default:
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for !current(50*time.Millisecond) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !current(50 * time.Millisecond) {
		t.Fatal("the invalidation feed never became current")
	}
	drain := func() {
		for {
			select {
			case <-got:
			default:
				return
			}
		}
	}
	u := putUser(t, h.Peer, tenantA, "alice", []byte("v1"))
	createSession(t, h.Peer, u, "sid-1", []byte("d"), expiresIn(h, time.Hour))
	for _, tt := range []struct {
		name string
		do   func() error
		want [2]string
	}{
		{"DeleteSession", func() error { return h.Peer.DeleteSession(ctx, tenantA, "alice", "sid-1") }, [2]string{tenantA, "alice"}},
		{"DeleteSessions", func() error { return h.Peer.DeleteSessions(ctx, tenantA, "alice") }, [2]string{tenantA, "alice"}},
		{"PutUser endSessions", func() error { return h.Peer.PutUser(ctx, u, true) }, [2]string{tenantA, "alice"}},
		{"DeleteUser", func() error { return h.Peer.DeleteUser(ctx, tenantA, "alice") }, [2]string{tenantA, "alice"}},
		{"DeleteTenant", func() error { return h.Peer.DeleteTenant(ctx, tenantA) }, [2]string{tenantA, ""}},
	} {
		drain()
		mustOK(t, tt.name, tt.do())
		select {
		case inv := <-got:
			if inv != tt.want && inv != [2]string{"", ""} {
				t.Errorf("%s: invalidation %q, want %q", tt.name, inv, tt.want)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s: no invalidation within 2 s", tt.name)
		}
	}
}

// testApplied checks the applied record: a compare-and-swap that exactly
// one of several racing writers wins, per tenant, seen by another
// replica, and kept when the tenant is deleted.
func testApplied(t *testing.T, mk func(*testing.T) Harness) {
	h := mk(t)
	ctx := t.Context()
	wantErr(t, "GetApplied(missing)", errOf(h.Store.GetApplied(ctx, tenantA)), store.ErrNotFound)
	wantErr(t, "SwapApplied from a record that does not exist", h.Store.SwapApplied(ctx, tenantA, []byte("v0"), []byte("v1")), store.ErrConflict)
	mustOK(t, "SwapApplied from none", h.Store.SwapApplied(ctx, tenantA, nil, []byte("v1")))
	wantErr(t, "SwapApplied from none over an existing record", h.Store.SwapApplied(ctx, tenantA, nil, []byte("v2")), store.ErrConflict)
	wantErr(t, "SwapApplied from a stale record", h.Store.SwapApplied(ctx, tenantA, []byte("v0"), []byte("v2")), store.ErrConflict)
	if got, err := h.Peer.GetApplied(ctx, tenantA); err != nil || string(got) != "v1" {
		t.Errorf("Peer.GetApplied = %q, %v; want v1 (failed swaps change nothing)", got, err)
	}
	mustOK(t, "SwapApplied", h.Peer.SwapApplied(ctx, tenantA, []byte("v1"), []byte("v2")))
	if got, err := h.Store.GetApplied(ctx, tenantA); err != nil || string(got) != "v2" {
		t.Errorf("GetApplied after the peer's swap = %q, %v; want v2", got, err)
	}
	wantErr(t, "GetApplied of another tenant", errOf(h.Store.GetApplied(ctx, tenantB)), store.ErrNotFound)

	// The record is what tells a tenant deleted on purpose from a lost
	// one: deleting the tenant keeps it.
	mustOK(t, "PutTenant", h.Store.PutTenant(ctx, tenantA, []byte("cfg")))
	mustOK(t, "DeleteTenant", h.Store.DeleteTenant(ctx, tenantA))
	if got, err := h.Store.GetApplied(ctx, tenantA); err != nil || string(got) != "v2" {
		t.Errorf("GetApplied after DeleteTenant = %q, %v; want v2 (kept)", got, err)
	}

	// Replicas racing from the same record: exactly one wins.
	const racers = 8
	var wg sync.WaitGroup
	wins := make(chan string, racers)
	for i := range racers {
		st := h.Store
		if i%2 == 1 {
			st = h.Peer
		}
		v := fmt.Sprintf("r%d", i)
		wg.Go(func() {
			err := st.SwapApplied(ctx, tenantA, []byte("v2"), []byte(v))
			switch {
			case err == nil:
				wins <- v
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("racing SwapApplied err=%v, want nil or %v", err, store.ErrConflict)
			}
		})
	}
	wg.Wait()
	close(wins)
	var won []string
	for v := range wins {
		won = append(won, v)
	}
	if len(won) != 1 {
		t.Fatalf("racing SwapApplied winners = %q, want exactly one", won)
	}
	if got, _ := h.Store.GetApplied(ctx, tenantA); string(got) != won[0] {
		t.Errorf("GetApplied after the race = %q, want the winner's %q", got, won[0])
	}

	// An empty data removes the record.
	mustOK(t, "SwapApplied to none", h.Store.SwapApplied(ctx, tenantA, []byte(won[0]), nil))
	wantErr(t, "GetApplied after removal", errOf(h.Peer.GetApplied(ctx, tenantA)), store.ErrNotFound)
}
