package session

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"go.yaml.in/yaml/v3"
)

// accountsTenant is validTenant with a valid accounts block, defaults
// applied.
func accountsTenant() Tenant {
	t := validTenant()
	t.Accounts = &AccountsPolicy{
		Signup:            true,
		EmailVerification: VerificationRequired,
		LoginWithEmail:    true,
		VerifyURL:         "https://app.acme.com/verify",
		ResetURL:          "https://app.acme.com/reset?from=mail",
	}
	return t.withDefaults()
}

func TestAccountsDefaults(t *testing.T) {
	t.Parallel()
	if got := validTenant().Accounts; got != nil {
		t.Fatalf("a tenant without accounts has Accounts = %+v after defaults, want nil", got)
	}
	in := validTenant()
	in.Accounts = &AccountsPolicy{EmailVerification: VerificationOff, Templates: map[MailKind]MailTemplate{}}
	out := in.withDefaults()
	a := out.Accounts
	want := AccountsPolicy{
		EmailVerification: VerificationOff,
		VerifyTokenTTL:    Duration(DefaultVerifyTokenTTL),
		ResetTokenTTL:     Duration(DefaultResetTokenTTL),
		PasswordMinLength: DefaultPasswordMinLength,
		Limits:            AccountLimits{PerIP: DefaultAccountsPerIP, PerAddress: DefaultAccountsPerAddress, Window: Duration(DefaultAccountsLimitWindow)},
	}
	if !reflect.DeepEqual(*a, want) {
		t.Errorf("Accounts after defaults = %+v, want %+v", *a, want)
	}
	if in.Accounts.VerifyTokenTTL != 0 || in.Accounts.Templates == nil {
		t.Errorf("withDefaults changed the block it was given: %+v", *in.Accounts)
	}
	if err := out.Validate(); err != nil {
		t.Errorf("Validate() after defaults = %v", err)
	}
	// Set values are kept.
	in.Accounts = &AccountsPolicy{EmailVerification: VerificationOff, VerifyTokenTTL: Duration(time.Hour), PasswordMinLength: 12, Limits: AccountLimits{PerIP: 3}}
	a = in.withDefaults().Accounts
	if a.VerifyTokenTTL != Duration(time.Hour) || a.PasswordMinLength != 12 || a.Limits.PerIP != 3 || a.Limits.PerAddress != DefaultAccountsPerAddress {
		t.Errorf("Accounts after defaults = %+v, want the set values kept", *a)
	}
}

func TestAccountsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Tenant)
		field  string // "" means valid
		msg    string
	}{
		{name: "valid", mutate: func(*Tenant) {}},
		{name: "optional", mutate: func(t *Tenant) { t.Accounts.EmailVerification = VerificationOptional }},
		{name: "off without verify_url", mutate: func(t *Tenant) { t.Accounts.EmailVerification = VerificationOff; t.Accounts.VerifyURL = "" }},
		{name: "no reset_url", mutate: func(t *Tenant) { t.Accounts.ResetURL = "" }},
		{name: "url with default port", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "https://app.acme.com:443/verify" }},
		{name: "url with upper case host", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "HTTPS://App.Acme.COM/verify" }},
		{name: "url at the root", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "https://admin.acme.com/" }},
		{name: "url at the bound", mutate: func(t *Tenant) {
			t.Accounts.VerifyURL = "https://app.acme.com/" + strings.Repeat("a", MaxAccountsURLLen-len("https://app.acme.com/"))
		}},
		{name: "dev loopback url", mutate: func(t *Tenant) {
			t.Dev = true
			t.Origins = []string{"http://localhost:5173"}
			t.Accounts.VerifyURL, t.Accounts.ResetURL = "http://localhost:5173/verify", "http://localhost:5173/reset"
		}},
		{name: "bounds", mutate: func(t *Tenant) {
			a := t.Accounts
			a.VerifyTokenTTL, a.ResetTokenTTL = Duration(MaxVerifyTokenTTL), Duration(MinResetTokenTTL)
			a.PasswordMinLength = MaxPasswordMinLength
			a.Limits = AccountLimits{PerIP: MaxAccountsPerIP, PerAddress: 1, Window: Duration(MaxAccountsLimitWindow)}
		}},

		{name: "no email_verification", mutate: func(t *Tenant) { t.Accounts.EmailVerification = "" }, field: "accounts.email_verification", msg: "is required"},
		{name: "bad email_verification", mutate: func(t *Tenant) { t.Accounts.EmailVerification = "Required" }, field: "accounts.email_verification", msg: `got "Required"`},
		{name: "no verify_url", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "" }, field: "accounts.verify_url", msg: "is required unless email_verification is off"},
		{name: "foreign origin", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "https://evil.example/verify" }, field: "accounts.verify_url", msg: "https://evil.example is not listed"},
		{name: "sibling origin", mutate: func(t *Tenant) { t.Accounts.ResetURL = "https://app.acme.com.evil.example/reset" }, field: "accounts.reset_url", msg: "is not listed"},
		{name: "other port", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "https://app.acme.com:8443/verify" }, field: "accounts.verify_url", msg: "https://app.acme.com:8443 is not listed"},
		{name: "other scheme", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "http://app.acme.com/verify" }, field: "accounts.verify_url", msg: "http://app.acme.com is not listed"},
		{name: "relative", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "/verify" }, field: "accounts.verify_url", msg: "absolute URL"},
		{name: "scheme-relative", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "//app.acme.com/verify" }, field: "accounts.verify_url", msg: "absolute URL"},
		{name: "opaque", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "https:app.acme.com/verify" }, field: "accounts.verify_url", msg: "absolute URL"},
		{name: "javascript", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "javascript:alert(1)" }, field: "accounts.verify_url", msg: "absolute URL"},
		{name: "no path", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "https://app.acme.com" }, field: "accounts.verify_url", msg: "must have a path"},
		{name: "no path, query", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "https://app.acme.com?x=1" }, field: "accounts.verify_url", msg: "must have a path"},
		{name: "userinfo", mutate: func(t *Tenant) { t.Accounts.VerifyURL = "https://u:p@app.acme.com/verify" }, field: "accounts.verify_url", msg: "userinfo"},
		{name: "fragment", mutate: func(t *Tenant) { t.Accounts.ResetURL = "https://app.acme.com/#/reset" }, field: "accounts.reset_url", msg: "fragment"},
		{name: "empty fragment", mutate: func(t *Tenant) { t.Accounts.ResetURL = "https://app.acme.com/reset#" }, field: "accounts.reset_url", msg: "fragment"},
		{name: "space", mutate: func(t *Tenant) { t.Accounts.ResetURL = "https://app.acme.com/re set" }, field: "accounts.reset_url", msg: "ASCII without spaces"},
		{name: "newline", mutate: func(t *Tenant) { t.Accounts.ResetURL = "https://app.acme.com/reset\n" }, field: "accounts.reset_url", msg: "ASCII without spaces"},
		{name: "non-ascii", mutate: func(t *Tenant) { t.Accounts.ResetURL = "https://app.acme.com/réinitialiser" }, field: "accounts.reset_url", msg: "ASCII without spaces"},
		{name: "too long", mutate: func(t *Tenant) {
			t.Accounts.VerifyURL = "https://app.acme.com/" + strings.Repeat("a", MaxAccountsURLLen+1-len("https://app.acme.com/"))
		}, field: "accounts.verify_url", msg: "at most 2048"},
		{name: "verify ttl short", mutate: func(t *Tenant) { t.Accounts.VerifyTokenTTL = Duration(4 * time.Minute) }, field: "accounts.verify_token_ttl", msg: "must be 5m0s to 168h0m0s"},
		{name: "verify ttl long", mutate: func(t *Tenant) { t.Accounts.VerifyTokenTTL = Duration(MaxVerifyTokenTTL + time.Second) }, field: "accounts.verify_token_ttl"},
		{name: "reset ttl long", mutate: func(t *Tenant) { t.Accounts.ResetTokenTTL = Duration(25 * time.Hour) }, field: "accounts.reset_token_ttl", msg: "must be 5m0s to 24h0m0s"},
		{name: "reset ttl negative", mutate: func(t *Tenant) { t.Accounts.ResetTokenTTL = Duration(-time.Hour) }, field: "accounts.reset_token_ttl"},
		{name: "min length 7", mutate: func(t *Tenant) { t.Accounts.PasswordMinLength = 7 }, field: "accounts.password_min_length", msg: "must be 8 to 64"},
		{name: "min length 65", mutate: func(t *Tenant) { t.Accounts.PasswordMinLength = 65 }, field: "accounts.password_min_length"},
		{name: "per_ip 0", mutate: func(t *Tenant) { t.Accounts.Limits.PerIP = -1 }, field: "accounts.limits.per_ip"},
		{name: "per_ip over", mutate: func(t *Tenant) { t.Accounts.Limits.PerIP = MaxAccountsPerIP + 1 }, field: "accounts.limits.per_ip"},
		{name: "per_address over", mutate: func(t *Tenant) { t.Accounts.Limits.PerAddress = MaxAccountsPerAddress + 1 }, field: "accounts.limits.per_address", msg: "1 to 1000"},
		{name: "window short", mutate: func(t *Tenant) { t.Accounts.Limits.Window = Duration(time.Second) }, field: "accounts.limits.window"},
		{name: "window long", mutate: func(t *Tenant) { t.Accounts.Limits.Window = Duration(25 * time.Hour) }, field: "accounts.limits.window"},

		{name: "template override", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{
				MailVerify: {Subject: "Welcome to {{.TenantName}}", HTML: `<p>{{if .Username}}Hi {{.Username}}{{end}} <a href="{{.Link}}">go</a> {{len .Link}} {{.Expires}}</p>`},
				MailReset:  {Text: "{{with .Link}}{{.}}{{end}} {{print .Email | urlquery}}"},
			}
		}},
		{name: "template unknown kind", mutate: func(t *Tenant) { t.Accounts.Templates = map[MailKind]MailTemplate{"welcome": {Subject: "hi"}} },
			field: "accounts.templates.welcome", msg: "is not a kind of mail"},
		{name: "template does not parse", mutate: func(t *Tenant) { t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {Text: "{{.Link"}} },
			field: "accounts.templates.reset.text", msg: "does not render"},
		{name: "template unknown field", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {Subject: "{{.Password}}"}}
		}, field: "accounts.templates.reset.subject", msg: "Password"},
		{name: "template unknown function", mutate: func(t *Tenant) { t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {HTML: "{{env}}"}} },
			field: "accounts.templates.reset.html", msg: `"env" not defined`},
		{name: "template printf", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {Text: `{{printf "%0999999999d" 1}}`}}
		}, field: "accounts.templates.reset.text", msg: "calls printf"},
		{name: "template call", mutate: func(t *Tenant) { t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {Text: `{{call .Link}}`}} },
			field: "accounts.templates.reset.text", msg: "calls call"},
		{name: "template range over a number", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {Text: `{{range 1000000000}}{{range 1000000000}}{{end}}{{end}}`}}
		}, field: "accounts.templates.reset.text", msg: "{{range}}"},
		{name: "template define", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {Text: `{{define "a"}}x{{end}}{{define "b"}}{{template "a"}}{{template "a"}}{{end}}`}}
		}, field: "accounts.templates.reset.text", msg: "defines templates"},
		{name: "template block", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {Text: `{{block "a" .}}x{{end}}`}}
		}, field: "accounts.templates.reset.text", msg: "defines templates"},
		{name: "template call in if", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {Text: `{{if .Link}}{{else}}{{printf "%d" 1}}{{end}}`}}
		}, field: "accounts.templates.reset.text", msg: "calls printf"},
		{name: "template bad html", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {HTML: `<a href="{{.Link}}`}}
		}, field: "accounts.templates.reset.html", msg: "does not render"},
		{name: "template empty subject", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{MailReset: {Subject: `{{if false}}x{{end}}  `}}
		}, field: "accounts.templates.reset.subject", msg: "empty subject"},
		{name: "template too long", mutate: func(t *Tenant) {
			t.Accounts.Templates = map[MailKind]MailTemplate{MailVerify: {HTML: strings.Repeat("a", MaxMailTemplateLen+1)}}
		}, field: "accounts.templates.verify.html", msg: "at most 65536"},
		{name: "template not utf-8", mutate: func(t *Tenant) { t.Accounts.Templates = map[MailKind]MailTemplate{MailVerify: {Text: "\xff"}} },
			field: "accounts.templates.verify.text", msg: "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tn := accountsTenant()
			tt.mutate(&tn)
			err := tn.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want a problem on %s", tt.field)
			}
			got := problemFields(t, err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.field+": ") || !strings.Contains(got[0], tt.msg) {
				t.Errorf("problems = %q, want one on %s containing %q", got, tt.field, tt.msg)
			}
		})
	}
}

