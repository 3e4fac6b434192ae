package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/latchkeyhq/latchkey/store/memstore"
)

// TestHashBudgetReservesAllocation checks that a check reserves exactly the
// memory argon2 allocates for it: Memory rounded down to whole 4·p blocks.
// Reserving min(m, budget) instead let a hash allocate beyond the budget.
//
// Not parallel: it measures the heap, with no other test running.
func TestHashBudgetReservesAllocation(t *testing.T) {
	const budgetKiB = 32 << 10
	st := memstore.New(memstore.Config{})
	m, err := NewManager(st, Config{Keys: [][]byte{key1}, Password: cheapParams, HashMemory: budgetKiB << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.PutTenant(t.Context(), validTenant()); err != nil {
		t.Fatal(err)
	}
	tn, _ := m.GetTenant(t.Context(), "acme")
	for _, p := range []PasswordParams{
		{Memory: 64, Threads: 1},
		{Memory: 1000, Threads: 3}, // 996 KiB: 83 blocks of 12
		{Memory: 2053, Threads: 4}, // 2048 KiB
		{Memory: 19456, Threads: 1},
	} {
		p.Time, p.SaltLen, p.KeyLen = 1, 16, 32
		want := p.memKiB()

		// What argon2 allocates: the least of three runs, so that another
		// goroutine's garbage cannot add to it.
		var got uint64
		for i := range 3 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			argon2.IDKey([]byte("pw"), []byte("0123456789abcdef"), p.Time, p.Memory, p.Threads, p.KeyLen)
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; i == 0 || n < got {
				got = n
			}
		}
		if got < uint64(want)<<10 || got > uint64(want)<<10+16<<10 {
			t.Errorf("m=%d p=%d: argon2 allocated %d bytes, want %d KiB and a few buffers", p.Memory, p.Threads, got, want)
		}

		// What the budget holds while a check of such a hash runs.
		hash, err := HashPassword("right password", p)
		if err != nil {
			t.Fatal(err)
		}
		user := fmt.Sprintf("m%d-p%d", p.Memory, p.Threads)
		if _, err := m.CreateUser(t.Context(), "acme", UserInput{Username: user, PasswordHash: &hash}); err != nil {
			t.Fatal(err)
		}
		var held int64 = -1
		m.onCheck = func(context.Context) {
			// Free is what TryAcquire can take, and no more.
			for free := int64(budgetKiB); free >= 0; free-- {
				if m.hashMem.TryAcquire(free) {
					m.hashMem.Release(free)
					held = budgetKiB - free
					return
				}
			}
		}
		if _, _, err := m.Login(t.Context(), &tn, LoginInput{Username: user, Password: "wrong password"}); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("Login = %v, want ErrInvalidCredentials", err)
		}
		if held != want {
			t.Errorf("m=%d p=%d: a check held %d KiB of the budget, want %d KiB, what argon2 allocates", p.Memory, p.Threads, held, want)
		}
	}
}

