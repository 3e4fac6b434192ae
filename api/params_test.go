package api

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/latchkeyhq/latchkey/session"
)

// Path parameters: every route reads them decoded exactly once, so that an
// escaped and an unescaped form of one name get the same answer, and no
// route answers success for a thing that does not exist.

// zoe is a username that is not plain ASCII, in the form it is stored.
const zoe = "zo\u00eb"

// escapeAll percent-encodes every byte of s: the most escaped form of a
// path segment that still names s.
func escapeAll(s string) string {
	var b strings.Builder
	for i := range len(s) {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// paramWorld is one env prepared for the route walks: zoë of acme has a
// session, and acme has an admin key.
type paramWorld struct {
	*env
	zoeCookie *http.Cookie
	bobCookie *http.Cookie
	sessionID string // zoë's
	bobID     string // bob's
	keyID     string
	keySecret string
}

func newParamWorld(tb testing.TB) *paramWorld {
	tb.Helper()
	w := &paramWorld{env: newEnv(tb, envOptions{token: adminToken})}
	w.addUser("acme", zoe, "zoë's password")
	if w.zoeCookie = w.loginAcme(zoe, "zoë's password"); w.zoeCookie == nil {
		tb.Fatal("zoë cannot log in")
	}
	w.bobCookie = w.loginBob()
	ctx := tb.Context()
	acme := w.tenant("acme")
	ss, err := w.m.Sessions(ctx, &acme, zoe)
	if err != nil || len(ss) != 1 {
		tb.Fatalf("zoë's sessions: %v, %v", ss, err)
	}
	w.sessionID = ss[0].ID
	beta := w.tenant("beta")
	if ss, err = w.m.Sessions(ctx, &beta, "bob"); err != nil || len(ss) != 1 {
		tb.Fatalf("bob's sessions: %v, %v", ss, err)
	}
	w.bobID = ss[0].ID
	k, secret, err := w.m.CreateAdminKey(ctx, "acme", "ops", time.Time{})
	if err != nil {
		tb.Fatal(err)
	}
	w.keyID, w.keySecret = k.ID, secret
	return w
}

func (w *paramWorld) tenant(id session.TenantID) session.Tenant {
	w.tb.Helper()
	t, err := w.m.GetTenant(w.tb.Context(), id)
	if err != nil {
		w.tb.Fatal(err)
	}
	return t
}

// state summarizes what the store holds: tenants, users, their sessions,
// admin keys and audit entries, with the random IDs of the world replaced
// by placeholders so that two worlds can be compared.
func (w *paramWorld) state() string {
	w.tb.Helper()
	ctx := w.tb.Context()
	var b strings.Builder
	ids := []string{w.sessionID, "{zoë's session}", w.bobID, "{bob's session}", w.keyID, "{key}"}
	ts, err := w.m.ListTenants(ctx)
	if err != nil {
		w.tb.Fatal(err)
	}
	for _, t := range ts {
		fmt.Fprintf(&b, "tenant %s hostnames=%v origins=%v\n", t.ID, t.Hostnames, t.Origins)
		us, err := w.m.ListUsers(ctx, t.ID)
		if err != nil {
			w.tb.Fatal(err)
		}
		for _, u := range us {
			ss, err := w.m.Sessions(ctx, &t, u.Username)
			if err != nil {
				w.tb.Fatal(err)
			}
			fmt.Fprintf(&b, "  user %q disabled=%v sessions=%d\n", u.Username, u.Disabled, len(ss))
		}
		ks, err := w.m.ListAdminKeys(ctx, t.ID)
		if err != nil {
			w.tb.Fatal(err)
		}
		var lines []string
		for _, k := range ks {
			lines = append(lines, fmt.Sprintf("  key %s %s\n", k.Name, k.ID))
			if k.ID != w.keyID {
				ids = append(ids, k.ID, "{new key}")
			}
		}
		slices.Sort(lines) // by name: IDs are random
		b.WriteString(strings.Join(lines, ""))
	}
	for _, id := range []session.TenantID{"acme", "beta", "nope"} {
		es, err := w.m.ListAudit(ctx, id, session.MaxAudit)
		if err != nil {
			w.tb.Fatal(err)
		}
		for _, e := range es {
			fmt.Fprintf(&b, "audit %s %s %q\n", id, e.Action, e.Target)
		}
	}
	return strings.NewReplacer(ids...).Replace(b.String())
}

// routeParams lists the {params} of a chi route pattern, in order.
func routeParams(pattern string) []string {
	var out []string
	for seg := range strings.SplitSeq(pattern, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}

// fill puts values, already in their URL form, into pattern's params.
func fill(pattern string, values map[string]string) string {
	segs := strings.Split(pattern, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			segs[i] = values[seg[1:len(seg)-1]]
		}
	}
	return strings.TrimSuffix(strings.Join(segs, "/"), "/")
}

type walkedRoute struct{ method, pattern string }

// walkRoutes walks a router as TestSpecDeclaresEveryRoute does and returns
// its routes, only those with path parameters if withParams.
func walkRoutes(tb testing.TB, r chi.Routes, withParams bool) []walkedRoute {
	tb.Helper()
	var out []walkedRoute
	err := chi.Walk(r, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if (!withParams || strings.Contains(pattern, "{")) && !strings.HasSuffix(pattern, "/*") {
			out = append(out, walkedRoute{method, pattern})
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("chi.Walk: %v", err)
	}
	if len(out) == 0 {
		tb.Fatal("no route")
	}
	return out
}

// adminBodies are the request bodies of the admin routes that take one.
var adminBodies = map[string]any{
	"PUT /admin/v1/tenants/{tenant}/":                               acmeTenant(),
	"POST /admin/v1/tenants/{tenant}/users":                         map[string]string{"username": "dave", "password": "dave's password"},
	"PATCH /admin/v1/tenants/{tenant}/users/{username}":             map[string]bool{"disabled": true},
	"POST /admin/v1/tenants/{tenant}/keys":                          map[string]string{"name": "another"},
	"POST /admin/v1/tenants/{tenant}/doctor":                        session.DoctorInput{PageOrigin: acmeApp, API: "https://" + acmeHost + "/v1"},
	"POST /admin/v1/tenants/{tenant}/users/{username}/verification": nil,
}

// isAccountsRoute reports whether pattern is one of the self-service
// account routes.
func isAccountsRoute(pattern string) bool {
	return slices.ContainsFunc(accountsRoutes, func(rt accountsCase) bool { return pattern == rt.path })
}

// TestAdminRoutesNameParams walks every admin route with a path parameter
// and sends it, each time to a fresh world: with the names that exist, in
// plain and in fully escaped form (as the platform and as acme's key),
// which must get the same status and leave the same state; and with each
// parameter in turn naming nothing (plainly, and with an escaped slash),
// which must get no 2xx and change nothing.
func TestAdminRoutesNameParams(t *testing.T) {
	t.Parallel()
	routes := walkRoutes(t, newEnv(t, envOptions{token: adminToken}).srv.Admin().(chi.Routes), true)
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.pattern, func(t *testing.T) {
			t.Parallel()
			body, ok := adminBodies[rt.method+" "+rt.pattern]
			if !ok && (rt.method == "POST" || rt.method == "PUT" || rt.method == "PATCH") {
				t.Fatalf("add a body for %s %s to adminBodies", rt.method, rt.pattern)
			}
			known := func(w *paramWorld) map[string]string {
				id := w.sessionID
				if strings.Contains(rt.pattern, "/keys/") {
					id = w.keyID
				}
				return map[string]string{"tenant": "acme", "username": zoe, "id": id}
			}
			send := func(w *paramWorld, values map[string]string, token string) res {
				return w.do(req{admin: true, method: rt.method, path: fill(rt.pattern, values), json: body, token: token})
			}

			type outcome struct {
				status int
				state  string
			}
			for _, principal := range []string{"platform", "key"} {
				var plain outcome
				for _, form := range []string{"plain", "escaped"} {
					w := newParamWorld(t)
					token := adminToken
					if principal == "key" {
						token = w.keySecret
					}
					values := known(w)
					if form == "escaped" {
						for k, v := range values {
							values[k] = escapeAll(v)
						}
					}
					r := send(w, values, token)
					got := outcome{r.StatusCode, w.state()}
					if form == "plain" {
						plain = got
						// acme has no accounts, so the resend of a verification
						// is 404 not-enabled in both forms (TestAdminAccounts
						// has it succeed).
						if principal == "platform" && (r.StatusCode < 200 || r.StatusCode > 299) && !strings.HasSuffix(rt.pattern, "/verification") {
							t.Errorf("as the platform, with names that exist: status %d, want a 2xx; body %s", r.StatusCode, r.body)
						}
						continue
					}
					if got.status != plain.status {
						t.Errorf("as %s: escaped names %v got status %d, plain names %d; body %s", principal, values, got.status, plain.status, r.body)
					}
					if got.state != plain.state {
						t.Errorf("as %s: escaped names left\n%s\nplain names left\n%s", principal, got.state, plain.state)
					}
				}
			}

			unknown := map[string]string{"tenant": "nope", "username": "nobody", "id": "AAAAAAAAAAAAAAAAAAAAAA"}
			for _, p := range routeParams(rt.pattern) {
				for _, v := range []string{unknown[p], url.PathEscape("ops/" + unknown[p])} {
					if rt.method == "PUT" && rt.pattern == "/admin/v1/tenants/{tenant}/" && v == "nope" {
						continue // creates the tenant, as documented
					}
					w := newParamWorld(t)
					values := known(w)
					values[p] = v
					before := w.state()
					r := send(w, values, adminToken)
					if r.StatusCode >= 200 && r.StatusCode <= 299 {
						t.Errorf("{%s} = %q, which names nothing: status %d, want no 2xx; body %s", p, v, r.StatusCode, r.body)
					}
					if after := w.state(); after != before {
						t.Errorf("{%s} = %q, which names nothing, changed the state from\n%s\nto\n%s", p, v, before, after)
					}
				}
			}
		})
	}
}

// TestPublicRoutesNameParams does the same for the public routes in path
// form: the tenant and a session ID, plain and escaped, as bob.
func TestPublicRoutesNameParams(t *testing.T) {
	t.Parallel()
	routes := walkRoutes(t, newEnv(t, envOptions{}).srv.tenantRoutes, false)
	bodies := map[string]any{
		"POST /login":  map[string]string{"username": "bob", "password": bobPassword},
		"POST /logout": map[string]string{},
	}
	for _, rt := range accountsRoutes {
		bodies["POST "+rt.path] = rt.body
	}
	// Relative to the tenant prefix: in path form, {tenant} is in them all.
	for _, rt := range routes {
		t.Run(rt.method+" "+rt.pattern, func(t *testing.T) {
			t.Parallel()
			body := bodies[rt.method+" "+rt.pattern]
			pattern := "/v1/t/{tenant}" + rt.pattern
			var plain struct {
				status int
				state  string
			}
			for _, form := range []string{"plain", "escaped"} {
				w := newParamWorld(t)
				values := map[string]string{"tenant": "beta", "id": w.bobID}
				if form == "escaped" {
					for k, v := range values {
						values[k] = escapeAll(v)
					}
				}
				r := w.do(req{method: rt.method, path: fill(pattern, values), origin: betaDev, cookies: []*http.Cookie{w.bobCookie}, json: body})
				if form == "plain" {
					plain.status, plain.state = r.StatusCode, w.state()
					// beta has no accounts: the self-service routes answer
					// it 404 not-enabled, in both forms alike (accounts_test.go
					// has them succeed).
					if (r.StatusCode < 200 || r.StatusCode > 299) && !isAccountsRoute(rt.pattern) {
						t.Errorf("plain: status %d, want a 2xx; body %s", r.StatusCode, r.body)
					}
					continue
				}
				if r.StatusCode != plain.status {
					t.Errorf("escaped %v: status %d, plain %d; body %s", values, r.StatusCode, plain.status, r.body)
				}
				if got := w.state(); got != plain.state {
					t.Errorf("escaped names left\n%s\nplain names left\n%s", got, plain.state)
				}
			}
			for _, p := range routeParams(pattern) {
				w := newParamWorld(t)
				values := map[string]string{"tenant": "beta", "id": w.bobID}
				values[p] = map[string]string{"tenant": "nope", "id": "AAAAAAAAAAAAAAAAAAAAAA"}[p]
				before := w.state()
				r := w.do(req{method: rt.method, path: fill(pattern, values), origin: betaDev, cookies: []*http.Cookie{w.bobCookie}, json: body})
				if r.StatusCode >= 200 && r.StatusCode <= 299 {
					t.Errorf("{%s} = %q, which names nothing: status %d, want no 2xx", p, values[p], r.StatusCode)
				}
				if after := w.state(); after != before {
					t.Errorf("{%s} = %q, which names nothing, changed the state from\n%s\nto\n%s", p, values[p], before, after)
				}
			}
		})
	}
}

// TestAdminEscapedSlashInAUsername is row 4 of the hardening issue: a user
// stored as "ops/eve" (created before usernames had to fit in one path
// segment) is addressed as ops%2Feve. Its DELETEs answered 204 and were
// audited while eve stayed logged in and listed: the handlers looked up
// the still-escaped "ops%2Feve".
func TestAdminEscapedSlashInAUsername(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	ctx := t.Context()
	// The store's records are opaque: copy alice's under the old name.
	alice, err := e.st.GetUser(ctx, "acme", "alice")
	if err != nil {
		t.Fatal(err)
	}
	alice.Name = "ops/eve"
	if err := e.st.PutUser(ctx, alice, true); err != nil {
		t.Fatal(err)
	}
	c := e.loginAcme("ops/eve", alicePassword)
	if c == nil {
		t.Fatal("ops/eve cannot log in with her exact name")
	}
	base := "/admin/v1/tenants/acme/users/"
	r := e.do(adminReq("GET", base+"ops%2Feve", nil))
	var u userAdmin
	json.Unmarshal(r.body, &u)
	if r.StatusCode != http.StatusOK || u.Username != "ops/eve" {
		t.Errorf("GET ops%%2Feve: status %d, username %q; want 200 ops/eve", r.StatusCode, u.Username)
	}
	if r = e.do(adminReq("POST", base+"ops%2Feve", nil)); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, PATCH, DELETE" {
		t.Errorf("POST ops%%2Feve: status %d, Allow %q; want 405 with GET, PATCH, DELETE", r.StatusCode, r.Header.Get("Allow"))
	}
	if r = e.do(adminReq("DELETE", base+"ops%2Feve/sessions", nil)); r.StatusCode != http.StatusNoContent || e.aliveAcme(c) {
		t.Errorf("DELETE ops%%2Feve/sessions: status %d, session alive %v; want 204 and ended", r.StatusCode, e.aliveAcme(c))
	}
	if r = e.do(adminReq("DELETE", base+"ops%2Feve", nil)); r.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE ops%%2Feve: status %d, want 204", r.StatusCode)
	}
	var list userList
	json.Unmarshal(e.do(adminReq("GET", "/admin/v1/tenants/acme/users", nil)).body, &list)
	if slices.ContainsFunc(list.Users, func(u userAdmin) bool { return u.Username == "ops/eve" }) {
		t.Error("ops/eve is still listed after her deletion")
	}
	for _, path := range []string{base + "ops%2Feve", base + "ops%2Feve/sessions", base + "ops%2Feve/sessions/AAAAAAAAAAAAAAAAAAAAAA"} {
		if r = e.do(adminReq("DELETE", path, nil)); r.StatusCode != http.StatusNotFound {
			t.Errorf("DELETE %s after the deletion: status %d, want 404", path, r.StatusCode)
		}
	}
	var audit auditList
	json.Unmarshal(e.do(adminReq("GET", "/admin/v1/tenants/acme/audit", nil)).body, &audit)
	var got []string
	for _, en := range audit.Entries {
		got = append(got, en.Action+" "+en.Target)
	}
	if want := []string{"user.delete ops/eve", "user.sessions.revoke ops/eve"}; !slices.Equal(got, want) {
		t.Errorf("audit = %q, want %q (newest first, nothing for the 404s)", got, want)
	}
}

