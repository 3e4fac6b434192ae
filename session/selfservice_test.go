package session

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/memstore"
	"github.com/latchkeyhq/latchkey/store/redisstore"
	"github.com/latchkeyhq/latchkey/store/storetest"
)

// mailbox is a Mailer that keeps what it is sent.
type mailbox struct {
	mu    sync.Mutex
	mails []Mail
}

func (b *mailbox) Send(_ context.Context, m Mail) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mails = append(b.mails, m)
	return nil
}

// to returns the mails sent to addr, of kind k ("" for any).
func (b *mailbox) to(addr string, k MailKind) []Mail {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Mail
	for _, m := range b.mails {
		if m.To == addr && (k == "" || m.Kind == k) {
			out = append(out, m)
		}
	}
	return out
}

func (b *mailbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.mails)
}

var linkToken = regexp.MustCompile(`https://app\.acme\.com/(verify|reset)#token=([A-Za-z0-9_-]{43})`)

// tokenOf returns the token of the link in the newest mail of kind k to
// addr.
func (b *mailbox) tokenOf(tb testing.TB, addr string, k MailKind) string {
	tb.Helper()
	ms := b.to(addr, k)
	if len(ms) == 0 {
		tb.Fatalf("no %s mail to %s", k, addr)
	}
	m := ms[len(ms)-1]
	match := linkToken.FindStringSubmatch(m.Text)
	if match == nil {
		tb.Fatalf("%s mail has no link with a token: %q", k, m.Text)
	}
	if want := map[MailKind]string{MailVerify: "verify", MailReset: "reset"}[k]; match[1] != want {
		tb.Fatalf("%s mail links to /%s", k, match[1])
	}
	return match[2]
}

// acctFixture is a tenant with self-service accounts over one store, and
// the Managers (replicas) over it.
type acctFixture struct {
	clock *storetest.Clock
	st    store.Store
	m     *Manager
	t     *Tenant
	mail  *mailbox
}

func accountsPolicy(v Verification) *AccountsPolicy {
	return &AccountsPolicy{
		Signup:            true,
		EmailVerification: v,
		LoginWithEmail:    true,
		VerifyURL:         "https://app.acme.com/verify",
		ResetURL:          "https://app.acme.com/reset",
		Limits:            AccountLimits{PerIP: 1000, PerAddress: 1000, Window: Duration(time.Hour)},
	}
}

// eachStore runs fn over a memstore and over Redis (REDIS_ADDR, a prefix
// of its own).
func eachStore(t *testing.T, fn func(t *testing.T, newStore func(tb testing.TB, clock *storetest.Clock) store.Store)) {
	t.Helper()
	t.Run("memstore", func(t *testing.T) {
		t.Parallel()
		fn(t, memStore)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		fn(t, func(tb testing.TB, clock *storetest.Clock) store.Store {
			c := redistest.Client(tb)
			st, err := redisstore.New(c, redisstore.Config{Prefix: redistest.Prefix(tb, c), Now: clock.Now})
			if err != nil {
				tb.Fatal(err)
			}
			return st
		})
	})
}

func memStore(_ testing.TB, clock *storetest.Clock) store.Store {
	return memstore.New(memstore.Config{Now: clock.Now})
}

func newAcctFixture(tb testing.TB, a *AccountsPolicy, newStore func(testing.TB, *storetest.Clock) store.Store) *acctFixture {
	tb.Helper()
	// Near the real time: Redis expires keys by its own clock.
	f := &acctFixture{clock: storetest.NewClock(time.Now().UTC().Truncate(time.Second)), mail: &mailbox{}}
	if newStore == nil {
		newStore = memStore
	}
	f.st = newStore(tb, f.clock)
	f.m = f.replica(tb)
	tn := validTenant()
	tn.Session = SessionPolicy{IdleTimeout: Duration(time.Hour), AbsoluteLifetime: Duration(24 * time.Hour)}
	tn.Accounts = a
	saved, _, err := f.m.PutTenant(tb.Context(), tn)
	if err != nil {
		tb.Fatalf("PutTenant: %v", err)
	}
	f.t = &saved
	return f
}

