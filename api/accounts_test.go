package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// mailbox is a session.Mailer that keeps every mail it is given. With
// block set, Send waits until it is closed, as a mail server that hangs
// would keep a sender waiting.
type mailbox struct {
	mu    sync.Mutex
	mails []session.Mail
	taken int // mails already returned by next
	block chan struct{}
}

func (b *mailbox) Send(ctx context.Context, m session.Mail) error {
	if b.block != nil {
		select {
		case <-b.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mails = append(b.mails, m)
	return nil
}

// next waits up to five seconds for the next mail not yet returned to
// address to of kind, and returns it.
func (b *mailbox) next(tb testing.TB, to string, kind session.MailKind) session.Mail {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		for i := b.taken; i < len(b.mails); i++ {
			if m := b.mails[i]; strings.EqualFold(m.To, to) && m.Kind == kind {
				b.mails = slices.Delete(b.mails, i, i+1)
				b.mu.Unlock()
				return m
			}
		}
		b.mu.Unlock()
		if time.Now().After(deadline) {
			tb.Fatalf("no %s mail to %s within 5s; mails: %v", kind, to, b.summary())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (b *mailbox) summary() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.mails {
		out = append(out, string(m.Kind)+" to "+m.To)
	}
	return out
}

var linkRE = regexp.MustCompile(`(\S+)#token=([A-Za-z0-9_-]+)`)

// link returns the URL a mail's link opens (before #token=) and its token.
func link(tb testing.TB, m session.Mail) (page, token string) {
	tb.Helper()
	g := linkRE.FindStringSubmatch(m.Text)
	if g == nil {
		tb.Fatalf("%s mail without a #token= link:\n%s", m.Kind, m.Text)
	}
	return g[1], g[2]
}

// form is one way of calling a tenant: acme in host form on its own
// hostname, beta (a dev tenant) in path form on the shared host.
type form struct {
	name   string
	tenant session.TenantID
	prefix string // the API's path prefix
	host   string
	origin string
}

var forms = []form{
	{"host form", "acme", "/v1", acmeHost, acmeApp},
	{"path form", "beta", "/v1/t/beta", "", betaDev},
}

func (f form) req(path string, body any, cookies ...*http.Cookie) req {
	return req{method: "POST", path: f.prefix + path, host: f.host, origin: f.origin, json: body, cookies: cookies}
}

func (f form) cookieName() string { return "__Host-latchkey-" + string(f.tenant) }

// accountsOf is the accounts block the tests give a tenant, with its
// pages on the tenant's first origin.
func accountsOf(origin string, v session.Verification) *session.AccountsPolicy {
	return &session.AccountsPolicy{
		Signup: true, EmailVerification: v, LoginWithEmail: true,
		VerifyURL: origin + "/verify", ResetURL: origin + "/reset?from=mail",
	}
}

// accountsEnv is an env whose Manager mails into the returned mailbox and
// whose two tenants have self-service accounts with verification v.
func accountsEnv(t *testing.T, v session.Verification, opt envOptions) (*env, *mailbox) {
	t.Helper()
	mb := &mailbox{}
	adjust := opt.manager
	opt.manager = func(c *session.Config) {
		c.Mailer = mb
		if adjust != nil {
			adjust(c)
		}
	}
	e := newEnv(t, opt)
	for _, f := range forms {
		e.setAccounts(f.tenant, accountsOf(f.origin, v))
	}
	return e, mb
}

// setAccounts replaces the accounts block of tenant id and reloads.
func (e *env) setAccounts(id session.TenantID, a *session.AccountsPolicy) {
	e.tb.Helper()
	tn, err := e.m.GetTenant(e.tb.Context(), id)
	if err != nil {
		e.tb.Fatal(err)
	}
	tn.Accounts = a
	if _, _, err := e.m.PutTenant(e.tb.Context(), tn); err != nil {
		e.tb.Fatalf("PutTenant(%s) with accounts: %v", id, err)
	}
	e.reload()
}

func (e *env) me(f form, c *http.Cookie) int {
	e.tb.Helper()
	return e.do(req{method: "GET", path: f.prefix + "/me", host: f.host, origin: f.origin, cookies: []*http.Cookie{c}}).StatusCode
}

// wantLogin checks that r is a LoginResult for username with status and a
// session cookie, and returns the cookie.
func wantLogin(tb testing.TB, f form, r res, status int, username string) *http.Cookie {
	tb.Helper()
	if r.StatusCode != status {
		tb.Fatalf("status %d, want %d; body %s", r.StatusCode, status, r.body)
	}
	var v struct {
		User    struct{ Username string }
		Receipt string
	}
	if err := json.Unmarshal(r.body, &v); err != nil || v.User.Username != username || v.Receipt == "" {
		tb.Fatalf("body %s (%v): want a LoginResult of %s with a receipt", r.body, err, username)
	}
	c := r.cookie(f.cookieName())
	if c == nil || c.Value == "" {
		tb.Fatalf("no %s cookie set; Set-Cookie %q", f.cookieName(), r.Header.Values("Set-Cookie"))
	}
	return c
}

func wantProblem(tb testing.TB, what string, r res, status int, slug string) {
	tb.Helper()
	if r.StatusCode != status || r.problemType() != slug {
		tb.Errorf("%s: status %d %s, want %d %s; body %s", what, r.StatusCode, r.problemType(), status, slug, r.body)
	}
}

const newPassword = "a long and unusual passphrase 7"

// TestAccountsSignupVerify signs up with verification required in both
// forms: 202 verification_sent, no session and no login until the mailed
// link is followed, which signs the browser in; the link is spent.
func TestAccountsSignupVerify(t *testing.T) {
	t.Parallel()
	e, mb := accountsEnv(t, session.VerificationRequired, envOptions{})
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			addr := "Carol." + string(f.tenant) + "@Example.com"
			r := e.do(f.req("/signup", map[string]string{"username": "carol", "email": addr, "password": newPassword}))
			if r.StatusCode != http.StatusAccepted || strings.TrimSpace(string(r.body)) != `{"status":"verification_sent"}` {
				t.Fatalf("signup: status %d, body %s; want 202 verification_sent", r.StatusCode, r.body)
			}
			if len(r.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("signup pending verification set a cookie: %q", r.Header.Values("Set-Cookie"))
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != f.origin {
				t.Errorf("signup: ACAO %q, want %q", got, f.origin)
			}
			login := e.do(f.req("/login", map[string]string{"username": "carol", "password": newPassword}))
			wantProblem(t, "login before verifying", login, http.StatusForbidden, "email-unverified")

			m := mb.next(t, addr, session.MailVerify)
			page, token := link(t, m)
			if want := f.origin + "/verify"; page != want {
				t.Errorf("verification link opens %q, want the tenant's verify_url %q", page, want)
			}
			c := wantLogin(t, f, e.do(f.req("/email/verify", map[string]string{"token": token})), http.StatusOK, "carol")
			if got := e.me(f, c); got != http.StatusOK {
				t.Errorf("me with the verification's cookie: %d, want 200", got)
			}
			again := e.do(f.req("/email/verify", map[string]string{"token": token}))
			wantProblem(t, "the spent link again", again, http.StatusBadRequest, "invalid-token")
			wantLogin(t, f, e.do(f.req("/login", map[string]string{"username": "carol", "password": newPassword})), http.StatusOK, "carol")
			wantLogin(t, f, e.do(f.req("/login", map[string]string{"username": strings.ToLower(addr), "password": newPassword})), http.StatusOK, "carol")

			u, err := e.m.GetUser(t.Context(), f.tenant, "carol")
			if err != nil || !u.EmailVerified || u.Email != addr {
				t.Errorf("carol after verifying: %+v, %v; want email %q verified", u, err, addr)
			}
		})
	}
}

// TestAccountsSignupOptional signs up with verification optional: 201 and
// a session at once, and a second signup with the same username or the
// same address is one 409 that does not say which.
func TestAccountsSignupOptional(t *testing.T) {
	t.Parallel()
	e, mb := accountsEnv(t, session.VerificationOptional, envOptions{})
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			addr := "dave@" + string(f.tenant) + ".example"
			c := wantLogin(t, f, e.do(f.req("/signup", map[string]string{"username": "dave", "email": addr, "password": newPassword})), http.StatusCreated, "dave")
			if got := e.me(f, c); got != http.StatusOK {
				t.Errorf("me after signup: %d, want 200", got)
			}
			mb.next(t, addr, session.MailVerify) // optional still mails the link
			var details []string
			for _, in := range []map[string]string{
				{"username": "dave", "email": "other@" + string(f.tenant) + ".example", "password": newPassword},
				{"username": "dave2", "email": addr, "password": newPassword},
			} {
				r := e.do(f.req("/signup", in))
				wantProblem(t, "signup taken", r, http.StatusConflict, "conflict")
				var p problem
				json.Unmarshal(r.body, &p)
				details = append(details, p.Detail)
			}
			if details[0] != detailSignupConflict || details[1] != details[0] {
				t.Errorf("conflict details %q, want both %q", details, detailSignupConflict)
			}
		})
	}
}

