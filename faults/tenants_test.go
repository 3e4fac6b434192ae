package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkeyhq/latchkey/session"
)

// cheapParams make the test users' hashes, and so their logins, cost next
// to nothing. Latchkey accepts any stored parameters within its bounds.
// (Its dummy hash for unknown users keeps DefaultPasswordParams.)
var cheapParams = session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// The one tenant every test configures.
const (
	tenantID   = "acme"
	appOrigin  = "https://app.acme.test"
	cookieName = "__Host-latchkey-" + tenantID
)

// testUser is one user of the tenants file, with its clear-text password.
type testUser struct {
	Name, Password string
	Disabled       bool
	Params         *session.PasswordParams // hash parameters; nil means the file's
}

// writeTenantsFile writes a tenants file declaring the tenant acme, which
// allows https://app.acme.test with a SameSite=Lax cookie, and users, each
// hashed with its own Params or else params, and returns its path. Users
// with the same password and parameters share one hash, to save time.
func writeTenantsFile(tb testing.TB, users []testUser, params session.PasswordParams) string {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "tenants:\n  - id: %s\n    name: Acme (fault tests)\n    origins: [%s]\n    cookie:\n      same_site: lax\n    users:\n", tenantID, appOrigin)
	type hashKey struct {
		password string
		params   session.PasswordParams
	}
	hashes := make(map[hashKey]string)
	for _, u := range users {
		k := hashKey{u.Password, params}
		if u.Params != nil {
			k.params = *u.Params
		}
		h, ok := hashes[k]
		if !ok {
			var err error
			if h, err = session.HashPassword(k.password, k.params); err != nil {
				tb.Fatalf("hash password: %v", err)
			}
			hashes[k] = h
		}
		fmt.Fprintf(&b, "      - username: %q\n        password_hash: %q\n        disabled: %t\n", u.Name, h, u.Disabled)
	}
	path := filepath.Join(tb.TempDir(), "tenants.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		tb.Fatalf("write tenants file: %v", err)
	}
	return path
}