// replica is another Manager over the fixture's store, clock and mailbox.
func (f *acctFixture) replica(tb testing.TB) *Manager {
	tb.Helper()
	m, err := NewManager(f.st, Config{Keys: [][]byte{key1}, Now: f.clock.Now, Password: cheapParams, Mailer: f.mail})
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	tb.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// drain waits for the background work of every flow so far.
func (f *acctFixture) drain(ms ...*Manager) {
	for _, m := range append(ms, f.m) {
		m.bg.pending.Wait()
	}
}

func (f *acctFixture) user(tb testing.TB, name, email, password string, verified bool) User {
	tb.Helper()
	in := UserInput{Username: name, Password: &password}
	if email != "" {
		in.Email, in.EmailVerified = &email, &verified
	}
	u, err := f.m.CreateUser(tb.Context(), f.t.ID, in)
	if err != nil {
		tb.Fatalf("CreateUser(%s): %v", name, err)
	}
	return u
}

func (f *acctFixture) login(tb testing.TB, m *Manager, name, password string) (Session, string, error) {
	tb.Helper()
	s, c, err := m.Login(tb.Context(), f.t, LoginInput{Username: name, Password: password, ClientIP: "192.0.2.1"})
	if err != nil {
		return Session{}, "", err
	}
	return s, c.Value, nil
}

func (f *acctFixture) mustLogin(tb testing.TB, m *Manager, name, password string) (Session, string) {
	tb.Helper()
	s, v, err := f.login(tb, m, name, password)
	if err != nil {
		tb.Fatalf("Login(%s): %v", name, err)
	}
	return s, v
}

func kindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

const strongPassword = "blue kettle symphony"

func TestSignupVerifyRequired(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, newStore func(testing.TB, *storetest.Clock) store.Store) {
		f := newAcctFixture(t, accountsPolicy(VerificationRequired), newStore)
		res, err := f.m.Signup(t.Context(), f.t, SignupInput{Username: "zoe", Email: "Zoe@Example.com", Password: strongPassword, StartInput: StartInput{ClientIP: "192.0.2.9"}})
		if err != nil || res.Session != nil || res.Cookie != nil {
			t.Fatalf("Signup = %+v, %v; want no session, nil", res, err)
		}
		f.drain()
		u, err := f.m.GetUser(t.Context(), f.t.ID, "zoe")
		if err != nil || u.Email != "Zoe@Example.com" || u.EmailVerified {
			t.Fatalf("GetUser = %+v, %v; want Email Zoe@Example.com unverified", u, err)
		}
		// Unverified: the right password is refused as such.
		if _, _, err := f.login(t, f.m, "zoe", strongPassword); !errors.Is(err, ErrEmailUnverified) {
			t.Fatalf("Login unverified = %v, want ErrEmailUnverified", err)
		}
		if _, _, err := f.login(t, f.m, "zoe", "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("Login wrong password = %v, want ErrInvalidCredentials", err)
		}
		tok := f.mail.tokenOf(t, "Zoe@Example.com", MailVerify)
		s, c, err := f.m.VerifyEmail(t.Context(), f.t, tok, StartInput{UserAgent: "curl/8"})
		if err != nil || c == nil || s.Username != "zoe" {
			t.Fatalf("VerifyEmail = %+v, %v, %v", s, c, err)
		}
		if _, err := f.m.Load(t.Context(), f.t, []string{c.Value}); err != nil {
			t.Errorf("Load after verify: %v", err)
		}
		if u, _ := f.m.GetUser(t.Context(), f.t.ID, "zoe"); !u.EmailVerified {
			t.Error("EmailVerified = false after VerifyEmail")
		}
		// Single use.
		if _, _, err := f.m.VerifyEmail(t.Context(), f.t, tok, StartInput{}); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("VerifyEmail again = %v, want ErrInvalidToken", err)
		}
		// Verified: login by username and by address (any case).
		f.mustLogin(t, f.m, "zoe", strongPassword)
		if s, _ := f.mustLogin(t, f.m, "ZOE@example.com", strongPassword); s.Username != "zoe" {
			t.Errorf("Login by address: Username = %q, want zoe", s.Username)
		}
	})
}

func TestSignupNotRequired(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		v         Verification
		wantMails int
	}{
		{"optional", VerificationOptional, 1},
		{"off", VerificationOff, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := accountsPolicy(tc.v)
			if tc.v == VerificationOff {
				a.VerifyURL = ""
			}
			f := newAcctFixture(t, a, nil)
			res, err := f.m.Signup(t.Context(), f.t, SignupInput{Username: "zoe", Email: "zoe@example.com", Password: strongPassword})
			if err != nil || res.Session == nil || res.Cookie == nil {
				t.Fatalf("Signup = %+v, %v; want a session", res, err)
			}
			if _, err := f.m.Load(t.Context(), f.t, []string{res.Cookie.Value}); err != nil {
				t.Errorf("Load: %v", err)
			}
			f.drain()
			if got := len(f.mail.to("zoe@example.com", MailVerify)); got != tc.wantMails {
				t.Errorf("verify mails = %d, want %d", got, tc.wantMails)
			}
			// Taken username or address: one answer for both.
			for _, in := range []SignupInput{
				{Username: "zoe", Email: "other@example.com", Password: strongPassword},
				{Username: "zed", Email: "ZOE@example.com", Password: strongPassword},
			} {
				_, err := f.m.Signup(t.Context(), f.t, in)
				var e *Error
				if !errors.As(err, &e) || e.Kind != KindConflict || e.Detail != "this username or email address cannot be used" {
					t.Errorf("Signup(%s, %s) = %v, want the signup conflict", in.Username, in.Email, err)
				}
			}
		})
	}
}

