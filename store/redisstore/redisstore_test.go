package redisstore_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/redisstore"
	"github.com/latchkeyhq/latchkey/store/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	redistest.Client(t) // skip or fail once here, not in every subtest
	storetest.TestStore(t, func(t *testing.T) storetest.Harness {
		c := redistest.Client(t)
		prefix := redistest.Prefix(t, c)
		// The peer has its own client, as another replica would.
		return storetest.Harness{
			Store:   newStore(t, c, prefix),
			Peer:    newStore(t, redistest.Client(t), prefix),
			Now:     time.Now,
			Advance: time.Sleep,
		}
	})
}

func TestKeyLayout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	st := newStore(t, c, prefix)

	if err := st.PutTenant(ctx, "acme", []byte("cfg")); err != nil {
		t.Fatalf("PutTenant err=%v, want nil", err)
	}
	now := time.Now()
	long := now.Add(2 * time.Hour).Truncate(time.Millisecond)
	short := now.Add(time.Hour).Truncate(time.Millisecond)
	names := []string{"alice", "bob", "we}ird{name: ü"}
	for _, name := range names {
		u := store.User{Tenant: "acme", Name: name, Data: []byte("user")}
		if err := st.PutUser(ctx, u, false); err != nil {
			t.Fatalf("PutUser err=%v, want nil", err)
		}
		// The longer expiry first: the TTL of the hash must not shrink.
		for _, s := range []store.Session{
			{Tenant: "acme", User: name, ID: "sid-long", Data: []byte("\x00data"), Expires: long},
			{Tenant: "acme", User: name, ID: "sid-short", Data: []byte("\x00data"), Expires: short},
		} {
			if err := st.CreateSession(ctx, s, u); err != nil {
				t.Fatalf("CreateSession err=%v, want nil", err)
			}
		}
	}

	tenants := prefix + "tenants"
	want := []string{tenants, tenants + ":rev{" + tenants + "}", tenants + ":log{" + tenants + "}", prefix + "users:acme"}
	for _, name := range names {
		want = append(want, prefix+"u:{acme:"+name+"}", prefix+"s:{acme:"+name+"}")
	}
	slices.Sort(want)
	if got := redistest.Keys(t, c, prefix); !slices.Equal(got, want) {
		t.Fatalf("keys=%q, want %q", got, want)
	}

	tags := map[string]string{}
	for _, name := range names {
		uk, sk := prefix+"u:{acme:"+name+"}", prefix+"s:{acme:"+name+"}"
		// Equal hash tags mean one Cluster slot, which the Lua scripts and
		// MULTI/EXEC over both keys need.
		if ut, stag := hashTag(uk), hashTag(sk); ut != stag {
			t.Errorf("hash tags of %q and %q = %q and %q, want equal", uk, sk, ut, stag)
		}
		tags[name] = hashTag(uk)

		if got, err := c.PTTL(ctx, uk).Result(); err != nil || got != -1 {
			t.Errorf("PTTL(%q)=%v, %v, want -1 (no TTL), nil", uk, got, err)
		}
		if got, err := c.PExpireTime(ctx, sk).Result(); err != nil || got != time.Duration(long.UnixMilli())*time.Millisecond {
			t.Errorf("PEXPIRETIME(%q)=%v, %v, want %v", sk, got, err, long.UnixMilli())
		}
		v, err := c.HGet(ctx, sk, "sid-short").Result()
		if want := binaryExpiry(short) + "\x00data"; err != nil || v != want {
			t.Errorf("HGET(%q, sid-short)=%q, %v, want %q, nil", sk, v, err, want)
		}
	}
	if tags["alice"] != "acme:alice" || tags["bob"] != "acme:bob" {
		t.Errorf("hash tags=%q, want acme:alice and acme:bob", tags)
	}
	// A tenant must not be pinned to one slot.
	if tags["alice"] == tags["bob"] {
		t.Errorf("alice and bob share hash tag %q, want one per user", tags["alice"])
	}
	for _, k := range []string{tenants, prefix + "users:acme"} {
		if hashTag(k) != k {
			t.Errorf("%q has hash tag %q, want none", k, hashTag(k))
		}
	}
	// The tenants' revision and log share the tenants hash's slot: their
	// tag is its whole name, which is what a key without a tag hashes.
	for _, k := range []string{tenants + ":rev{" + tenants + "}", tenants + ":log{" + tenants + "}"} {
		if hashTag(k) != tenants {
			t.Errorf("%q has hash tag %q, want %q", k, hashTag(k), tenants)
		}
	}
}

