package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// The self-service flows of issue 16: signup, email verification,
// password reset and change. Their rules (DESIGN16):
//
//   - A tenant without Accounts, or without the feature a flow needs, gets
//     ErrNotEnabled from it.
//   - Nothing a flow answers tells whether an address or username exists:
//     resend and reset-request answer after the input check and the limits
//     alone, and do the lookup, the token and the mail in the background;
//     a signup that verification holds back answers "check your mail"
//     whether it created a user or mailed the owner of what was taken.
//   - Tokens (tokens.go) are single use, short-lived, superseded by newer
//     ones and invalidated by a change of the user's address or password.
//   - A reset or a change of password ends every session of the user, on
//     every replica, and signs this browser in afresh.
//   - No token, link or address is ever logged.

// StartInput is what a flow that ends in a new session (verification,
// reset, password change) knows of the browser it signs in.
type StartInput struct {
	UserAgent string
	ClientIP  string
	// Presented holds the values of session cookies that came with the
	// request; their sessions end with the new one's start.
	Presented []string
}

// SignupInput is what a signup presents.
type SignupInput struct {
	Username string
	Email    string
	Password string
	StartInput
}

// SignupResult is what a signup that was accepted did. With Session nil,
// the answer is "check your mail": verification is required, or the
// username or address was taken (which the answer never says).
type SignupResult struct {
	Session *Session
	Cookie  *http.Cookie
}

// errSignupConflict is a signup's taken username or address where the
// answer may say so (verification not required): one detail for both.
var errSignupConflict error = &Error{Kind: KindConflict, Detail: "this username or email address cannot be used"}

func notEnabled(what string) error {
	return errorf(KindNotEnabled, "%s is not enabled for this tenant", what)
}

// Signup creates a self-service user. With verification required, the
// user is created unverified and mailed a link, and the result has no
// session; a taken address or username creates nobody and mails the
// address a notice instead, with the same result. Otherwise the user is
// created and signed in (and, verification optional, mailed a link), and
// a taken username or address is a KindConflict *Error that does not say
// which. Bad input is a *ValidationError (fields username, email); a
// refused password KindWeakPassword; past the limits KindRateLimited.
func (m *Manager) Signup(ctx context.Context, t *Tenant, in SignupInput) (SignupResult, error) {
	a := t.Accounts
	if a == nil || !a.Signup {
		return SignupResult{}, notEnabled("signup")
	}
	ps := &problems{}
	name, msg := newUsername(in.Username)
	if msg != "" {
		ps.add("username", "%s", msg)
	}
	email, msg := NormalizeEmail(in.Email)
	if msg != "" {
		ps.add("email", "%s", msg)
	}
	if err := ps.err(); err != nil {
		return SignupResult{}, err
	}
	if err := t.CheckNewPassword(in.Password, name, in.Email); err != nil {
		return SignupResult{}, err
	}
	if err := m.countAccountRequest(ctx, t, in.ClientIP, email); err != nil {
		return SignupResult{}, err
	}
	// Hash before any lookup, so that a new and a taken name or address
	// cost the same.
	hash, err := m.hash(ctx, in.Password)
	if err != nil {
		return SignupResult{}, err
	}
	now := m.now().UTC().Truncate(time.Second)
	u := User{Username: name, PasswordHash: hash, Email: displayEmail(in.Email), CreatedAt: now, UpdatedAt: now}
	su := encodeUser(t.ID, u)
	required := a.EmailVerification == VerificationRequired
	err = m.st.CreateUser(ctx, su)
	switch {
	case errors.Is(err, store.ErrConflict) && required:
		m.submit(ctx, t, func(ctx context.Context) { m.noticeTaken(ctx, t, u) })
		return SignupResult{}, nil
	case errors.Is(err, store.ErrConflict):
		return SignupResult{}, errSignupConflict
	case err != nil:
		return SignupResult{}, err
	}
	if a.EmailVerification != VerificationOff {
		m.submit(ctx, t, func(ctx context.Context) {
			if err := m.sendToken(ctx, t, u, tokenVerify); err != nil {
				m.log.WarnContext(ctx, "could not send a signup's verification mail", "tenant", t.ID, "err", err)
			}
		})
	}
	if required {
		return SignupResult{}, nil
	}
	s, c, err := m.start(ctx, t, su, u, in.StartInput)
	if err != nil {
		return SignupResult{}, err
	}
	return SignupResult{Session: &s, Cookie: c}, nil
}

