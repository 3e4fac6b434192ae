package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/memstore"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// Passwords of the users of applyFile.
const (
	alicePassword = "alice's first password"
	bobPassword   = "bob's first password"
)

// backend is one store shared by several replicas: replica returns a new
// Manager over it (a replica starting), and lose empties it, as a Redis
// restarted without persistence comes back.
type backend struct {
	replica func(tb testing.TB) *Manager
	lose    func(tb testing.TB)
}

// eachBackend runs fn against a memstore and a Redis (REDIS_ADDR, a key
// prefix of its own per subtest; each replica has its own client).
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	t.Run("memstore", func(t *testing.T) {
		t.Parallel()
		var st *memstore.Store
		fresh := func() { st = memstore.New(memstore.Config{}) }
		fresh()
		fn(t, backend{
			replica: func(tb testing.TB) *Manager { return replicaOver(tb, st) },
			lose:    func(testing.TB) { fresh() },
		})
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		c := redistest.Client(t)
		prefix := redistest.Prefix(t, c)
		fn(t, backend{
			replica: func(tb testing.TB) *Manager {
				st, err := redisstore.New(redistest.Client(tb), redisstore.Config{Prefix: prefix})
				if err != nil {
					tb.Fatal(err)
				}
				return replicaOver(tb, st)
			},
			lose: func(tb testing.TB) {
				if ks := redistest.Keys(tb, c, prefix); len(ks) > 0 {
					if err := c.Del(context.Background(), ks...).Err(); err != nil {
						tb.Fatal(err)
					}
				}
			},
		})
	})
}

func replicaOver(tb testing.TB, st store.Store) *Manager {
	tb.Helper()
	m, err := NewManager(st, Config{Keys: [][]byte{key1}, Password: cheapParams})
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	return m
}

// applyFile is a tenants file with tenant acme (two origins) and its users
// alice and bob; edit changes its text before it is parsed.
type fileText struct {
	name, aliceHash, bobHash string
	aliceDisabled            bool
}

func (ft fileText) String() string {
	return fmt.Sprintf(`
tenants:
  - id: acme
    name: %s
    origins: [https://app.acme.com, https://admin.acme.com]
    cookie: {same_site: lax}
    users:
      - username: alice
        password_hash: %q
        disabled: %t
      - username: bob
        password_hash: %q
`, ft.name, ft.aliceHash, ft.aliceDisabled, ft.bobHash)
}

func newFileText(tb testing.TB) fileText {
	return fileText{name: "Acme", aliceHash: testHash(tb, alicePassword), bobHash: testHash(tb, bobPassword)}
}

func parseFile(tb testing.TB, src string) *TenantsFile {
	tb.Helper()
	f, err := ParseTenantsFile(strings.NewReader(src))
	if err != nil {
		tb.Fatalf("ParseTenantsFile: %v", err)
	}
	return f
}

// start is a replica starting with the file: it applies it, as serve does.
func start(tb testing.TB, b backend, src string) *Manager {
	tb.Helper()
	m := b.replica(tb)
	if err := m.Apply(tb.Context(), parseFile(tb, src)); err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	return m
}

func mustTenant(tb testing.TB, m *Manager, id TenantID) Tenant {
	tb.Helper()
	tn, err := m.GetTenant(tb.Context(), id)
	if err != nil {
		tb.Fatalf("GetTenant(%s): %v", id, err)
	}
	return tn
}

// login logs in on tenant acme and returns the cookie's value.
func login(tb testing.TB, m *Manager, user, password string) (string, error) {
	tb.Helper()
	tn := mustTenant(tb, m, "acme")
	_, c, err := m.Login(tb.Context(), &tn, LoginInput{Username: user, Password: password})
	if err != nil {
		return "", err
	}
	return c.Value, nil
}

func wantLogin(tb testing.TB, m *Manager, user, password string) string {
	tb.Helper()
	v, err := login(tb, m, user, password)
	if err != nil {
		tb.Fatalf("login %s = %v, want a session", user, err)
	}
	return v
}

