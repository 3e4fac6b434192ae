package session

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store/memstore"
	"github.com/latchkeyhq/latchkey/store/storetest"
)

var (
	key1 = bytes.Repeat([]byte{1}, 32)
	key2 = bytes.Repeat([]byte{2}, 32)
)

type fixture struct {
	clock *storetest.Clock
	st    *memstore.Store
	m     *Manager
	t     *Tenant
}

func newFixture(tb testing.TB, keys ...[]byte) *fixture {
	tb.Helper()
	if keys == nil {
		keys = [][]byte{key1}
	}
	f := &fixture{clock: storetest.NewClock(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))}
	f.st = memstore.New(memstore.Config{Now: f.clock.Now})
	f.m = f.manager(tb, keys...)
	tn := validTenant()
	tn.Session = SessionPolicy{IdleTimeout: Duration(time.Hour), AbsoluteLifetime: Duration(24 * time.Hour)}
	saved, _, err := f.m.PutTenant(tb.Context(), tn)
	if err != nil {
		tb.Fatalf("PutTenant: %v", err)
	}
	f.t = &saved
	pw := "correct horse"
	if _, err := f.m.CreateUser(tb.Context(), "acme", UserInput{Username: "alice", Password: &pw}); err != nil {
		tb.Fatalf("CreateUser: %v", err)
	}
	return f
}

// manager returns another Manager over the fixture's store and clock, as a
// second replica (or a restarted one) would be.
func (f *fixture) manager(tb testing.TB, keys ...[]byte) *Manager {
	tb.Helper()
	m, err := NewManager(f.st, Config{Keys: keys, Now: f.clock.Now, Password: cheapParams})
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	return m
}

func (f *fixture) login(tb testing.TB, m *Manager, presented ...string) (Session, string) {
	tb.Helper()
	s, c, err := m.Login(tb.Context(), f.t, LoginInput{Username: "alice", Password: "correct horse", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0", Presented: presented})
	if err != nil {
		tb.Fatalf("Login: %v", err)
	}
	return s, c.Value
}

func TestLoginFailuresAreIndistinguishable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	disabled := true
	pw := "another password"
	if _, err := f.m.CreateUser(t.Context(), "acme", UserInput{Username: "carol", Password: &pw, Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []LoginInput{
		{Username: "alice", Password: "wrong"},
		{Username: "nobody", Password: "correct horse"},
		{Username: "carol", Password: "another password"},
		{Username: "", Password: "x"},
		{Username: "alice", Password: strings.Repeat("x", MaxPasswordLen+1)},
	} {
		_, c, err := f.m.Login(t.Context(), f.t, in)
		if !errors.Is(err, ErrInvalidCredentials) || c != nil {
			t.Errorf("Login(%q) = %v, cookie %v; want ErrInvalidCredentials and no cookie", in.Username, err, c)
		}
	}
}

func TestLoadAndExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s, v := f.login(t, f.m)
	if s.UserAgent != "Chrome on Linux" {
		t.Errorf("UserAgent = %q, want %q", s.UserAgent, "Chrome on Linux")
	}

	// Activity slides the idle expiry: 50 minutes at a time, well past the
	// first hour, stays logged in.
	for range 5 {
		f.clock.Advance(50 * time.Minute)
		got, err := f.m.Load(t.Context(), f.t, []string{v})
		if err != nil {
			t.Fatalf("Load after %v: %v", f.clock.Now().Sub(s.CreatedAt), err)
		}
		if want := f.clock.Now().Add(time.Hour); !got.IdleExpiresAt.Equal(want) {
			t.Errorf("IdleExpiresAt = %v, want %v", got.IdleExpiresAt, want)
		}
	}
	// Idle for over an hour: gone.
	f.clock.Advance(61 * time.Minute)
	if _, err := f.m.Load(t.Context(), f.t, []string{v}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Load after idling = %v, want ErrUnauthenticated", err)
	}

	// The absolute lifetime ends a session however active it is.
	_, v = f.login(t, f.m)
	for range 25 {
		f.clock.Advance(59 * time.Minute)
		if _, err := f.m.Load(t.Context(), f.t, []string{v}); err != nil {
			break
		}
	}
	if _, err := f.m.Load(t.Context(), f.t, []string{v}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Load after 24h of activity = %v, want ErrUnauthenticated", err)
	}
}

func TestLoadRefreshesRarely(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s, v := f.login(t, f.m)
	f.clock.Advance(time.Minute) // under refreshAfter(1h) = 5m
	got, err := f.m.Load(t.Context(), f.t, []string{v})
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeenAt.Equal(s.LastSeenAt) {
		t.Errorf("LastSeenAt = %v, want unchanged %v: no store write before refreshAfter", got.LastSeenAt, s.LastSeenAt)
	}
}

func TestLoadRefusesBadCookies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, v := f.login(t, f.m)
	other := *f.t
	other.ID = "beta"
	otherValue, _ := f.m.codec.encode(other.CookieName(), []byte(strings.Repeat("x", tokenLen)+"alice"))
	for name, values := range map[string][]string{
		"none":             nil,
		"duplicate":        {v, v},
		"tampered":         {v[:len(v)-2] + "AA"},
		"truncated":        {v[:len(v)/2]},
		"oversized":        {strings.Repeat("A", 5000)},
		"empty":            {""},
		"other tenant":     {otherValue},
		"never issued":     {mustEncode(t, f.m, f.t, strings.Repeat("y", tokenLen)+"alice")},
		"no username":      {mustEncode(t, f.m, f.t, strings.Repeat("y", tokenLen))},
		"unknown username": {mustEncode(t, f.m, f.t, strings.Repeat("y", tokenLen)+"mallory")},
	} {
		if _, err := f.m.Load(t.Context(), f.t, values); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Load(%s) = %v, want ErrUnauthenticated", name, err)
		}
	}
}