// noticeTaken tells the owner of what a signup found taken: the holder of
// the address, or (the username taken, the address free) the address the
// signup gave, so that whoever signed up learns it only by mail.
func (m *Manager) noticeTaken(ctx context.Context, t *Tenant, attempt User) {
	owner, err := m.lookupEmail(ctx, t, emailKey(attempt.Email))
	if err != nil {
		m.log.WarnContext(ctx, "could not look up the owner of a signup's address", "tenant", t.ID, "err", err)
		return
	}
	// What the signup gave (the template says "with this address and the
	// username …"), to the address's owner if it has one.
	d := MailData{TenantName: t.Name, Username: attempt.Username, Email: attempt.Email}
	if owner.found {
		d.Email = owner.u.Email
	}
	if err := m.sendMail(ctx, t, MailSignupTaken, d); err != nil {
		m.log.WarnContext(ctx, "could not send a signup notice", "tenant", t.ID, "err", err)
	}
}

// VerifyEmail spends a verification token, marks its user's address
// verified and signs the browser in. A token that is unknown, expired,
// used, superseded, or issued for another address or password of the
// user is ErrInvalidToken.
func (m *Manager) VerifyEmail(ctx context.Context, t *Tenant, token string, in StartInput) (Session, *http.Cookie, error) {
	if t.Accounts == nil || t.Accounts.EmailVerification == VerificationOff {
		return Session{}, nil, notEnabled("email verification")
	}
	sp, err := m.takeToken(ctx, t, token, tokenVerify)
	if err != nil {
		return Session{}, nil, err
	}
	su, u := sp.su, sp.u
	for attempt := 0; ; attempt++ {
		if !u.EmailVerified {
			u.EmailVerified = true
			u.UpdatedAt = m.now().UTC().Truncate(time.Second)
			nsu := encodeUser(t.ID, u)
			err = m.st.SwapUser(ctx, su, nsu)
			if err == nil {
				su = nsu
			}
		}
		var s Session
		var c *http.Cookie
		if err == nil {
			s, c, err = m.start(ctx, t, su, u, in)
		}
		if !errors.Is(err, store.ErrConflict) {
			return s, c, err
		}
		// The user changed meanwhile (a login upgrading its hash, an
		// admin): the token still counts if it still fits the user.
		if attempt == maxLoginAttempts-1 {
			return Session{}, nil, err
		}
		look, lerr := m.lookupUser(ctx, t, u.Username)
		if lerr != nil {
			return Session{}, nil, lerr
		}
		if !look.found || !tokenMatches(sp.tok, look.u) {
			return Session{}, nil, ErrInvalidToken
		}
		su, u, err = look.su, look.u, nil
	}
}

// ResendVerification mails a new verification link to email if it is an
// unverified user's; it answers the same whether or not it is: nil, after
// only the check of email (a *ValidationError, field email) and the
// limits (KindRateLimited). The rest happens in the background.
func (m *Manager) ResendVerification(ctx context.Context, t *Tenant, email, clientIP string) error {
	if t.Accounts == nil || t.Accounts.EmailVerification == VerificationOff {
		return notEnabled("email verification")
	}
	return m.mailByAddress(ctx, t, email, clientIP, func(u User) bool { return !u.EmailVerified }, tokenVerify)
}