func TestSignupEnumeration(t *testing.T) {
	t.Parallel()
	f := newAcctFixture(t, accountsPolicy(VerificationRequired), nil)
	f.user(t, "alice", "Alice@Example.com", "alice's password", true)
	inputs := []struct {
		name string
		in   SignupInput
		// The mail it causes: kind, to.
		kind MailKind
		to   string
	}{
		{"new", SignupInput{Username: "zoe", Email: "zoe@example.com"}, MailVerify, "zoe@example.com"},
		{"address taken", SignupInput{Username: "mallory", Email: "alice@example.COM"}, MailSignupTaken, "Alice@Example.com"},
		{"username taken", SignupInput{Username: "alice", Email: "bob@example.com"}, MailSignupTaken, "bob@example.com"},
	}
	var results []SignupResult
	for _, tc := range inputs {
		tc.in.Password = strongPassword
		res, err := f.m.Signup(t.Context(), f.t, tc.in)
		if err != nil {
			t.Fatalf("Signup(%s) = %v", tc.name, err)
		}
		results = append(results, res)
	}
	for i, r := range results {
		if r != (SignupResult{}) {
			t.Errorf("Signup(%s) = %+v, want the empty result", inputs[i].name, r)
		}
	}
	f.drain()
	for _, tc := range inputs {
		if got := f.mail.to(tc.to, tc.kind); len(got) != 1 {
			t.Errorf("%s: %d %s mails to %s, want 1", tc.name, len(got), tc.kind, tc.to)
		}
	}
	if n := f.mail.count(); n != len(inputs) {
		t.Errorf("mails sent = %d, want %d", n, len(inputs))
	}
	us, _ := f.m.ListUsers(t.Context(), f.t.ID)
	if len(us) != 2 {
		t.Errorf("users = %d, want 2 (alice, zoe)", len(us))
	}
	if _, err := f.m.GetUser(t.Context(), f.t.ID, "mallory"); !errors.Is(err, ErrNotFound) {
		t.Errorf("mallory was created: %v", err)
	}
}

func TestSignupInput(t *testing.T) {
	t.Parallel()
	f := newAcctFixture(t, accountsPolicy(VerificationRequired), nil)
	for _, tc := range []struct {
		name string
		in   SignupInput
		want Kind // 0: a *ValidationError
	}{
		{"bad username", SignupInput{Username: "a b", Email: "zoe@example.com", Password: strongPassword}, 0},
		{"bad email", SignupInput{Username: "zoe", Email: "Zoe <zoe@example.com>", Password: strongPassword}, 0},
		{"short password", SignupInput{Username: "zoe", Email: "zoe@example.com", Password: "short"}, KindWeakPassword},
		{"empty password", SignupInput{Username: "zoe", Email: "zoe@example.com"}, KindWeakPassword},
	} {
		_, err := f.m.Signup(t.Context(), f.t, tc.in)
		var ve *ValidationError
		if tc.want == 0 && !errors.As(err, &ve) || tc.want != 0 && kindOf(err) != tc.want {
			t.Errorf("%s: Signup = %v, want kind %v", tc.name, err, tc.want)
		}
	}
	f.drain()
	if n := f.mail.count(); n != 0 {
		t.Errorf("mails = %d, want 0", n)
	}
}