// TestStoredSessionValues writes session values straight into Redis, in
// the form this package writes (a mark and 6 bytes of expiry) and
// malformed, and checks that every method, Lua scripts included, reads
// the first and refuses the others without a panic or an outage.
func TestStoredSessionValues(t *testing.T) {
	t.Parallel()
	now := time.Now()
	live, dead := now.Add(time.Hour).Truncate(time.Millisecond), now.Add(-time.Minute).Truncate(time.Millisecond)

	t.Run("well-formed", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c := redistest.Client(t)
		prefix := redistest.Prefix(t, c)
		st := newStore(t, c, prefix)
		key := prefix + "s:{acme:alice}"
		data := "\x02\x1f\x00\x1f\x32"
		if err := c.HSet(ctx, key, "live", binaryExpiry(live)+data, "dead", binaryExpiry(dead)+data).Err(); err != nil {
			t.Fatalf("HSET err=%v", err)
		}

		got, err := st.GetSession(ctx, "acme", "alice", "live")
		if err != nil || string(got.Data) != data || !got.Expires.Equal(live) {
			t.Errorf("GetSession(live)=%+v, %v, want Data %q, Expires %v", got, err, data, live)
		}
		if _, err := st.GetSession(ctx, "acme", "alice", "dead"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetSession(dead) err=%v, want %v", err, store.ErrNotFound)
		}
		// The Lua scripts read the stored expiry: an expired session
		// must not be refreshed back to life.
		s := store.Session{Tenant: "acme", User: "alice", ID: "dead", Data: []byte("new"), Expires: live}
		if err := st.UpdateSession(ctx, s); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpdateSession(dead) err=%v, want %v", err, store.ErrNotFound)
		}
		list, err := st.ListSessions(ctx, "acme", "alice")
		if err != nil || len(list) != 1 || list[0].ID != "live" || !list[0].Expires.Equal(live) {
			t.Errorf("ListSessions=%+v, %v, want the live session only", list, err)
		}
		if n, err := c.HExists(ctx, key, "dead").Result(); err != nil || n {
			t.Errorf("HEXISTS(dead) after ListSessions=%v, %v, want false (pruned)", n, err)
		}
		later := live.Add(time.Hour)
		s = store.Session{Tenant: "acme", User: "alice", ID: "live", Data: []byte("new"), Expires: later}
		if err := st.UpdateSession(ctx, s); err != nil {
			t.Fatalf("UpdateSession(live) err=%v, want nil", err)
		}
		if v, err := c.HGet(ctx, key, "live").Result(); err != nil || v != binaryExpiry(later)+"new" {
			t.Errorf("HGET(live) after UpdateSession=%q, %v, want %q", v, err, binaryExpiry(later)+"new")
		}
	})

	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		c := redistest.Client(t)
		prefix := redistest.Prefix(t, c)
		st := newStore(t, c, prefix)
		key := prefix + "s:{acme:alice}"
		digits := strconv.FormatInt(live.UnixMilli(), 10) // an expiry as text, not this package's form
		for _, v := range []string{"", "\x01", "\x01\x00\x00\x01", "12345", digits, digits + "data", "-123456789012data", "\x02" + binaryExpiry(live)[1:]} {
			if err := c.HSet(ctx, key, "bad", v).Err(); err != nil {
				t.Fatalf("HSET err=%v", err)
			}
			_, err := st.GetSession(ctx, "acme", "alice", "bad")
			if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) {
				t.Errorf("GetSession(%q) err=%v, want a malformed record error", v, err)
			}
			s := store.Session{Tenant: "acme", User: "alice", ID: "bad", Data: []byte("d"), Expires: live}
			if err := st.UpdateSession(ctx, s); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("UpdateSession over %q err=%v, want %v", v, err, store.ErrNotFound)
			}
		}
	})
}

