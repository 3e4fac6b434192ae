package session

import (
	"errors"
	"fmt"
	"reflect"
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

// TestParseTenantsFileReportsEverythingAtOnce: one file with a problem of
// every kind (syntax aside, which stops a parse) gets one report naming
// each problem's tenant, field and line. It used to come in three rounds,
// a bad duration alone first, and a null in a list was dropped silently.
func TestParseTenantsFileReportsEverythingAtOnce(t *testing.T) {
	t.Parallel()
	hash := testHash(t, "correct horse")
	src := `tenants:
  - id: acme
    name: Acme
    colour: red
    dev: maybe
    origins: [https://app.acme.com, null, "*", ~]
    hostnames:
      - auth.acme.com
      -
    cookie: {same_site: lax, samesite: lax, partitioned: true}
    session: {idle_timeout: forever, absolute_lifetime: 2h}
    login_limits: {per_account: lots, window: 1s}
    users:
      - {username: alice, password_hash: plain}
      - {username: alice, password_hash: "` + hash + `", disabled: nope}
      - ~
    name: Again
  - id: BAD
    origins: https://x.example
    cookie: [lax]
  - just a string
  - id: other
    name: Other
    origins: [https://o.example]
    hostnames: [auth.acme.com]
    cookie: {same_site: strict}
  - id: acme
    name: Twice
    origins: [https://b.example]
    cookie: {same_site: strict}
    session: {idle_timeout: [1h]}
extra: 1
`
	want := []struct {
		line          int
		tenant, field string
		message       string
	}{
		{4, "acme", "", `unknown key "colour"`},
		{5, "acme", "dev", `must be true or false, got "maybe"`},
		{6, "acme", "origins[1]", "is empty: an unquoted null"},
		{6, "acme", "origins[2]", `"*" is a wildcard pattern`},
		{6, "acme", "origins[3]", "is empty: an unquoted null"},
		{9, "acme", "hostnames[1]", "is empty: an unquoted null"},
		{10, "acme", "cookie", `unknown key "samesite" (known: partitioned, same_site)`},
		{10, "acme", "cookie.partitioned", "requires same_site none"},
		{11, "acme", "session.idle_timeout", `invalid duration "forever"`},
		{11, "acme", "session.absolute_lifetime", "must not be shorter than idle_timeout"},
		{12, "acme", "login_limits.per_account", `must be a whole number, got "lots"`},
		{12, "acme", "login_limits.window", "must be 1m0s to 24h0m0s, got 1s"},
		{14, "acme", "users[0].password_hash", "not an argon2id PHC string"},
		{15, "acme", "users[1].username", `"alice" is declared twice (also users[0])`},
		{15, "acme", "users[1].disabled", `must be true or false, got "nope"`},
		{16, "acme", "users[2]", "is empty: an unquoted null"},
		{17, "acme", "name", "is given twice (also line 3)"},
		{18, "BAD", "id", `must be 1 to 63 lowercase letters`},
		{18, "BAD", "name", "is required"},
		{19, "BAD", "origins", `must be a list, got "https://x.example"`},
		{20, "BAD", "cookie", "must be a mapping of keys to values, got a list"},
		{21, "tenants[2]", "", `must be a mapping of keys to values, got "just a string"`},
		{25, "other", "hostnames[0]", `"auth.acme.com" is already claimed by tenant "acme"`},
		{27, "acme", "id", `tenant "acme" is declared twice (also tenants[0])`},
		{31, "acme", "session.idle_timeout", "must be a single value, got a list"},
		{32, "", "", `unknown key "extra"`},
	}
	_, err := ParseTenantsFile(strings.NewReader(src))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("ParseTenantsFile = %v, want a *ValidationError", err)
	}
	got := ve.Problems
	for i, w := range want {
		if i >= len(got) {
			t.Errorf("problem %d missing: want line %d, tenant %q, %s: %s", i, w.line, w.tenant, w.field, w.message)
			continue
		}
		p := got[i]
		if p.Line != w.line || p.Tenant != w.tenant || p.Field != w.field || !strings.Contains(p.Message, w.message) {
			t.Errorf("problem %d = line %d, tenant %q, %s: %s\nwant      line %d, tenant %q, %s: %s", i, p.Line, p.Tenant, p.Field, p.Message, w.line, w.tenant, w.field, w.message)
		}
	}
	for _, p := range got[min(len(got), len(want)):] {
		t.Errorf("unexpected problem: line %d, tenant %q, %s: %s", p.Line, p.Tenant, p.Field, p.Message)
	}
	if msg := err.Error(); !strings.Contains(msg, `line 11: tenant "acme": session.idle_timeout: invalid duration "forever"`) {
		t.Errorf("Error() does not lead with line, tenant and field:\n%s", msg)
	}
}

