package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/latchkeyhq/latchkey/store"
)

// Config holds a Manager's settings.
type Config struct {
	// Keys sign session cookies; the first signs, all verify. Required.
	Keys [][]byte
	// Now returns the current time. Nil means time.Now. Tests inject a clock.
	Now func() time.Time
	// Logger receives operational events, never secrets. Nil discards them.
	Logger *slog.Logger
	// Password is the argon2id cost for new hashes. Zero means
	// DefaultPasswordParams.
	Password PasswordParams
	// MaxSessionsPerUser bounds a user's live sessions; logging in past it
	// ends the oldest. Zero means DefaultMaxSessionsPerUser.
	MaxSessionsPerUser int
	// HashMemory bounds the memory, in bytes, that concurrent argon2id
	// hashes may use together; a login that cannot fit within HashWait
	// fails with ErrBusy. Zero means DefaultHashMemory.
	HashMemory int64
	// HashWait is how long a login waits for hashing memory (its client's
	// share, then the budget). Zero means DefaultHashWait.
	HashWait time.Duration
	// PublicHosts are the hostnames of the shared public API, the ones that
	// serve every tenant in path form (/v1/t/{tenant}/…), as lowercase DNS
	// names. No tenant may claim one (PutTenant, ParseTenantsFile), and a
	// claim stored before it was listed is ignored (IsPublicHost), so that
	// no tenant can take the path form away from the others. Optional.
	PublicHosts []string

	// Mailer sends the mails of self-service accounts. A tenant whose
	// Accounts need mail (Tenant.NeedsMail) is refused without one.
	// Optional otherwise.
	Mailer Mailer

	// HashMemoryPerClient bounds the hashing memory, in bytes, that the
	// checks of one client (one account, or one address) may hold at once
	// in this process; a client holding none may always start one check.
	// A flood from one client then waits for itself, not for everyone,
	// and gets ErrBusy past HashWait while other clients' logins proceed.
	// Zero means a quarter of HashMemory; more than HashMemory is refused.
	HashMemoryPerClient int64
}

// Defaults of the hashing bound: 128 MiB is six concurrent hashes at the
// default 19 MiB, more than two cores can run at once anyway.
const (
	DefaultHashMemory = 128 << 20
	DefaultHashWait   = time.Second
)

// DefaultMaxSessionsPerUser bounds how many sessions one user keeps, so that
// a script logging in in a loop cannot grow one user's index without end.
const DefaultMaxSessionsPerUser = 50

// tokenLen is the length of a session token: 256 bits from crypto/rand.
const tokenLen = 32

// Manager is the domain's centre: it logs users in, loads, refreshes and
// revokes their sessions, and manages tenants and users, over a store.Store.
// It is safe for concurrent use.
type Manager struct {
	st          store.Store
	codec       *Codec
	now         func() time.Time
	log         *slog.Logger
	params      PasswordParams
	maxSessions int
	// dummy is the hash checked when the user does not exist (or its hash
	// cannot be checked), so that an unknown username costs the same time
	// as a wrong password.
	dummy phc
	// hashMem is a semaphore over hashing memory, in KiB.
	hashMem    *semaphore.Weighted
	hashMemKiB int64
	hashWait   time.Duration
	// shares bounds each client's part of hashMem.
	shares *clientShares
	// givebacks retries the login places a store failure kept.
	givebacks givebacks
	// onCheck, if set, is called before each password check: a test hook.
	onCheck func(ctx context.Context)
	// cache holds recently loaded sessions; nil until EnableCache.
	cache atomic.Pointer[cache]
	// publicHosts is Config.PublicHosts.
	publicHosts []string
	// tenants is the decoded view of the stored tenants.
	tenants tenantView
	// mailer is Config.Mailer, nil for none.
	mailer Mailer
	// bg runs the self-service flows' background work.
	bg background
}