// TestAccountsSignupRefusals: a weak password, an address that is no
// address, and over-long fields.
func TestAccountsSignupRefusals(t *testing.T) {
	t.Parallel()
	e, _ := accountsEnv(t, session.VerificationOptional, envOptions{})
	f := forms[0]
	for _, c := range []struct {
		name   string
		in     map[string]string
		status int
		slug   string
	}{
		{"common password", map[string]string{"username": "erin", "email": "erin@example.com", "password": "password"}, 400, "weak-password"},
		{"password is the username", map[string]string{"username": "erinerinerin", "email": "erin@example.com", "password": "ErinErinErin"}, 400, "weak-password"},
		{"not an address", map[string]string{"username": "erin", "email": "erin at example", "password": newPassword}, 400, "bad-request"},
		{"long address", map[string]string{"username": "erin", "email": strings.Repeat("e", 250) + "@x.io", "password": newPassword}, 400, "bad-request"},
		{"long password", map[string]string{"username": "erin", "email": "erin@example.com", "password": strings.Repeat("p", session.MaxPasswordLen+1)}, 400, "bad-request"},
		{"no username", map[string]string{"email": "erin@example.com", "password": newPassword}, 400, "bad-request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantProblem(t, c.name, e.do(f.req("/signup", c.in)), c.status, c.slug)
		})
	}
	if _, err := e.m.GetUser(t.Context(), "acme", "erin"); err == nil {
		t.Error("a refused signup created erin")
	}
}