func TestFlowsNotEnabled(t *testing.T) {
	t.Parallel()
	noReset := accountsPolicy(VerificationOptional)
	noReset.ResetURL = ""
	noSignup := accountsPolicy(VerificationRequired)
	noSignup.Signup = false
	off := accountsPolicy(VerificationOff)
	off.VerifyURL = ""
	type flow struct {
		name string
		call func(f *acctFixture) error
	}
	ctx := context.Background()
	flows := map[string]flow{
		"signup": {"signup", func(f *acctFixture) error {
			_, err := f.m.Signup(ctx, f.t, SignupInput{Username: "zoe", Email: "zoe@example.com", Password: strongPassword})
			return err
		}},
		"verify": {"verify", func(f *acctFixture) error {
			_, _, err := f.m.VerifyEmail(ctx, f.t, strings.Repeat("A", 43), StartInput{})
			return err
		}},
		"resend": {"resend", func(f *acctFixture) error { return f.m.ResendVerification(ctx, f.t, "zoe@example.com", "") }},
		"send":   {"send", func(f *acctFixture) error { return f.m.SendVerification(ctx, f.t, "alice") }},
		"reset-request": {"reset-request", func(f *acctFixture) error {
			return f.m.RequestPasswordReset(ctx, f.t, "zoe@example.com", "")
		}},
		"reset": {"reset", func(f *acctFixture) error {
			_, _, err := f.m.ResetPassword(ctx, f.t, strings.Repeat("A", 43), strongPassword, StartInput{})
			return err
		}},
		"change": {"change", func(f *acctFixture) error {
			_, _, err := f.m.ChangePassword(ctx, f.t, Session{Tenant: f.t.ID, Username: "alice"}, "alice's password", strongPassword, StartInput{})
			return err
		}},
	}
	for _, tc := range []struct {
		name     string
		accounts *AccountsPolicy
		off      []string
	}{
		{"no accounts", nil, []string{"signup", "verify", "resend", "send", "reset-request", "reset", "change"}},
		{"no signup", noSignup, []string{"signup"}},
		{"verification off", off, []string{"verify", "resend", "send"}},
		{"no reset url", noReset, []string{"reset-request", "reset"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newAcctFixture(t, tc.accounts, nil)
			f.user(t, "alice", "", "alice's password", false)
			for name, fl := range flows {
				err := fl.call(f)
				if got, want := errors.Is(err, ErrNotEnabled), contains(tc.off, name); got != want {
					t.Errorf("%s: err = %v, not-enabled %v, want %v", fl.name, err, got, want)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestTokens(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, newStore func(testing.TB, *storetest.Clock) store.Store) {
		type flowCase struct {
			name string
			// issue mails a token to zoe, use spends it.
			kind MailKind
		}
		for _, fc := range []flowCase{{"verify", MailVerify}, {"reset", MailReset}} {
			t.Run(fc.name, func(t *testing.T) {
				t.Parallel()
				f := newAcctFixture(t, accountsPolicy(VerificationRequired), newStore)
				f.user(t, "zoe", "zoe@example.com", "zoe's password", false)
				issue := func() string {
					t.Helper()
					var err error
					if fc.kind == MailVerify {
						err = f.m.ResendVerification(t.Context(), f.t, "zoe@example.com", "192.0.2.1")
					} else {
						err = f.m.RequestPasswordReset(t.Context(), f.t, "ZOE@example.com", "192.0.2.1")
					}
					if err != nil {
						t.Fatal(err)
					}
					f.drain()
					return f.mail.tokenOf(t, "zoe@example.com", fc.kind)
				}
				use := func(tok string) error {
					var err error
					if fc.kind == MailVerify {
						_, _, err = f.m.VerifyEmail(t.Context(), f.t, tok, StartInput{})
					} else {
						_, _, err = f.m.ResetPassword(t.Context(), f.t, tok, "a new "+strongPassword, StartInput{})
					}
					return err
				}
				// Expired.
				tok := issue()
				ttl := f.t.tokenTTL(string(fc.kind))
				f.clock.Advance(ttl)
				if err := use(tok); !errors.Is(err, ErrInvalidToken) {
					t.Errorf("expired: %v, want ErrInvalidToken", err)
				}
				// Superseded by a newer one.
				older, newer := issue(), ""
				f.clock.Advance(time.Second)
				newer = issue()
				if older == newer {
					t.Fatal("two tokens alike")
				}
				if err := use(older); !errors.Is(err, ErrInvalidToken) {
					t.Errorf("superseded: %v, want ErrInvalidToken", err)
				}
				// Invalidated by a password change.
				tok = issue()
				pw := "changed by an admin"
				if _, err := f.m.UpdateUser(t.Context(), f.t.ID, "zoe", UserInput{Password: &pw}); err != nil {
					t.Fatal(err)
				}
				if err := use(tok); !errors.Is(err, ErrInvalidToken) {
					t.Errorf("after a password change: %v, want ErrInvalidToken", err)
				}
				// Invalidated by a change of address.
				tok = issue()
				other := "zoe2@example.com"
				if _, err := f.m.UpdateUser(t.Context(), f.t.ID, "zoe", UserInput{Email: &other}); err != nil {
					t.Fatal(err)
				}
				if err := use(tok); !errors.Is(err, ErrInvalidToken) {
					t.Errorf("after an address change: %v, want ErrInvalidToken", err)
				}
				back := "zoe@example.com"
				if _, err := f.m.UpdateUser(t.Context(), f.t.ID, "zoe", UserInput{Email: &back}); err != nil {
					t.Fatal(err)
				}
				// The other kind's route, and garbage.
				tok = issue()
				var err error
				if fc.kind == MailVerify {
					_, _, err = f.m.ResetPassword(t.Context(), f.t, tok, "a new "+strongPassword, StartInput{})
				} else {
					_, _, err = f.m.VerifyEmail(t.Context(), f.t, tok, StartInput{})
				}
				if !errors.Is(err, ErrInvalidToken) {
					t.Errorf("on the other route: %v, want ErrInvalidToken", err)
				}
				for _, bad := range []string{"", "x", strings.Repeat("A", 43), tok + "A", "not base64!"} {
					if err := use(bad); !errors.Is(err, ErrInvalidToken) {
						t.Errorf("use(%q) = %v, want ErrInvalidToken", bad, err)
					}
				}
				// Works once, then not.
				tok = issue()
				if err := use(tok); err != nil {
					t.Fatalf("fresh token: %v", err)
				}
				if err := use(tok); !errors.Is(err, ErrInvalidToken) {
					t.Errorf("reused: %v, want ErrInvalidToken", err)
				}
			})
		}
	})
}

func TestResetPassword(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, newStore func(testing.TB, *storetest.Clock) store.Store) {
		f := newAcctFixture(t, accountsPolicy(VerificationRequired), newStore)
		f.user(t, "zoe", "Zoe@example.com", "zoe's password", false)
		// Unverified zoe cannot log in; an operator-made session stands in.
		f.t.Accounts.EmailVerification = VerificationOptional
		_, v1 := f.mustLogin(t, f.m, "zoe", "zoe's password")
		// A session another replica serves from its cache.
		cached := f.replica(t)
		cached.EnableCache(t.Context(), 100)
		_, v2 := f.mustLogin(t, cached, "zoe", "zoe's password")
		for range 2 {
			if _, err := cached.Load(t.Context(), f.t, []string{v2}); err != nil {
				t.Fatal(err)
			}
		}
		f.t.Accounts.EmailVerification = VerificationRequired

		if err := f.m.RequestPasswordReset(t.Context(), f.t, "zoe@EXAMPLE.com", "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		f.drain()
		tok := f.mail.tokenOf(t, "Zoe@example.com", MailReset)
		// A weak password does not spend the token.
		for _, weak := range []string{"short", "zoe@example.com", "ZOE", "password123"} {
			if _, _, err := f.m.ResetPassword(t.Context(), f.t, tok, weak, StartInput{}); !errors.Is(err, ErrWeakPassword) && kindOf(err) != KindWeakPassword {
				t.Errorf("ResetPassword(%q) = %v, want KindWeakPassword", weak, err)
			}
		}
		s, c, err := f.m.ResetPassword(t.Context(), f.t, tok, strongPassword, StartInput{Presented: []string{v1}})
		if err != nil || c == nil || s.Username != "zoe" {
			t.Fatalf("ResetPassword = %+v, %v, %v", s, c, err)
		}
		// Every earlier session ended, on both replicas, the cached one too.
		for name, v := range map[string]string{"presented": v1, "cached": v2} {
			for _, m := range []*Manager{f.m, cached} {
				if _, err := waitUnauthenticated(t, m, f.t, v); err != nil {
					t.Errorf("%s session after reset: %v", name, err)
				}
			}
		}
		if _, err := f.m.Load(t.Context(), f.t, []string{c.Value}); err != nil {
			t.Errorf("new session: %v", err)
		}
		ss, _ := f.m.Sessions(t.Context(), f.t, "zoe")
		if len(ss) != 1 {
			t.Errorf("sessions after reset = %d, want 1", len(ss))
		}
		if _, _, err := f.login(t, f.m, "zoe", "zoe's password"); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("old password: %v, want ErrInvalidCredentials", err)
		}
		// The mail reached its owner: the address is verified.
		f.mustLogin(t, f.m, "zoe", strongPassword)
		f.drain()
		if n := len(f.mail.to("Zoe@example.com", MailPasswordChanged)); n != 1 {
			t.Errorf("password-changed mails = %d, want 1", n)
		}
	})
}

// waitUnauthenticated loads v until the store's invalidation reaches m's
// cache (it is asynchronous over Redis), for a second at most.
func waitUnauthenticated(tb testing.TB, m *Manager, t *Tenant, v string) (Session, error) {
	tb.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		s, err := m.Load(tb.Context(), t, []string{v})
		if errors.Is(err, ErrUnauthenticated) {
			return s, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("still signed in")
			}
			return s, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, newStore func(testing.TB, *storetest.Clock) store.Store) {
		f := newAcctFixture(t, accountsPolicy(VerificationRequired), newStore)
		f.t.LoginLimits.PerAccount = 3
		f.user(t, "zoe", "zoe@example.com", "zoe's password", true)
		other := f.replica(t)
		_, vOther := f.mustLogin(t, other, "zoe", "zoe's password")
		s, v := f.mustLogin(t, f.m, "zoe", "zoe's password")
		in := StartInput{ClientIP: "192.0.2.7", Presented: []string{v}}

		if _, _, err := f.m.ChangePassword(t.Context(), f.t, s, "zoe's password", "short", in); kindOf(err) != KindWeakPassword {
			t.Errorf("weak new password: %v, want KindWeakPassword", err)
		}
		if _, _, err := f.m.ChangePassword(t.Context(), f.t, s, "wrong", strongPassword, in); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("wrong current password: %v, want ErrInvalidCredentials", err)
		}
		ns, c, err := f.m.ChangePassword(t.Context(), f.t, s, "zoe's password", strongPassword, in)
		if err != nil || c == nil || ns.ID == s.ID {
			t.Fatalf("ChangePassword = %+v, %v, %v", ns, c, err)
		}
		for name, val := range map[string]string{"current": v, "other": vOther} {
			if _, err := waitUnauthenticated(t, f.m, f.t, val); err != nil {
				t.Errorf("%s session after change: %v", name, err)
			}
		}
		if _, err := f.m.Load(t.Context(), f.t, []string{c.Value}); err != nil {
			t.Errorf("new session: %v", err)
		}
		f.mustLogin(t, f.m, "zoe", strongPassword)
		f.drain()
		if n := len(f.mail.to("zoe@example.com", MailPasswordChanged)); n != 1 {
			t.Errorf("password-changed mails = %d, want 1", n)
		}
		// Wrong current passwords count as failed logins.
		for i := range 3 {
			if _, _, err := f.m.ChangePassword(t.Context(), f.t, ns, "wrong", "a third "+strongPassword, in); !errors.Is(err, ErrInvalidCredentials) {
				t.Fatalf("wrong #%d: %v", i, err)
			}
		}
		if _, _, err := f.m.ChangePassword(t.Context(), f.t, ns, strongPassword, "a third "+strongPassword, in); kindOf(err) != KindRateLimited {
			t.Errorf("past the limit: %v, want KindRateLimited", err)
		}
	})
}

