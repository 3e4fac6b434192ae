// Package faults holds Latchkey's fault-injection tests. It has no
// production code: everything is in its _test.go files, and nothing
// imports it.
//
// The tests own their infrastructure. Each starts its own redis-server on a
// free loopback port with a data directory of its own, so that it can stop
// (SIGTERM), crash (SIGKILL), freeze (SIGSTOP) and restart it without
// touching a Redis anyone else uses, and never flushes a shared one. Most
// build the latchkey binary once per run (go build ./cmd/latchkey from the
// module root) and run it as a process configured only through its
// environment, as an operator would; TestConcurrentLoginLogout wires the
// same parts in the test process instead, so that -race watches the
// product code. Every process is stopped by its PID when its test ends,
// and Latchkey must exit 0 on SIGTERM without having logged a panic.
// Without redis-server the tests skip, or fail under CI=true.
//
// What they establish:
//
//   - An outage is a prompt 503, never a logout. With Redis stopped or
//     frozen, every request that needs the store answers 503 unavailable
//     with Retry-After, never a 401: in a median of at most 5 s (the
//     client's dial and read timeouts and retries), and each within the
//     server's 15 s write timeout, so a loaded machine does not make the
//     test flaky. /readyz fails while /healthz holds and the process stays
//     up. When Redis comes back, the same process serves old sessions
//     again and new logins, without a restart.
//     (TestRedisDownAndBack, TestRedisHangs)
//   - A Redis that comes back empty ends sessions cleanly: the old cookie
//     gets 401, or 404 once the tenant is gone, never a 500 or an endless
//     503. Tenants live in Redis too and the tenants file is applied only
//     at start-up, so the tenant vanishes on the next reload until it is
//     re-created; the test records that and recovers through the admin
//     API. (TestRedisRestartWithoutPersistence)
//   - Crashes leave nothing half-written. Redis is SIGKILLed among
//     concurrent logins and restarted from its AOF (appendfsync always),
//     many times over; the tenant, every user and every stored session
//     then read back intact through the store's own methods, and every
//     login answered 200 still authenticates: an acknowledged
//     session is never lost. Logins that a crash cut short must not count
//     as failed logins toward the brute-force limits.
//     (TestNoHalfWrittenSessions)
//   - Concurrent logins, logouts and "log out everywhere" on one account
//     leave a session list that is exactly the set of sessions that still
//     authenticate, with every revoked cookie dead. (TestConcurrentLoginLogout)
//     A burst of logins with the right password is never refused as
//     rate-limited. (TestSimultaneousLoginsOfOneAccount)
//   - A failed login takes the same time and gives the same bytes whether
//     the user is unknown, the password wrong or the user disabled, at the
//     default argon2id cost: medians of interleaved attempts within 25%.
//     (TestLoginTimingIndistinguishable)
//   - Logs keep the promise: a run at debug level that walks every route
//     through success and every error, Redis down included, with planted
//     usernames, passwords, path segments, methods, headers, cookies and
//     tokens leaves none of them, nor a session ID or key, in any log
//     line. (TestLogsHoldNoUserData)
//
// These tests need no Redis from the test command (REDIS_ADDR is not
// used), only the redis-server binary, and take well under a minute and a
// half on two cores. Every network call goes to loopback, every HTTP client
// has a timeout, and every loop is bounded in count and time.
package faults