// TestAdminUsernameForms checks that the admin API finds a user by any form
// of its name and creates users under the normalized form.
func TestAdminUsernameForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken})
	base := "/admin/v1/tenants/acme/users"
	r := e.do(adminReq("POST", base, map[string]string{"username": "zoe\u0308", "password": "zoë's password"}))
	var u userAdmin
	json.Unmarshal(r.body, &u)
	if r.StatusCode != http.StatusCreated || u.Username != zoe {
		t.Fatalf("create zoë in NFD: status %d, username %q; want 201 and the NFC form", r.StatusCode, u.Username)
	}
	for _, name := range []string{zoe, "zoe\u0308", escapeAll("zoe\u0308")} {
		if r := e.do(adminReq("GET", base+"/"+name, nil)); r.StatusCode != http.StatusOK {
			t.Errorf("GET %q: status %d, want 200", name, r.StatusCode)
		}
	}
	for _, bad := range []string{zoe, "ops/eve", "al\u200dice", "..", "50%"} {
		if r := e.do(adminReq("POST", base, map[string]string{"username": bad, "password": "long enough"})); r.StatusCode/100 != 4 {
			t.Errorf("create %q: status %d, want a 4xx", bad, r.StatusCode)
		}
	}
	if c := e.loginAcme("zoe\u0308", "zoë's password"); c == nil {
		t.Error("zoë cannot log in with the NFD form of her name")
	}
}