func TestAccountLimits(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, newStore func(testing.TB, *storetest.Clock) store.Store) {
		for _, tc := range []struct {
			name string
			// request n (from 0) comes from ip, for address.
			ip, address func(n int) string
		}{
			{"per ip", func(int) string { return "192.0.2.1" }, func(n int) string { return string(rune('a'+n)) + "@example.com" }},
			{"per address", func(n int) string { return "192.0.2." + string(rune('1'+n)) }, func(n int) string { return []string{"zoe@example.com", "ZOE@example.com"}[n%2] }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				a := accountsPolicy(VerificationRequired)
				a.Limits = AccountLimits{PerIP: 4, PerAddress: 4, Window: Duration(time.Hour)}
				f := newAcctFixture(t, a, newStore)
				other := f.replica(t)
				flows := []func(m *Manager, n int) error{
					func(m *Manager, n int) error { return m.ResendVerification(t.Context(), f.t, tc.address(n), tc.ip(n)) },
					func(m *Manager, n int) error {
						return m.RequestPasswordReset(t.Context(), f.t, tc.address(n), tc.ip(n))
					},
					func(m *Manager, n int) error {
						_, err := m.Signup(t.Context(), f.t, SignupInput{Username: "u" + string(rune('a'+n)), Email: tc.address(n), Password: strongPassword, StartInput: StartInput{ClientIP: tc.ip(n)}})
						return err
					},
				}
				// Four requests of the three kinds, over two replicas, pass.
				for n := range 4 {
					m := []*Manager{f.m, other}[n%2]
					if err := flows[n%3](m, n); err != nil {
						t.Fatalf("request %d: %v", n, err)
					}
				}
				for i, fl := range flows {
					err := fl([]*Manager{f.m, other}[i%2], 4)
					var e *Error
					if !errors.As(err, &e) || e.Kind != KindRateLimited || e.RetryAfter <= 0 {
						t.Errorf("flow %d past the limit: %v, want KindRateLimited with RetryAfter", i, err)
					}
				}
				// The window over, they pass again (Redis ends windows by
				// its own clock, which the test does not advance).
				if _, onRedis := f.st.(*redisstore.Store); !onRedis {
					f.clock.Advance(time.Hour + time.Second)
					if err := flows[0](f.m, 4); err != nil {
						t.Errorf("after the window: %v", err)
					}
				}
				f.drain(other)
			})
		}
	})
}

