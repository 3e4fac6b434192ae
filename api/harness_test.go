package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/memstore"
	"github.com/latchkeyhq/latchkey/store/storetest"
)

// Test fixtures: two tenants whose lists differ, as in CORS.md. acme has its
// own hostname (host form) and SameSite=Lax; beta is a dev tenant on the
// shared host (path form) with SameSite=None; Partitioned.
const (
	acmeApp    = "https://app.acme.com"
	acmeAdmin  = "https://admin.acme.com"
	acmeHost   = "auth.acme.com"
	betaDev    = "http://localhost:5173"
	sharedHost = "auth.latchkey.test"

	alicePassword = "correct horse battery"
	bobPassword   = "tr0ub4dor&3 staple"
	adminToken    = "test-admin-token-0123456789"
)

// cheapParams keep argon2id fast in tests; production uses the defaults.
var cheapParams = session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func acmeTenant() session.Tenant {
	return session.Tenant{
		ID: "acme", Name: "Acme Inc.",
		Origins:   []string{acmeApp, acmeAdmin},
		Hostnames: []string{acmeHost},
		Cookie:    session.CookiePolicy{SameSite: session.SameSiteLax},
		Session:   session.SessionPolicy{IdleTimeout: session.Duration(time.Hour), AbsoluteLifetime: session.Duration(24 * time.Hour)},
	}
}

func betaTenant() session.Tenant {
	return session.Tenant{
		ID: "beta", Name: "Beta", Dev: true,
		Origins:   []string{betaDev},
		Hostnames: []string{},
		Cookie:    session.CookiePolicy{SameSite: session.SameSiteNone, Partitioned: true},
	}
}

// env is one Latchkey over a store, with a fake clock, both listeners on
// httptest servers, and the OpenAPI validator checking every exchange.
type env struct {
	tb    testing.TB
	clock *storetest.Clock
	st    store.Store
	m     *session.Manager
	srv   *Server
	pub   *httptest.Server
	adm   *httptest.Server
	spec  *specValidator

	served []session.TenantID // what the last reload served
}

type envOptions struct {
	store    store.Store                            // nil: see newStore
	newStore func(now func() time.Time) store.Store // nil: a memstore on the env's clock
	keys     [][]byte                               // nil: one fixed key
	token    string                                 // admin token; "" disables the admin API
	trusted  []netip.Prefix                         // trusted proxies (Config.TrustedProxies)
	manager  func(*session.Config)                  // adjusts the Manager's config
}

var testKey = bytes.Repeat([]byte("k"), 32)

