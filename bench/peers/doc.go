// Command peers is the benchmark's yardstick from outside Latchkey: two
// hand-rolled stacks of the kind a team writes instead of running an auth
// service, each answering the same `me` (the JSON of the session's user,
// cookie-authenticated, credentialed CORS for one exact origin) and the
// same CORS preflight as Latchkey, so that `make bench` can show them as
// rows beside Latchkey in the same run.
//
//   - scs: chi + github.com/rs/cors + github.com/alexedwards/scs/v2 with its
//     Redis store (redigo). The session has Latchkey's default lifetimes,
//     7 days absolute and 12 hours idle; scs implements the idle timeout
//     by writing the session back on every request (a GET, then MULTI,
//     SET, PEXPIREAT, EXEC, and a Set-Cookie), which is its design, not
//     a choice of this benchmark.
//   - securecookie: chi + github.com/rs/cors + gorilla/securecookie (a
//     signed session ID, securecookie's defaults) + one go-redis GET of the
//     session's JSON, written as the answer. No idle expiry: the Redis key
//     and the cookie carry the absolute lifetime only.
//
// It lives in a module of its own so that Latchkey's go.mod gains none of
// these dependencies. Usage:
//
//	peers serve -stack scs|securecookie -addr 127.0.0.1:PORT -redis HOST:PORT -origin ORIGIN -tenant ID
//	peers seed  -stack scs|securecookie -redis HOST:PORT -sessions N
//
// seed writes N sessions of users u000000… into Redis and prints their
// cookie values, one a line. The securecookie stack's hash key comes from
// PEERS_COOKIE_KEY (base64, at least 32 bytes), the same for both
// commands. serve exits 0 on SIGTERM or SIGINT.
//
// Fairness: both serve with the bare handler's http.Server settings
// (ReadHeaderTimeout 10 s, IdleTimeout 2 min, keep-alive), keep enough
// idle Redis connections for the benchmark's connections (64), so that no
// request waits for a dial, and allow exactly the configured origin with
// credentials, as Latchkey does.
package main
