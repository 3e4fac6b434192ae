package api

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

func adminReq(method, path string, body any) req {
	return req{admin: true, method: method, path: path, json: body, token: adminToken}
}

func TestAdminTenants(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})

	gamma := map[string]any{
		"name":    "Gamma",
		"origins": []string{"https://app.gamma.example"},
		"cookie":  map[string]any{"same_site": "strict"},
	}
	r := e.do(adminReq("PUT", "/admin/v1/tenants/gamma", gamma))
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create gamma: status %d, want 201; body %s", r.StatusCode, r.body)
	}
	var got session.Tenant
	json.Unmarshal(r.body, &got)
	if got.ID != "gamma" || time.Duration(got.Session.IdleTimeout) != session.DefaultIdleTimeout {
		t.Errorf("created tenant = %+v, want id gamma with default lifetimes", got)
	}
	if r = e.do(adminReq("PUT", "/admin/v1/tenants/gamma", gamma)); r.StatusCode != http.StatusOK {
		t.Errorf("replace gamma: status %d, want 200", r.StatusCode)
	}
	if r = e.do(adminReq("GET", "/admin/v1/tenants/gamma", nil)); r.StatusCode != http.StatusOK {
		t.Errorf("get gamma: status %d, want 200", r.StatusCode)
	}
	r = e.do(adminReq("GET", "/admin/v1/tenants", nil))
	var list tenantList
	json.Unmarshal(r.body, &list)
	if len(list.Tenants) != 3 || list.Tenants[0].ID != "acme" || list.Tenants[2].ID != "gamma" {
		t.Errorf("tenants = %+v, want acme, beta, gamma", list.Tenants)
	}

	// Invalid configurations are refused with every problem listed.
	r = e.do(adminReq("PUT", "/admin/v1/tenants/gamma", map[string]any{
		"name": "Gamma", "origins": []string{"*", "http://evil.example", "null"},
		"cookie": map[string]any{"same_site": "lax", "partitioned": true},
	}))
	var p problem
	json.Unmarshal(r.body, &p)
	if r.StatusCode != http.StatusBadRequest || r.problemType() != "invalid-config" || len(p.Errors) != 4 {
		t.Errorf("invalid tenant: status %d %s with %d errors, want 400 invalid-config with 4; body %s", r.StatusCode, r.problemType(), len(p.Errors), r.body)
	}
	for _, bad := range []struct {
		name, path string
		body       any
		status     int
	}{
		{"unknown field", "/admin/v1/tenants/gamma", map[string]any{"name": "G", "origins": []string{"https://a.example"}, "cookie": map[string]any{"same_site": "lax"}, "colour": "red"}, 400},
		{"id mismatch", "/admin/v1/tenants/gamma", map[string]any{"id": "delta", "name": "G", "origins": []string{"https://a.example"}, "cookie": map[string]any{"same_site": "lax"}}, 400},
		{"bad id", "/admin/v1/tenants/Gamma", map[string]any{"name": "G", "origins": []string{"https://a.example"}, "cookie": map[string]any{"same_site": "lax"}}, 400},
		{"hostname claimed", "/admin/v1/tenants/gamma", map[string]any{"name": "G", "origins": []string{"https://a.example"}, "hostnames": []string{acmeHost}, "cookie": map[string]any{"same_site": "lax"}}, 409},
		{"bad duration", "/admin/v1/tenants/gamma", map[string]any{"name": "G", "origins": []string{"https://a.example"}, "cookie": map[string]any{"same_site": "lax"}, "session": map[string]any{"idle_timeout": "soon"}}, 400},
	} {
		if r := e.do(adminReq("PUT", bad.path, bad.body)); r.StatusCode != bad.status {
			t.Errorf("%s: status %d, want %d; body %s", bad.name, r.StatusCode, bad.status, r.body)
		}
	}
	if r := e.do(req{admin: true, method: "PUT", path: "/admin/v1/tenants/gamma", token: adminToken, ct: "text/plain", body: "{}"}); r.StatusCode != 415 {
		t.Errorf("text/plain PUT: status %d, want 415", r.StatusCode)
	}

	// Deleting a tenant ends its sessions and its public API.
	c := e.loginBob()
	if r = e.do(adminReq("DELETE", "/admin/v1/tenants/beta", nil)); r.StatusCode != http.StatusNoContent {
		t.Errorf("delete beta: status %d, want 204", r.StatusCode)
	}
	if r = e.do(adminReq("DELETE", "/admin/v1/tenants/beta", nil)); r.StatusCode != http.StatusNotFound {
		t.Errorf("delete beta again: status %d, want 404: nothing was deleted", r.StatusCode)
	}
	if r = e.do(adminReq("GET", "/admin/v1/tenants/beta", nil)); r.StatusCode != http.StatusNotFound {
		t.Errorf("get deleted beta: status %d, want 404", r.StatusCode)
	}
	e.reload()
	if r = e.do(req{method: "GET", path: "/v1/t/beta/me", origin: betaDev, cookies: []*http.Cookie{c}}); r.StatusCode != http.StatusNotFound || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("deleted tenant's me: status %d, ACAO %q; want 404 without CORS", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
	}
	// Recreating it does not bring the old sessions or users back.
	e.do(adminReq("PUT", "/admin/v1/tenants/beta", betaTenant()))
	e.reload()
	if r = e.do(req{method: "GET", path: "/v1/t/beta/me", origin: betaDev, cookies: []*http.Cookie{c}}); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("recreated tenant with old cookie: status %d, want 401", r.StatusCode)
	}
	// acme is untouched by all of this.
	if r = e.do(req{method: "GET", path: "/v1/me", host: acmeHost, cookies: []*http.Cookie{e.loginAlice()}}); r.StatusCode != http.StatusOK {
		t.Errorf("acme after beta's deletion: status %d, want 200", r.StatusCode)
	}
}

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	base := "/admin/v1/tenants/acme/users"

	r := e.do(adminReq("POST", base, map[string]any{"username": "dave", "password": "dave's password"}))
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create dave: status %d, want 201; body %s", r.StatusCode, r.body)
	}
	if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "password") {
		t.Errorf("user view leaks the password or its hash: %s", r.body)
	}
	for _, bad := range []struct {
		name   string
		body   any
		status int
	}{
		{"exists", map[string]any{"username": "dave", "password": "whatever pass"}, 409},
		{"short password", map[string]any{"username": "erin", "password": "short"}, 400},
		{"both", map[string]any{"username": "erin", "password": "long enough", "password_hash": "x"}, 400},
		{"neither", map[string]any{"username": "erin"}, 400},
		{"bad hash", map[string]any{"username": "erin", "password_hash": "$argon2id$nope"}, 400},
		{"space in name", map[string]any{"username": "er in", "password": "long enough"}, 400},
	} {
		if r := e.do(adminReq("POST", base, bad.body)); r.StatusCode != bad.status {
			t.Errorf("%s: status %d, want %d; body %s", bad.name, r.StatusCode, bad.status, r.body)
		}
	}
	if r := e.do(adminReq("POST", "/admin/v1/tenants/nope/users", map[string]any{"username": "x", "password": "long enough"})); r.StatusCode != 404 {
		t.Errorf("user in unknown tenant: status %d, want 404", r.StatusCode)
	}
	r = e.do(adminReq("GET", base, nil))
	var users userList
	json.Unmarshal(r.body, &users)
	if len(users.Users) != 2 || users.Users[0].Username != "alice" || users.Users[1].Username != "dave" {
		t.Errorf("users = %+v, want alice and dave", users.Users)
	}

	login := func(pw string) *http.Cookie { return e.loginAcme("dave", pw) }
	alive := e.aliveAcme
	c := login("dave's password")
	if c == nil {
		t.Fatal("dave cannot log in")
	}

	// The admin sees and ends dave's sessions.
	r = e.do(adminReq("GET", base+"/dave/sessions", nil))
	var ss sessionList
	json.Unmarshal(r.body, &ss)
	if len(ss.Sessions) != 1 || ss.Sessions[0].Current {
		t.Fatalf("dave's sessions = %+v, want one, not current", ss.Sessions)
	}
	if r = e.do(adminReq("DELETE", base+"/dave/sessions/"+ss.Sessions[0].ID, nil)); r.StatusCode != 204 || alive(c) {
		t.Errorf("admin revoke one: status %d, alive %v; want 204 and ended", r.StatusCode, alive(c))
	}
	c = login("dave's password")
	if r = e.do(adminReq("DELETE", base+"/dave/sessions", nil)); r.StatusCode != 204 || alive(c) {
		t.Errorf("admin revoke all: status %d, alive %v; want 204 and ended", r.StatusCode, alive(c))
	}

	// A password change ends sessions; the old password stops working.
	c = login("dave's password")
	if r = e.do(adminReq("PATCH", base+"/dave", map[string]any{"password": "a new password"})); r.StatusCode != 200 {
		t.Errorf("set password: status %d, want 200", r.StatusCode)
	}
	if alive(c) || login("dave's password") != nil || login("a new password") == nil {
		t.Error("after a password change: old session or old password still works, or the new one does not")
	}
	// Disabling ends sessions and refuses logins, with the usual 401.
	c = login("a new password")
	if r = e.do(adminReq("PATCH", base+"/dave", map[string]any{"disabled": true})); r.StatusCode != 200 {
		t.Errorf("disable: status %d, want 200", r.StatusCode)
	}
	if alive(c) || login("a new password") != nil {
		t.Error("a disabled user still has a session or can log in")
	}
	if r = e.do(adminReq("PATCH", base+"/dave", map[string]any{})); r.StatusCode != 400 {
		t.Errorf("empty patch: status %d, want 400", r.StatusCode)
	}
	e.do(adminReq("PATCH", base+"/dave", map[string]any{"disabled": false}))
	c = login("a new password")
	if r = e.do(adminReq("DELETE", base+"/dave", nil)); r.StatusCode != 204 || alive(c) {
		t.Errorf("delete: status %d, alive %v; want 204 and ended", r.StatusCode, alive(c))
	}
	if r = e.do(adminReq("GET", base+"/dave", nil)); r.StatusCode != 404 {
		t.Errorf("get deleted user: status %d, want 404", r.StatusCode)
	}
	// Isolation: beta's bob is untouched, and acme's admin paths never see him.
	if r = e.do(adminReq("GET", base+"/bob", nil)); r.StatusCode != 404 {
		t.Errorf("bob under acme: status %d, want 404", r.StatusCode)
	}
	if !alive(e.loginAlice()) {
		t.Error("alice lost access")
	}
}