func mustEncode(tb testing.TB, m *Manager, t *Tenant, payload string) string {
	tb.Helper()
	v, err := m.codec.encode(t.CookieName(), []byte(payload))
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestLoginRevokesPresentedSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old, oldValue := f.login(t, f.m)
	s, v := f.login(t, f.m, oldValue)
	if s.ID == old.ID || v == oldValue {
		t.Fatal("login reused the presented session")
	}
	if _, err := f.m.Load(t.Context(), f.t, []string{oldValue}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Load(presented cookie) = %v, want ErrUnauthenticated: login must end it", err)
	}
	if _, err := f.m.Load(t.Context(), f.t, []string{v}); err != nil {
		t.Errorf("Load(new cookie) = %v, want nil", err)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t, key1)
	_, oldValue := f.login(t, f.m)

	rotated := f.manager(t, key2, key1) // new key signs, old verifies
	if _, err := rotated.Load(t.Context(), f.t, []string{oldValue}); err != nil {
		t.Errorf("Load(old cookie) after rotation = %v, want nil", err)
	}
	_, newValue := f.login(t, rotated)
	if _, err := f.manager(t, key2).Load(t.Context(), f.t, []string{newValue}); err != nil {
		t.Errorf("new cookie under key2 alone = %v, want nil: it must be signed with the first key", err)
	}
	if _, err := f.manager(t, key1).Load(t.Context(), f.t, []string{newValue}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("new cookie under key1 alone = %v, want ErrUnauthenticated", err)
	}
	retired := f.manager(t, key2) // old key dropped
	if _, err := retired.Load(t.Context(), f.t, []string{oldValue}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("old cookie after its key was retired = %v, want ErrUnauthenticated", err)
	}
}

func TestUserChangesEndSessions(t *testing.T) {
	t.Parallel()
	pw, disabled := "a new password", true
	for name, change := range map[string]func(f *fixture) error{
		"password": func(f *fixture) error {
			_, err := f.m.UpdateUser(t.Context(), "acme", "alice", UserInput{Password: &pw})
			return err
		},
		"disable": func(f *fixture) error {
			_, err := f.m.UpdateUser(t.Context(), "acme", "alice", UserInput{Disabled: &disabled})
			return err
		},
		"delete":        func(f *fixture) error { return f.m.DeleteUser(t.Context(), "acme", "alice") },
		"delete tenant": func(f *fixture) error { return f.m.DeleteTenant(t.Context(), "acme") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			_, v := f.login(t, f.m)
			if err := change(f); err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.Load(t.Context(), f.t, []string{v}); !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("Load after %s = %v, want ErrUnauthenticated", name, err)
			}
		})
	}
}

func TestSessionLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.m.maxSessions = 3
	var first string
	for i := range 5 {
		_, v := f.login(t, f.m)
		if i == 0 {
			first = v
		}
		f.clock.Advance(time.Second)
	}
	ss, err := f.m.Sessions(t.Context(), f.t, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 3 {
		t.Errorf("len(Sessions) = %d, want 3", len(ss))
	}
	if _, err := f.m.Load(t.Context(), f.t, []string{first}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("oldest session = %v, want ended", err)
	}
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse", DefaultPasswordParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash = %q, want OWASP's argon2id parameters", h)
	}
	if !verifyPassword(h, "correct horse") || verifyPassword(h, "correct horsE") {
		t.Error("verifyPassword does not tell the right password from a wrong one")
	}
	for _, bad := range []string{
		"", "plain", "$argon2i$v=19$m=65536,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", // 4 GiB
		"$argon2id$v=19$m=65536,t=100,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=65536,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=65536,t=1,p=1$$aGFzaGhhc2hoYXNoaGFzaA",
	} {
		if CheckPasswordHash(bad) == nil {
			t.Errorf("CheckPasswordHash(%q) = nil, want an error", bad)
		}
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	good := "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=" // 32 bytes of 0x01
	keys, err := ParseKeys(good + ", " + strings.TrimRight(good, "="))
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], key1) {
		t.Errorf("ParseKeys = %d keys, %v; want 2 keys", len(keys), err)
	}
	for _, bad := range []string{"", "short", good + ",", "!!!!"} {
		if _, err := ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) = nil error, want one", bad)
		} else if strings.Contains(err.Error(), good) {
			t.Errorf("ParseKeys error echoes a key: %v", err)
		}
	}
}

