package session

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/store"
)

// Forms of one name that a reader cannot tell apart.
const (
	zoeNFC = "zo\u00eb"  // ë as one code point
	zoeNFD = "zoe\u0308" // e and a combining diaeresis
)

func TestNewUsername(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		want     string // the stored form; "" means refused
		why      string // a substring of the refusal
	}{
		{"ascii", "alice", "alice", ""},
		{"case is kept", "Alice", "Alice", ""},
		{"email", "alice+tag@example.com", "alice+tag@example.com", ""},
		{"nfc", zoeNFC, zoeNFC, ""},
		{"nfd composed", zoeNFD, zoeNFC, ""},
		{"fullwidth mapped", "ａｌｉｃｅ", "alice", ""},
		{"halfwidth katakana mapped", "ﾊﾙ", "ハル", ""},
		{"ohm sign composed", "\u2126", "\u03a9", ""},
		{"query and fragment characters escape fine", "a?b#c", "a?b#c", ""},
		{"zero-width joiner", "al\u200dice", "", "zero-width"},
		{"zero-width non-joiner", "al\u200cice", "", "zero-width"},
		{"soft hyphen", "al\u00adice", "", "PRECIS"},
		{"emoji", "alice\U0001F600", "", "PRECIS"},
		{"space", "al ice", "", "white space"},
		{"no-break space", "al\u00a0ice", "", "white space"},
		{"control", "al\x01ice", "", "control"},
		{"invalid utf-8", "al\xffice", "", "UTF-8"},
		{"empty", "", "", "required"},
		{"too long", strings.Repeat("a", MaxUsernameLen+1), "", "at most 128"},
		{"slash", "ops/eve", "", "one URL path segment"},
		{"fullwidth solidus", "ops\uff0feve", "", "one URL path segment"},
		{"backslash", `ops\eve`, "", "one URL path segment"},
		{"percent", "50%off", "", "one URL path segment"},
		{"fullwidth percent", "50\uff05off", "", "must"}, // refused by the profile itself
		{"escaped slash", "ops%2Feve", "", "one URL path segment"},
		{"dot", ".", "", "path segments"},
		{"dot dot", "..", "", "path segments"},
		{"fullwidth dots", "\uff0e\uff0e", "", "must"},
		{"dots inside are fine", "a..b", "a..b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, why := newUsername(tt.in)
			if got != tt.want {
				t.Errorf("newUsername(%q) = %q, want %q (refusal %q)", tt.in, got, tt.want, why)
			}
			if (why == "") != (tt.why == "") || !strings.Contains(why, tt.why) {
				t.Errorf("newUsername(%q) refusal = %q, want one containing %q", tt.in, why, tt.why)
			}
			if got == "" {
				return
			}
			if again, _ := newUsername(got); again != got {
				t.Errorf("newUsername(%q) = %q, not stable: %q", got, again, got)
			}
		})
	}
}

func TestCreateUserNormalizes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	pw := "correct horse"
	u, err := f.m.CreateUser(ctx, "acme", UserInput{Username: zoeNFD, Password: &pw})
	if err != nil {
		t.Fatalf("CreateUser(NFD): %v", err)
	}
	if u.Username != zoeNFC {
		t.Errorf("Username = %q, want the NFC form %q", u.Username, zoeNFC)
	}
	for _, dup := range []string{zoeNFC, zoeNFD} {
		if _, err := f.m.CreateUser(ctx, "acme", UserInput{Username: dup, Password: &pw}); !errors.Is(err, ErrConflict) {
			t.Errorf("CreateUser(%q) after %q: %v, want ErrConflict", dup, zoeNFD, err)
		}
	}
	if _, err := f.m.CreateUser(ctx, "acme", UserInput{Username: "ａｌｉｃｅ", Password: &pw}); !errors.Is(err, ErrConflict) {
		t.Errorf("CreateUser(fullwidth alice) beside alice: %v, want ErrConflict", err)
	}
	var ve *ValidationError
	if _, err := f.m.CreateUser(ctx, "acme", UserInput{Username: "al\u200dice", Password: &pw}); !errors.As(err, &ve) {
		t.Errorf("CreateUser(alice with a zero-width joiner): %v, want a *ValidationError", err)
	}
	for _, name := range []string{zoeNFC, zoeNFD} {
		got, err := f.m.GetUser(ctx, "acme", name)
		if err != nil || got.Username != zoeNFC {
			t.Errorf("GetUser(%q) = %q, %v; want %q", name, got.Username, err, zoeNFC)
		}
	}
	us, err := f.m.ListUsers(ctx, "acme")
	if err != nil || len(us) != 2 {
		t.Fatalf("ListUsers = %d users, %v; want alice and zoë", len(us), err)
	}
}