// TestAccountsPasswordReset: the request answers 202, the mail's link
// opens the tenant's reset_url, a weak password leaves the token unspent,
// and the reset ends every session, signs this browser in and sets the
// new password.
func TestAccountsPasswordReset(t *testing.T) {
	t.Parallel()
	e, mb := accountsEnv(t, session.VerificationRequired, envOptions{token: adminToken})
	users := map[session.TenantID]string{"acme": "alice", "beta": "bob"}
	old := map[session.TenantID]string{"acme": alicePassword, "beta": bobPassword}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			user, addr := users[f.tenant], users[f.tenant]+"@example.org"
			r := e.do(adminReq("PATCH", "/admin/v1/tenants/"+string(f.tenant)+"/users/"+user, map[string]any{"email": addr, "email_verified": true}))
			if r.StatusCode != http.StatusOK {
				t.Fatalf("PATCH %s's email: %d %s", user, r.StatusCode, r.body)
			}
			before := wantLogin(t, f, e.do(f.req("/login", map[string]string{"username": user, "password": old[f.tenant]})), http.StatusOK, user)

			r = e.do(f.req("/password/reset/request", map[string]string{"email": addr}))
			if r.StatusCode != http.StatusAccepted || strings.TrimSpace(string(r.body)) != `{}` {
				t.Fatalf("reset request: %d %s, want 202 {}", r.StatusCode, r.body)
			}
			page, token := link(t, mb.next(t, addr, session.MailReset))
			if want := f.origin + "/reset?from=mail"; page != want {
				t.Errorf("reset link opens %q, want the tenant's reset_url %q", page, want)
			}
			weak := e.do(f.req("/password/reset", map[string]string{"token": token, "password": "password"}))
			wantProblem(t, "reset to a weak password", weak, http.StatusBadRequest, "weak-password")
			c := wantLogin(t, f, e.do(f.req("/password/reset", map[string]string{"token": token, "password": newPassword})), http.StatusOK, user)
			if got := e.me(f, before); got != http.StatusUnauthorized {
				t.Errorf("me with the session from before the reset: %d, want 401", got)
			}
			if got := e.me(f, c); got != http.StatusOK {
				t.Errorf("me with the reset's session: %d, want 200", got)
			}
			mb.next(t, addr, session.MailPasswordChanged)
			wantProblem(t, "the spent reset link", e.do(f.req("/password/reset", map[string]string{"token": token, "password": newPassword + "!"})), http.StatusBadRequest, "invalid-token")
			wantProblem(t, "the old password", e.do(f.req("/login", map[string]string{"username": user, "password": old[f.tenant]})), http.StatusUnauthorized, "invalid-credentials")
			wantLogin(t, f, e.do(f.req("/login", map[string]string{"username": user, "password": newPassword})), http.StatusOK, user)
		})
	}
}