// TestAdminChangeReachesPolicies checks that a tenant change made through
// the admin API changes what the public API allows, through the store's
// change notifications (WatchTenants), without a restart.
func TestAdminChangeReachesPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.m.WatchTenants(ctx, time.Hour, e.srv.UpdateTenants) // only notifications can trigger a reload within the test
	}()
	t.Cleanup(func() { cancel(); <-done })

	const newOrigin = "https://new.acme.com"
	acao := func(origin string) string {
		return e.do(req{method: "GET", path: "/v1/me", host: acmeHost, origin: origin}).Header.Get("Access-Control-Allow-Origin")
	}
	if got := acao(newOrigin); got != "" {
		t.Fatalf("ACAO for %s before the change = %q, want none", newOrigin, got)
	}
	tn := acmeTenant()
	tn.Origins = []string{newOrigin}
	if r := e.do(adminReq("PUT", "/admin/v1/tenants/acme", tn)); r.StatusCode != 200 {
		t.Fatalf("PUT acme: status %d; body %s", r.StatusCode, r.body)
	}
	deadline := time.Now().Add(time.Second)
	for acao(newOrigin) != newOrigin && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := acao(newOrigin); got != newOrigin {
		t.Errorf("ACAO for the new origin a second after the change = %q, want %q", got, newOrigin)
	}
	if got := acao(acmeApp); got != "" {
		t.Errorf("ACAO for the removed origin = %q, want none", got)
	}
	if got := e.do(req{method: "GET", path: "/v1/t/beta/me", origin: betaDev}).Header.Get("Access-Control-Allow-Origin"); got != betaDev {
		t.Errorf("beta's ACAO after acme's change = %q, want %q", got, betaDev)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.loginAlice()
	e.do(req{method: "POST", path: "/v1/login", host: acmeHost, origin: acmeApp, json: map[string]string{"username": "alice", "password": "nope"}})
	e.do(req{method: "POST", path: "/v1/login", host: acmeHost, origin: "https://evil.example", json: map[string]string{"username": "alice", "password": "nope"}})
	e.do(req{method: "OPTIONS", path: "/v1/login", host: acmeHost, origin: "https://evil.example", header: map[string]string{"Access-Control-Request-Method": "POST"}})
	e.do(req{method: "GET", path: "/v1/t/beta/me", origin: betaDev})
	e.do(req{method: "GET", path: "/v1/t/nosuch/me", origin: betaDev})
	e.do(req{method: "GET", path: "/v1/t/beta/nosuch", origin: betaDev})
	r := e.do(req{admin: true, method: "GET", path: "/metrics"})
	if r.StatusCode != 200 {
		t.Fatalf("metrics: status %d", r.StatusCode)
	}
	body := string(r.body)
	for _, want := range []string{
		`latchkey_logins_total{outcome="success",tenant="acme"} 1`,
		`latchkey_logins_total{outcome="bad_credentials",tenant="acme"} 1`,
		`latchkey_logins_total{outcome="csrf_refused",tenant="acme"} 1`,
		`latchkey_logins_total{outcome="cors_refused",tenant="acme"} 1`,
		`latchkey_sessions_created_total{tenant="acme"} 1`,
		`latchkey_csrf_refused_total{tenant="acme"} 1`,
		`latchkey_cors_preflights_refused_total{reason="origin_not_listed",tenant="acme"} 1`,
		`latchkey_http_requests_total{listener="public",method="GET",route="/v1/t/{tenant}/me",status="401",tenant="beta"} 1`,
		`latchkey_http_request_duration_seconds_bucket{listener="public",method="POST",route="/v1/login"`,
		// Requests no route took: the tenant prefix, or nothing without a
		// tenant, never the raw path.
		`latchkey_http_requests_total{listener="public",method="OPTIONS",route="/v1/*",status="403",tenant="acme"} 1`,
		`latchkey_http_requests_total{listener="public",method="GET",route="/v1/t/{tenant}/*",status="404",tenant="beta"} 1`,
		`latchkey_http_requests_total{listener="public",method="GET",route="unmatched",status="404",tenant=""} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, alicePassword) || strings.Contains(body, "alice") || strings.Contains(body, "nosuch") {
		t.Error("metrics mention a user or password")
	}
}

// TestAdminBadBodies sends every admin route that takes a JSON body the
// bodies the decoder refuses: each is a 400 bad-request whose pointer says
// where, a 413 beyond the size limit or a 415 without JSON, and none
// changes anything.
func TestAdminBadBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	e.addUser("acme", "carol", "carol's password")
	routes := []struct{ method, path, member string }{
		{"PUT", "/admin/v1/tenants/acme", "name"},
		{"PUT", "/admin/v1/tenants/gamma", "name"},
		{"POST", "/admin/v1/tenants/acme/users", "username"},
		{"PATCH", "/admin/v1/tenants/acme/users/carol", "password"},
		{"POST", "/admin/v1/tenants/acme/keys", "name"},
	}
	for _, rt := range routes {
		m := rt.member
		bodies := []struct {
			name, ct, body string
			status         int
			pointer        string
		}{
			{"unknown member", "application/json", `{"colour":"red"}`, 400, "/colour"},
			{"case-folded member", "application/json", `{"` + strings.ToUpper(m) + `":"x"}`, 400, "/" + strings.ToUpper(m)},
			{"duplicate member", "application/json", `{"` + m + `":"x","` + m + `":"y"}`, 400, "/" + m},
			{"lone surrogate", "application/json", `{"` + m + `":"\udc00"}`, 400, "/" + m},
			{"invalid UTF-8", "application/json", `{"` + m + "\":\"\xc3\"}", 400, "/" + m},
			{"wrong type", "application/json", `{"` + m + `":[]}`, 400, "/" + m},
			{"trailing data", "application/json", `{} []`, 400, ""},
			{"deep", "application/json", `{"` + m + `":` + strings.Repeat("[", maxAdminBody-len(m)-5) + `}`, 400, "/" + m + strings.Repeat("/0", maxJSONDepth-1)},
			{"too large", "application/json", `{"` + m + `":"` + strings.Repeat("x", maxAdminBody) + `"}`, 413, ""},
			{"text/plain", "text/plain", `{}`, 415, ""},
			{"no content type", "", `{}`, 415, ""},
		}
		for _, b := range bodies {
			t.Run(rt.method+" "+rt.path+"/"+b.name, func(t *testing.T) {
				t.Parallel()
				r := e.do(req{admin: true, method: rt.method, path: rt.path, token: adminToken, ct: b.ct, body: b.body})
				if r.StatusCode != b.status {
					t.Fatalf("status %d, want %d; body %s", r.StatusCode, b.status, r.body)
				}
				if b.status != http.StatusBadRequest {
					return
				}
				var p problem
				json.Unmarshal(r.body, &p)
				if r.problemType() != "bad-request" || p.Pointer == nil || *p.Pointer != b.pointer {
					t.Errorf("problem %s with pointer %v, want bad-request at %q; body %.300s", r.problemType(), p.Pointer, b.pointer, r.body)
				}
			})
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := e.m.GetTenant(ctx, "gamma"); err == nil {
			t.Error("a refused PUT created tenant gamma")
		}
		if ks, err := e.m.ListAdminKeys(ctx, "acme"); err != nil || len(ks) != 0 {
			t.Errorf("keys after refused creations = %v, %v; want none", ks, err)
		}
		if us, err := e.m.ListUsers(ctx, "acme"); err != nil || len(us) != 2 {
			t.Errorf("acme users after refused creations = %d, %v; want alice and carol", len(us), err)
		}
	})
}

