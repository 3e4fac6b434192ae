package api

import (
	"net/http"
	"testing"

	"github.com/latchkeyhq/latchkey/session"
)

// TestUpdateTenantsRebuildsOnlyChanged: an update builds the changed
// tenants' policies and keeps every other one as it was (the same
// immutable value), and the public API follows it: a hostname moved to
// another tenant, a deleted tenant gone, the others untouched.
func TestUpdateTenantsRebuildsOnlyChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	before := e.srv.policies.Load()
	acme, beta := before.byID.get("acme"), before.byID.get("beta")
	if acme == nil || beta == nil || before.byHost.get(acmeHost) != acme {
		t.Fatalf("policies before = %+v, want acme (on %s) and beta", before, acmeHost)
	}

	// gamma takes acme's hostname; acme lets it go.
	gamma := session.Tenant{ID: "gamma", Name: "Gamma", Origins: []string{"https://app.gamma.example"}, Hostnames: []string{acmeHost},
		Cookie: session.CookiePolicy{SameSite: session.SameSiteLax}}
	a := acmeTenant()
	a.Hostnames = []string{}
	for _, tn := range []session.Tenant{a, gamma} {
		if _, _, err := e.m.PutTenant(t.Context(), tn); err != nil {
			t.Fatalf("PutTenant(%s): %v", tn.ID, err)
		}
	}
	ts, err := e.m.ListTenants(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var changed []session.Tenant
	for _, tn := range ts {
		if tn.ID != "beta" {
			changed = append(changed, tn)
		}
	}
	e.srv.UpdateTenants(session.TenantsUpdate{Changed: changed})
	after := e.srv.policies.Load()
	if after.byID.get("beta") != beta {
		t.Error("beta's policy was rebuilt by an update that did not change beta")
	}
	if after.byID.get("acme") == acme || after.byID.get("gamma") == nil || after.byHost.get(acmeHost) != after.byID.get("gamma") {
		t.Errorf("policies after = %+v, want a new acme and gamma on %s", after, acmeHost)
	}
	if before.byHost.get(acmeHost) != acme {
		t.Error("the update changed the set being served instead of swapping in a new one")
	}
	if r := e.do(req{method: "GET", path: "/v1/me", host: acmeHost, origin: "https://app.gamma.example"}); r.Header.Get("Access-Control-Allow-Origin") != "https://app.gamma.example" {
		t.Errorf("me on %s from gamma's origin: status %d, ACAO %q; want gamma's", acmeHost, r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}

	e.srv.UpdateTenants(session.TenantsUpdate{Deleted: []session.TenantID{"gamma"}})
	final := e.srv.policies.Load()
	if final.byID.get("gamma") != nil || final.byHost.get(acmeHost) != nil || final.byID.get("beta") != beta || final.byID.get("acme") != after.byID.get("acme") {
		t.Errorf("policies after deleting gamma = %+v, want acme and beta as they were, nothing on %s", final, acmeHost)
	}
	if r := e.do(req{method: "GET", path: "/v1/t/gamma/me", origin: "https://app.gamma.example"}); r.StatusCode != http.StatusNotFound {
		t.Errorf("me of the deleted gamma: status %d, want 404", r.StatusCode)
	}
	if r := e.do(req{method: "GET", path: "/v1/t/beta/me", origin: betaDev}); r.Header.Get("Access-Control-Allow-Origin") != betaDev {
		t.Errorf("beta's me after the updates: ACAO %q, want %q", r.Header.Get("Access-Control-Allow-Origin"), betaDev)
	}
}