func TestListUsersSkipsStaleIndexEntry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := redistest.Client(t)
	prefix := redistest.Prefix(t, c)
	st := newStore(t, c, prefix)

	alice := store.User{Tenant: "acme", Name: "alice", Data: []byte("a")}
	if err := st.PutUser(ctx, alice, false); err != nil {
		t.Fatalf("PutUser err=%v, want nil", err)
	}
	// What a crash between SADD and SET leaves behind.
	if err := c.SAdd(ctx, prefix+"users:acme", "ghost").Err(); err != nil {
		t.Fatalf("SADD err=%v", err)
	}
	users, err := st.ListUsers(ctx, "acme")
	if err != nil || len(users) != 1 || users[0].Name != "alice" {
		t.Errorf("ListUsers=%+v, %v, want [alice], nil", users, err)
	}

	if err := st.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatalf("DeleteTenant err=%v, want nil", err)
	}
	if got := redistest.Keys(t, c, prefix); len(got) != 0 {
		t.Errorf("keys after DeleteTenant=%q, want none", got)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { c.Close() })
	tests := []struct {
		name    string
		client  redis.UniversalClient
		prefix  string
		wantErr []string // substrings of the error; none means success
	}{
		{"default prefix", c, "", nil},
		{"custom prefix", c, "app:latchkey:", nil},
		{"nil client", nil, "", []string{"client"}},
		{"open brace", c, "{app}:", []string{"brace"}},
		{"close brace", c, "app}:", []string{"brace"}},
		{"space", c, "my app:", []string{"whitespace"}},
		{"newline", c, "app:\n", []string{"whitespace"}},
		{"every problem", nil, "a{ b", []string{"client", "brace", "whitespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, err := redisstore.New(tt.client, redisstore.Config{Prefix: tt.prefix})
			if len(tt.wantErr) == 0 {
				if err != nil || st == nil {
					t.Errorf("New=%v, %v, want a Store, nil", st, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New err=nil, want an error mentioning %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New err=%q, want it to mention %q", err, w)
				}
			}
		})
	}
}