func TestLoginNormalizesTheUsername(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	pw := "correct horse"
	if _, err := f.m.CreateUser(ctx, "acme", UserInput{Username: zoeNFC, Password: &pw}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ typed, want string }{
		{zoeNFC, zoeNFC},
		{zoeNFD, zoeNFC},
		{"ａｌｉｃｅ", "alice"},
		{"alice", "alice"},
	} {
		s, _, err := f.m.Login(ctx, f.t, LoginInput{Username: tc.typed, Password: pw})
		if err != nil {
			t.Errorf("Login(%q): %v", tc.typed, err)
			continue
		}
		if s.Username != tc.want {
			t.Errorf("Login(%q).Username = %q, want %q", tc.typed, s.Username, tc.want)
		}
	}
	// Case is significant, as it always was.
	if _, _, err := f.m.Login(ctx, f.t, LoginInput{Username: "Alice", Password: pw}); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Login(Alice) = %v, want ErrInvalidCredentials", err)
	}
}

// TestAccountLimitCountsEveryFormOfAName checks that the forms of one name
// share the per-account count: otherwise each width or normalization form
// would be a fresh allowance of guesses.
func TestAccountLimitCountsEveryFormOfAName(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tn := *f.t
	tn.LoginLimits.PerAccount = 2
	for _, typed := range []string{"ａｌｉｃｅ", "ａlice"} {
		if _, _, err := f.m.Login(t.Context(), &tn, LoginInput{Username: typed, Password: "wrong"}); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("Login(%q, wrong) = %v, want ErrInvalidCredentials", typed, err)
		}
	}
	if _, _, err := f.m.Login(t.Context(), &tn, LoginInput{Username: "alice", Password: "correct horse"}); !errors.Is(err, ErrRateLimited) {
		t.Errorf("Login(alice) after two failures under other forms = %v, want ErrRateLimited", err)
	}
}

// failingStore fails GetUser for one name, to show that GetUser reports a
// store failure as one, not as a missing user.
type failingStore struct {
	store.Store
	name string
}

func (s failingStore) GetUser(ctx context.Context, tenant, name string) (store.User, error) {
	if name == s.name {
		return store.User{}, errors.New("store down")
	}
	return s.Store.GetUser(ctx, tenant, name)
}

func TestGetUserReportsStoreFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m, err := NewManager(failingStore{Store: f.st, name: "alice"}, Config{Keys: [][]byte{key1}, Password: cheapParams})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetUser(t.Context(), "acme", "ａｌｉｃｅ"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("GetUser with the read failing = %v, want the store's error", err)
	}
}