func TestSummarizeUserAgent(t *testing.T) {
	t.Parallel()
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36":                                   "Chrome on Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36 Edg/120":                       "Edge on Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1": "Safari on iOS",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.0; rv:120.0) Gecko/20100101 Firefox/120.0":                                                     "Firefox on macOS",
		"Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Mobile Safari/537.36":                                  "Chrome on Android",
		"curl/8.5.0":                 "curl",
		"":                           "",
		"weird\x01agent with spaces": "weirdagent",
	} {
		if got := summarizeUserAgent(ua); got != want {
			t.Errorf("summarizeUserAgent(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestHashingBudget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m, err := NewManager(f.st, Config{Keys: [][]byte{key1}, Now: f.clock.Now, Password: cheapParams,
		HashMemory: int64(cheapParams.Memory) << 10, HashWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, v := f.login(t, m)
	// Another login holds the only hashing slot.
	if err := m.hashMem.Acquire(t.Context(), m.hashMemKiB); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, _, err = m.Login(t.Context(), f.t, LoginInput{Username: "alice", Password: "correct horse"})
	if !errors.Is(err, ErrBusy) {
		t.Errorf("Login while hashing is saturated = %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Login waited %v for a slot, want about HashWait", d)
	}
	// Loading a session hashes nothing, so it never waits.
	if _, err := m.Load(t.Context(), f.t, []string{v}); err != nil {
		t.Errorf("Load while hashing is saturated = %v, want nil", err)
	}
	// Nor does a login refused by its limit: no password is checked.
	f.t.LoginLimits = LoginLimits{PerAccount: 1, PerIP: 100, Window: Duration(time.Minute)}
	m.hashMem.Release(m.hashMemKiB)
	m.Login(t.Context(), f.t, LoginInput{Username: "alice", Password: "wrong"})
	m.hashMem.Acquire(t.Context(), m.hashMemKiB)
	_, _, err = m.Login(t.Context(), f.t, LoginInput{Username: "alice", Password: "correct horse"})
	if !errors.Is(err, ErrRateLimited) {
		t.Errorf("limited Login while hashing is saturated = %v, want ErrRateLimited (no hashing attempted)", err)
	}
	m.hashMem.Release(m.hashMemKiB)
}

func TestLoginUpgradesForeignHashes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A hash imported with other parameters than the Manager's.
	foreign, err := HashPassword("imported pw", PasswordParams{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.CreateUser(t.Context(), "acme", UserInput{Username: "imp", PasswordHash: &foreign}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.m.Login(t.Context(), f.t, LoginInput{Username: "imp", Password: "imported pw"}); err != nil {
		t.Fatalf("Login: %v", err)
	}
	u, err := f.m.GetUser(t.Context(), "acme", "imp")
	if err != nil {
		t.Fatal(err)
	}
	h, err := parsePHC(u.PasswordHash)
	if err != nil || h.p.Memory != cheapParams.Memory || h.p.Time != cheapParams.Time || !verifyPassword(u.PasswordHash, "imported pw") {
		t.Errorf("stored hash after login = %q, want one with the Manager's parameters for the same password", u.PasswordHash)
	}
}

func TestFailedLoginsOnlyCountFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.t.LoginLimits = LoginLimits{PerAccount: 2, PerIP: 100, Window: Duration(time.Minute)}
	// Many correct logins in a row never lock the account.
	for i := range 5 {
		if _, _, err := f.m.Login(t.Context(), f.t, LoginInput{Username: "alice", Password: "correct horse", ClientIP: "192.0.2.1"}); err != nil {
			t.Fatalf("correct login %d: %v", i+1, err)
		}
	}
	for range 2 {
		f.m.Login(t.Context(), f.t, LoginInput{Username: "alice", Password: "wrong", ClientIP: "192.0.2.1"})
	}
	if _, _, err := f.m.Login(t.Context(), f.t, LoginInput{Username: "alice", Password: "correct horse"}); !errors.Is(err, ErrRateLimited) {
		t.Errorf("after 2 failures = %v, want ErrRateLimited", err)
	}
}

func TestConcurrentLoginsDuringHashUpgrade(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	foreign, _ := HashPassword("imported pw", PasswordParams{Memory: 128, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32})
	if _, err := f.m.CreateUser(t.Context(), "acme", UserInput{Username: "imp", PasswordHash: &foreign}); err != nil {
		t.Fatal(err)
	}
	// Every login but the first races the first one's re-hash, which
	// changes the stored user under them; none may fail for it.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, _, err := f.m.Login(t.Context(), f.t, LoginInput{Username: "imp", Password: "imported pw"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a correct login during the hash upgrade = %v, want nil", err)
		}
	}
}