func wantNoLogin(tb testing.TB, m *Manager, user, password string) {
	tb.Helper()
	if _, err := login(tb, m, user, password); !errors.Is(err, ErrInvalidCredentials) {
		tb.Errorf("login %s = %v, want %v", user, err, ErrInvalidCredentials)
	}
}

// Row 2 of the hardening issue: what an admin changes through the API,
// for things the tenants file declares, survives another replica starting
// with the same file.

func TestFileKeepsDisabledUser(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		disabled := true
		if _, err := a.UpdateUser(t.Context(), "acme", "alice", UserInput{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		r := start(t, b, ft.String())
		for _, m := range []*Manager{a, r} {
			wantNoLogin(t, m, "alice", alicePassword)
		}
		if u, _ := r.GetUser(t.Context(), "acme", "alice"); !u.Disabled {
			t.Error("alice is enabled again after a replica started")
		}
	})
}

func TestFileKeepsResetPassword(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		pw := "a new password after the leak"
		if _, err := a.UpdateUser(t.Context(), "acme", "alice", UserInput{Password: &pw}); err != nil {
			t.Fatal(err)
		}
		r := start(t, b, ft.String())
		wantNoLogin(t, r, "alice", alicePassword) // the leaked one
		wantLogin(t, r, "alice", pw)
	})
}

func TestFileKeepsDeletedUser(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		if err := a.DeleteUser(t.Context(), "acme", "bob"); err != nil {
			t.Fatal(err)
		}
		r := start(t, b, ft.String())
		if _, err := r.GetUser(t.Context(), "acme", "bob"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetUser(bob) after a replica started = %v, want %v", err, ErrNotFound)
		}
		wantNoLogin(t, r, "bob", bobPassword)
	})
}

func TestFileKeepsDroppedOrigin(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		tn := mustTenant(t, a, "acme")
		tn.Origins = []string{"https://app.acme.com"}
		if _, _, err := a.PutTenant(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
		r := start(t, b, ft.String())
		if got := mustTenant(t, r, "acme").Origins; !slices.Equal(got, tn.Origins) {
			t.Errorf("origins after a replica started = %q, want %q", got, tn.Origins)
		}
	})
}

func TestFileKeepsUpgradedHash(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		// Imported with other parameters than the replicas': the first
		// login re-hashes it.
		old, err := HashPassword(alicePassword, PasswordParams{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
		if err != nil {
			t.Fatal(err)
		}
		ft.aliceHash = old
		a := start(t, b, ft.String())
		cookie := wantLogin(t, a, "alice", alicePassword)
		upgraded, _ := a.GetUser(t.Context(), "acme", "alice")
		if upgraded.PasswordHash == old {
			t.Fatal("the login did not upgrade the hash")
		}
		r := start(t, b, ft.String())
		if u, _ := r.GetUser(t.Context(), "acme", "alice"); u.PasswordHash != upgraded.PasswordHash {
			t.Error("a replica starting reverted alice's upgraded hash")
		}
		tn := mustTenant(t, r, "acme")
		if _, err := r.Load(t.Context(), &tn, []string{cookie}); err != nil {
			t.Errorf("alice's session after a replica started: %v, want it kept", err)
		}
	})
}

func TestFileKeepsDeletedTenant(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		if err := a.DeleteTenant(t.Context(), "acme"); err != nil {
			t.Fatal(err)
		}
		r := start(t, b, ft.String())
		if _, err := r.GetTenant(t.Context(), "acme"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetTenant after a replica started = %v, want %v (deleted on purpose)", err, ErrNotFound)
		}
	})
}

// auditOf returns "actor action target" for the tenant's audit entries,
// oldest first.
func auditOf(tb testing.TB, m *Manager, id TenantID) []string {
	tb.Helper()
	es, err := m.ListAudit(tb.Context(), id, MaxAudit)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]string, 0, len(es))
	for _, e := range slices.Backward(es) {
		out = append(out, strings.TrimSpace(e.Actor+" "+e.Action+" "+e.Target))
	}
	return out
}

