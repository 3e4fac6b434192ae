package session

import (
	"fmt"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// Kind classifies a domain error: what went wrong, in the terms a caller
// acts on. The HTTP edge maps each kind to one problem type and status in
// a single place (api/errors.go).
type Kind uint8

// The kinds of domain error. A bad configuration is a *ValidationError
// and a store outage wraps ErrUnavailable; they are not an *Error.
const (
	// KindUnauthenticated: no valid session (no cookie, several cookies of
	// the same name, a bad signature, an oversized or truncated value, a
	// session that expired or was revoked) or no valid admin key.
	KindUnauthenticated Kind = iota + 1
	// KindInvalidCredentials: a failed login. Unknown user, wrong password
	// and disabled user all produce it, so that callers cannot tell them
	// apart.
	KindInvalidCredentials
	// KindNotFound: a tenant, user or session that does not exist.
	KindNotFound
	// KindConflict: a create that collides with what exists (a user that
	// already exists, a hostname claimed by another tenant).
	KindConflict
	// KindForbidden: an action the caller may not take.
	KindForbidden
	// KindRateLimited: a login refused by LoginLimits, the same whether or
	// not the user exists; Error.RetryAfter says when to try again.
	KindRateLimited
	// KindBusy: a login that could not get a password-hashing slot in time:
	// the process refuses work rather than run out of memory.
	KindBusy
	// KindInvalidToken: an email-verification or password-reset token that
	// is unknown, expired, used already or superseded; the kinds are never
	// told apart.
	KindInvalidToken
	// KindWeakPassword: a new password refused by the tenant's password
	// policy (too short, too long, too common, the username or address).
	KindWeakPassword
	// KindEmailUnverified: a login with the right password by a user whose
	// address the tenant requires verified and is not.
	KindEmailUnverified
	// KindNotEnabled: a self-service route the tenant has not turned on.
	KindNotEnabled
)

// String returns the kind's text as Error uses it.
func (k Kind) String() string {
	switch k {
	case KindUnauthenticated:
		return "unauthenticated"
	case KindInvalidCredentials:
		return "invalid credentials"
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindForbidden:
		return "forbidden"
	case KindRateLimited:
		return "too many failed logins"
	case KindBusy:
		return "too many logins in progress"
	case KindInvalidToken:
		return "invalid token"
	case KindWeakPassword:
		return "weak password"
	case KindEmailUnverified:
		return "email not verified"
	case KindNotEnabled:
		return "not enabled"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Error is a domain error: its Kind and what a client may be told about
// this occurrence. Read it with errors.As where the fields matter; test
// for a kind with errors.Is against its sentinel (ErrNotFound and so on),
// which every *Error of that kind matches.
type Error struct {
	Kind Kind
	// Detail says what the error is about ("user \"bob\""), in words safe
	// to show the client that caused it: never a secret, never another
	// tenant's data. Empty means the kind says it all.
	Detail string
	// RetryAfter is, for KindRateLimited, the time until the counting
	// window resets.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := "session: " + e.Kind.String()
	if e.Kind == KindRateLimited {
		msg += fmt.Sprintf("; retry in %s", e.RetryAfter.Round(time.Second))
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && *t == Error{Kind: t.Kind}
}

// errorf returns an *Error of kind k whose Detail is the formatted text.
func errorf(k Kind, format string, a ...any) error {
	return &Error{Kind: k, Detail: fmt.Sprintf(format, a...)}
}

// Sentinels of each kind, for errors.Is and for the occurrences that need
// no detail.
var (
	ErrUnauthenticated    error = &Error{Kind: KindUnauthenticated}
	ErrInvalidCredentials error = &Error{Kind: KindInvalidCredentials}
	ErrNotFound           error = &Error{Kind: KindNotFound}
	ErrConflict           error = &Error{Kind: KindConflict}
	ErrForbidden          error = &Error{Kind: KindForbidden}
	ErrRateLimited        error = &Error{Kind: KindRateLimited}
	ErrBusy               error = &Error{Kind: KindBusy}
	ErrInvalidToken       error = &Error{Kind: KindInvalidToken}
	ErrWeakPassword       error = &Error{Kind: KindWeakPassword}
	ErrEmailUnverified    error = &Error{Kind: KindEmailUnverified}
	ErrNotEnabled         error = &Error{Kind: KindNotEnabled}
)

// ErrUnavailable is store.ErrUnavailable, re-exported so that the HTTP edge
// can map an outage to 503 without importing the store contract. Errors
// from the store pass through wrapped.
var ErrUnavailable = store.ErrUnavailable