func TestAccountsValidateReportsEverything(t *testing.T) {
	t.Parallel()
	tn := validTenant()
	tn.Accounts = &AccountsPolicy{
		EmailVerification: "maybe",
		ResetURL:          "https://evil.example/reset#x",
		VerifyTokenTTL:    Duration(time.Minute),
		ResetTokenTTL:     Duration(48 * time.Hour),
		PasswordMinLength: 4,
		Limits:            AccountLimits{PerIP: -1, PerAddress: 5000, Window: Duration(time.Second)},
		Templates:         map[MailKind]MailTemplate{"x": {}, MailVerify: {Subject: "{{"}},
	}
	var fields []string
	for _, f := range problemFields(t, tn.Validate()) {
		field, _, _ := strings.Cut(f, ": ")
		fields = append(fields, field)
	}
	want := []string{
		"accounts.email_verification", "accounts.verify_url", "accounts.reset_url", "accounts.verify_token_ttl",
		"accounts.reset_token_ttl", "accounts.password_min_length", "accounts.limits.per_ip", "accounts.limits.per_address",
		"accounts.limits.window", "accounts.templates.verify.subject", "accounts.templates.x",
	}
	if !slices.Equal(fields, want) {
		t.Errorf("fields = %q\nwant     %q", fields, want)
	}
}

