// Package proctest runs Latchkey and Redis as real processes for tests:
// the e2e suite, the fault-injection suite and any test that needs a
// binary rather than an in-process server. It is an ordinary package so
// that several test packages can share it, but only tests and the test
// helper packages (internal/redistest, internal/topology) import it;
// product code never does.
//
// What it offers:
//
//   - ModuleRoot, GoBuild and BuildLatchkey: the module's directory (go
//     env GOMOD), a go build there, and a latchkey binary built from
//     ./cmd/latchkey once per test binary; PrebuildLatchkey starts that
//     build early, to overlap other set-up.
//   - FreePort and FreeAddr: loopback ports that were free a moment ago.
//   - SyncBuffer: a buffer that a child process and the test may use at
//     once.
//   - StartLatchkey: `latchkey serve` configured only through LATCHKEY_*
//     variables, ready (GET /readyz answers 200) when it returns.
//   - StartRedis: a redis-server of the test's own, on its own port and
//     data directory, that the test may stop, kill, freeze and restart.
//   - StatusKiB and ResetPeakRSS: a process's resident memory and its
//     peak, from /proc, for tests that bound what a process may use.
//   - Unavailable: the one rule for what a test needs and lacks.
//
// # Invariants
//
// Every process listens on 127.0.0.1 only, and every one is stopped by its
// PID when the test that started it ends (through testing.TB.Cleanup), so
// a test leaves no process behind. Latchkey must then exit 0 on SIGTERM,
// within 25 s, without having logged a panic; anything else fails the
// test. Ports are picked by listening on port 0 and closing: another
// process may take the port before the child binds it, so both starts
// retry with new ports when the child reports the address in use.
//
// Every wait is bounded: a build by 3 minutes, Latchkey's readiness by
// 20 s, Redis's first PING and each stop by 10 s. Nothing here flushes a
// Redis or touches one it did not start.
//
// A missing redis-server (or, through Unavailable, anything else a test
// needs) fails the test under CI=true, where a skip would hide untested
// code, and skips it elsewhere, so that `go test ./...` still works on a
// machine without Redis.
//
// # The binary cache
//
// BuildLatchkey writes binaries to <user cache dir>/latchkey-proctest,
// named by the SHA-256 of their content. Test binaries that `go test` runs
// in parallel, or one after another, build the same source to the same
// file and so reuse it instead of leaving one copy per run behind; a
// binary built from other source gets another name, so a test never runs
// a binary that another build replaced. Files there unused for a day are
// removed by the next build.
//
// # Security
//
// StartLatchkey generates a fresh random cookie key and admin token per
// process unless the test gives its own, and passes them in the child's
// environment, never on its command line, where other users could read
// them. Inherited LATCHKEY_* variables are dropped, so that a developer's
// shell cannot change what a test runs. Redis runs with protected mode on
// and without a password: it is reachable from this machine only, and
// holds only test data.
package proctest