func TestInvalidTenantID(t *testing.T) {
	t.Parallel()
	// Rejected before any round trip, so no Redis is needed.
	st := newStore(t, redistest.Down(t), "")
	for _, id := range []string{"", "Acme", "a:b", "a{b}", "a b", "acme\n", "ü"} {
		t.Run(strconv.Quote(id), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			_, getErr := st.GetUser(ctx, id, "alice")
			putErr := st.PutTenant(ctx, id, nil)
			for op, err := range map[string]error{"GetUser": getErr, "PutTenant": putErr} {
				if err == nil || errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "invalid tenant") {
					t.Errorf("%s(%q) err=%v, want an invalid tenant error", op, id, err)
				}
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	st := newStore(t, redistest.Down(t), "")
	s := store.Session{Tenant: "acme", User: "alice", ID: "sid-1", Data: []byte("d"), Expires: time.Now().Add(time.Hour)}
	u := store.User{Tenant: "acme", Name: "alice"}
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"CreateSession", func(ctx context.Context) error { return st.CreateSession(ctx, s, u) }},
		{"GetSession", func(ctx context.Context) error {
			_, err := st.GetSession(ctx, "acme", "alice", "sid-1")
			return err
		}},
		{"UpdateSession", func(ctx context.Context) error { return st.UpdateSession(ctx, s) }},
		{"DeleteSession", func(ctx context.Context) error { return st.DeleteSession(ctx, "acme", "alice", "sid-1") }},
		{"ListSessions", func(ctx context.Context) error {
			_, err := st.ListSessions(ctx, "acme", "alice")
			return err
		}},
		{"DeleteSessions", func(ctx context.Context) error { return st.DeleteSessions(ctx, "acme", "alice") }},
		{"GetUser", func(ctx context.Context) error {
			_, err := st.GetUser(ctx, "acme", "alice")
			return err
		}},
		{"PutUser", func(ctx context.Context) error { return st.PutUser(ctx, u, true) }},
		{"DeleteUser", func(ctx context.Context) error { return st.DeleteUser(ctx, "acme", "alice") }},
		{"GetUserByEmail", func(ctx context.Context) error {
			_, err := st.GetUserByEmail(ctx, "acme", "a@example.com")
			return err
		}},
		{"CreateUser", func(ctx context.Context) error { return st.CreateUser(ctx, u) }},
		{"PutToken", func(ctx context.Context) error {
			return st.PutToken(ctx, store.Token{Tenant: "acme", ID: "t", User: "alice", Kind: "verify", Expires: s.Expires})
		}},
		{"TakeToken", func(ctx context.Context) error {
			_, err := st.TakeToken(ctx, "acme", "t")
			return err
		}},
		{"DeleteTokens", func(ctx context.Context) error { return st.DeleteTokens(ctx, "acme", "alice") }},
		{"ListUsers", func(ctx context.Context) error {
			_, err := st.ListUsers(ctx, "acme")
			return err
		}},
		{"PutTenant", func(ctx context.Context) error { return st.PutTenant(ctx, "acme", nil) }},
		{"DeleteTenant", func(ctx context.Context) error { return st.DeleteTenant(ctx, "acme") }},
		{"GetTenant", func(ctx context.Context) error {
			_, err := st.GetTenant(ctx, "acme")
			return err
		}},
		{"TenantsSince", func(ctx context.Context) error {
			_, err := st.TenantsSince(ctx, store.TenantRevision{})
			return err
		}},
		{"Ping", func(ctx context.Context) error { return st.Ping(ctx) }},
	}
	const quickly = 2 * time.Second
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := tt.call(t.Context())
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s err=%v, want %v", tt.name, err, store.ErrUnavailable)
			}
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
				t.Errorf("%s err=%v, want neither not found nor conflict", tt.name, err)
			}
			if d := time.Since(start); d > quickly {
				t.Errorf("%s took %v, want under %v", tt.name, d, quickly)
			}
		})
	}
	t.Run("Changes", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		ch := st.Changes(ctx)
		if d := time.Since(start); d > quickly {
			t.Errorf("Changes took %v, want under %v", d, quickly)
		}
		cancel()
		select {
		case <-closed(ch):
		case <-time.After(quickly):
			t.Errorf("Changes channel still open %v after cancel", quickly)
		}
	})
}

func newStore(t testing.TB, c redis.UniversalClient, prefix string) *redisstore.Store {
	t.Helper()
	st, err := redisstore.New(c, redisstore.Config{Prefix: prefix})
	if err != nil {
		t.Fatalf("New err=%v, want nil", err)
	}
	return st
}

// hashTag returns the part of key that Redis Cluster hashes: the text
// between the first '{' and the next '}', if non-empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// closed returns a channel that is closed once ch is closed, draining ch.
func closed(ch <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range ch {
		}
		close(done)
	}()
	return done
}

// binaryExpiry returns the stored expiry prefix of a session expiring at
// at: 0x01, then unix milliseconds as 6 bytes, big-endian.
func binaryExpiry(at time.Time) string {
	ms := at.UnixMilli()
	b := []byte{0x01, 0, 0, 0, 0, 0, 0}
	for i := 6; i > 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	return string(b)
}