// TestPathParamsReadOnce checks that every path parameter of the package is
// read through pathParam, the one place that decodes it.
func TestPathParamsReadOnce(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Name.Name == "pathParam" {
				continue
			}
			ast.Inspect(fd, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "URLParam") {
					t.Errorf("%s: %s reads a path parameter with %s; use pathParam", fset.Position(sel.Pos()), fd.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
}

// TestPublicHostKeepsThePathForm is the last finding of row 9 of the
// hardening issue: a tenant claiming the host that serves the path form
// took the path form away from every tenant, for the shared host then
// served that tenant in host form only. With the host listed in
// Config.PublicHosts, no tenant can claim it, and a claim stored before it
// was listed is ignored.
func TestPublicHostKeepsThePathForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{token: adminToken, manager: func(c *session.Config) { c.PublicHosts = []string{sharedHost} }})
	bobMe := func() int {
		return e.do(req{method: "GET", path: "/v1/t/beta/me", origin: betaDev, cookies: []*http.Cookie{e.loginBob()}}).StatusCode
	}
	if got := bobMe(); got != http.StatusOK {
		t.Fatalf("bob's me in path form on the shared host: status %d, want 200", got)
	}

	gamma := map[string]any{
		"name": "Gamma", "origins": []string{"https://app.gamma.example"}, "hostnames": []string{"auth.gamma.example", sharedHost},
		"cookie": map[string]any{"same_site": "strict"},
	}
	r := e.do(adminReq("PUT", "/admin/v1/tenants/gamma", gamma))
	var p problem
	json.Unmarshal(r.body, &p)
	if r.StatusCode != http.StatusBadRequest || r.problemType() != "invalid-config" || len(p.Errors) != 1 ||
		p.Errors[0].Field != "hostnames[1]" || !strings.Contains(p.Errors[0].Message, "path form") {
		t.Errorf("PUT a tenant claiming the shared host: status %d %s, errors %+v; want 400 invalid-config on hostnames[1] explaining the path form", r.StatusCode, r.problemType(), p.Errors)
	}

	// A claim stored by a replica that did not list the host yet.
	other, err := session.NewManager(e.st, session.Config{Keys: [][]byte{testKey}, Password: cheapParams})
	if err != nil {
		t.Fatal(err)
	}
	tn := betaTenant()
	tn.ID, tn.Name, tn.Hostnames = "gamma", "Gamma", []string{sharedHost, "auth.gamma.example"}
	if _, _, err := other.PutTenant(t.Context(), tn); err != nil {
		t.Fatalf("PutTenant without PublicHosts: %v", err)
	}
	e.reload()
	if got := bobMe(); got != http.StatusOK {
		t.Errorf("bob's me in path form once gamma claims the shared host: status %d, want 200", got)
	}
	if got := e.do(req{method: "GET", path: "/v1/me", origin: betaDev}).StatusCode; got != http.StatusNotFound {
		t.Errorf("host form on the shared host: status %d, want 404: the claim is ignored", got)
	}
	if got := e.do(req{method: "GET", path: "/v1/me", host: "auth.gamma.example", origin: betaDev}).StatusCode; got != http.StatusUnauthorized {
		t.Errorf("gamma's own other hostname: status %d, want 401 (served, no session)", got)
	}
}
