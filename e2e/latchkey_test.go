package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/latchkeyhq/latchkey/session"
)

// cheapHash are argon2id parameters that make the test users' hashes
// (and every login) cost next to nothing. Latchkey accepts any stored
// parameters within its upper bounds.
var cheapHash = session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// testUser is a user of a tenant with its clear-text password.
type testUser struct {
	Name, Password string
}

// tenantConfig is one tenant of the generated tenants file.
type tenantConfig struct {
	ID          string
	Origins     []string
	Hostnames   []string
	SameSite    string
	Partitioned bool
	Users       []testUser
	// Accounts, when set, is the tenant's self-service accounts block
	// (TestSignupInEngines); Latchkey then needs mail (deployment.Mail).
	Accounts *accountsConfig
}

// accountsConfig is a tenant's accounts block as the tenants file writes it.
type accountsConfig struct {
	Signup            bool   `yaml:"signup"`
	EmailVerification string `yaml:"email_verification"`
	LoginWithEmail    bool   `yaml:"login_with_email"`
	VerifyURL         string `yaml:"verify_url,omitempty"`
	ResetURL          string `yaml:"reset_url,omitempty"`
}

// CookieName is the tenant's session cookie name.
func (tc tenantConfig) CookieName() string { return "__Host-latchkey-" + tc.ID }

// Tenant is tc as Latchkey loads it from the tenants file, for the tests
// that judge the suite's configuration in-process.
func (tc tenantConfig) Tenant() session.Tenant {
	return session.Tenant{
		ID: session.TenantID(tc.ID), Name: "e2e " + tc.ID, Origins: tc.Origins, Hostnames: tc.Hostnames,
		Cookie: session.CookiePolicy{SameSite: session.SameSite(tc.SameSite), Partitioned: tc.Partitioned},
	}
}

// writeTenantsFile writes the tenants file for ts, hashing every password
// with cheapHash, and returns its path.
func writeTenantsFile(tb testing.TB, ts []tenantConfig) string {
	tb.Helper()
	type user struct {
		Username     string `yaml:"username"`
		PasswordHash string `yaml:"password_hash"`
	}
	type cookie struct {
		SameSite    string `yaml:"same_site"`
		Partitioned bool   `yaml:"partitioned"`
	}
	type tenant struct {
		ID        string          `yaml:"id"`
		Name      string          `yaml:"name"`
		Origins   []string        `yaml:"origins"`
		Hostnames []string        `yaml:"hostnames,omitempty"`
		Cookie    cookie          `yaml:"cookie"`
		Accounts  *accountsConfig `yaml:"accounts,omitempty"`
		Users     []user          `yaml:"users"`
	}
	var file struct {
		Tenants []tenant `yaml:"tenants"`
	}
	for _, tc := range ts {
		t := tenant{
			ID: tc.ID, Name: "e2e " + tc.ID, Origins: tc.Origins, Hostnames: tc.Hostnames,
			Cookie: cookie{SameSite: tc.SameSite, Partitioned: tc.Partitioned}, Accounts: tc.Accounts,
		}
		for _, u := range tc.Users {
			h, err := session.HashPassword(u.Password, cheapHash)
			if err != nil {
				tb.Fatalf("hash password: %v", err)
			}
			t.Users = append(t.Users, user{Username: u.Name, PasswordHash: h})
		}
		file.Tenants = append(file.Tenants, t)
	}
	b, err := yaml.Marshal(&file)
	if err != nil {
		tb.Fatalf("marshal tenants file: %v", err)
	}
	path := filepath.Join(tb.TempDir(), "tenants.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatalf("write tenants file: %v", err)
	}
	return path
}
