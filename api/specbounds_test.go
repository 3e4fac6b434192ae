package api

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/latchkeyhq/latchkey/session"
)

// TestSpecBoundsAreTheCode checks that every bound openapi.yaml states is
// the one the code enforces: the constants own the numbers, and a client
// generated from the spec must be refused by nothing it thinks is allowed.
func TestSpecBoundsAreTheCode(t *testing.T) {
	t.Parallel()
	doc := newSpecValidator(t).doc
	schema := func(name string, props ...string) *openapi3.Schema {
		ref := doc.Components.Schemas[name]
		if ref == nil {
			t.Fatalf("openapi: no schema %s", name)
		}
		s := ref.Value
		for _, p := range props {
			if s.Properties[p] == nil {
				t.Fatalf("openapi: schema %s has no property %s", name, p)
			}
			s = s.Properties[p].Value
		}
		return s
	}
	auditLimit := doc.Paths.Find("/admin/v1/tenants/{tenant}/audit").Get.Parameters.GetByInAndName("query", "limit").Schema.Value
	for _, c := range []struct {
		what string
		spec *uint64
		code uint64
	}{
		{"TenantId maxLength", schema("TenantId").MaxLength, session.MaxTenantIDLen},
		{"Hostname maxLength", schema("Hostname").MaxLength, session.MaxHostnameLen},
		{"Username maxLength", schema("Username").MaxLength, session.MaxUsernameLen},
		{"NewUsername maxLength", schema("NewUsername").MaxLength, session.MaxUsernameLen},
		{"Password maxLength", schema("Password").MaxLength, session.MaxPasswordLen},
		{"TenantInput.name maxLength", schema("TenantInput", "name").MaxLength, session.MaxTenantNameLen},
		{"Tenant.name maxLength", schema("Tenant", "name").MaxLength, session.MaxTenantNameLen},
		{"TenantInput.origins maxItems", schema("TenantInput", "origins").MaxItems, session.MaxOrigins},
		{"TenantInput.hostnames maxItems", schema("TenantInput", "hostnames").MaxItems, session.MaxHostnames},
		{"AdminKeyInput.name maxLength", schema("AdminKeyInput", "name").MaxLength, session.MaxKeyNameLen},
		{"per_account maximum", maxOf(schema("TenantLoginLimitsInput", "per_account")), session.MaxFailuresPerAccount},
		{"per_ip maximum", maxOf(schema("TenantLoginLimitsInput", "per_ip")), session.MaxFailuresPerIP},
		{"audit limit maximum", maxOf(auditLimit), session.MaxAudit},
		{"Tenant.doctor maxItems", schema("Tenant", "doctor").MaxItems, session.MaxOrigins},
		{"LoginResult.receipt maxLength", schema("LoginResult", "receipt").MaxLength, session.MaxReceiptLen},
		{"DoctorLive.origin maxLength", schema("DoctorLive", "origin").MaxLength, maxDoctorHeader},
		{"DoctorLive.sec_fetch_site maxLength", schema("DoctorLive", "sec_fetch_site").MaxLength, maxEchoedHeader},
		{"DoctorLive.sec_fetch_mode maxLength", schema("DoctorLive", "sec_fetch_mode").MaxLength, maxEchoedHeader},
		{"DoctorLive.results maxItems", schema("DoctorLive", "results").MaxItems, uint64(len(session.DoctorProfiles))},
		{"Email maxLength", schema("Email").MaxLength, session.MaxEmailLen},
		{"password_min_length minimum", minOf(schema("TenantAccountsInput", "password_min_length")), session.MinPasswordMinLength},
		{"password_min_length maximum", maxOf(schema("TenantAccountsInput", "password_min_length")), session.MaxPasswordMinLength},
		{"password_min_length default", defaultOf(schema("TenantAccountsInput", "password_min_length")), session.DefaultPasswordMinLength},
		{"accounts per_ip maximum", maxOf(schema("TenantAccountLimitsInput", "per_ip")), session.MaxAccountsPerIP},
		{"accounts per_ip default", defaultOf(schema("TenantAccountLimitsInput", "per_ip")), session.DefaultAccountsPerIP},
		{"accounts per_address maximum", maxOf(schema("TenantAccountLimitsInput", "per_address")), session.MaxAccountsPerAddress},
		{"accounts per_address default", defaultOf(schema("TenantAccountLimitsInput", "per_address")), session.DefaultAccountsPerAddress},
		{"AccountsURL maxLength", schema("AccountsURL").MaxLength, session.MaxAccountsURLLen},
		{"MailTemplate.subject maxLength", schema("MailTemplate", "subject").MaxLength, session.MaxMailTemplateLen},
		{"MailTemplate.text maxLength", schema("MailTemplate", "text").MaxLength, session.MaxMailTemplateLen},
		{"MailTemplate.html maxLength", schema("MailTemplate", "html").MaxLength, session.MaxMailTemplateLen},
		{"MailToken maxLength", schema("MailToken").MaxLength, maxTokenLen},
	} {
		if c.spec == nil || *c.spec != c.code {
			t.Errorf("openapi.yaml: %s is %v, the code enforces %d", c.what, deref(c.spec), c.code)
		}
	}
}