// TestAdminTenantPutWarnings: the answer to a PUT says what of the saved
// tenant will not work in which browsers, so that an admin learns it from
// the API and not only from a log; a tenant that works everywhere gets an
// empty list, never a missing one.
func TestAdminTenantPutWarnings(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	type saved struct {
		ID       session.TenantID `json:"id"`
		Warnings []struct {
			Field   string   `json:"field"`
			Message string   `json:"message"`
			Engines []string `json:"engines"`
		} `json:"warnings"`
	}
	tests := []struct {
		name      string
		origin    string // "" for https://app.gamma.com
		hostnames []string
		cookie    map[string]any
		engines   [][]string // per warning, in order
		want      string     // in the first warning's message
	}{
		{name: "partitioned on the shared host", cookie: map[string]any{"same_site": "none", "partitioned": true},
			engines: [][]string{{"firefox", "webkit"}}, want: "add a hostname on the SPA's site (e.g. auth.gamma.com)"},
		{name: "unpartitioned on the shared host", cookie: map[string]any{"same_site": "none"},
			engines: [][]string{{"chromium", "firefox", "webkit"}}, want: "set cookie.partitioned true"},
		{name: "own hostname under a TLD the Public Suffix List lacks", origin: "https://app.gamma.example", hostnames: []string{"auth.gamma.example"}, cookie: map[string]any{"same_site": "lax"},
			engines: [][]string{{"webkit"}}, want: "WebKit without Intelligent Tracking Prevention"},
		{name: "own hostname on the SPA's site", hostnames: []string{"auth.gamma.com"}, cookie: map[string]any{"same_site": "lax"}},
	}
	for _, tt := range tests {
		origin := cmp.Or(tt.origin, "https://app.gamma.com")
		body := map[string]any{"name": "Gamma", "origins": []string{origin}, "cookie": tt.cookie}
		if tt.hostnames != nil {
			body["hostnames"] = tt.hostnames
		}
		r := e.do(adminReq("PUT", "/admin/v1/tenants/gamma", body))
		if r.StatusCode != http.StatusCreated && r.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d; body %s", tt.name, r.StatusCode, r.body)
		}
		var got saved
		if err := json.Unmarshal(r.body, &got); err != nil || got.ID != "gamma" || got.Warnings == nil {
			t.Fatalf("%s: body %s (%v), want the tenant with a warnings array", tt.name, r.body, err)
		}
		if len(got.Warnings) != len(tt.engines) {
			t.Fatalf("%s: warnings = %+v, want %d", tt.name, got.Warnings, len(tt.engines))
		}
		for i, w := range got.Warnings {
			if w.Field != "origins[0]" || strings.Join(w.Engines, ",") != strings.Join(tt.engines[i], ",") {
				t.Errorf("%s: warning %d = %+v, want on origins[0] for %v", tt.name, i, w, tt.engines[i])
			}
		}
		if len(got.Warnings) > 0 && !strings.Contains(got.Warnings[0].Message, tt.want) {
			t.Errorf("%s: message %q, want it to contain %q", tt.name, got.Warnings[0].Message, tt.want)
		}
	}
	// What a GET gives is the tenant alone: warnings belong to the PUT.
	if r := e.do(adminReq("GET", "/admin/v1/tenants/gamma", nil)); strings.Contains(string(r.body), "warnings") {
		t.Errorf("GET tenant = %s, want no warnings", r.body)
	}
}