// RequestPasswordReset mails a reset link to email if it is a user's; it
// answers the same, in the same time, whether or not it is, as
// ResendVerification does.
func (m *Manager) RequestPasswordReset(ctx context.Context, t *Tenant, email, clientIP string) error {
	if t.Accounts == nil || t.Accounts.ResetURL == "" {
		return notEnabled("password reset")
	}
	return m.mailByAddress(ctx, t, email, clientIP, func(User) bool { return true }, tokenReset)
}

// mailByAddress is resend and reset-request: check the address, count the
// request, and in the background mail a token of kind to the user holding
// the address, if there is one, it is not disabled and want(user).
func (m *Manager) mailByAddress(ctx context.Context, t *Tenant, email, clientIP string, want func(User) bool, kind string) error {
	normal, msg := NormalizeEmail(email)
	if msg != "" {
		return &ValidationError{Problems: []Problem{{Field: "email", Message: msg}}}
	}
	if err := m.countAccountRequest(ctx, t, clientIP, normal); err != nil {
		return err
	}
	m.submit(ctx, t, func(ctx context.Context) {
		look, err := m.lookupEmail(ctx, t, normal)
		if err == nil && look.found && !look.u.Disabled && want(look.u) {
			err = m.sendToken(ctx, t, look.u, kind)
		}
		if err != nil {
			m.log.WarnContext(ctx, "could not mail a link", "tenant", t.ID, "kind", kind, "err", err)
		}
	})
	return nil
}

// ResetPassword spends a reset token, sets the new password, ends every
// session of the user and signs the browser in. The password is checked
// against the policy first (KindWeakPassword), and a refused one does not
// spend the token. The address the link was mailed to is then verified,
// the user's other tokens stop working, and the user is told by mail.
func (m *Manager) ResetPassword(ctx context.Context, t *Tenant, token, password string, in StartInput) (Session, *http.Cookie, error) {
	if t.Accounts == nil || t.Accounts.ResetURL == "" {
		return Session{}, nil, notEnabled("password reset")
	}
	// What does not depend on the user, before the token is spent.
	if err := t.CheckNewPassword(password, "", ""); err != nil {
		return Session{}, nil, err
	}
	sp, err := m.takeToken(ctx, t, token, tokenReset)
	if err != nil {
		return Session{}, nil, err
	}
	if err := t.CheckNewPassword(password, sp.u.Username, sp.u.Email); err != nil {
		m.putBack(ctx, t, sp.tok)
		return Session{}, nil, err
	}
	hash, err := m.hash(ctx, password)
	if err != nil {
		m.putBack(ctx, t, sp.tok)
		return Session{}, nil, err
	}
	u := sp.u
	u.EmailVerified = true // the mail reached its owner
	s, c, err := m.setPassword(ctx, t, u, hash, in)
	if err != nil && !errors.Is(err, errPasswordSet) {
		m.putBack(ctx, t, sp.tok)
	}
	return s, c, err
}

// ChangePassword checks the signed-in user's current password, sets the
// new one, ends all of the user's sessions and starts a new one for this
// browser. The new password is checked against the policy first
// (KindWeakPassword); the current one under the tenant's LoginLimits, as
// a login's (its account key and the client's address), so that a wrong
// one counts as a failed login and past the limits it is
// KindRateLimited. A wrong one is ErrInvalidCredentials; a session whose
// user is gone or disabled ErrUnauthenticated.
func (m *Manager) ChangePassword(ctx context.Context, t *Tenant, s Session, current, next string, in StartInput) (Session, *http.Cookie, error) {
	if t.Accounts == nil {
		return Session{}, nil, notEnabled("password change")
	}
	look, err := m.lookupUser(ctx, t, s.Username)
	if err != nil {
		return Session{}, nil, err
	}
	if !look.found || look.u.Disabled || s.Tenant != t.ID {
		return Session{}, nil, ErrUnauthenticated
	}
	u := look.u
	if err := t.CheckNewPassword(next, u.Username, u.Email); err != nil {
		return Session{}, nil, err
	}
	if len(current) > MaxPasswordLen {
		return Session{}, nil, ErrInvalidCredentials
	}
	limits, shareKeys := checkKeys(t, "a:"+u.Username, in.ClientIP)
	h, _, _ := m.hashToCheck(u.PasswordHash, true)
	g, err := m.guardCheck(ctx, t, limits, shareKeys, h.p.memKiB())
	if err != nil {
		return Session{}, nil, err
	}
	ok, err := m.verify(ctx, t.ID, g.waitUntil, u.PasswordHash, true, current)
	failed := err == nil && !ok
	m.settle(ctx, t, g, failed)
	if failed {
		return Session{}, nil, ErrInvalidCredentials
	}
	if err != nil {
		return Session{}, nil, err
	}
	if err := m.st.ResetCount(ctx, string(t.ID), "a:"+u.Username); err != nil {
		m.log.WarnContext(ctx, "could not reset the account's failed-login count", "tenant", t.ID, "err", err)
	}
	hash, err := m.hash(ctx, next)
	if err != nil {
		return Session{}, nil, err
	}
	return m.setPassword(ctx, t, u, hash, in)
}