// TestSpecAccountsDurations checks the accounts' durations: their
// defaults are the code's, and their descriptions state the code's range.
func TestSpecAccountsDurations(t *testing.T) {
	t.Parallel()
	doc := newSpecValidator(t).doc
	in := doc.Components.Schemas["TenantAccountsInput"].Value
	limits := doc.Components.Schemas["TenantAccountLimitsInput"].Value
	for _, c := range []struct {
		what     string
		s        *openapi3.Schema
		def      time.Duration
		min, max time.Duration
		rng      string
	}{
		{"verify_token_ttl", in.Properties["verify_token_ttl"].Value, session.DefaultVerifyTokenTTL, session.MinVerifyTokenTTL, session.MaxVerifyTokenTTL, "5m to 168h"},
		{"reset_token_ttl", in.Properties["reset_token_ttl"].Value, session.DefaultResetTokenTTL, session.MinResetTokenTTL, session.MaxResetTokenTTL, "5m to 24h"},
		{"limits.window", limits.Properties["window"].Value, session.DefaultAccountsLimitWindow, session.MinAccountsLimitWindow, session.MaxAccountsLimitWindow, "1m to 24h"},
	} {
		d, err := time.ParseDuration(fmt.Sprint(c.s.Default))
		if err != nil || d != c.def {
			t.Errorf("openapi.yaml: %s default %v, the code's is %v", c.what, c.s.Default, c.def)
		}
		lo, hi, _ := strings.Cut(strings.Fields(c.rng)[0]+" "+strings.Fields(c.rng)[2], " ")
		if l, _ := time.ParseDuration(lo); l != c.min {
			t.Errorf("test table: %s range %q starts at %s, the code's at %v", c.what, c.rng, lo, c.min)
		}
		if h, _ := time.ParseDuration(hi); h != c.max {
			t.Errorf("test table: %s range %q ends at %s, the code's at %v", c.what, c.rng, hi, c.max)
		}
		if !strings.Contains(c.s.Description, c.rng) {
			t.Errorf("openapi.yaml: %s description %q does not state the range %s", c.what, c.s.Description, c.rng)
		}
	}
}

// TestSpecDoctorIsTheDoctor checks the doctor's schemas against the
// session package: each text of a DoctorRequest is taken at its maxLength
// and refused one byte over it (the bound is the doctor's, unexported), and
// every enum is the code's set, in the code's order.
func TestSpecDoctorIsTheDoctor(t *testing.T) {
	t.Parallel()
	doc := newSpecValidator(t).doc
	req := doc.Components.Schemas["DoctorRequest"].Value
	tn := acmeTenant()
	// pad makes a text of n bytes from prefix, filler and suffix.
	pad := func(n int, prefix, suffix string) string {
		return prefix + strings.Repeat("a", n-len(prefix)-len(suffix)) + suffix
	}
	for _, c := range []struct {
		field string
		input func(n int) session.DoctorInput
	}{
		{"page_origin", func(n int) session.DoctorInput {
			return session.DoctorInput{PageOrigin: pad(n, "https://", ""), API: "https://auth.acme.com/v1"}
		}},
		{"api", func(n int) session.DoctorInput {
			return session.DoctorInput{PageOrigin: acmeApp, API: pad(n, "https://", ".example/v1/t/acme")}
		}},
		{"content_type", func(n int) session.DoctorInput {
			return session.DoctorInput{PageOrigin: acmeApp, API: "https://auth.acme.com/v1", ContentType: pad(n, "application/json; x=", "")}
		}},
	} {
		max := req.Properties[c.field].Value.MaxLength
		if max == nil {
			t.Errorf("openapi.yaml: DoctorRequest.%s has no maxLength", c.field)
			continue
		}
		for n, refused := range map[int]bool{int(*max): false, int(*max) + 1: true} {
			_, err := tn.Doctor(c.input(n))
			var ve *session.ValidationError
			got := errors.As(err, &ve) && slices.ContainsFunc(ve.Problems, func(p session.Problem) bool { return p.Field == c.field })
			if got != refused {
				t.Errorf("DoctorRequest.%s of %d bytes (maxLength %d): refused %v (%v), want %v", c.field, n, *max, got, err, refused)
			}
		}
	}

	enum := func(s *openapi3.Schema) []string {
		var out []string
		for _, v := range s.Enum {
			out = append(out, fmt.Sprint(v))
		}
		return out
	}
	for _, c := range []struct {
		what       string
		spec, code []string
	}{
		{"DoctorBrowser", enum(doc.Components.Schemas["DoctorBrowser"].Value), session.DoctorProfiles},
		{"Diagnosis.site_relation", enum(doc.Components.Schemas["Diagnosis"].Value.Properties["site_relation"].Value),
			[]string{session.RelationSameOrigin, session.RelationSameSite, session.RelationCrossSite}},
		{"DoctorRequest.credentials", enum(req.Properties["credentials"].Value),
			[]string{session.CredentialsInclude, session.CredentialsSameOrigin, session.CredentialsOmit}},
	} {
		if !slices.Equal(c.spec, c.code) {
			t.Errorf("openapi.yaml: %s enum is %q, the code has %q", c.what, c.spec, c.code)
		}
	}
}

// minOf is s's minimum as a count, or nil when it states none.
func minOf(s *openapi3.Schema) *uint64 {
	if s.Min == nil || *s.Min != math.Trunc(*s.Min) {
		return nil
	}
	return new(uint64(*s.Min))
}

// defaultOf is s's default as a count, or nil when it states none.
func defaultOf(s *openapi3.Schema) *uint64 {
	if f, ok := s.Default.(float64); ok && f == math.Trunc(f) {
		return new(uint64(f))
	}
	return nil
}

// maxOf is s's maximum as a count, or nil when it states none.
func maxOf(s *openapi3.Schema) *uint64 {
	if s.Max == nil || *s.Max != math.Trunc(*s.Max) {
		return nil
	}
	return new(uint64(*s.Max))
}

func deref(p *uint64) any {
	if p == nil {
		return "missing"
	}
	return *p
}