func TestFileApplicationIsAudited(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		want := []string{"tenants-file tenant.create acme", "tenants-file user.create alice", "tenants-file user.create bob"}
		if got := auditOf(t, a, "acme"); !slices.Equal(got, want) {
			t.Errorf("audit after the first start =\n%q\nwant\n%q", got, want)
		}
		// The same file again changes nothing and records nothing.
		start(t, b, ft.String())
		if got := auditOf(t, a, "acme"); !slices.Equal(got, want) {
			t.Errorf("audit after a second start with the same file =\n%q\nwant\n%q", got, want)
		}
		// An edit is applied and recorded, with the fact of the new
		// password and never the hash.
		ft.name, ft.aliceHash = "Acme Inc.", testHash(t, "alice's second password")
		r := start(t, b, ft.String())
		want = append(want, "tenants-file tenant.update acme", "tenants-file user.update alice")
		if got := auditOf(t, r, "acme"); !slices.Equal(got, want) {
			t.Errorf("audit after an edit =\n%q\nwant\n%q", got, want)
		}
		es, _ := r.ListAudit(t.Context(), "acme", MaxAudit)
		if len(es) == 0 {
			t.Fatal("no audit entries")
		}
		var after struct {
			PasswordChanged bool `json:"password_changed"`
		}
		if err := json.Unmarshal(es[0].After, &after); err != nil || !after.PasswordChanged {
			t.Errorf("user.update after = %s, want password_changed true", es[0].After)
		}
		for _, e := range es {
			if strings.Contains(string(e.Before)+string(e.After), "argon2id") {
				t.Errorf("an audit entry holds a password hash: %s", e.After)
			}
		}
	})
}

// The file still decides what changes in it.

func TestFileEditsAreApplied(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		cookie := wantLogin(t, a, "alice", alicePassword)
		bobCookie := wantLogin(t, a, "bob", bobPassword)
		// An admin drops an origin and disables bob; the operator then
		// renames the tenant and gives alice a new password in the file.
		tn := mustTenant(t, a, "acme")
		tn.Origins = []string{"https://app.acme.com"}
		if _, _, err := a.PutTenant(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
		ft.name, ft.aliceHash = "Acme Inc.", testHash(t, "alice's second password")
		r := start(t, b, ft.String())
		got := mustTenant(t, r, "acme")
		if got.Name != "Acme Inc." {
			t.Errorf("name = %q, want the file's new one", got.Name)
		}
		if !slices.Equal(got.Origins, tn.Origins) {
			t.Errorf("origins = %q, want the admin's %q: the file did not change them", got.Origins, tn.Origins)
		}
		wantNoLogin(t, r, "alice", alicePassword)
		wantLogin(t, r, "alice", "alice's second password")
		if _, err := r.Load(t.Context(), &got, []string{cookie}); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("alice's old session after the file changed her password: %v, want ended", err)
		}
		if _, err := r.Load(t.Context(), &got, []string{bobCookie}); err != nil {
			t.Errorf("bob's session, whose entry did not change: %v, want kept", err)
		}
	})
}

func TestFileKeepsDisabledUserWhenOnlyHashChanges(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		disabled := true
		if _, err := a.UpdateUser(t.Context(), "acme", "alice", UserInput{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		ft.aliceHash = testHash(t, "alice's second password")
		r := start(t, b, ft.String())
		u, _ := r.GetUser(t.Context(), "acme", "alice")
		if !u.Disabled {
			t.Error("a new hash in the file re-enabled the user an admin disabled")
		}
		if !verifyPassword(u.PasswordHash, "alice's second password") {
			t.Error("the file's new hash was not applied")
		}
		// Disabling in the file, then enabling in the file, is the
		// operator's own change of that value.
		ft.aliceDisabled = true
		start(t, b, ft.String())
		ft.aliceDisabled = false
		r = start(t, b, ft.String())
		wantLogin(t, r, "alice", "alice's second password")
	})
}