// errPasswordSet marks a failure after the new password was stored: the
// password changed, only the new session could not be started.
var errPasswordSet = errors.New("session: password set")

// setPassword stores u with the new hash, ending every session of the
// user in the same atomic step (the store tells every replica) and its
// tokens, then starts a session for this browser and mails the user that
// the password changed.
func (m *Manager) setPassword(ctx context.Context, t *Tenant, u User, hash string, in StartInput) (Session, *http.Cookie, error) {
	u.PasswordHash = hash
	u.UpdatedAt = m.now().UTC().Truncate(time.Second)
	su := encodeUser(t.ID, u)
	err := m.st.PutUser(ctx, su, true)
	m.forget(t.ID, u.Username)
	if err != nil {
		return Session{}, nil, err
	}
	// The tokens' fingerprints no longer match; removing them is tidiness.
	if err := m.st.DeleteTokens(ctx, string(t.ID), u.Username); err != nil {
		m.log.WarnContext(ctx, "could not remove the tokens of a user whose password changed; they no longer work", "tenant", t.ID, "err", err)
	}
	if u.Email != "" {
		if err := m.sendMail(ctx, t, MailPasswordChanged, MailData{TenantName: t.Name, Username: u.Username, Email: u.Email}); err != nil {
			m.log.WarnContext(ctx, "could not send the password-changed notice", "tenant", t.ID, "err", err)
		}
	}
	s, c, err := m.start(ctx, t, su, u, in)
	if err != nil {
		return Session{}, nil, errors.Join(errPasswordSet, err)
	}
	return s, c, nil
}

// SendVerification mails a new verification link to the user (the admin
// API's resend), superseding any earlier one. A user without an address,
// or whose address is verified, is a KindConflict *Error; a missing one
// ErrNotFound (KindNotFound).
func (m *Manager) SendVerification(ctx context.Context, t *Tenant, username string) error {
	if t.Accounts == nil || t.Accounts.EmailVerification == VerificationOff {
		return notEnabled("email verification")
	}
	u, err := m.GetUser(ctx, t.ID, username)
	if err != nil {
		return err
	}
	switch {
	case u.Email == "":
		return errorf(KindConflict, "user %q has no email address", u.Username)
	case u.EmailVerified:
		return errorf(KindConflict, "the email address of user %q is verified already", u.Username)
	}
	return m.sendToken(ctx, t, u, tokenVerify)
}

// sendToken issues a token of kind to u and mails its link to u's
// address.
func (m *Manager) sendToken(ctx context.Context, t *Tenant, u User, kind string) error {
	if m.mailer == nil {
		return errNoMailer
	}
	secret, ttl, err := m.issueToken(ctx, t, u, kind)
	if err != nil {
		return err
	}
	mk, base := MailVerify, t.Accounts.VerifyURL
	if kind == tokenReset {
		mk, base = MailReset, t.Accounts.ResetURL
	}
	// In the fragment: browsers send it to no server and put it in no
	// Referer.
	return m.sendMail(ctx, t, mk, MailData{
		TenantName: t.Name, Username: u.Username, Email: u.Email,
		Link: base + "#token=" + secret, Expires: ttl,
	})
}