func TestParseTenantsFileDocumentProblems(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, src string
		line      int
		message   string
	}{
		{"empty", "", 0, "the file declares no tenants"},
		{"no tenants", "tenants:\n", 0, "the file declares no tenants"},
		{"syntax", "tenants:\n  - id: acme\n    name: [\n", 3, "not valid YAML"},
		{"a tab", "tenants:\n\t- id: acme\n", 2, "not valid YAML"},
		{"not a mapping", "- acme\n", 1, "the file must be a mapping with the key tenants, got a list"},
		{"tenants not a list", "tenants: acme\n", 1, `tenants: must be a list of tenants, got "acme"`},
		{"two documents", "tenants: []\n---\ntenants: []\n", 2, "more than one YAML document"},
		{"null tenant", "tenants:\n  - ~\n", 2, "tenants[0]: is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseTenantsFile(strings.NewReader(tt.src))
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) != 1 {
				t.Fatalf("ParseTenantsFile = %v, want one problem", err)
			}
			if p := ve.Problems[0]; p.Line != tt.line || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("problem = line %d: %v; want line %d and %q", p.Line, err, tt.line, tt.message)
			}
		})
	}
}

// TestParseTenantsFileAnchors: anchors, aliases and merge keys work as in
// yaml, and cannot expand into unbounded work.
func TestParseTenantsFileAnchors(t *testing.T) {
	t.Parallel()
	src := `tenants:
  - id: a
    name: A
    origins: &o [https://a.example, https://b.example]
    cookie: &c {same_site: lax}
    session: &s {idle_timeout: 1h}
  - id: b
    name: B
    origins: *o
    cookie: *c
    session:
      <<: *s
      absolute_lifetime: 2h
`
	f, err := ParseTenantsFile(strings.NewReader(src))
	if err != nil {
		t.Fatalf("ParseTenantsFile: %v", err)
	}
	b := f.Tenants[1]
	if len(b.Origins) != 2 || b.Cookie.SameSite != SameSiteLax || time.Duration(b.Session.IdleTimeout) != time.Hour || time.Duration(b.Session.AbsoluteLifetime) != 2*time.Hour {
		t.Errorf("tenant b = %+v, want a's origins, cookie and idle timeout, its own lifetime", b.Tenant)
	}

	// A list of many users repeated by alias in many tenants.
	var big strings.Builder
	big.WriteString("tenants:\n  - id: t0\n    name: T\n    origins: [https://a.example]\n    cookie: {same_site: lax}\n    users: &u\n")
	for i := range 1000 {
		fmt.Fprintf(&big, "      - {username: u%d, password_hash: x}\n", i)
	}
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&big, "  - {id: t%d, name: T, origins: [https://a.example], cookie: {same_site: lax}, users: *u}\n", i)
	}
	_, err = ParseTenantsFile(strings.NewReader(big.String()))
	if err == nil || !strings.Contains(err.Error(), "aliases (*name) expand to too many values") {
		t.Errorf("ParseTenantsFile of a file of repeated aliases = %.300v, want the alias budget's problem", err)
	}

	// An anchor that merges itself.
	_, err = ParseTenantsFile(strings.NewReader("tenants:\n  - &t\n    id: a\n    <<: *t\n"))
	if err == nil || !strings.Contains(err.Error(), "merges (<<) nest more than") {
		t.Errorf("ParseTenantsFile of a self-merge = %v, want the merge depth's problem", err)
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

func TestParseTenantsFileAccounts(t *testing.T) {
	t.Parallel()
	src := `tenants:
  - id: acme
    name: Acme
    origins: [https://app.acme.com]
    cookie: {same_site: lax}
    accounts:
      signup: true
      email_verification: required
      login_with_email: true
      verify_url: https://app.acme.com/verify
      reset_url: https://app.acme.com/reset
      reset_token_ttl: 15m
      limits: {per_ip: 50}
      templates:
        verify:
          subject: "Welcome to {{.TenantName}}"
        reset: &r
          text: "Reset: {{.Link}}"
        password_changed:
          <<: *r
          html: "<p>{{.Username}}</p>"
  - id: beta
    name: Beta
    origins: [https://b.example]
    cookie: {same_site: lax}
    accounts: ~
`
	f, err := ParseTenantsFile(strings.NewReader(src))
	if err != nil {
		t.Fatalf("ParseTenantsFile: %v", err)
	}
	a := f.Tenants[0].Accounts
	want := &AccountsPolicy{
		Signup: true, EmailVerification: VerificationRequired, LoginWithEmail: true,
		VerifyURL: "https://app.acme.com/verify", ResetURL: "https://app.acme.com/reset",
		VerifyTokenTTL: Duration(DefaultVerifyTokenTTL), ResetTokenTTL: Duration(15 * time.Minute),
		PasswordMinLength: DefaultPasswordMinLength,
		Limits:            AccountLimits{PerIP: 50, PerAddress: DefaultAccountsPerAddress, Window: Duration(DefaultAccountsLimitWindow)},
		Templates: map[MailKind]MailTemplate{
			MailVerify:          {Subject: "Welcome to {{.TenantName}}"},
			MailReset:           {Text: "Reset: {{.Link}}"},
			MailPasswordChanged: {Text: "Reset: {{.Link}}", HTML: "<p>{{.Username}}</p>"},
		},
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("acme accounts = %+v\nwant %+v", a, want)
	}
	if b := f.Tenants[1].Accounts; b != nil {
		t.Errorf("beta accounts = %+v, want nil for accounts: ~", b)
	}
}

func TestParseTenantsFileAccountsProblems(t *testing.T) {
	t.Parallel()
	src := `tenants:
  - id: acme
    name: Acme
    origins: [https://app.acme.com]
    cookie: {same_site: lax}
    accounts:
      signup: sure
      email_verification: Required
      verify_url: https://evil.example/verify
      reset_token_ttl: soon
      password_min_length: 4
      limits: {per_ip: lots, per_address: 5000, windows: 1h}
      colour: red
      templates:
        verify:
          subject: "{{.Password}}"
          body: x
        welcome: {text: hi}
        reset: {text: "{{range 3}}x{{end}}"}
        reset: {text: again}
        [a]: {text: x}
  - id: beta
    name: Beta
    origins: [https://b.example]
    cookie: {same_site: lax}
    accounts: [required]
  - id: gamma
    name: Gamma
    origins: [https://g.example]
    cookie: {same_site: lax}
    accounts:
      email_verification: off
      templates: [verify]
`
	want := []struct {
		line          int
		tenant, field string
		message       string
	}{
		{7, "acme", "accounts.signup", `must be true or false, got "sure"`},
		{8, "acme", "accounts.email_verification", `must be required, optional or off, got "Required"`},
		{9, "acme", "accounts.verify_url", "https://evil.example is not listed in origins"},
		{10, "acme", "accounts.reset_token_ttl", `invalid duration "soon"`},
		{11, "acme", "accounts.password_min_length", "must be 8 to 64 characters, got 4"},
		{12, "acme", "accounts.limits.per_ip", `must be a whole number, got "lots"`},
		{12, "acme", "accounts.limits.per_address", "must be 1 to 1000 requests per window, got 5000"},
		{12, "acme", "accounts.limits", `unknown key "windows" (known: per_address, per_ip, window)`},
		{13, "acme", "accounts", `unknown key "colour"`},
		{16, "acme", "accounts.templates.verify.subject", "can't evaluate field Password in a mail's data (.TenantName, .Username, .Email, .Link, .Expires)"},
		{17, "acme", "accounts.templates.verify", `unknown key "body" (known: html, subject, text)`},
		{18, "acme", "accounts.templates.welcome", `"welcome" is not a kind of mail`},
		{19, "acme", "accounts.templates.reset.text", "uses {{range}}"},
		{20, "acme", "accounts.templates.reset", "is given twice (also line 19)"},
		{21, "acme", "accounts.templates", "has a key that is a list, not text"},
		{26, "beta", "accounts", "must be a mapping of keys to values, got a list"},
		{33, "gamma", "accounts.templates", "must be a mapping of keys to values, got a list"},
	}
	_, err := ParseTenantsFile(strings.NewReader(src))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("ParseTenantsFile = %v, want a *ValidationError", err)
	}
	got := ve.Problems
	for i, w := range want {
		if i >= len(got) {
			t.Errorf("problem %d missing: want line %d, tenant %q, %s: %s", i, w.line, w.tenant, w.field, w.message)
			continue
		}
		p := got[i]
		if p.Line != w.line || p.Tenant != w.tenant || p.Field != w.field || !strings.Contains(p.Message, w.message) {
			t.Errorf("problem %d = line %d, tenant %q, %s: %s\nwant      line %d, tenant %q, %s: %s", i, p.Line, p.Tenant, p.Field, p.Message, w.line, w.tenant, w.field, w.message)
		}
	}
	for _, p := range got[min(len(got), len(want)):] {
		t.Errorf("unexpected problem: line %d, tenant %q, %s: %s", p.Line, p.Tenant, p.Field, p.Message)
	}
}