func TestLoginWithEmail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		withEmail bool
		v         Verification
		login     string
		email     string
		verified  bool
		want      error
	}{
		{"by address", true, VerificationRequired, "Alice@Example.com", "alice@example.com", true, nil},
		{"by username", true, VerificationRequired, "alice", "alice@example.com", true, nil},
		{"address not allowed", false, VerificationRequired, "alice@example.com", "alice@example.com", true, ErrInvalidCredentials},
		{"unknown address", true, VerificationRequired, "nobody@example.com", "alice@example.com", true, ErrInvalidCredentials},
		{"unverified refused", true, VerificationRequired, "alice", "alice@example.com", false, ErrEmailUnverified},
		{"unverified by address", true, VerificationRequired, "alice@example.com", "alice@example.com", false, ErrEmailUnverified},
		{"unverified optional", true, VerificationOptional, "alice", "alice@example.com", false, nil},
		{"no address", true, VerificationRequired, "alice", "", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := accountsPolicy(tc.v)
			a.LoginWithEmail = tc.withEmail
			f := newAcctFixture(t, a, nil)
			f.user(t, "alice", tc.email, "alice's password", tc.verified)
			s, _, err := f.login(t, f.m, tc.login, "alice's password")
			if tc.want == nil && (err != nil || s.Username != "alice") || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Login(%s) = %q, %v; want %v", tc.login, s.Username, err, tc.want)
			}
		})
	}
}