func TestFileRecreatesDeletedUserWhoseEntryChanged(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		if err := a.DeleteUser(t.Context(), "acme", "bob"); err != nil {
			t.Fatal(err)
		}
		ft.bobHash = testHash(t, "bob's second password")
		r := start(t, b, ft.String())
		wantLogin(t, r, "bob", "bob's second password")
	})
}

func TestLostStoreGetsTheFileBack(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		start(t, b, ft.String())
		b.lose(t)
		r := start(t, b, ft.String())
		wantLogin(t, r, "alice", alicePassword)
		if got := auditOf(t, r, "acme"); !slices.Contains(got, "tenants-file tenant.create acme") {
			t.Errorf("audit after the store came back empty = %q, want the tenant's creation", got)
		}
	})
}

func TestFileRecreatesDeletedTenantWhoseSectionChanged(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		a := start(t, b, ft.String())
		if err := a.DeleteTenant(t.Context(), "acme"); err != nil {
			t.Fatal(err)
		}
		ft.name = "Acme again"
		r := start(t, b, ft.String())
		if got := mustTenant(t, r, "acme").Name; got != "Acme again" {
			t.Errorf("name = %q, want the edited file's", got)
		}
		wantLogin(t, r, "alice", alicePassword)
		wantLogin(t, r, "bob", bobPassword)
	})
}

// TestRestoreLostTenants is the running replica's side: it brings back the
// tenants of a store that lost its data, and never one deleted on purpose.
func TestRestoreLostTenants(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		f := parseFile(t, ft.String())
		a := start(t, b, ft.String())
		if n, err := a.RestoreLostTenants(t.Context(), f); n != 0 || err != nil {
			t.Errorf("RestoreLostTenants with nothing lost = %d, %v; want 0, nil", n, err)
		}
		if err := a.DeleteTenant(t.Context(), "acme"); err != nil {
			t.Fatal(err)
		}
		if n, err := a.RestoreLostTenants(t.Context(), f); n != 0 || err != nil {
			t.Errorf("RestoreLostTenants after a deletion = %d, %v; want 0, nil", n, err)
		}
		if _, err := a.GetTenant(t.Context(), "acme"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetTenant after RestoreLostTenants = %v, want the deletion kept", err)
		}
		b.lose(t)
		r := b.replica(t) // a running replica, over the emptied store
		if n, err := r.RestoreLostTenants(t.Context(), f); n != 1 || err != nil {
			t.Errorf("RestoreLostTenants after the store lost everything = %d, %v; want 1, nil", n, err)
		}
		wantLogin(t, r, "alice", alicePassword)
		if n, _ := r.RestoreLostTenants(t.Context(), f); n != 0 {
			t.Errorf("RestoreLostTenants again = %d, want 0", n)
		}
	})
}

// TestRestoreIgnoresAnOlderFile: a replica still running an older file
// does not re-apply it when a tenant goes missing.
func TestRestoreIgnoresAnOlderFile(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		older := parseFile(t, ft.String())
		a := start(t, b, ft.String())
		ft.name = "Acme, newer"
		start(t, b, ft.String())
		if err := a.DeleteTenant(t.Context(), "acme"); err != nil {
			t.Fatal(err)
		}
		if n, err := a.RestoreLostTenants(t.Context(), older); n != 0 || err != nil {
			t.Errorf("RestoreLostTenants with an older file = %d, %v; want 0, nil", n, err)
		}
	})
}