// TestAccountsRoundTrip stores a tenant with every accounts setting as the
// store does (encoding/json, unknown fields refused), as the admin API
// reads it (go-json-experiment, strict) and as a tenants file has it, and
// reads back the same tenant.
func TestAccountsRoundTrip(t *testing.T) {
	t.Parallel()
	tn := accountsTenant()
	tn.Accounts.VerifyTokenTTL = Duration(2 * time.Hour)
	tn.Accounts.Limits = AccountLimits{PerIP: 7, PerAddress: 2, Window: Duration(30 * time.Minute)}
	tn.Accounts.Templates = map[MailKind]MailTemplate{
		MailVerify:          {Subject: "Hi {{.Username}}", HTML: "<p>{{.Link}}</p>"},
		MailPasswordChanged: {Text: "changed\n"},
	}
	tn = tn.withDefaults()
	plain := validTenant()
	for _, in := range []Tenant{tn, plain} {
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if in.Accounts == nil && bytes.Contains(data, []byte("accounts")) {
			t.Errorf("a tenant without accounts marshals %s", data)
		}
		got, err := decodeTenant(data)
		if err != nil {
			t.Fatalf("decodeTenant(%s) = %v", data, err)
		}
		if !got.equal(&in) {
			t.Errorf("encoding/json round trip:\n got %+v\nwant %+v", got.Accounts, in.Accounts)
		}
		var v2 Tenant
		if err := jsonv2.Unmarshal(data, &v2, jsonv2.RejectUnknownMembers(true)); err != nil {
			t.Fatalf("jsonv2.Unmarshal(%s) = %v", data, err)
		}
		if v2 = v2.withDefaults(); !v2.equal(&in) {
			t.Errorf("jsonv2 round trip:\n got %+v\nwant %+v", v2.Accounts, in.Accounts)
		}
		y, err := yaml.Marshal(TenantsFile{Tenants: []TenantSpec{{Tenant: in}}})
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseTenantsFile(bytes.NewReader(y))
		if err != nil {
			t.Fatalf("ParseTenantsFile(%s) = %v", y, err)
		}
		if got := f.Tenants[0].Tenant; !got.equal(&in) {
			t.Errorf("YAML round trip of\n%s\n got %+v\nwant %+v", y, got.Accounts, in.Accounts)
		}
	}
}