// TestHashesOverTheBudgetAreRefused stores hashes through the admin calls
// and a tenants file under a 1 MiB budget: one that needs more is refused,
// naming its field, and the file changes nothing.
func TestHashesOverTheBudgetAreRefused(t *testing.T) {
	t.Parallel()
	st := memstore.New(memstore.Config{})
	m, err := NewManager(st, Config{Keys: [][]byte{key1}, Password: cheapParams, HashMemory: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.PutTenant(t.Context(), validTenant()); err != nil {
		t.Fatal(err)
	}
	hashOf := func(mem uint32, threads uint8) string {
		h, err := HashPassword("pw", PasswordParams{Memory: mem, Time: 1, Threads: threads, SaltLen: 16, KeyLen: 32})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, tt := range []struct {
		mem     uint32
		threads uint8
		ok      bool
	}{
		{1024, 1, true},  // the whole budget
		{1027, 1, true},  // allocates 1024 KiB
		{1028, 1, false}, // allocates 1028 KiB
		{1039, 4, true},  // allocates 1024 KiB
		{262144, 1, false},
	} {
		h := hashOf(tt.mem, tt.threads)
		_, err := m.CreateUser(t.Context(), "acme", UserInput{Username: fmt.Sprintf("m%d-p%d", tt.mem, tt.threads), PasswordHash: &h})
		if tt.ok != (err == nil) {
			t.Errorf("CreateUser with m=%d p=%d: %v, want ok=%v", tt.mem, tt.threads, err, tt.ok)
		}
		if !tt.ok {
			if got := problemFields(t, err); len(got) != 1 || !strings.HasPrefix(got[0], "password_hash: ") || !strings.Contains(got[0], "hashing budget") {
				t.Errorf("CreateUser with m=%d: problems %q, want one of password_hash naming the hashing budget", tt.mem, got)
			}
		}
	}
	big := hashOf(2048, 1)
	pw := "a password"
	if _, err := m.CreateUser(t.Context(), "acme", UserInput{Username: "bob", Password: &pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpdateUser(t.Context(), "acme", "bob", UserInput{PasswordHash: &big}); err == nil {
		t.Error("UpdateUser with a hash over the budget succeeded")
	}

	file := `
tenants:
  - id: other
    name: Other
    origins: [https://app.other.com]
    cookie: {same_site: lax}
    users:
      - username: carol
        password_hash: "` + hashOf(64, 1) + `"
      - username: dave
        password_hash: "` + big + `"
`
	f, err := ParseTenantsFile(strings.NewReader(file))
	if err != nil {
		t.Fatalf("ParseTenantsFile: %v (the hash is within every Manager's bounds)", err)
	}
	err = m.Apply(t.Context(), f)
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Tenant != "other" || ve.Problems[0].Field != "users[1].password_hash" {
		t.Fatalf("Apply of a file with a hash over the budget = %v, want one problem of other's users[1].password_hash", err)
	}
	if _, err := m.GetTenant(t.Context(), "other"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused file created its tenant: %v", err)
	}
}

// TestCheapHashBounds checks the bounds every Manager keeps whatever its
// budget: parallelism up to 4 lanes, passes up to 16, and memory × passes
// up to eight times the default's.
func TestCheapHashBounds(t *testing.T) {
	t.Parallel()
	if maxHashWork != 8*DefaultPasswordParams.Memory*DefaultPasswordParams.Time {
		t.Errorf("maxHashWork = %d, want eight times the default's work", maxHashWork)
	}
	for _, tt := range []struct {
		m, t uint32
		p    uint8
		ok   bool
	}{
		{19456, 2, 1, true},
		{65536, 3, 4, true},
		{131072, 2, 1, true},
		{19456, 16, 1, true},
		{19456, 17, 1, false},
		{65536, 5, 1, false},
		{262144, 2, 1, false},
		{262144, 1, 16, false},
		{64, 1, 5, false},
	} {
		h, err := HashPassword("pw", PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
		if err != nil {
			t.Fatal(err)
		}
		// Rewrite the parameters: computing such hashes would take long.
		h = strings.Replace(h, "m=64,t=1,p=1", "m="+itoa(tt.m)+",t="+itoa(tt.t)+",p="+itoa(uint32(tt.p)), 1)
		if err := CheckPasswordHash(h); tt.ok != (err == nil) {
			t.Errorf("CheckPasswordHash(m=%d,t=%d,p=%d) = %v, want ok=%v", tt.m, tt.t, tt.p, err, tt.ok)
		}
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// TestStoredHashOverTheBudgetIsNeverComputed checks a hash stored while
// the budget was larger (or by an older release): a login never computes
// it, checks the dummy hash instead, fails as a wrong password would and
// counts, and the error log says why without the user or the hash.
func TestStoredHashOverTheBudgetIsNeverComputed(t *testing.T) {
	t.Parallel()
	st := memstore.New(memstore.Config{})
	big, err := NewManager(st, Config{Keys: [][]byte{key1}, Password: cheapParams, HashMemory: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	tn := validTenant()
	tn.LoginLimits = LoginLimits{PerAccount: 1, PerIP: 100, Window: Duration(time.Minute)}
	saved, _, err := big.PutTenant(t.Context(), tn)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := HashPassword("right password", PasswordParams{Memory: 2048, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := big.CreateUser(t.Context(), "acme", UserInput{Username: "hugo", PasswordHash: &hash}); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	small, err := NewManager(st, Config{Keys: [][]byte{key1}, Password: cheapParams, HashMemory: 1 << 20,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	small.onCheck = func(context.Context) {
		for free := small.hashMemKiB; free >= 0; free-- {
			if small.hashMem.TryAcquire(free) {
				small.hashMem.Release(free)
				held = small.hashMemKiB - free
				return
			}
		}
	}
	_, _, err = small.Login(t.Context(), &saved, LoginInput{Username: "hugo", Password: "right password"})
	if !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("Login with a stored hash over the budget = %v, want ErrInvalidCredentials", err)
	}
	if held != cheapParams.memKiB() {
		t.Errorf("the check held %d KiB, want the dummy hash's %d KiB", held, cheapParams.memKiB())
	}
	line := logs.String()
	if !strings.Contains(line, "cannot be checked") || strings.Contains(line, "hugo") || strings.Contains(line, hash[strings.LastIndex(hash, "$"):]) {
		t.Errorf("log = %s, want the reason without the user or the hash", line)
	}
	if _, _, err := small.Login(t.Context(), &saved, LoginInput{Username: "hugo", Password: "right password"}); !errors.Is(err, ErrRateLimited) {
		t.Errorf("second Login at a limit of 1 = %v, want ErrRateLimited: the first counted", err)
	}
}

// TestNewManagerChecksPasswordParams: a Manager refuses parameters whose
// hashes it could not store again, by the same bounds as a stored hash.
func TestNewManagerChecksPasswordParams(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name string
		p    PasswordParams
		want string
	}{
		{"too little memory", PasswordParams{Memory: 4, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, "memory"},
		{"no passes", PasswordParams{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}, "time"},
		{"too many lanes", PasswordParams{Memory: 1024, Time: 1, Threads: 8, SaltLen: 16, KeyLen: 32}, "parallelism"},
		{"short salt", PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32}, "salt length"},
		{"long key", PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 65}, "key length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewManager(f.st, Config{Keys: [][]byte{key1}, Password: tt.p})
			if err == nil || !strings.Contains(err.Error(), "password parameters") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewManager(Password %+v) = %v, want a password parameters error about %s", tt.p, err, tt.want)
			}
		})
	}
	if _, err := NewManager(f.st, Config{Keys: [][]byte{key1}, Password: cheapParams}); err != nil {
		t.Errorf("NewManager(cheapParams) = %v", err)
	}
}