// TestAccountsChangePassword: signed in, a wrong current password is a
// 401 that counts, a weak new one a 400; a change ends every session,
// this one too, and answers a new cookie.
func TestAccountsChangePassword(t *testing.T) {
	t.Parallel()
	e, mb := accountsEnv(t, session.VerificationOptional, envOptions{token: adminToken})
	users := map[session.TenantID]string{"acme": "alice", "beta": "bob"}
	old := map[session.TenantID]string{"acme": alicePassword, "beta": bobPassword}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			user := users[f.tenant]
			addr := user + "@change.example"
			if r := e.do(adminReq("PATCH", "/admin/v1/tenants/"+string(f.tenant)+"/users/"+user, map[string]any{"email": addr})); r.StatusCode != http.StatusOK {
				t.Fatalf("PATCH email: %d %s", r.StatusCode, r.body)
			}
			wantProblem(t, "change without a session", e.do(f.req("/password", map[string]string{"current_password": old[f.tenant], "new_password": newPassword})), http.StatusUnauthorized, "unauthenticated")
			first := wantLogin(t, f, e.do(f.req("/login", map[string]string{"username": user, "password": old[f.tenant]})), http.StatusOK, user)
			second := wantLogin(t, f, e.do(f.req("/login", map[string]string{"username": user, "password": old[f.tenant]})), http.StatusOK, user)
			wantProblem(t, "wrong current password", e.do(f.req("/password", map[string]string{"current_password": "not it", "new_password": newPassword}, first)), http.StatusUnauthorized, "invalid-credentials")
			wantProblem(t, "weak new password", e.do(f.req("/password", map[string]string{"current_password": old[f.tenant], "new_password": "password"}, first)), http.StatusBadRequest, "weak-password")
			c := wantLogin(t, f, e.do(f.req("/password", map[string]string{"current_password": old[f.tenant], "new_password": newPassword}, first)), http.StatusOK, user)
			if c.Value == first.Value {
				t.Error("the change answered the old cookie")
			}
			for name, old := range map[string]*http.Cookie{"this": first, "another": second} {
				if got := e.me(f, old); got != http.StatusUnauthorized {
					t.Errorf("me with %s session from before the change: %d, want 401", name, got)
				}
			}
			if got := e.me(f, c); got != http.StatusOK {
				t.Errorf("me with the new cookie: %d, want 200", got)
			}
			mb.next(t, addr, session.MailPasswordChanged)
		})
	}
}

// TestAccountsResend: resend answers 202 {} and mails a new link that
// works.
func TestAccountsResend(t *testing.T) {
	t.Parallel()
	e, mb := accountsEnv(t, session.VerificationRequired, envOptions{})
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			addr := "frank@" + string(f.tenant) + ".example"
			if r := e.do(f.req("/signup", map[string]string{"username": "frank", "email": addr, "password": newPassword})); r.StatusCode != http.StatusAccepted {
				t.Fatalf("signup: %d %s", r.StatusCode, r.body)
			}
			mb.next(t, addr, session.MailVerify)
			r := e.do(f.req("/email/verify/resend", map[string]string{"email": addr}))
			if r.StatusCode != http.StatusAccepted || strings.TrimSpace(string(r.body)) != `{}` {
				t.Fatalf("resend: %d %s, want 202 {}", r.StatusCode, r.body)
			}
			_, token := link(t, mb.next(t, addr, session.MailVerify))
			wantLogin(t, f, e.do(f.req("/email/verify", map[string]string{"token": token})), http.StatusOK, "frank")
		})
	}
}

