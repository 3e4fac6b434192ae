package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors shared by every implementation. Callers check them with
// errors.Is; implementations wrap them with their own context.
var (
	// ErrNotFound reports a record that does not exist or has expired.
	ErrNotFound = errors.New("store: not found")

	// ErrConflict reports that CreateSession found the owning user missing or
	// changed since the caller read it (disabled, password changed, deleted).
	ErrConflict = errors.New("store: conflict")

	// ErrUnavailable reports that the backend could not be reached or did not
	// answer in time. It is transient: the HTTP edge answers 503, never 401,
	// so that an outage does not log anybody out.
	ErrUnavailable = errors.New("store: unavailable")
)

// Session is one stored session. The store treats Data as opaque bytes; the
// session package owns its encoding.
type Session struct {
	Tenant string // tenant ID; part of every key
	User   string // user name within the tenant
	ID     string // lookup key: a hash of the secret token, never the token
	Data   []byte
	// Expires is when the store forgets the session: the earlier of its idle
	// and absolute expiry. A session whose Expires is not after the store's
	// current time is treated as missing by every method.
	Expires time.Time
}

// User is one stored user account, opaque to the store but for its name
// and email address.
type User struct {
	Tenant string
	Name   string
	// Email is the user's address in its normalized form, the one it is
	// unique under within the tenant (package session normalizes it; Data
	// keeps the address as the user typed it), or "" for none. At most one
	// user of a tenant holds an address.
	Email string
	Data  []byte
}

// Token is one stored single-use token (an email verification or a
// password reset), opaque to the store but for its keys.
type Token struct {
	Tenant string
	// ID is a hash of the secret the user was sent, never the secret.
	ID string
	// User is the user the token was issued to.
	User string
	// Kind separates tokens of different purposes ("verify", "reset"):
	// a user holds at most one token of each kind.
	Kind string
	Data []byte
	// Expires is when the store forgets the token. A token whose Expires
	// is not after the store's current time is treated as missing.
	Expires time.Time
}