var errNoMailer = errors.New("session: no Mailer configured")

// sendMail renders the tenant's mail of kind k and queues it. Its errors
// never hold the address or the mail.
func (m *Manager) sendMail(ctx context.Context, t *Tenant, k MailKind, d MailData) error {
	if m.mailer == nil {
		return errNoMailer
	}
	mail, err := t.RenderMail(k, d)
	if err != nil {
		return err
	}
	return m.mailer.Send(ctx, mail)
}

// countAccountRequest counts one request that sends mail under the
// tenant's AccountLimits, per client IP ("" skips it) and per normalized
// address, in the store for every replica: past either it is a
// KindRateLimited *Error. Every request counts, whether or not the
// address is anybody's.
func (m *Manager) countAccountRequest(ctx context.Context, t *Tenant, clientIP, email string) error {
	l := t.Accounts.Limits
	var limits []loginLimit
	if clientIP != "" {
		limits = append(limits, loginLimit{"acct:ip:" + clientIP, cmp.Or(l.PerIP, DefaultAccountsPerIP)})
	}
	limits = append(limits, loginLimit{"acct:addr:" + email, cmp.Or(l.PerAddress, DefaultAccountsPerAddress)})
	id := rand.Text()
	if err := m.reserve(ctx, t, limits, id, cmp.Or(time.Duration(l.Window), DefaultAccountsLimitWindow)); err != nil {
		return err
	}
	// A place settled as failed is one counted request.
	m.countFailure(ctx, t, limits, id)
	return nil
}

// Bounds of the flows' background work: how many jobs run at once, how
// many wait at most (past that one is dropped, with a warning), and how
// long one may take.
const (
	backgroundWorkers = 8
	backgroundQueue   = 1000
	backgroundTimeout = 30 * time.Second
)

// background runs the flows' work that must not decide an answer or its
// timing (the lookup, token and mail of a resend, a reset request or a
// signup notice) on a bounded pool. The zero value is ready to use.
type background struct {
	mu      sync.Mutex
	queue   []func()
	running int
	closed  bool
	pending sync.WaitGroup // queued or running jobs
}

// submit queues fn to run in the background with a context of its own
// (ctx's values, not its cancellation, and backgroundTimeout). A full
// queue, or a closed Manager, drops it with a warning.
func (m *Manager) submit(ctx context.Context, t *Tenant, fn func(context.Context)) {
	b := &m.bg
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || len(b.queue) >= backgroundQueue {
		m.log.WarnContext(ctx, "background work of a self-service request dropped: the queue is full or the manager closed", "tenant", t.ID)
		return
	}
	base := context.WithoutCancel(ctx)
	b.pending.Add(1)
	b.queue = append(b.queue, func() {
		defer b.pending.Done()
		jctx, cancel := context.WithTimeout(base, backgroundTimeout)
		defer cancel()
		fn(jctx)
	})
	if b.running < backgroundWorkers {
		b.running++
		go b.work()
	}
}

// work runs queued jobs until there are none.
func (b *background) work() {
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		job := b.queue[0]
		b.queue[0] = nil
		b.queue = b.queue[1:]
		b.mu.Unlock()
		job()
	}
}

// Close stops the Manager taking background work (what the self-service
// flows do after answering: lookups, tokens, mails to queue) and waits
// until the work queued already is done, or ctx is done (returning its
// error). Requests after Close still answer; their background work is
// dropped with a warning. Call it on shutdown, after the HTTP server has
// stopped and before the Mailer is closed.
func (m *Manager) Close(ctx context.Context) error {
	m.bg.mu.Lock()
	m.bg.closed = true
	m.bg.mu.Unlock()
	done := make(chan struct{})
	go func() {
		m.bg.pending.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