func TestParseTenantsFileUsernames(t *testing.T) {
	t.Parallel()
	hash := testHash(t, "correct horse")
	file := func(names ...string) string {
		var b strings.Builder
		b.WriteString("tenants:\n  - id: acme\n    name: A\n    origins: [https://app.acme.com]\n    cookie: {same_site: lax}\n    users:\n")
		for _, n := range names {
			b.WriteString(`      - {username: "` + n + `", password_hash: "` + hash + `"}` + "\n")
		}
		return b.String()
	}
	for _, tc := range []struct {
		name  string
		users []string
		want  string // "" means accepted
	}{
		{"nfc and nfd", []string{zoeNFC, zoeNFD}, `users[1].username: "` + zoeNFD + `" is declared twice (also users[0]`},
		{"fullwidth and ascii", []string{"alice", "ａｌｉｃｅ"}, `users[1].username: "ａｌｉｃｅ" is declared twice`},
		{"zero-width joiner", []string{"al\u200dice"}, "users[0].username: must be letters, digits"},
		{"slash", []string{"ops/eve"}, "users[0].username: must not contain"},
		{"dot dot", []string{".."}, "users[0].username: must not be . or .."},
		{"fullwidth alone", []string{"ａｌｉｃｅ"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseTenantsFile(strings.NewReader(file(tc.users...)))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("ParseTenantsFile: %v, want it accepted", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("ParseTenantsFile: %v, want a problem containing %q", err, tc.want)
			}
		})
	}

	// A file's user is found by the normalized name it is stored under.
	f := newFixture(t)
	tf, err := ParseTenantsFile(strings.NewReader(file("ｃarol")))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.m.Apply(t.Context(), tf); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if u, err := f.m.GetUser(t.Context(), "acme", "carol"); err != nil || u.Username != "carol" {
		t.Errorf("GetUser(carol) after applying ｃarol = %q, %v; want carol", u.Username, err)
	}
	if err := f.m.Apply(t.Context(), tf); err != nil {
		t.Fatalf("Apply again: %v", err)
	}
	if us, _ := f.m.ListUsers(t.Context(), "acme"); len(us) != 2 {
		t.Errorf("users after applying the file twice = %d, want alice and carol", len(us))
	}
}

// FuzzNewUsername checks what newUsername promises of every name it
// accepts: the stored form is stable (accepted again unchanged), is
// exactly one URL path segment however it is escaped and decoded (once,
// or once more by a careless proxy), compares equal to what was typed under
// the profile, and fits the length bound.
func FuzzNewUsername(f *testing.F) {
	for _, s := range []string{"alice", zoeNFC, zoeNFD, "ａｌｉｃｅ", "ops/eve", "ops\uff0feve", "a%2Fb", "..", "al\u200dice", "Ω", "\u2126", "a?b#c", "ﾊﾙ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		n, why := newUsername(typed)
		if why != "" {
			if n != "" {
				t.Fatalf("newUsername(%q) = %q with refusal %q", typed, n, why)
			}
			return
		}
		if again, why := newUsername(n); again != n {
			t.Fatalf("newUsername(%q) = %q, but that is not stable: %q (%s)", typed, n, again, why)
		}
		if len(n) > MaxUsernameLen || n == "." || n == ".." {
			t.Fatalf("newUsername(%q) = %q: too long or a dot segment", typed, n)
		}
		seg := url.PathEscape(n)
		if strings.Contains(seg, "/") {
			t.Fatalf("%q escapes to %q, more than one segment", n, seg)
		}
		if dec, err := url.PathUnescape(seg); err != nil || dec != n {
			t.Fatalf("%q escapes to %q, which decodes to %q, %v", n, seg, dec, err)
		}
		if twice, err := url.PathUnescape(n); err != nil || twice != n {
			t.Fatalf("%q decodes again to %q, %v: a proxy decoding twice would name another user", n, twice, err)
		}
		if !usernameProfile.Compare(typed, n) {
			t.Fatalf("%q and its stored form %q do not compare equal", typed, n)
		}
	})
}

// BenchmarkNormalUsername measures the normalization every login does
// before anything else, for a name already in normal form (the usual
// case) and for one that is not.
func BenchmarkNormalUsername(b *testing.B) {
	for _, name := range []string{"alice@example.com", "ａｌｉｃｅ@example.com"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				normalUsername(name)
			}
		})
	}
}