// NewManager returns a Manager over st after validating cfg.
func NewManager(st store.Store, cfg Config) (*Manager, error) {
	if st == nil {
		return nil, errors.New("session: nil store")
	}
	var errs []error
	codec, err := NewCodec(cfg.Keys)
	if err != nil {
		errs = append(errs, err)
	}
	if cfg.MaxSessionsPerUser < 0 {
		errs = append(errs, errors.New("session: MaxSessionsPerUser must not be negative"))
	}
	if cfg.HashMemory < 0 || cfg.HashWait < 0 || cfg.HashMemoryPerClient < 0 {
		errs = append(errs, errors.New("session: HashMemory, HashWait and HashMemoryPerClient must not be negative"))
	}
	for _, h := range cfg.PublicHosts {
		if msg := ValidPublicHost(h); msg != "" {
			errs = append(errs, fmt.Errorf("session: PublicHosts: %s", msg))
		}
	}
	params := cfg.Password
	if params == (PasswordParams{}) {
		params = DefaultPasswordParams
	}
	if err := params.validate(); err != nil {
		errs = append(errs, fmt.Errorf("session: password parameters: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m := &Manager{
		st:          st,
		codec:       codec,
		now:         cfg.Now,
		log:         cfg.Logger,
		params:      params,
		maxSessions: cfg.MaxSessionsPerUser,
		publicHosts: slices.Clone(cfg.PublicHosts),
		mailer:      cfg.Mailer,
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.maxSessions == 0 {
		m.maxSessions = DefaultMaxSessionsPerUser
	}
	m.hashMemKiB = cmp.Or(cfg.HashMemory, DefaultHashMemory) >> 10
	if m.hashMemKiB < params.memKiB() {
		return nil, fmt.Errorf("session: HashMemory (%d KiB) is below one hash (%d KiB)", m.hashMemKiB, params.memKiB())
	}
	m.hashMem = semaphore.NewWeighted(m.hashMemKiB)
	m.hashWait = cmp.Or(cfg.HashWait, DefaultHashWait)
	perClient := cmp.Or(cfg.HashMemoryPerClient>>10, m.hashMemKiB/4)
	if perClient > m.hashMemKiB {
		return nil, fmt.Errorf("session: HashMemoryPerClient (%d KiB) is over HashMemory (%d KiB)", perClient, m.hashMemKiB)
	}
	m.shares = newClientShares(max(perClient, 1))
	dummy, err := HashPassword(rand.Text(), params)
	if err != nil {
		return nil, err
	}
	if m.dummy, err = parsePHC(dummy); err != nil {
		return nil, fmt.Errorf("session: dummy hash: %w", err)
	}
	return m, nil
}

// IsPublicHost reports whether host, a hostname as tenants list them, is
// one of Config.PublicHosts.
func (m *Manager) IsPublicHost(host string) bool { return slices.Contains(m.publicHosts, host) }

// SharedHost returns the first of Config.PublicHosts, the host SPAs call
// for tenants served in path form, or "" when none is set.
func (m *Manager) SharedHost() string {
	if len(m.publicHosts) == 0 {
		return ""
	}
	return m.publicHosts[0]
}

// Warnings is t.WarningsOn the SharedHost, or t.Warnings when none is set.
func (m *Manager) Warnings(t *Tenant) []Warning { return t.WarningsOn(m.SharedHost()) }

// Codec returns the cookie codec, so that keys can be rotated at run time.
func (m *Manager) Codec() *Codec { return m.codec }

// Ping reports whether the store answers.
func (m *Manager) Ping(ctx context.Context) error { return m.st.Ping(ctx) }

// sessionID derives the public and stored ID from a token. Only the hash is
// ever stored or shown, so a store dump or a sessions listing yields nothing
// that authenticates. 128 bits of SHA-256 keep IDs short and unguessable.
func sessionID(token []byte) string { return string(appendSessionID(nil, token)) }

// sessionIDLen is the length of a session ID: 16 bytes in unpadded
// base64url.
const sessionIDLen = 22

// appendSessionID appends token's session ID to dst, so that a load
// answered from the cache compares it where the caller keeps it.
func appendSessionID(dst, token []byte) []byte {
	sum := sha256.Sum256(token)
	return base64.RawURLEncoding.AppendEncode(dst, sum[:16])
}

// cookiePayload is what the signed cookie carries: the token, then the
// username, which locates the user's sessions without a second lookup.
func cookiePayload(token []byte, username string) []byte {
	return append(append(make([]byte, 0, tokenLen+len(username)), token...), username...)
}

// parseCookie verifies value and returns the token and username in it.
// The token is appended to buf (nil for a new slice).
func (m *Manager) parseCookie(t *Tenant, value string, buf []byte) (token []byte, username string, err error) {
	p, err := m.codec.decodeAppend(buf, t.CookieName(), time.Duration(t.Session.AbsoluteLifetime), value)
	if err != nil || len(p) <= tokenLen {
		return nil, "", ErrUnauthenticated
	}
	return p[:tokenLen], string(p[tokenLen:]), nil
}

// LoginInput is what a login presents.
type LoginInput struct {
	Username  string
	Password  string
	UserAgent string
	// ClientIP names the caller for the per-address limit and share: its
	// IPv4 address, or the IPv6 network it counts under (the HTTP edge
	// uses a /64 by default). "" skips both.
	ClientIP string
	// Presented holds the values of session cookies that came with the login
	// request; their sessions end once the login succeeds (no fixation, no
	// orphaned sessions).
	Presented []string
}

// Login checks the credentials and starts a new session with a fresh ID.
// Unknown user, wrong password and disabled user all return
// ErrInvalidCredentials after the same amount of hashing work.
//
// Before any hashing, the login waits for its client's share of the
// hashing budget (account and address; see Config.HashMemoryPerClient),
// then takes a place under each of the tenant's LoginLimits in the store,
// atomically and for every replica at once: past a limit it is refused
// with ErrRateLimited (a KindRateLimited *Error), so that however many guesses run in parallel on
// however many replicas, at most the limit's number of passwords are
// checked per window. A check that fails keeps its places as counted
// failures; every other outcome (success, a store failure, no hashing
// slot) gives them back, so that only failed checks count and a burst of
// correct logins locks nobody out.
//
// With the tenant's Accounts.LoginWithEmail, a name that is an address
// (NormalizeEmail) some user holds names that user, and any other name a
// username; such a name counts under the per-account limit as the
// address, whoever holds it. With EmailVerification required, a user
// whose address is not verified gets ErrEmailUnverified after the right
// password, and no session.
func (m *Manager) Login(ctx context.Context, t *Tenant, in LoginInput) (Session, *http.Cookie, error) {
	// With LoginWithEmail, a name that is an address counts under the
	// address's normal form; else under the username's. The key never
	// depends on which user, if any, the name resolves to.
	email := ""
	if t.Accounts != nil && t.Accounts.LoginWithEmail && len(in.Password) <= MaxPasswordLen {
		if n, msg := NormalizeEmail(in.Username); msg == "" {
			email = n
		}
	}
	in.Username = normalUsername(in.Username) // "ａｌｉｃｅ" is alice, for the limits too
	validName := validUsername(in.Username) == "" && len(in.Password) <= MaxPasswordLen
	// Keys do not depend on whether the user exists, so neither does the
	// answer.
	accountKey := "a:" + in.Username
	if email != "" {
		accountKey = "e:" + email
		validName = true
	}
	if !validName {
		accountKey = ""
	}
	limits, shareKeys := checkKeys(t, accountKey, in.ClientIP)

	// The user's hash decides what its check costs, which the shares weigh.
	lookup := func(ctx context.Context) (userLookup, error) {
		if email != "" {
			if look, err := m.lookupEmail(ctx, t, email); err != nil || look.found {
				return look, err
			}
		}
		return m.lookupUser(ctx, t, in.Username)
	}
	var look userLookup
	if validName {
		var err error
		if look, err = lookup(ctx); err != nil {
			return Session{}, nil, err
		}
	}
	h, _, _ := m.hashToCheck(look.u.PasswordHash, look.found)
	g, err := m.guardCheck(ctx, t, limits, shareKeys, h.p.memKiB())
	if err != nil {
		return Session{}, nil, err
	}
	s, c, err := m.loginChecked(ctx, t, in, lookup, &look, g.waitUntil)
	failed := errors.Is(err, ErrInvalidCredentials) && !errors.Is(err, errNotChecked)
	m.settle(ctx, t, g, failed)
	if failed {
		return Session{}, nil, ErrInvalidCredentials
	}
	if err != nil {
		if errors.Is(err, errNotChecked) {
			return Session{}, nil, ErrInvalidCredentials
		}
		return Session{}, nil, err
	}
	if accountKey != "" {
		if err := m.st.ResetCount(ctx, string(t.ID), accountKey); err != nil {
			m.log.WarnContext(ctx, "could not reset the account's failed-login count", "tenant", t.ID, "err", err)
		}
	}
	return s, c, nil
}

// errNotChecked marks an ErrInvalidCredentials that no failed check
// caused (the user kept changing under the login), which must not count.
var errNotChecked = errors.New("session: login not checked")

// loginChecked checks the password and creates the session. A concurrent
// change to the user (another login upgrading its hash, an admin edit)
// makes CreateSession refuse the session; it then checks the password once
// more against the user as it now is. look is the user as read before.
func (m *Manager) loginChecked(ctx context.Context, t *Tenant, in LoginInput, lookup func(context.Context) (userLookup, error), look *userLookup, waitUntil time.Time) (Session, *http.Cookie, error) {
	for attempt := 0; ; attempt++ {
		s, c, err := m.login(ctx, t, in, look, waitUntil)
		switch {
		case errors.Is(err, store.ErrConflict) && attempt < maxLoginAttempts-1:
			next, err := lookup(ctx)
			if err != nil {
				return Session{}, nil, err
			}
			look = &next
			continue
		case errors.Is(err, store.ErrConflict):
			// The user keeps changing, or was disabled or deleted while we
			// were hashing: refuse, without counting a failure.
			return Session{}, nil, fmt.Errorf("%w: %w", ErrInvalidCredentials, errNotChecked)
		}
		return s, c, err
	}
}

// maxLoginAttempts bounds how often a login re-checks a user that changed
// under it: logins racing a hash upgrade settle within two.
const maxLoginAttempts = 3

// userLookup is a user as a login read it, found or not.
type userLookup struct {
	su    store.User
	u     User
	found bool
}

func (m *Manager) lookupUser(ctx context.Context, t *Tenant, username string) (userLookup, error) {
	return found(m.st.GetUser(ctx, string(t.ID), username))
}

// lookupEmail finds the user holding email (a normalized address).
func (m *Manager) lookupEmail(ctx context.Context, t *Tenant, email string) (userLookup, error) {
	return found(m.st.GetUserByEmail(ctx, string(t.ID), email))
}

// found is the lookup of a store's answer: a missing user is not found,
// not an error.
func found(su store.User, err error) (userLookup, error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return userLookup{}, nil
	case err != nil:
		return userLookup{}, err
	}
	u, err := decodeUser(su)
	if err != nil {
		return userLookup{}, err
	}
	return userLookup{su: su, u: u, found: true}, nil
}

// login checks the password against the user as look read it and creates
// the session once. It returns ErrInvalidCredentials for a failed check
// and store.ErrConflict when the user changed between the read and the
// session's creation.
func (m *Manager) login(ctx context.Context, t *Tenant, in LoginInput, look *userLookup, waitUntil time.Time) (Session, *http.Cookie, error) {
	su, u := look.su, look.u
	ok, err := m.verify(ctx, t.ID, waitUntil, u.PasswordHash, look.found, in.Password)
	if err != nil {
		return Session{}, nil, err // never checked: not a failure to count
	}
	if !look.found || !ok || u.Disabled {
		return Session{}, nil, ErrInvalidCredentials
	}
	if t.mustVerify(u) {
		return Session{}, nil, ErrEmailUnverified
	}
	if su, err = m.upgradeHash(ctx, t, su, u, in.Password); err != nil {
		m.log.WarnContext(ctx, "could not upgrade a password hash", "tenant", t.ID, "err", err)
	}
	return m.start(ctx, t, su, u, StartInput{UserAgent: in.UserAgent, ClientIP: in.ClientIP, Presented: in.Presented})
}

// mustVerify reports whether u may not sign in until its address is
// verified: the tenant requires verification and u has an unverified
// address. Users without one (made by an operator) are not held back.
func (t *Tenant) mustVerify(u User) bool {
	return t.Accounts != nil && t.Accounts.EmailVerification == VerificationRequired && u.Email != "" && !u.EmailVerified
}

// start starts a session for u, whose stored record is su, in the browser
// in describes: the session is created only if su is still the stored
// record (store.ErrConflict otherwise), the sessions of the presented
// cookies end, and so do the user's oldest sessions past the limit. Login
// and every flow that signs a browser in go through it.
func (m *Manager) start(ctx context.Context, t *Tenant, su store.User, u User, in StartInput) (Session, *http.Cookie, error) {
	now := m.now().UTC().Truncate(time.Second)
	s := Session{
		Tenant:        t.ID,
		Username:      u.Username,
		CreatedAt:     now,
		LastSeenAt:    now,
		IdleExpiresAt: now.Add(time.Duration(t.Session.IdleTimeout)),
		ExpiresAt:     now.Add(time.Duration(t.Session.AbsoluteLifetime)),
		UserAgent:     summarizeUserAgent(in.UserAgent),
	}
	if s.IdleExpiresAt.After(s.ExpiresAt) {
		s.IdleExpiresAt = s.ExpiresAt
	}
	token := make([]byte, tokenLen)
	rand.Read(token) // never fails (crypto/rand)
	s.ID = sessionID(token)
	value, err := m.codec.encode(t.CookieName(), cookiePayload(token, u.Username))
	if err != nil {
		return Session{}, nil, fmt.Errorf("session: encode cookie: %w", err)
	}
	data, err := encodeRecord(&s)
	if err != nil {
		return Session{}, nil, err
	}
	err = m.st.CreateSession(ctx, store.Session{
		Tenant: string(t.ID), User: u.Username, ID: s.ID, Data: data, Expires: s.expires(),
	}, su)
	if err != nil {
		return Session{}, nil, err
	}
	m.endPresented(ctx, t, in.Presented, s.ID)
	m.enforceLimit(ctx, t, u.Username)
	return s, m.cookie(t, value, int(s.ExpiresAt.Sub(now)/time.Second)), nil
}

// upgradeHash re-hashes a password stored with other argon2id parameters
// than the current ones, once its owner has proved it. Until then an
// imported hash costs a different time than the dummy hash unknown users
// are checked against, which would tell which usernames exist. It returns
// the stored user as it now is, for the session's ownership check.
func (m *Manager) upgradeHash(ctx context.Context, t *Tenant, su store.User, u User, password string) (store.User, error) {
	h, err := parsePHC(u.PasswordHash)
	if err != nil || (h.p.Memory == m.params.Memory && h.p.Time == m.params.Time && h.p.Threads == m.params.Threads) {
		return su, nil
	}
	if u.PasswordHash, err = m.hash(ctx, password); err != nil {
		return su, err
	}
	u.UpdatedAt = m.now().UTC().Truncate(time.Second)
	nu := encodeUser(t.ID, u)
	// Only if nobody changed the user meanwhile: concurrent logins of the
	// same user each re-hash, and one write is enough.
	if err := m.st.SwapUser(ctx, su, nu); errors.Is(err, store.ErrConflict) {
		return su, nil
	} else if err != nil {
		return su, err
	}
	return nu, nil
}

// endPresented ends the sessions of cookies presented with a login. Failures
// are logged, not returned: the new session is already valid.
func (m *Manager) endPresented(ctx context.Context, t *Tenant, values []string, keep string) {
	for _, v := range values {
		token, user, err := m.parseCookie(t, v, nil)
		if err != nil {
			continue
		}
		if id := sessionID(token); id != keep {
			if err := m.st.DeleteSession(ctx, string(t.ID), user, id); err != nil {
				m.log.WarnContext(ctx, "could not end the session presented at login", "tenant", t.ID, "err", err)
			}
		}
	}
}

// enforceLimit ends the oldest sessions of a user beyond the limit.
func (m *Manager) enforceLimit(ctx context.Context, t *Tenant, username string) {
	ss, err := m.Sessions(ctx, t, username)
	if err != nil || len(ss) <= m.maxSessions {
		return
	}
	for _, s := range ss[m.maxSessions:] { // newest first
		if err := m.st.DeleteSession(ctx, string(t.ID), username, s.ID); err != nil {
			m.log.WarnContext(ctx, "could not end a session over the per-user limit", "tenant", t.ID, "err", err)
			return
		}
	}
}

func (m *Manager) cookie(t *Tenant, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{
		Name:        t.CookieName(),
		Value:       value,
		Path:        "/",
		MaxAge:      maxAge,
		Secure:      t.SecureCookie(),
		HttpOnly:    true,
		Partitioned: t.Cookie.Partitioned,
	}
	switch t.Cookie.SameSite {
	case SameSiteStrict:
		c.SameSite = http.SameSiteStrictMode
	case SameSiteLax:
		c.SameSite = http.SameSiteLaxMode
	default:
		c.SameSite = http.SameSiteNoneMode
	}
	return c
}

// ClearCookies returns the cookies that delete t's session cookie: first
// one with the attributes it is set with, Partitioned included (a browser
// keys partitioned cookies apart and keeps one that an unpartitioned
// deletion does not name), then the other variant, so that a cookie left
// from before the tenant changed its partitioned setting goes too; two
// cookies of one name would otherwise lock the user out (see Load). MaxAge
// -1 is sent as Max-Age=0.
func (m *Manager) ClearCookies(t *Tenant) []*http.Cookie {
	c := m.cookie(t, "", -1)
	if !t.SecureCookie() {
		// A cookie without Secure is never partitioned (OverPlainLoopback).
		return []*http.Cookie{c}
	}
	other := *c
	other.Partitioned = !c.Partitioned
	if other.Partitioned {
		// A partitioned cookie lives in a cross-site context.
		other.SameSite = http.SameSiteNoneMode
	}
	return []*http.Cookie{c, &other}
}

// refreshAfter is how stale LastSeenAt may get before a request writes it
// back. Writing on every request would put a store write on the hot path;
// a tenth of the idle timeout, at most five minutes, keeps the idle expiry
// accurate to within that.
func refreshAfter(idle time.Duration) time.Duration { return min(idle/10, maxRefreshAfter) }

// maxRefreshAfter bounds refreshAfter whatever the idle timeout, so that a
// cached session last seen longer ago can no longer be served from memory.
const maxRefreshAfter = 5 * time.Minute

// Load returns the session named by the request's session cookies (every
// value of the tenant's cookie name). Anything but exactly one valid cookie
// naming a live session is ErrUnauthenticated. It slides the idle expiry,
// writing to the store only when refreshAfter has passed.
func (m *Manager) Load(ctx context.Context, t *Tenant, values []string) (Session, error) {
	if len(values) != 1 {
		// Two cookies of one name mean a shadowing attempt or a stale
		// partitioned copy; trusting the first is what fixation relies on.
		return Session{}, ErrUnauthenticated
	}
	// The payload and the ID stay in these arrays (on the stack) unless
	// the cache misses: most loads allocate nothing for them.
	var payload [tokenLen + MaxUsernameLen]byte
	var idBuf [sessionIDLen]byte
	token, user, err := m.parseCookie(t, values[0], payload[:0])
	if err != nil {
		return Session{}, err
	}
	idBytes := appendSessionID(idBuf[:0], token)
	now := m.now().UTC().Truncate(time.Second)
	c := m.cache.Load()
	var gen uint64
	if c != nil {
		var s Session
		if c.get(t.ID, user, idBytes, now, refreshAfter(time.Duration(t.Session.IdleTimeout)), &s) {
			return s, nil
		}
		gen = c.gen.Load()
	}
	return m.loadStored(ctx, t, user, string(idBytes), now, c, gen)
}

// loadStored is Load past the cache: the store's record, its idle expiry
// slid and written back once refreshAfter has passed, and the cache filled
// with it (c, when not nil, having had generation gen before the read).
// It is apart from Load so that a load the cache answers runs in a small
// stack frame: `me` is deep enough that a few hundred bytes more made its
// goroutines grow their stacks again after every collection.
func (m *Manager) loadStored(ctx context.Context, t *Tenant, user, id string, now time.Time, c *cache, gen uint64) (Session, error) {
	idle := time.Duration(t.Session.IdleTimeout)
	s, err := m.get(ctx, t, user, id)
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrUnauthenticated
	}
	if err != nil {
		return Session{}, err
	}
	if now.Sub(s.LastSeenAt) < refreshAfter(idle) {
		if c != nil {
			c.put(s, gen, now)
		}
		return s, nil
	}
	s.LastSeenAt = now
	s.IdleExpiresAt = now.Add(idle)
	if s.IdleExpiresAt.After(s.ExpiresAt) {
		s.IdleExpiresAt = s.ExpiresAt
	}
	data, err := encodeRecord(&s)
	if err == nil {
		err = m.st.UpdateSession(ctx, store.Session{
			Tenant: string(t.ID), User: s.Username, ID: s.ID, Data: data, Expires: s.expires(),
		})
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Session{}, ErrUnauthenticated // revoked meanwhile
	case err != nil:
		// The session was valid when read; failing to slide its expiry is
		// not a reason to refuse this request.
		m.log.WarnContext(ctx, "could not refresh session idle expiry", "tenant", t.ID, "err", err)
	case c != nil:
		c.put(s, gen, now)
	}
	return s, nil
}

// get reads and decodes one session, checking its expiry with our clock.
func (m *Manager) get(ctx context.Context, t *Tenant, user, id string) (Session, error) {
	rec, err := m.st.GetSession(ctx, string(t.ID), user, id)
	if errors.Is(err, store.ErrNotFound) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, err
	}
	s, err := m.decodeSession(rec)
	if err != nil {
		return Session{}, ErrNotFound
	}
	if !m.now().Before(s.expires()) {
		return Session{}, ErrNotFound
	}
	return s, nil
}