// accountsCase is a public account route and a body it accepts.
type accountsCase struct {
	path string
	body map[string]string
}

// accountsRoutes are the six public routes with a body each accepts.
var accountsRoutes = []accountsCase{
	{"/signup", map[string]string{"username": "gina", "email": "gina@example.com", "password": newPassword}},
	{"/email/verify", map[string]string{"token": strings.Repeat("A", 43)}},
	{"/email/verify/resend", map[string]string{"email": "gina@example.com"}},
	{"/password/reset/request", map[string]string{"email": "gina@example.com"}},
	{"/password/reset", map[string]string{"token": strings.Repeat("A", 43), "password": newPassword}},
	{"/password", map[string]string{"current_password": alicePassword, "new_password": newPassword}},
}

// TestAccountsNotEnabled: a tenant without accounts answers 404
// not-enabled on every route, in both forms, with its CORS headers; and
// each switch of the block turns its routes off.
func TestAccountsNotEnabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	for _, f := range forms {
		cookie := e.login(f.prefix, f.host, f.origin, map[session.TenantID]string{"acme": "alice", "beta": "bob"}[f.tenant],
			map[session.TenantID]string{"acme": alicePassword, "beta": bobPassword}[f.tenant])
		for _, rt := range accountsRoutes {
			r := e.do(f.req(rt.path, rt.body, cookie))
			wantProblem(t, f.name+" "+rt.path, r, http.StatusNotFound, "not-enabled")
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != f.origin {
				t.Errorf("%s %s: ACAO %q, want %q", f.name, rt.path, got, f.origin)
			}
		}
	}

	e2, _ := accountsEnv(t, session.VerificationOff, envOptions{})
	for _, f := range forms {
		a := accountsOf(f.origin, session.VerificationOff)
		a.Signup, a.VerifyURL, a.ResetURL = false, "", ""
		e2.setAccounts(f.tenant, a)
		for _, p := range []string{"/signup", "/email/verify", "/email/verify/resend", "/password/reset/request", "/password/reset"} {
			for _, rt := range accountsRoutes {
				if rt.path == p {
					wantProblem(t, f.name+" "+p+" switched off", e2.do(f.req(p, rt.body)), http.StatusNotFound, "not-enabled")
				}
			}
		}
	}
}

// TestAccountsOrigins: each route's preflight from a tenant origin is
// granted, from another refused; a request from another origin is a 403
// before anything is counted or mailed; and JSON only.
func TestAccountsOrigins(t *testing.T) {
	t.Parallel()
	e, mb := accountsEnv(t, session.VerificationRequired, envOptions{})
	for _, f := range forms {
		for _, rt := range accountsRoutes {
			what := f.name + " " + rt.path
			pre := func(origin string) res {
				return e.do(req{method: "OPTIONS", path: f.prefix + rt.path, host: f.host, origin: origin, header: map[string]string{
					"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
				}})
			}
			if r := pre(f.origin); r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != f.origin || r.Header.Get("Access-Control-Allow-Credentials") != "true" {
				t.Errorf("%s: preflight from %s: %d ACAO %q ACAC %q, want 204 granted", what, f.origin, r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"), r.Header.Get("Access-Control-Allow-Credentials"))
			}
			if r := pre("https://evil.example"); r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("%s: preflight from a foreign origin: %d ACAO %q, want 403 without CORS", what, r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
			}
			q := f.req(rt.path, rt.body)
			q.origin = "https://evil.example"
			wantProblem(t, what+" from a foreign origin", e.do(q), http.StatusForbidden, "forbidden-origin")

			q = f.req(rt.path, nil)
			q.body, _ = func() (string, error) { b, err := json.Marshal(rt.body); return string(b), err }()
			for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
				q.ct = ct
				wantProblem(t, what+" as "+ct, e.do(q), http.StatusUnsupportedMediaType, "unsupported-media-type")
			}
			q.ct, q.body = "application/json", `{"unknown":1}`
			r := e.do(q)
			wantProblem(t, what+" with an unknown field", r, http.StatusBadRequest, "bad-request")
			q.body = `{` + strings.Repeat(" ", maxLoginBody) + `}`
			wantProblem(t, what+" over 4 KiB", e.do(q), http.StatusRequestEntityTooLarge, "payload-too-large")
		}
	}
	time.Sleep(50 * time.Millisecond) // background work, if any had been queued
	if got := mb.summary(); len(got) != 0 {
		t.Errorf("refused requests mailed %v", got)
	}
}