func newEnv(tb testing.TB, opt envOptions) *env {
	tb.Helper()
	// The clock starts at the real time, so that a Redis store's key TTLs
	// (absolute times) agree with it.
	e := &env{tb: tb, clock: storetest.NewClock(time.Now().UTC().Truncate(time.Second))}
	e.st = opt.store
	if opt.newStore != nil {
		e.st = opt.newStore(e.clock.Now)
	}
	if e.st == nil {
		e.st = memstore.New(memstore.Config{Now: e.clock.Now})
	}
	keys := opt.keys
	if keys == nil {
		keys = [][]byte{testKey}
	}
	log := slog.New(slog.NewTextHandler(tlogWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var err error
	mcfg := session.Config{Keys: keys, Now: e.clock.Now, Logger: log, Password: cheapParams}
	if opt.manager != nil {
		opt.manager(&mcfg)
	}
	e.m, err = session.NewManager(e.st, mcfg)
	if err != nil {
		tb.Fatalf("NewManager: %v", err)
	}
	e.srv, err = NewServer(e.m, Config{Logger: log, AdminToken: opt.token, TrustedProxies: opt.trusted, Now: e.clock.Now})
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	ctx := tb.Context()
	for _, t := range []session.Tenant{acmeTenant(), betaTenant()} {
		if _, _, err := e.m.PutTenant(ctx, t); err != nil {
			tb.Fatalf("PutTenant(%s): %v", t.ID, err)
		}
	}
	e.addUser("acme", "alice", alicePassword)
	e.addUser("beta", "bob", bobPassword)
	e.reload()
	e.pub = httptest.NewServer(e.srv.Public())
	e.adm = httptest.NewServer(e.srv.Admin())
	tb.Cleanup(e.pub.Close)
	tb.Cleanup(e.adm.Close)
	e.spec = newSpecValidator(tb)
	return e
}

func (e *env) addUser(tenant session.TenantID, name, pw string) {
	e.tb.Helper()
	if _, err := e.m.CreateUser(e.tb.Context(), tenant, session.UserInput{Username: name, Password: &pw}); err != nil {
		e.tb.Fatalf("CreateUser(%s/%s): %v", tenant, name, err)
	}
}

// reload applies the store's tenants to the server, as WatchTenants would:
// each one as changed, and those served before but gone as deleted.
func (e *env) reload() {
	e.tb.Helper()
	ts, err := e.m.ListTenants(e.tb.Context())
	if err != nil {
		e.tb.Fatalf("ListTenants: %v", err)
	}
	u := session.TenantsUpdate{Changed: ts}
	for _, id := range e.served {
		if !slices.ContainsFunc(ts, func(t session.Tenant) bool { return t.ID == id }) {
			u.Deleted = append(u.Deleted, id)
		}
	}
	e.served = e.served[:0]
	for _, t := range ts {
		e.served = append(e.served, t.ID)
	}
	e.srv.UpdateTenants(u)
	e.srv.MarkReady()
}

// req describes one request to the public or admin listener.
type req struct {
	method  string
	path    string
	host    string            // Host header; "" means the shared host
	origin  string            // Origin header; "" means none
	cookies []*http.Cookie    // sent as one Cookie header
	ct      string            // Content-Type; "" means none
	body    string            // raw body
	json    any               // marshalled as the body with Content-Type application/json
	header  map[string]string // extra headers
	admin   bool              // to the admin listener
	token   string            // admin bearer token
}

// res is a response with its body read.
type res struct {
	*http.Response
	body []byte
}

func (r res) problemType() string {
	var p struct {
		Type string `json:"type"`
	}
	json.Unmarshal(r.body, &p)
	return strings.TrimPrefix(p.Type, problemTypePrefix)
}

func (r res) cookie(name string) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (e *env) do(q req) res {
	e.tb.Helper()
	base := e.pub.URL
	if q.admin {
		base = e.adm.URL
	}
	body := q.body
	ct := q.ct
	if q.json != nil {
		b, err := json.Marshal(q.json)
		if err != nil {
			e.tb.Fatalf("marshal: %v", err)
		}
		body = string(b)
		if ct == "" {
			ct = "application/json"
		}
	}
	r, err := http.NewRequestWithContext(e.tb.Context(), q.method, base+q.path, strings.NewReader(body))
	if err != nil {
		e.tb.Fatalf("NewRequest: %v", err)
	}
	switch {
	case q.host != "":
		r.Host = q.host
	case !q.admin:
		r.Host = sharedHost
	}
	if q.origin != "" {
		r.Header.Set("Origin", q.origin)
	}
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	for _, c := range q.cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	for k, v := range q.header {
		r.Header.Set(k, v)
	}
	if q.token != "" {
		r.Header.Set("Authorization", "Bearer "+q.token)
	}
	resp, b := e.spec.do(e.tb, e.pub.Client(), r)
	return res{Response: resp, body: b}
}

// login logs a user in and returns the session cookie.
func (e *env) login(tenantPath, host, origin, user, pw string) *http.Cookie {
	e.tb.Helper()
	r := e.do(req{method: "POST", path: tenantPath + "/login", host: host, origin: origin,
		json: map[string]string{"username": user, "password": pw}})
	if r.StatusCode != http.StatusOK {
		e.tb.Fatalf("login %s: status %d, body %s", user, r.StatusCode, r.body)
	}
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, "__Host-latchkey-") {
			return c
		}
	}
	e.tb.Fatalf("login %s: no session cookie", user)
	return nil
}

// loginAcme logs user in on acme's hostname and returns the session cookie,
// or nil when the login is refused.
func (e *env) loginAcme(user, pw string) *http.Cookie {
	e.tb.Helper()
	r := e.do(req{method: "POST", path: "/v1/login", host: acmeHost, origin: acmeApp, json: map[string]string{"username": user, "password": pw}})
	if r.StatusCode != http.StatusOK {
		return nil
	}
	return r.cookie("__Host-latchkey-acme")
}

// aliveAcme reports whether c still opens a session on acme.
func (e *env) aliveAcme(c *http.Cookie) bool {
	e.tb.Helper()
	return e.do(req{method: "GET", path: "/v1/me", host: acmeHost, cookies: []*http.Cookie{c}}).StatusCode == http.StatusOK
}

// loginAlice and loginBob log the fixture users in through their usual
// form: alice on acme's own hostname, bob on beta's path on the shared host.
func (e *env) loginAlice() *http.Cookie {
	return e.login("/v1", acmeHost, acmeApp, "alice", alicePassword)
}

func (e *env) loginBob() *http.Cookie {
	return e.login("/v1/t/beta", "", betaDev, "bob", bobPassword)
}

// tlogWriter sends log output to t.Log, so that it shows with the failing
// test and only then.
type tlogWriter struct{ tb testing.TB }

var tlogMu sync.Mutex

func (w tlogWriter) Write(p []byte) (int, error) {
	tlogMu.Lock()
	defer tlogMu.Unlock()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = tlogWriter{}