func (m *Manager) decodeSession(rec store.Session) (Session, error) {
	s := Session{ID: rec.ID, Tenant: TenantID(rec.Tenant), Username: rec.User}
	if err := decodeRecord(rec.Data, rec.Expires, &s); err != nil {
		m.log.Error("unreadable session record", "tenant", rec.Tenant, "err", err)
		return Session{}, err
	}
	return s, nil
}

// Logout ends the session of the presented cookies, if any. It is
// idempotent: no cookie or an invalid one is not an error.
func (m *Manager) Logout(ctx context.Context, t *Tenant, values []string) error {
	for _, v := range values {
		token, user, err := m.parseCookie(t, v, nil)
		if err != nil {
			continue
		}
		if err := m.st.DeleteSession(ctx, string(t.ID), user, sessionID(token)); err != nil {
			return err
		}
		m.forget(t.ID, user)
	}
	return nil
}

// Sessions returns the user's live sessions, newest first.
func (m *Manager) Sessions(ctx context.Context, t *Tenant, username string) ([]Session, error) {
	recs, err := m.st.ListSessions(ctx, string(t.ID), username)
	if err != nil {
		return nil, err
	}
	now := m.now()
	out := make([]Session, 0, len(recs))
	for _, rec := range recs {
		s, err := m.decodeSession(rec)
		if err != nil || !now.Before(s.expires()) {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Revoke ends one of the user's sessions. It returns ErrNotFound if the user
// has no live session with that ID, so a user cannot probe other users' IDs.
func (m *Manager) Revoke(ctx context.Context, t *Tenant, username, id string) error {
	if _, err := m.get(ctx, t, username, id); err != nil {
		return err
	}
	defer m.forget(t.ID, username)
	return m.st.DeleteSession(ctx, string(t.ID), username, id)
}

// RevokeAll ends every session of the user ("log out everywhere").
func (m *Manager) RevokeAll(ctx context.Context, t *Tenant, username string) error {
	defer m.forget(t.ID, username)
	return m.st.DeleteSessions(ctx, string(t.ID), username)
}
