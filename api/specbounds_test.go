package api

import (
	"math"
	"testing"

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
		{"LoginResult.receipt maxLength", schema("LoginResult", "receipt").MaxLength, session.MaxReceiptLen},
		{"DoctorLive.origin maxLength", schema("DoctorLive", "origin").MaxLength, maxDoctorHeader},
		{"DoctorLive.sec_fetch_site maxLength", schema("DoctorLive", "sec_fetch_site").MaxLength, maxEchoedHeader},
		{"DoctorLive.sec_fetch_mode maxLength", schema("DoctorLive", "sec_fetch_mode").MaxLength, maxEchoedHeader},
		{"DoctorLive.results maxItems", schema("DoctorLive", "results").MaxItems, uint64(len(session.DoctorProfiles))},
	} {
		if c.spec == nil || *c.spec != c.code {
			t.Errorf("openapi.yaml: %s is %v, the code enforces %d", c.what, deref(c.spec), c.code)
		}
	}
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
