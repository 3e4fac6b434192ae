package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// TestAdminDoctor: POST …/doctor answers the doctor's diagnosis of the
// tenant as stored, for the platform and for the tenant's own key only;
// bad input is a 400 naming every field, and nothing is audited.
func TestAdminDoctor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	_, key, err := e.m.CreateAdminKey(t.Context(), "acme", "ops", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, betaKey, err := e.m.CreateAdminKey(t.Context(), "beta", "ops", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	acme, err := e.m.GetTenant(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	auditBefore, err := e.m.ListAudit(t.Context(), "acme", session.MaxAudit)
	if err != nil {
		t.Fatal(err)
	}
	const path = "/admin/v1/tenants/acme/doctor"

	for _, tt := range []struct {
		name     string
		in       session.DoctorInput
		token    string
		works    bool
		closest  string // closest_origin.origin; "" for none
		relation string
	}{
		{name: "own hostname, platform", in: session.DoctorInput{PageOrigin: acmeApp, API: "https://" + acmeHost + "/v1"}, token: adminToken, works: true, relation: session.RelationSameSite},
		{name: "own hostname, the tenant's key", in: session.DoctorInput{PageOrigin: acmeApp, API: "https://" + acmeHost + "/v1"}, token: key, works: true, relation: session.RelationSameSite},
		{name: "path form on the shared host", in: session.DoctorInput{PageOrigin: acmeAdmin, API: "https://" + sharedHost + "/v1/t/acme"}, token: adminToken, relation: session.RelationCrossSite},
		{name: "an origin not listed", in: session.DoctorInput{PageOrigin: "http://app.acme.com", API: "https://" + acmeHost + "/v1", Credentials: session.CredentialsInclude, ContentType: "application/json"},
			token: adminToken, closest: acmeApp, relation: session.RelationCrossSite},
		{name: "credentials omitted", in: session.DoctorInput{PageOrigin: acmeApp, API: "https://" + acmeHost + "/v1", Credentials: session.CredentialsOmit}, token: key, relation: session.RelationSameSite},
	} {
		r := e.do(req{admin: true, method: "POST", path: path, json: tt.in, token: tt.token})
		if r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200; body %s", tt.name, r.StatusCode, r.body)
		}
		var got session.Diagnosis
		dec := json.NewDecoder(strings.NewReader(string(r.body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("%s: body %s is not a Diagnosis: %v", tt.name, r.body, err)
		}
		want, err := acme.Doctor(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: answer\n%+v\nwant the doctor's\n%+v", tt.name, got, want)
		}
		if got.WorksEverywhere() != tt.works || got.SiteRelation != tt.relation || len(got.Verdicts) != len(session.DoctorProfiles) {
			t.Errorf("%s: works %v, relation %s, %d verdicts; want %v, %s, %d", tt.name, got.WorksEverywhere(), got.SiteRelation, len(got.Verdicts), tt.works, tt.relation, len(session.DoctorProfiles))
		}
		if closest := ""; got.Closest != nil || tt.closest != "" {
			if got.Closest != nil {
				closest = got.Closest.Origin
			}
			if closest != tt.closest {
				t.Errorf("%s: closest origin %q, want %q", tt.name, closest, tt.closest)
			}
		}
	}

	// Refusals, each with its status and problem type.
	good := session.DoctorInput{PageOrigin: acmeApp, API: "https://" + acmeHost + "/v1"}
	for _, tt := range []struct {
		name   string
		q      req
		status int
		typ    string
	}{
		{"another tenant's key", req{admin: true, method: "POST", path: path, json: good, token: betaKey}, http.StatusNotFound, "not-found"},
		{"unknown tenant", req{admin: true, method: "POST", path: "/admin/v1/tenants/nope/doctor", json: good, token: adminToken}, http.StatusNotFound, "not-found"},
		{"no token", req{admin: true, method: "POST", path: path, json: good}, http.StatusUnauthorized, "admin-unauthorized"},
		{"unknown member", req{admin: true, method: "POST", path: path, ct: "application/json", body: `{"page_origin":"https://app.acme.com","api":"https://auth.acme.com/v1","colour":"red"}`, token: adminToken},
			http.StatusBadRequest, "bad-request"},
		{"not JSON", req{admin: true, method: "POST", path: path, ct: "text/plain", body: `{}`, token: adminToken}, http.StatusUnsupportedMediaType, "unsupported-media-type"},
		{"too large", req{admin: true, method: "POST", path: path, ct: "application/json", body: `{"page_origin":"` + strings.Repeat("a", maxAdminBody) + `"}`, token: adminToken},
			http.StatusRequestEntityTooLarge, "payload-too-large"},
	} {
		r := e.do(tt.q)
		if r.StatusCode != tt.status || r.problemType() != tt.typ {
			t.Errorf("%s: status %d %s, want %d %s; body %.300s", tt.name, r.StatusCode, r.problemType(), tt.status, tt.typ, r.body)
		}
	}

	// Bad input: every field's problem at once.
	r := e.do(adminReq("POST", path, session.DoctorInput{PageOrigin: "app.acme.com", API: "https://" + sharedHost + "/v1", Credentials: "always"}))
	var p problem
	json.Unmarshal(r.body, &p)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	slices.Sort(fields)
	if r.StatusCode != http.StatusBadRequest || r.problemType() != "invalid-config" || !slices.Equal(fields, []string{"api", "credentials", "page_origin"}) {
		t.Errorf("bad input: status %d %s, fields %q; want 400 invalid-config on api, credentials, page_origin; body %s", r.StatusCode, r.problemType(), fields, r.body)
	}

	// A read: the audit log is as it was.
	if after, err := e.m.ListAudit(t.Context(), "acme", session.MaxAudit); err != nil || len(after) != len(auditBefore) {
		t.Errorf("audit entries after the doctor: %d (%v), before %d; want no new entry", len(after), err, len(auditBefore))
	}
}

// TestAdminTenantPutDoctor: the answer to a PUT carries the doctor's
// verdict on each origin, for the API URL its page would call: the tenant's
// hostname on the page's site (else its first), or the path form on the
// shared host; an origin whose API is unknown is left out.
func TestAdminTenantPutDoctor(t *testing.T) {
	t.Parallel()
	withShared := newEnv(t, envOptions{token: adminToken, manager: func(c *session.Config) { c.PublicHosts = []string{sharedHost} }})
	withLocal := newEnv(t, envOptions{token: adminToken, manager: func(c *session.Config) { c.PublicHosts = []string{"localhost"} }})
	without := newEnv(t, envOptions{token: adminToken})
	all := session.DoctorProfiles

	tests := []struct {
		name   string
		e      *env
		tenant map[string]any
		want   []originDoctor // Advice: a substring of the advice
	}{
		{name: "hostname on the page's site, not the first", e: without,
			tenant: map[string]any{"name": "Gamma", "origins": []string{"https://app.gamma.com", "https://admin.other.org"}, "hostnames": []string{"auth.gamma.eu", "auth.gamma.com"}, "cookie": map[string]any{"same_site": "lax"}},
			want: []originDoctor{
				{Origin: "https://app.gamma.com", API: "https://auth.gamma.com/v1", WorksEverywhere: true, Failing: []string{}},
				{Origin: "https://admin.other.org", API: "https://auth.gamma.eu/v1", Failing: all, Advice: "A Lax or Strict cookie never goes with a cross-site fetch"},
			}},
		{name: "partitioned on the shared host", e: withShared,
			tenant: map[string]any{"name": "Gamma", "origins": []string{"https://app.gamma.com"}, "cookie": map[string]any{"same_site": "none", "partitioned": true}},
			want: []originDoctor{
				{Origin: "https://app.gamma.com", API: "https://" + sharedHost + "/v1/t/gamma", Failing: []string{session.ProfileFirefoxStrict, session.ProfileSafariNoCHIPS},
					Advice: "This browser drops even a partitioned cookie: add a hostname on the SPA's site to the tenant (e.g. auth.gamma.com)"},
			}},
		{name: "dev tenant on a local shared host", e: withLocal,
			tenant: map[string]any{"name": "Gamma", "dev": true, "origins": []string{"http://localhost:5173", "http://127.0.0.1:5173"}, "cookie": map[string]any{"same_site": "lax"}},
			want: []originDoctor{
				{Origin: "http://localhost:5173", API: "http://localhost/v1/t/gamma", WorksEverywhere: true, Failing: []string{}},
				{Origin: "http://127.0.0.1:5173", API: "http://localhost/v1/t/gamma", Failing: all, Advice: "Call the API by the page's own host name (127.0.0.1), not localhost"},
			}},
		{name: "shared host unknown", e: without,
			tenant: map[string]any{"name": "Gamma", "origins": []string{"https://app.gamma.com"}, "cookie": map[string]any{"same_site": "none", "partitioned": true}},
			want:   []originDoctor{}},
	}
	for _, tt := range tests {
		r := tt.e.do(adminReq("PUT", "/admin/v1/tenants/gamma", tt.tenant))
		if r.StatusCode != http.StatusCreated && r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d; body %s", tt.name, r.StatusCode, r.body)
		}
		var got struct {
			Doctor []originDoctor `json:"doctor"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil || got.Doctor == nil {
			t.Fatalf("%s: body %s (%v), want a doctor array", tt.name, r.body, err)
		}
		if len(got.Doctor) != len(tt.want) {
			t.Fatalf("%s: doctor = %+v, want %d entries", tt.name, got.Doctor, len(tt.want))
		}
		for i, w := range tt.want {
			g := got.Doctor[i]
			if g.Origin != w.Origin || g.API != w.API || g.WorksEverywhere != w.WorksEverywhere || !slices.Equal(g.Failing, w.Failing) || (w.Advice == "") != (g.Advice == "") || !strings.Contains(g.Advice, w.Advice) {
				t.Errorf("%s: doctor[%d] = %+v, want %+v (advice containing it)", tt.name, i, g, w)
			}
		}
	}
	// What a GET gives is the tenant alone: the doctor belongs to the PUT.
	if r := withShared.do(adminReq("GET", "/admin/v1/tenants/gamma", nil)); strings.Contains(string(r.body), "doctor") {
		t.Errorf("GET tenant = %s, want no doctor", r.body)
	}
}