// Store persists tenants, users and sessions.
//
// Every method takes the tenant explicitly and tenants never see each
// other's records. Tenant IDs match ^[a-z0-9-]{1,63}$ (package session
// guarantees it), which lets implementations build keys with ':' as an
// unambiguous separator. Sessions are kept per user, so that listing a
// user's sessions or ending all of them costs in proportion to that user's
// sessions and never scans the keyspace. A user's record and its sessions
// change together: implementations keep them in one atomic unit (one Redis
// Cluster hash slot).
//
// Implementations are safe for concurrent use. Every method honours ctx: a
// cancelled or expired context returns an error wrapping ctx.Err().
// Backend failures wrap ErrUnavailable.
type Store interface {
	// CreateSession stores s for its user if, and only if, the user's stored
	// record still equals owner (same Tenant, Name and Data); otherwise it
	// returns ErrConflict and stores nothing. This closes the race between a
	// login and a concurrent disable, password change or delete.
	CreateSession(ctx context.Context, s Session, owner User) error

	// GetSession returns the session, or ErrNotFound if it is missing or
	// expired.
	GetSession(ctx context.Context, tenant, user, id string) (Session, error)

	// UpdateSession replaces an existing, unexpired session with s. It returns
	// ErrNotFound, and stores nothing, if the session is missing or expired:
	// a refresh must never resurrect a revoked session.
	UpdateSession(ctx context.Context, s Session) error

	// DeleteSession removes one session. Deleting a missing session is not an
	// error.
	DeleteSession(ctx context.Context, tenant, user, id string) error

	// ListSessions returns the user's unexpired sessions, in no particular
	// order. Implementations may drop expired sessions while listing.
	ListSessions(ctx context.Context, tenant, user string) ([]Session, error)

	// DeleteSessions removes every session of the user. Deleting none is not
	// an error.
	DeleteSessions(ctx context.Context, tenant, user string) error

	// GetUser returns the user, or ErrNotFound.
	GetUser(ctx context.Context, tenant, name string) (User, error)

	// GetUserByEmail returns the tenant's user whose Email is email (a
	// normalized address), or ErrNotFound.
	GetUserByEmail(ctx context.Context, tenant, email string) (User, error)

	// CreateUser stores u if, and only if, the tenant has no user of that
	// name and no user holding u.Email (when set); otherwise it returns
	// ErrConflict and stores nothing. Self-service signup on several
	// replicas at once relies on it: of two signups for one name or one
	// address, exactly one succeeds. Nothing of an earlier user of that
	// name survives (sessions, tokens).
	CreateUser(ctx context.Context, u User) error

	// PutUser creates or replaces the user. With endSessions, it also removes
	// all of the user's sessions in the same atomic step. If u.Email is set
	// and another user of the tenant holds it, PutUser returns ErrConflict
	// and changes nothing; an address the user held before and no longer
	// does is released.
	PutUser(ctx context.Context, u User, endSessions bool) error

	// SwapUser replaces the user's record with u if, and only if, it still
	// equals old (Email and Data compared); otherwise it returns
	// ErrConflict and changes nothing. Sessions are kept. Concurrent logins
	// re-hashing the same password use it so that one of them writes, not
	// each. The address rules are PutUser's.
	SwapUser(ctx context.Context, old, u User) error

	// DeleteUser removes the user, all of its sessions and its tokens, and
	// releases its address, in one atomic step as far as the sessions go.
	// Deleting a missing user is not an error.
	DeleteUser(ctx context.Context, tenant, name string) error

	// PutToken stores t and removes every other token of the same tenant,
	// user and kind, so that only the newest one works.
	PutToken(ctx context.Context, t Token) error

	// TakeToken returns the tenant's token with that ID and removes it, in
	// one atomic step: of concurrent takes on any replicas, exactly one gets
	// the token. It returns ErrNotFound if the token is missing, expired or
	// taken already.
	TakeToken(ctx context.Context, tenant, id string) (Token, error)

	// DeleteTokens removes every token of the user, of every kind (a
	// password change invalidates them). Deleting none is not an error.
	DeleteTokens(ctx context.Context, tenant, user string) error

	// ListUsers returns the tenant's users, in no particular order.
	ListUsers(ctx context.Context, tenant string) ([]User, error)

	// PutTenant creates or replaces a tenant's configuration and notifies
	// every subscriber of Changes, in this process and in every other one
	// sharing the backend.
	PutTenant(ctx context.Context, id string, data []byte) error

	// DeleteTenant removes the tenant's configuration, its users and their
	// sessions, addresses and tokens, and its admin keys, and notifies subscribers. Deleting a
	// missing tenant is not an error.
	DeleteTenant(ctx context.Context, id string) error

	// GetTenant returns one tenant's configuration, or ErrNotFound.
	GetTenant(ctx context.Context, id string) ([]byte, error)

	// TenantsSince returns what changed in the tenants' configuration after
	// revision since, at a cost in proportion to the changes, not to the
	// tenants: see TenantChanges. PutTenant, and DeleteTenant of an
	// existing tenant, each make one revision, atomically with the change.
	// A since of another epoch (the zero TenantRevision included) returns
	// every tenant instead, so a caller starts with the zero value and then
	// passes the Rev of each answer to the next call; the zero value also
	// lists every tenant.
	TenantsSince(ctx context.Context, since TenantRevision) (TenantChanges, error)

	// Changes returns a channel that receives a value whenever tenant
	// configuration may have changed, here or in another process. Values are
	// coalesced, never queued: a receiver asks TenantsSince on each one.
	// Notifications can be lost (a dropped connection), so receivers also
	// ask periodically. The channel is closed when ctx is done.
	Changes(ctx context.Context) <-chan struct{}

	// Reserve takes a place for attempt id in the tenant's counter key,
	// unless the counter's failures and the places already taken add up to
	// limit; a place id holds already is kept, so that a retry after an
	// error is safe. It reports whether id holds a place, and the time left
	// until the counter resets. A counter starts with its first place and
	// lasts window from then (a fixed window), failures and places alike;
	// later places never extend it. Brute-force limits take a place before
	// every password check, so that parallel checks on every replica
	// sharing the backend cannot together exceed the limit.
	Reserve(ctx context.Context, tenant, key, id string, limit int64, window time.Duration) (ok bool, left time.Duration, err error)

	// Settle ends attempt id's place in the counter key: with failed, the
	// place becomes one counted failure; without, it is given back.
	// Settling a place not held (settled already, never taken, or its
	// window over) changes nothing, so that a retry after an error is safe.
	// A counter left with no failures and no places is removed.
	Settle(ctx context.Context, tenant, key, id string, failed bool) error

	// ResetCount forgets the counter's failures; places taken stay, so that
	// checks in flight still count when they fail. Resetting a missing
	// counter is not an error.
	ResetCount(ctx context.Context, tenant, key string) error

	// PutAdminKey creates or replaces a tenant admin key, found later by its
	// ID (a hash of the secret; the secret itself is never stored).
	PutAdminKey(ctx context.Context, k AdminKey) error

	// GetAdminKey returns the admin key with that ID, or ErrNotFound.
	GetAdminKey(ctx context.Context, id string) (AdminKey, error)

	// ListAdminKeys returns the tenant's admin keys, in no particular order.
	ListAdminKeys(ctx context.Context, tenant string) ([]AdminKey, error)

	// DeleteAdminKey removes the tenant's admin key with that ID. A missing
	// key, or one of another tenant, is left alone and is not an error.
	DeleteAdminKey(ctx context.Context, tenant, id string) error

	// AppendAudit records one entry in the tenant's audit log, which keeps
	// the newest MaxAudit entries. The log outlives the tenant, so that its
	// deletion stays on record.
	AppendAudit(ctx context.Context, tenant string, entry []byte) error

	// ListAudit returns up to limit of the tenant's newest audit entries,
	// newest first.
	ListAudit(ctx context.Context, tenant string, limit int) ([][]byte, error)

	// GetApplied returns the tenant's applied record: what a declarative
	// source (the tenants file) last applied to it, opaque to the store; or
	// ErrNotFound. The record outlives DeleteTenant, like the audit log, so
	// that a tenant deleted on purpose can be told apart from one lost with
	// the rest of a store's data.
	GetApplied(ctx context.Context, tenant string) ([]byte, error)

	// SwapApplied replaces the tenant's applied record with data if, and
	// only if, it still equals old (an empty old means there is none);
	// otherwise it returns ErrConflict and changes nothing. An empty data
	// removes the record. Replicas starting at once with the same file use
	// it so that one of them applies a change, not each.
	SwapApplied(ctx context.Context, tenant string, old, data []byte) error

	// WatchInvalidations calls fn, until ctx is done, after any process
	// sharing the backend may have ended sessions: fn(tenant, user) after a
	// session was deleted, all of a user's were, or the user was changed
	// with endSessions or deleted; fn(tenant, "") for a whole tenant; and
	// fn("", "") when the feed may have missed some (after a reconnection),
	// meaning everything. Every method that ends sessions publishes its
	// invalidation atomically with the change.
	//
	// The returned function reports whether every invalidation published
	// more than within ago has already been passed to fn. A per-process
	// cache of sessions serves from memory only while it reports true, so
	// that a revocation anywhere reaches it within that bound, even when
	// the feed's connection silently fails.
	WatchInvalidations(ctx context.Context, fn func(tenant, user string)) (current func(within time.Duration) bool)

	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
}

// TenantRevision names a state of the stored tenants: Epoch a history of
// changes, N how many changes that history has had. A store that loses its
// tenants (a Redis restarted without persistence) starts a new epoch, so
// that no revision of the old one is mistaken for a state of the new one.
type TenantRevision struct {
	Epoch string
	N     int64
}

// TenantChanges is what TenantsSince found. Rev is the revision it brings
// the caller to. With All, Put holds every tenant and the caller replaces
// what it has; otherwise Put holds each tenant put since, with its current
// configuration, and Deleted each one deleted since (and not put again).
// Both are empty when nothing changed.
type TenantChanges struct {
	Rev     TenantRevision
	All     bool
	Put     map[string][]byte
	Deleted []string
}

// AdminKey is a stored tenant admin key, opaque to the store but for its
// lookup ID and tenant. DeleteTenant removes the tenant's keys, so that a
// tenant recreated under the same ID does not inherit them.
type AdminKey struct {
	ID     string
	Tenant string
	Data   []byte
}

// MaxAudit is how many entries a tenant's audit log keeps.
const MaxAudit = 1000