func TestLoginByAddressCountsUnderTheAddress(t *testing.T) {
	t.Parallel()
	f := newAcctFixture(t, accountsPolicy(VerificationOptional), nil)
	f.t.LoginLimits.PerAccount = 2
	f.user(t, "alice", "alice@example.com", "alice's password", true)
	for range 2 {
		if _, _, err := f.login(t, f.m, "Alice@example.com", "wrong"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatal(err)
		}
	}
	if _, _, err := f.login(t, f.m, "alice@example.com", "alice's password"); kindOf(err) != KindRateLimited {
		t.Errorf("address past its limit: %v, want KindRateLimited", err)
	}
	// The same for an address nobody has: the answer never depends on it.
	for range 2 {
		f.login(t, f.m, "nobody@example.com", "wrong")
	}
	if _, _, err := f.login(t, f.m, "NOBODY@example.com", "wrong"); kindOf(err) != KindRateLimited {
		t.Errorf("unknown address past its limit: %v, want KindRateLimited", err)
	}
}

func TestConcurrentSignups(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, newStore func(testing.TB, *storetest.Clock) store.Store) {
		f := newAcctFixture(t, accountsPolicy(VerificationOptional), newStore)
		ms := []*Manager{f.m, f.replica(t)}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = ms[i%2].Signup(t.Context(), f.t, SignupInput{Username: "user" + string(rune('a'+i)), Email: "same@example.com", Password: strongPassword})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrConflict):
				t.Errorf("Signup: %v", err)
			}
		}
		us, _ := f.m.ListUsers(t.Context(), f.t.ID)
		if ok != 1 || len(us) != 1 {
			t.Errorf("%d signups succeeded, %d users; want 1 and 1", ok, len(us))
		}
		f.drain(ms[1])
	})
}

func TestSendVerification(t *testing.T) {
	t.Parallel()
	f := newAcctFixture(t, accountsPolicy(VerificationRequired), nil)
	f.user(t, "nomail", "", "a password", false)
	f.user(t, "done", "done@example.com", "a password", true)
	f.user(t, "zoe", "zoe@example.com", "a password", false)
	for _, tc := range []struct {
		user string
		want Kind
	}{{"nomail", KindConflict}, {"done", KindConflict}, {"ghost", KindNotFound}, {"zoe", 0}} {
		if err := f.m.SendVerification(t.Context(), f.t, tc.user); kindOf(err) != tc.want {
			t.Errorf("SendVerification(%s) = %v, want kind %v", tc.user, err, tc.want)
		}
	}
	tok := f.mail.tokenOf(t, "zoe@example.com", MailVerify)
	if _, _, err := f.m.VerifyEmail(t.Context(), f.t, tok, StartInput{}); err != nil {
		t.Errorf("VerifyEmail: %v", err)
	}
}