// answerShape is what of an answer may not depend on the address: status,
// headers but the per-request ones, and body.
func answerShape(r res) string {
	h := maps.Clone(r.Header)
	for _, k := range []string{"X-Request-Id", "Date"} {
		delete(h, k)
	}
	b, _ := json.Marshal(h)
	return r.Status + "\n" + string(b) + "\n" + string(r.body)
}

// TestAccountsEnumeration: reset request and resend answer the same bytes
// for a user's address and for nobody's, and answer before the lookup and
// the mail are done: with the mail server hanging, the 202 still comes.
func TestAccountsEnumeration(t *testing.T) {
	t.Parallel()
	e, mb := accountsEnv(t, session.VerificationRequired, envOptions{token: adminToken})
	mb.block = make(chan struct{})
	t.Cleanup(func() { close(mb.block) })
	const known = "known@example.net"
	if r := e.do(adminReq("PATCH", "/admin/v1/tenants/acme/users/alice", map[string]any{"email": known})); r.StatusCode != http.StatusOK {
		t.Fatalf("PATCH alice's email: %d %s", r.StatusCode, r.body)
	}
	f := forms[0]
	for _, path := range []string{"/password/reset/request", "/email/verify/resend"} {
		done := make(chan [2]string, 1)
		go func() {
			var shapes [2]string
			for i, addr := range []string{known, "nobody@example.net"} {
				shapes[i] = answerShape(e.do(f.req(path, map[string]string{"email": addr})))
			}
			done <- shapes
		}()
		select {
		case shapes := <-done:
			if shapes[0] != shapes[1] {
				t.Errorf("%s: a user's address and nobody's are answered differently:\n%s\n---\n%s", path, shapes[0], shapes[1])
			}
			if !strings.HasPrefix(shapes[0], "202 ") {
				t.Errorf("%s: %s, want 202", path, shapes[0])
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no answer within 10s while the mailer hangs: the handler waits for the mail", path)
		}
	}
}

// TestAccountsSignupEnumeration: with verification required, a signup
// whose username or address is taken is answered the same bytes as a new
// one, creates nothing, and mails the address's owner instead.
func TestAccountsSignupEnumeration(t *testing.T) {
	t.Parallel()
	e, mb := accountsEnv(t, session.VerificationRequired, envOptions{token: adminToken})
	const owned = "owner@example.net"
	if r := e.do(adminReq("PATCH", "/admin/v1/tenants/acme/users/alice", map[string]any{"email": owned, "email_verified": true})); r.StatusCode != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.StatusCode, r.body)
	}
	f := forms[0]
	signup := func(user, addr string) string {
		return answerShape(e.do(f.req("/signup", map[string]string{"username": user, "email": addr, "password": newPassword})))
	}
	fresh := signup("ken", "ken@example.net")
	mb.next(t, "ken@example.net", session.MailVerify)
	for name, c := range map[string][2]string{"address taken": {"ken2", owned}, "username taken": {"alice", "other@example.net"}} {
		if got := signup(c[0], c[1]); got != fresh {
			t.Errorf("signup with the %s is answered\n%s\nbut a new one\n%s", name, got, fresh)
		}
		mb.next(t, c[1], session.MailSignupTaken)
	}
	if _, err := e.m.GetUser(t.Context(), "acme", "ken2"); err == nil {
		t.Error("a signup with a taken address created its user")
	}
}

