package session

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/latchkeyhq/latchkey/store/memstore"
)

// emailFile is a tenants file whose alice has an address.
func emailFile(aliceHash, bobHash, aliceEmail string, verified bool) string {
	return fmt.Sprintf(`
tenants:
  - id: acme
    name: Acme
    origins: [https://app.acme.com]
    cookie: {same_site: lax}
    users:
      - username: alice
        password_hash: %q
        email: %q
        email_verified: %t
      - username: bob
        password_hash: %q
`, aliceHash, aliceEmail, verified, bobHash)
}

func TestFileUserEmail(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, b backend) {
		ah, bh := testHash(t, alicePassword), testHash(t, bobPassword)
		v1 := emailFile(ah, bh, "Alice@Example.com", true)
		a := start(t, b, v1)
		u, err := a.GetUser(t.Context(), "acme", "alice")
		if err != nil || u.Email != "Alice@Example.com" || !u.EmailVerified {
			t.Fatalf("alice from the file = %+v, %v", u, err)
		}
		// An admin changes alice's address and gives bob one.
		next, bobs := "alice@new.example", "bob@example.com"
		if _, err := a.UpdateUser(t.Context(), "acme", "alice", UserInput{Email: &next}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.UpdateUser(t.Context(), "acme", "bob", UserInput{Email: &bobs}); err != nil {
			t.Fatal(err)
		}
		// The same file again changes neither.
		r := start(t, b, v1)
		if u, _ := r.GetUser(t.Context(), "acme", "alice"); u.Email != next || u.EmailVerified {
			t.Errorf("alice after the same file = %q verified %v, want %q unverified", u.Email, u.EmailVerified, next)
		}
		if u, _ := r.GetUser(t.Context(), "acme", "bob"); u.Email != bobs {
			t.Errorf("bob after the same file = %q, want %q", u.Email, bobs)
		}
		// A new address in the file is applied, with the file's flag.
		r = start(t, b, emailFile(ah, bh, "alice2@example.com", true))
		if u, _ := r.GetUser(t.Context(), "acme", "alice"); u.Email != "alice2@example.com" || !u.EmailVerified {
			t.Errorf("alice after the edit = %q verified %v, want alice2@example.com verified", u.Email, u.EmailVerified)
		}
		if u, _ := r.GetUser(t.Context(), "acme", "bob"); u.Email != bobs {
			t.Errorf("bob after alice's edit = %q, want %q", u.Email, bobs)
		}
		// Only the flag changes: applied.
		r = start(t, b, emailFile(ah, bh, "alice2@example.com", false))
		if u, _ := r.GetUser(t.Context(), "acme", "alice"); u.EmailVerified {
			t.Error("alice still verified after the file unset it")
		}
		// Another user's address is refused, without naming the user.
		err = r.Apply(t.Context(), parseFile(t, emailFile(ah, bh, "BOB@example.com", false)))
		if err == nil {
			t.Error("Apply with bob's address for alice succeeded")
		}
	})
}

// A file without addresses keeps the record it had before users had
// them, so that upgrading changes nothing (and resurrects no tenant).
func TestRecordWithoutEmailIsUnchanged(t *testing.T) {
	t.Parallel()
	r := recordOf(TenantSpec{Users: []UserSpec{{Username: "bob", PasswordHash: "h"}}})
	if got := slices.Sorted(maps.Keys(r.Users["bob"])); !slices.Equal(got, []string{fieldDisabled, fieldHash}) {
		t.Errorf("record fields = %v, want only disabled and password_hash", got)
	}
}

func TestApplyNeedsMail(t *testing.T) {
	t.Parallel()
	m := replicaOver(t, memstore.New(memstore.Config{}))
	tn := validTenant()
	tn.Accounts = accountsPolicy(VerificationRequired)
	err := m.Apply(t.Context(), &TenantsFile{Tenants: []TenantSpec{{Tenant: tn}}})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Problems[0] != (Problem{Tenant: "acme", Field: "accounts", Message: needsMailMessage}) {
		t.Errorf("Apply without a Mailer = %v", err)
	}
	if _, err := m.GetTenant(t.Context(), "acme"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the tenant was created: %v", err)
	}
}