func TestResendAnswersAlike(t *testing.T) {
	t.Parallel()
	f := newAcctFixture(t, accountsPolicy(VerificationRequired), nil)
	f.user(t, "zoe", "zoe@example.com", "a password", false)
	f.user(t, "done", "done@example.com", "a password", true)
	disabled := true
	f.user(t, "off", "off@example.com", "a password", false)
	if _, err := f.m.UpdateUser(t.Context(), f.t.ID, "off", UserInput{Disabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"zoe@example.com", "done@example.com", "off@example.com", "nobody@example.com"} {
		if err := f.m.ResendVerification(t.Context(), f.t, addr, ""); err != nil {
			t.Errorf("Resend(%s) = %v", addr, err)
		}
		if err := f.m.RequestPasswordReset(t.Context(), f.t, addr, ""); err != nil {
			t.Errorf("Reset request(%s) = %v", addr, err)
		}
	}
	var ve *ValidationError
	if err := f.m.ResendVerification(t.Context(), f.t, "not an address", ""); !errors.As(err, &ve) {
		t.Errorf("Resend(bad) = %v, want a *ValidationError", err)
	}
	f.drain()
	for _, tc := range []struct {
		to           string
		verify, rset int
	}{{"zoe@example.com", 1, 1}, {"done@example.com", 0, 1}, {"off@example.com", 0, 0}, {"nobody@example.com", 0, 0}} {
		if v, r := len(f.mail.to(tc.to, MailVerify)), len(f.mail.to(tc.to, MailReset)); v != tc.verify || r != tc.rset {
			t.Errorf("mails to %s: verify %d, reset %d; want %d, %d", tc.to, v, r, tc.verify, tc.rset)
		}
	}
}

func TestUserEmail(t *testing.T) {
	t.Parallel()
	f := newAcctFixture(t, accountsPolicy(VerificationRequired), nil)
	ctx := t.Context()
	alice := f.user(t, "alice", "Alice@Example.com", "a password", true)
	if alice.Email != "Alice@Example.com" || !alice.EmailVerified {
		t.Errorf("created %+v", alice)
	}
	if su, _ := f.st.GetUserByEmail(ctx, "acme", "alice@example.com"); su.Name != "alice" {
		t.Errorf("GetUserByEmail(normal) = %q, want alice", su.Name)
	}
	pw := "a password"
	taken := "ALICE@example.com"
	_, err := f.m.CreateUser(ctx, f.t.ID, UserInput{Username: "bob", Password: &pw, Email: &taken})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindConflict || e.Detail != "email address is already another user's" {
		t.Errorf("CreateUser with a taken address = %v", err)
	}
	bob := f.user(t, "bob", "bob@example.com", "a password", false)
	if _, err := f.m.UpdateUser(ctx, f.t.ID, "bob", UserInput{Email: &taken}); !errors.Is(err, ErrConflict) {
		t.Errorf("UpdateUser to a taken address = %v, want ErrConflict", err)
	}
	// Case only: still verified. Another address: unverified.
	same := "alice@example.com"
	u, err := f.m.UpdateUser(ctx, f.t.ID, "alice", UserInput{Email: &same})
	if err != nil || u.Email != same || !u.EmailVerified {
		t.Errorf("case change = %+v, %v", u, err)
	}
	next := "alice@other.example"
	u, err = f.m.UpdateUser(ctx, f.t.ID, "alice", UserInput{Email: &next})
	if err != nil || u.EmailVerified {
		t.Errorf("new address = %+v, %v; want unverified", u, err)
	}
	// The old address is free again.
	if _, err := f.m.UpdateUser(ctx, f.t.ID, "bob", UserInput{Email: &same}); err != nil {
		t.Errorf("taking a released address: %v", err)
	}
	yes := true
	u, err = f.m.UpdateUser(ctx, f.t.ID, "alice", UserInput{Email: &taken, EmailVerified: &yes})
	if !errors.Is(err, ErrConflict) {
		t.Errorf("UpdateUser to bob's address = %+v, %v", u, err)
	}
	none := ""
	u, err = f.m.UpdateUser(ctx, f.t.ID, "alice", UserInput{Email: &none})
	if err != nil || u.Email != "" || u.EmailVerified {
		t.Errorf("removed = %+v, %v", u, err)
	}
	var ve *ValidationError
	if _, err := f.m.UpdateUser(ctx, f.t.ID, "alice", UserInput{EmailVerified: &yes}); !errors.As(err, &ve) {
		t.Errorf("verified without an address = %v, want a *ValidationError", err)
	}
	bad := "not an address"
	if _, err := f.m.UpdateUser(ctx, f.t.ID, "alice", UserInput{Email: &bad}); !errors.As(err, &ve) || ve.Problems[0].Field != "email" {
		t.Errorf("bad address = %v, want a *ValidationError on email", err)
	}
	_ = bob
}

func TestNeedsMail(t *testing.T) {
	t.Parallel()
	m, err := NewManager(memstore.New(memstore.Config{}), Config{Keys: [][]byte{key1}, Password: cheapParams})
	if err != nil {
		t.Fatal(err)
	}
	tn := validTenant()
	tn.Accounts = accountsPolicy(VerificationRequired)
	_, _, err = m.PutTenant(t.Context(), tn)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0] != (Problem{Tenant: "acme", Field: "accounts", Message: "needs mail: set LATCHKEY_SMTP_URL and LATCHKEY_MAIL_FROM"}) {
		t.Errorf("PutTenant without a Mailer = %v", err)
	}
	tn.Accounts = nil
	if _, _, err := m.PutTenant(t.Context(), tn); err != nil {
		t.Errorf("PutTenant without accounts: %v", err)
	}
}

func TestCloseDrains(t *testing.T) {
	t.Parallel()
	f := newAcctFixture(t, accountsPolicy(VerificationRequired), nil)
	f.user(t, "zoe", "zoe@example.com", "a password", false)
	if err := f.m.ResendVerification(t.Context(), f.t, "zoe@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.mail.to("zoe@example.com", MailVerify)); n != 1 {
		t.Errorf("mails after Close = %d, want 1", n)
	}
	// After Close: answered, but nothing more is sent.
	if err := f.m.ResendVerification(t.Context(), f.t, "zoe@example.com", ""); err != nil {
		t.Fatal(err)
	}
	f.drain()
	if n := len(f.mail.to("zoe@example.com", MailVerify)); n != 1 {
		t.Errorf("mails after a request past Close = %d, want 1", n)
	}
}