// TestAccountsMetrics: each account request is counted by route and
// outcome.
func TestAccountsMetrics(t *testing.T) {
	t.Parallel()
	e, _ := accountsEnv(t, session.VerificationRequired, envOptions{})
	f := forms[0]
	e.do(f.req("/password/reset/request", map[string]string{"email": "m@example.com"}))
	e.do(f.req("/email/verify", map[string]string{"token": strings.Repeat("A", 43)}))
	r := e.do(req{admin: true, method: "GET", path: "/metrics"})
	for _, want := range []string{
		`latchkey_accounts_requests_total{outcome="success",route="reset_request",tenant="acme"} 1`,
		`latchkey_accounts_requests_total{outcome="invalid-token",route="verify",tenant="acme"} 1`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestAccountsLinksAreTheTenants: whatever Origin (another of the
// tenant's), Host or X-Forwarded-Host a request has, the link opens the
// tenant's configured page.
func TestAccountsLinksAreTheTenants(t *testing.T) {
	t.Parallel()
	e, mb := accountsEnv(t, session.VerificationRequired, envOptions{token: adminToken})
	const addr = "alice@links.example"
	if r := e.do(adminReq("PATCH", "/admin/v1/tenants/acme/users/alice", map[string]any{"email": addr, "email_verified": true})); r.StatusCode != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.StatusCode, r.body)
	}
	for _, q := range []req{
		{method: "POST", path: "/v1/password/reset/request", host: acmeHost, origin: acmeAdmin, header: map[string]string{"X-Forwarded-Host": "evil.example", "Forwarded": "host=evil.example"}},
		{method: "POST", path: "/v1/t/acme/password/reset/request", origin: acmeAdmin, header: map[string]string{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"}},
	} {
		q.json = map[string]string{"email": addr}
		if r := e.do(q); r.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d %s", q.path, r.StatusCode, r.body)
		}
		page, _ := link(t, mb.next(t, addr, session.MailReset))
		if want := acmeApp + "/reset?from=mail"; page != want {
			t.Errorf("%s with Origin %s, X-Forwarded-Host evil.example: link opens %q, want %q", q.path, q.origin, page, want)
		}
	}
}

// TestAccountsRateLimited: past per_address requests for one address the
// mail-sending routes answer 429 with Retry-After and a detail about
// requests, not failed logins.
func TestAccountsRateLimited(t *testing.T) {
	t.Parallel()
	e, _ := accountsEnv(t, session.VerificationRequired, envOptions{})
	a := accountsOf(acmeApp, session.VerificationRequired)
	a.Limits = session.AccountLimits{PerIP: 100, PerAddress: 2, Window: session.Duration(time.Hour)}
	e.setAccounts("acme", a)
	f := forms[0]
	body := map[string]string{"email": "limit@example.com"}
	for i := range 2 {
		if r := e.do(f.req("/password/reset/request", body)); r.StatusCode != http.StatusAccepted {
			t.Fatalf("request %d: %d %s", i+1, r.StatusCode, r.body)
		}
	}
	for _, path := range []string{"/password/reset/request", "/email/verify/resend"} {
		r := e.do(f.req(path, body))
		wantProblem(t, path+" over the limit", r, http.StatusTooManyRequests, "rate-limited")
		var p problem
		json.Unmarshal(r.body, &p)
		if strings.Contains(strings.ToLower(p.Detail+p.Title), "failed login") || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: title %q detail %q Retry-After %q; want no word of failed logins, and Retry-After", path, p.Title, p.Detail, r.Header.Get("Retry-After"))
		}
	}
}

// TestAdminAccounts: the tenant's accounts block through the admin API
// (strict, and refused without mail), users' addresses, and the resend.
func TestAdminAccounts(t *testing.T) {
	t.Parallel()
	t.Run("no mailer", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, envOptions{token: adminToken})
		tn := acmeTenant()
		tn.Accounts = accountsOf(acmeApp, session.VerificationRequired)
		r := e.do(adminReq("PUT", "/admin/v1/tenants/acme", tn))
		wantProblem(t, "PUT accounts without mail", r, http.StatusBadRequest, "invalid-config")
		var p problem
		json.Unmarshal(r.body, &p)
		if !slices.ContainsFunc(p.Errors, func(q session.Problem) bool { return q.Field == "accounts" }) {
			t.Errorf("errors %+v, want one on field accounts", p.Errors)
		}
	})

	e, mb := accountsEnv(t, session.VerificationRequired, envOptions{token: adminToken})
	r := e.do(adminReq("GET", "/admin/v1/tenants/acme", nil))
	var got struct{ Accounts *session.AccountsPolicy }
	if json.Unmarshal(r.body, &got); r.StatusCode != http.StatusOK || got.Accounts == nil || got.Accounts.VerifyURL != acmeApp+"/verify" {
		t.Errorf("GET acme: %d %s; want its accounts", r.StatusCode, r.body)
	}
	tn := map[string]any{"name": "Acme", "origins": []string{acmeApp}, "hostnames": []string{acmeHost}, "cookie": map[string]any{"same_site": "lax"},
		"accounts": map[string]any{"email_verification": "required", "verify_url": acmeApp + "/verify", "colour": "red"}}
	wantProblem(t, "PUT accounts with an unknown field", e.do(adminReq("PUT", "/admin/v1/tenants/acme", tn)), http.StatusBadRequest, "bad-request")

	users := "/admin/v1/tenants/acme/users"
	r = e.do(adminReq("POST", users, map[string]any{"username": "hank", "password": "hank's password", "email": "Hank@Example.com"}))
	var u userAdmin
	if json.Unmarshal(r.body, &u); r.StatusCode != http.StatusCreated || u.Email != "Hank@Example.com" || u.EmailVerified {
		t.Fatalf("POST hank with an address: %d %s", r.StatusCode, r.body)
	}
	wantProblem(t, "POST with another user's address", e.do(adminReq("POST", users, map[string]any{"username": "ivy", "password": "ivy's password", "email": "hank@example.com"})), http.StatusConflict, "conflict")

	if r = e.do(adminReq("POST", users+"/hank/verification", nil)); r.StatusCode != http.StatusAccepted || strings.TrimSpace(string(r.body)) != "{}" {
		t.Errorf("POST hank/verification: %d %s, want 202 {}", r.StatusCode, r.body)
	}
	mb.next(t, "Hank@Example.com", session.MailVerify) // superseded by the next one
	// {username} decoded once, as on every route (TestAdminRoutesNameParams
	// cannot enable verification in its world).
	if r = e.do(adminReq("POST", users+"/"+escapeAll("hank")+"/verification", nil)); r.StatusCode != http.StatusAccepted {
		t.Errorf("POST %s/verification: %d %s, want 202", escapeAll("hank"), r.StatusCode, r.body)
	}
	page, token := link(t, mb.next(t, "Hank@Example.com", session.MailVerify))
	if page != acmeApp+"/verify" {
		t.Errorf("link opens %q", page)
	}
	wantLogin(t, forms[0], e.do(forms[0].req("/email/verify", map[string]string{"token": token})), http.StatusOK, "hank")
	wantProblem(t, "verification of a verified user", e.do(adminReq("POST", users+"/hank/verification", nil)), http.StatusConflict, "conflict")
	wantProblem(t, "verification of a user without an address", e.do(adminReq("POST", users+"/alice/verification", nil)), http.StatusConflict, "conflict")
	wantProblem(t, "verification of nobody", e.do(adminReq("POST", users+"/nobody/verification", nil)), http.StatusNotFound, "not-found")

	for _, remove := range []any{nil, ""} {
		if r = e.do(adminReq("PATCH", users+"/hank", map[string]any{"email": "hank@new.example", "email_verified": true})); r.StatusCode != http.StatusOK {
			t.Fatalf("PATCH hank's address: %d %s", r.StatusCode, r.body)
		}
		r = e.do(adminReq("PATCH", users+"/hank", map[string]any{"email": remove}))
		u = userAdmin{}
		if json.Unmarshal(r.body, &u); r.StatusCode != http.StatusOK || u.Email != "" || strings.Contains(string(r.body), `"email":`) {
			t.Errorf("PATCH email %#v: %d %s; want the address removed", remove, r.StatusCode, r.body)
		}
	}
	wantProblem(t, "PATCH email 5", e.do(adminReq("PATCH", users+"/hank", map[string]any{"email": 5})), http.StatusBadRequest, "bad-request")

	e.setAccounts("acme", func() *session.AccountsPolicy {
		a := accountsOf(acmeApp, session.VerificationOff)
		a.VerifyURL = ""
		return a
	}())
	e.do(adminReq("PATCH", users+"/hank", map[string]any{"email": "hank@off.example"}))
	wantProblem(t, "verification with verification off", e.do(adminReq("POST", users+"/hank/verification", nil)), http.StatusNotFound, "not-enabled")
}
