package session

import (
	"errors"
	"fmt"
	"time"

	"github.com/latchkeyhq/latchkey/store"
)

// Sentinel errors of the domain. The HTTP edge maps each to one status in a
// single place (api/errors.go); errors from the store, such as
// store.ErrUnavailable, pass through wrapped.
var (
	// ErrUnauthenticated reports a request without a valid session: no
	// cookie, several cookies of the same name, a bad signature, an oversized
	// or truncated value, or a session that expired or was revoked.
	ErrUnauthenticated = errors.New("session: unauthenticated")

	// ErrInvalidCredentials reports a failed login. Unknown user, wrong
	// password and disabled user all produce it, so that callers cannot tell
	// them apart.
	ErrInvalidCredentials = errors.New("session: invalid credentials")

	// ErrNotFound reports a tenant, user or session that does not exist.
	ErrNotFound = errors.New("session: not found")

	// ErrConflict reports a create that collides with what exists (a user
	// that already exists, a hostname claimed by another tenant).
	ErrConflict = errors.New("session: conflict")

	// ErrBusy reports a login that could not get a password-hashing slot in
	// time: the process refuses work rather than run out of memory.
	ErrBusy = errors.New("session: too many logins in progress")

	// ErrForbidden reports an action the caller may not take.
	ErrForbidden = errors.New("session: forbidden")
)

// RateLimitError reports a login refused by LoginLimits. It says the same
// whether or not the user exists.
type RateLimitError struct {
	RetryAfter time.Duration // until the counting window resets
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("session: too many failed logins; retry in %s", e.RetryAfter.Round(time.Second))
}

// ErrUnavailable is store.ErrUnavailable, re-exported so that the HTTP edge
// can map an outage to 503 without importing the store contract.
var ErrUnavailable = store.ErrUnavailable
