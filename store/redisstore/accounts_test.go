package redisstore_test

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/store"
)

// TestAccountKeyLayout checks the keys of addresses and tokens, that the
// user's own keys share its slot, and that DeleteTenant leaves none.
func TestAccountKeyLayout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	st := newStore(t, c, prefix)

	u := store.User{Tenant: "acme", Name: "alice", Email: "a{x}@example.com", Data: []byte("user")}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser err=%v, want nil", err)
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	tok := store.Token{Tenant: "acme", ID: "tok-1", User: "alice", Kind: "verify", Data: []byte("d"), Expires: exp}
	if err := st.PutToken(ctx, tok); err != nil {
		t.Fatalf("PutToken err=%v, want nil", err)
	}
	want := []string{
		prefix + "e:acme:a{x}@example.com", prefix + "es:acme",
		prefix + "tk:acme:tok-1", prefix + "tks:acme",
		prefix + "u:{acme:alice}", prefix + "ue:{acme:alice}", prefix + "tkp:{acme:alice}",
		prefix + "users:acme",
	}
	slices.Sort(want)
	if got := redistest.Keys(t, c, prefix); !slices.Equal(got, want) {
		t.Fatalf("keys=%q, want %q", got, want)
	}
	for _, k := range []string{prefix + "ue:{acme:alice}", prefix + "tkp:{acme:alice}"} {
		if hashTag(k) != "acme:alice" {
			t.Errorf("%q has hash tag %q, want the user's, acme:alice", k, hashTag(k))
		}
	}
	if v, err := c.Get(ctx, prefix+"ue:{acme:alice}").Result(); err != nil || v != u.Email {
		t.Errorf("GET ue=%q, %v, want %q", v, err, u.Email)
	}
	if v, err := c.Get(ctx, prefix+"e:acme:a{x}@example.com").Result(); err != nil || !hasHolder(v, "alice") {
		t.Errorf("GET claim=%q, %v, want \"<ms> alice\"", v, err)
	}
	if got, err := c.PExpireTime(ctx, prefix+"tk:acme:tok-1").Result(); err != nil || got != time.Duration(exp.UnixMilli())*time.Millisecond {
		t.Errorf("PEXPIRETIME(token)=%v, %v, want %v", got, err, exp.UnixMilli())
	}
	if v, err := c.HGet(ctx, prefix+"tkp:{acme:alice}", "verify").Result(); err != nil || v != "tok-1" {
		t.Errorf("HGET tkp verify=%q, %v, want tok-1", v, err)
	}
	// A token of a user nobody holds, too.
	ghost := store.Token{Tenant: "acme", ID: "tok-2", User: "ghost", Kind: "reset", Expires: exp}
	if err := st.PutToken(ctx, ghost); err != nil {
		t.Fatalf("PutToken err=%v, want nil", err)
	}

	if err := st.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatalf("DeleteTenant err=%v, want nil", err)
	}
	// The ghost's pointer hash is left to its TTL; nothing else remains.
	left := redistest.Keys(t, c, prefix)
	if want := []string{prefix + "tkp:{acme:ghost}"}; !slices.Equal(left, want) {
		t.Errorf("keys after DeleteTenant=%q, want %q", left, want)
	}
	if _, err := st.TakeToken(ctx, "acme", "tok-2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeToken(ghost's) after DeleteTenant err=%v, want %v", err, store.ErrNotFound)
	}
}

// TestStaleClaim writes claims straight into Redis, as a crash between
// claiming an address and writing the record leaves them, and checks
// that a lookup ignores them and that another user takes one over only
// once it is older than the lease, never while its holder's record names
// the address.
func TestStaleClaim(t *testing.T) {
	t.Parallel()
	old := strconv.FormatInt(time.Now().Add(-2*time.Minute).UnixMilli(), 10)
	recent := strconv.FormatInt(time.Now().UnixMilli(), 10)
	tests := []struct {
		name     string
		claim    string // value of the claim on a@example.com
		holder   string // ghost's address record, "" for none
		wantFree bool   // bob may take the address
	}{
		{"old, holder without record", old + " ghost", "", true},
		{"old, holder's record names another address", old + " ghost", "g@example.com", true},
		{"old, holder's record names it", old + " ghost", "a@example.com", false},
		{"recent, holder without record", recent + " ghost", "", false},
		{"malformed", "garbage", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			c := redistest.Client(t)
			prefix := redistest.Prefix(t, c)
			st := newStore(t, c, prefix)
			if err := c.Set(ctx, prefix+"e:acme:a@example.com", tt.claim, 0).Err(); err != nil {
				t.Fatalf("SET err=%v", err)
			}
			if tt.holder != "" {
				ghost := store.User{Tenant: "acme", Name: "ghost", Email: tt.holder, Data: []byte("g")}
				if tt.holder == "a@example.com" {
					// Its record only: the claim is the one set above.
					if err := c.Set(ctx, prefix+"u:{acme:ghost}", "g", 0).Err(); err != nil {
						t.Fatalf("SET err=%v", err)
					}
					if err := c.Set(ctx, prefix+"ue:{acme:ghost}", tt.holder, 0).Err(); err != nil {
						t.Fatalf("SET err=%v", err)
					}
				} else if err := st.PutUser(ctx, ghost, false); err != nil {
					t.Fatalf("PutUser(ghost) err=%v, want nil", err)
				}
			}
			got, err := st.GetUserByEmail(ctx, "acme", "a@example.com")
			if tt.holder == "a@example.com" {
				if err != nil || got.Name != "ghost" {
					t.Errorf("GetUserByEmail=%+v, %v, want ghost", got, err)
				}
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetUserByEmail over a stale claim=%+v, %v, want %v", got, err, store.ErrNotFound)
			}

			bob := store.User{Tenant: "acme", Name: "bob", Email: "a@example.com", Data: []byte("b")}
			err = st.CreateUser(ctx, bob)
			if !tt.wantFree {
				if !errors.Is(err, store.ErrConflict) {
					t.Errorf("CreateUser(bob) err=%v, want %v", err, store.ErrConflict)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateUser(bob) err=%v, want nil", err)
			}
			if got, err := st.GetUserByEmail(ctx, "acme", "a@example.com"); err != nil || got.Name != "bob" {
				t.Errorf("GetUserByEmail after the takeover=%+v, %v, want bob", got, err)
			}
		})
	}
}

func hasHolder(claim, user string) bool {
	for i := range len(claim) {
		if claim[i] == ' ' {
			_, err := strconv.ParseInt(claim[:i], 10, 64)
			return err == nil && claim[i+1:] == user
		}
	}
	return false
}