func TestConcurrentStartsApplyOnce(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ft := newFileText(t)
		const replicas = 4
		ms := make([]*Manager, replicas)
		for i := range ms {
			ms[i] = b.replica(t)
		}
		var wg sync.WaitGroup
		for _, m := range ms {
			f := parseFile(t, ft.String())
			wg.Go(func() {
				if err := m.Apply(context.Background(), f); err != nil {
					t.Errorf("Apply: %v", err)
				}
			})
		}
		wg.Wait()
		want := []string{"tenants-file tenant.create acme", "tenants-file user.create alice", "tenants-file user.create bob"}
		if got := auditOf(t, ms[0], "acme"); !slices.Equal(got, want) {
			t.Errorf("audit after %d replicas started at once =\n%q\nwant each change once:\n%q", replicas, got, want)
		}
		wantLogin(t, ms[1], "alice", alicePassword)
	})
}

// TestFileWinsAContradiction: when the file's new value cannot stand with
// an admin's change (a localhost origin on a tenant the file makes
// non-dev), the file's whole configuration is applied, and audited.
func TestFileWinsAContradiction(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		src := func(dev bool) string {
			return fmt.Sprintf("tenants:\n  - id: acme\n    name: Acme\n    dev: %t\n    origins: [https://app.acme.com]\n    cookie: {same_site: lax}\n", dev)
		}
		a := start(t, b, src(true))
		tn := mustTenant(t, a, "acme")
		tn.Origins = append(tn.Origins, "http://localhost:5173")
		if _, _, err := a.PutTenant(t.Context(), tn); err != nil {
			t.Fatal(err)
		}
		r := start(t, b, src(false))
		got := mustTenant(t, r, "acme")
		if got.Dev || !slices.Equal(got.Origins, []string{"https://app.acme.com"}) {
			t.Errorf("tenant = dev %t, origins %q; want the file's (not dev, its one origin)", got.Dev, got.Origins)
		}
		if log := auditOf(t, r, "acme"); log[len(log)-1] != "tenants-file tenant.update acme" {
			t.Errorf("audit = %q, want the file's update last", log)
		}
	})
}

// TestFailedApplicationIsRetried: an application that fails part way (a
// hostname another tenant holds) leaves no record behind, so the next
// start applies the file once the conflict is gone.
func TestFailedApplicationIsRetried(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		src := "tenants:\n  - id: acme\n    name: Acme\n    origins: [https://app.acme.com]\n    hostnames: [auth.acme.com]\n    cookie: {same_site: lax}\n"
		a := b.replica(t)
		other := Tenant{ID: "other", Name: "Other", Origins: []string{"https://other.example"}, Hostnames: []string{"auth.acme.com"}, Cookie: CookiePolicy{SameSite: SameSiteLax}}
		if _, _, err := a.PutTenant(t.Context(), other); err != nil {
			t.Fatal(err)
		}
		if err := a.Apply(t.Context(), parseFile(t, src)); !errors.Is(err, ErrConflict) {
			t.Fatalf("Apply with a hostname held by another tenant = %v, want %v", err, ErrConflict)
		}
		if err := a.DeleteTenant(t.Context(), "other"); err != nil {
			t.Fatal(err)
		}
		r := start(t, b, src)
		if got := mustTenant(t, r, "acme").Hostnames; !slices.Equal(got, []string{"auth.acme.com"}) {
			t.Errorf("hostnames after the retry = %q, want the file's", got)
		}
	})
}

// BenchmarkApplyUnchanged is a replica starting with a file already
// applied: 200 tenants of 5 users each, over a memstore. Nothing is
// written; the cost is reading what was applied.
func BenchmarkApplyUnchanged(b *testing.B) {
	hash := testHash(b, alicePassword)
	var src strings.Builder
	src.WriteString("tenants:\n")
	for i := range 200 {
		fmt.Fprintf(&src, "  - id: t%d\n    name: T\n    origins: [https://t%d.example]\n    cookie: {same_site: lax}\n    users:\n", i, i)
		for j := range 5 {
			fmt.Fprintf(&src, "      - {username: u%d, password_hash: %q}\n", j, hash)
		}
	}
	f := parseFile(b, src.String())
	m := replicaOver(b, memstore.New(memstore.Config{}))
	if err := m.Apply(b.Context(), f); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := m.Apply(b.Context(), f); err != nil {
			b.Fatal(err)
		}
	}
}
