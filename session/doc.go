// Package session is Latchkey's domain centre: tenants and their
// configuration, users, password hashing, the signed session cookie, and the
// Manager that logs users in and loads, refreshes and revokes sessions over a
// store.Store.
//
// Security invariants kept here:
//   - Session tokens are 256 random bits. The store and every API see only
//     a 128-bit SHA-256 prefix of the token (the session ID), so neither a
//     store dump nor a sessions listing authenticates anyone.
//   - The cookie is the token and username signed (HMAC-SHA-256, in
//     gorilla/securecookie's format, codec.go) under the cookie's name,
//     __Host-latchkey-<tenant>: the MAC covers the tenant, so one tenant's cookie never verifies for
//     another, and the store key names the tenant as well.
//   - A login receipt (receipt.go) is no credential: random bytes, dated
//     and MAC'd under a name of its own ("latchkey-receipt:<tenant>") that
//     no cookie name can be, so it never verifies as a cookie nor a cookie
//     as it; it names no user and no session, and verifies for five
//     minutes.
//   - Every cookie failure (bad MAC, truncated, oversized, expired, several
//     cookies of one name) is ErrUnauthenticated, never an internal error.
//   - Lifetimes are enforced here, with an injectable clock, not by the
//     browser: idle expiry slides with use, bounded by the absolute lifetime.
//   - Domain errors are an *Error of a Kind whose Detail is safe to show
//     the client that caused it; each kind's sentinel (ErrNotFound and the
//     others) matches every error of that kind with errors.Is.
//   - Unknown user, wrong password and disabled user are one error after
//     the same hashing work.
//   - A tenant's origin list is validated by the same library (jub0bs/cors)
//     and configuration that enforce it, and only exact origins are allowed,
//     since one list drives both CORS and the CSRF check.
//
// The package depends on store for persistence and on nothing in api or cmd.
package session
