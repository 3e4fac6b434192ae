package session

import (
	"strings"
	"testing"
	"time"
)

var cheapParams = PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func testHash(tb testing.TB, pw string) string {
	tb.Helper()
	h, err := HashPassword(pw, cheapParams)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func TestParseTenantsFile(t *testing.T) {
	t.Parallel()
	hash := testHash(t, "correct horse")
	src := `
tenants:
  - id: acme
    name: Acme Inc.
    origins: [https://app.acme.com, https://admin.acme.com]
    hostnames: [auth.acme.com]
    cookie: {same_site: lax}
    session: {idle_timeout: 30m, absolute_lifetime: 72h}
    users:
      - username: alice
        password_hash: "` + hash + `"
  - id: beta
    name: Beta
    dev: true
    origins: [http://localhost:5173]
    cookie: {same_site: none, partitioned: true}
`
	f, err := ParseTenantsFile(strings.NewReader(src))
	if err != nil {
		t.Fatalf("ParseTenantsFile: %v", err)
	}
	if got := len(f.Tenants); got != 2 {
		t.Fatalf("len(Tenants) = %d, want 2", got)
	}
	a, b := f.Tenants[0], f.Tenants[1]
	if got, want := time.Duration(a.Session.IdleTimeout), 30*time.Minute; got != want {
		t.Errorf("acme idle = %v, want %v", got, want)
	}
	if got, want := time.Duration(b.Session.AbsoluteLifetime), DefaultAbsoluteLifetime; got != want {
		t.Errorf("beta absolute = %v, want default %v", got, want)
	}
	if len(a.Users) != 1 || a.Users[0].Username != "alice" || a.Users[0].PasswordHash != hash {
		t.Errorf("acme users = %+v, want alice with her hash", a.Users)
	}
	if !b.Cookie.Partitioned || b.Cookie.SameSite != SameSiteNone || !b.Dev {
		t.Errorf("beta = %+v, want dev, none, partitioned", b.Tenant)
	}
}

func TestParseTenantsFileInvalid(t *testing.T) {
	t.Parallel()
	hash := testHash(t, "correct horse")
	tests := []struct {
		name string
		src  string
		want []string // substrings each of which some problem must contain
	}{
		{"empty", ``, []string{"no tenants"}},
		{"not yaml", "tenants: [", []string{"not valid YAML"}},
		{"unknown key", `
tenants:
  - id: acme
    name: A
    colour: red
    origins: [https://app.acme.com]
    cookie: {same_site: lax, samesite: lax}
`, []string{`unknown key "colour"`, `unknown key "samesite"`}},
		{"bad duration", `
tenants:
  - id: acme
    name: A
    origins: [https://app.acme.com]
    cookie: {same_site: lax}
    session: {idle_timeout: forever}
`, []string{"invalid duration"}},
		{"everything at once", `
tenants:
  - id: acme
    name: A
    origins: ["*", "null", "https://App.acme.com", "https://app.acme.com/", "https://app.acme.com:443", "http://app.acme.com", "https://*.github.io"]
    hostnames: [auth.acme.com]
    cookie: {same_site: lax, partitioned: true}
    users:
      - {username: alice, password_hash: "plain"}
      - {username: alice, password_hash: "` + hash + `"}
  - id: acme
    name: B
    origins: [https://b.example]
    cookie: {same_site: strict}
  - id: other
    name: C
    origins: [https://c.example]
    hostnames: [auth.acme.com]
    cookie: {same_site: strict}
`, []string{
			`tenant "acme": origins[0]: "*" is a wildcard`,
			`origins[1]: "null" is prohibited`,
			`origins[2]: "https://App.acme.com" is not a serialized origin`,
			`origins[3]`, `origins[4]`,
			`origins[5]: "http://app.acme.com" is insecure`,
			`origins[6]: "https://*.github.io" is a wildcard`,
			`cookie.partitioned: requires same_site none`,
			`users[0].password_hash: not an argon2id PHC string`,
			`users[1].username: "alice" is declared twice`,
			`id: tenant "acme" is declared twice`,
			`tenant "other": hostnames[0]: "auth.acme.com" is already claimed by tenant "acme"`,
			`origins[4]: "https://app.acme.com:443" is not allowed: leave out default ports`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseTenantsFile(strings.NewReader(tt.src))
			if err == nil {
				t.Fatal("ParseTenantsFile() = nil error, want problems")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not mention %q:\n%s", w, msg)
				}
			}
		})
	}
}

// TestApplyErrorNamesNoUser: an error applying the file is logged when a
// replica re-applies it, so it names the user by position, never by name.
func TestApplyErrorNamesNoUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const name = "lkmarker-user-in-the-file"
	tf := &TenantsFile{Tenants: []TenantSpec{{Tenant: *f.t, Users: []UserSpec{
		{Username: "alice", PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"},
		{Username: name, PasswordHash: "not a PHC string"},
	}}}}
	err := f.m.Apply(t.Context(), tf)
	if err == nil {
		t.Fatal("Apply accepted a user with a malformed hash")
	}
	if strings.Contains(err.Error(), name) {
		t.Errorf("Apply's error names the user: %v", err)
	}
	if !strings.Contains(err.Error(), "users[1]") {
		t.Errorf("Apply's error = %v, want it to name users[1]", err)
	}
}
