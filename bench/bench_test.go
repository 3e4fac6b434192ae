//go:build bench

// Package bench is Latchkey's performance benchmark: `make bench`, never
// part of `go test ./...` (the bench build tag keeps it out).
//
// TestBench builds Latchkey, a bare handler (bench/bare) and two peer
// stacks (bench/peers, a module of its own: chi + rs/cors + scs, and chi +
// rs/cors + securecookie + go-redis), starts its own Redis servers and
// every process on loopback (internal/proctest), seeds tenants, users and
// sessions through an in-process session.Manager with the same cookie keys
// (and the peers' sessions through `peers seed`, in the same Redis),
// drives the saturating cases with wrk (wrk_test.go) and the paced, login,
// logout and cache-miss cases with the Go load generator of load_test.go,
// alternates the cases round by round so that drift on this shared machine
// hits every case alike, and prints one report: requests/s, the ratio to
// the bare handler in the same round, p50/p99, CPU µs per request of the
// server, of Redis and of the load generator, the targets met or missed,
// Redis bytes per session, logins/s and peak RSS, 10k against 1M
// sessions, and how fast a revocation on one replica reaches another. It
// stops every process it started by PID.
//
// Settings (flag after -args, or environment): -conns/BENCH_CONNS (32),
// -wrk-threads/BENCH_WRK_THREADS (1), -duration/BENCH_DURATION (3s, whole
// seconds), -rounds/BENCH_ROUNDS (5), -warmup/BENCH_WARMUP (500ms),
// -sessions/BENCH_SESSIONS (10000), -scale-sessions/BENCH_SCALE_SESSIONS
// (1000000; 0 skips the scale check), -seed-budget/BENCH_SEED_BUDGET (5m).
// See bench/README.md.
package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store/memstore"
)

const (
	tenantID      session.TenantID = "bench"
	allowedOrigin                  = "https://app.bench.test"
	evilOrigin                     = "https://evil.bench.test"
	loginPassword                  = "bench-login-password"
)

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			panic(fmt.Sprintf("%s=%q: %v", name, v, err))
		}
		return n
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v := os.Getenv(name); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			panic(fmt.Sprintf("%s=%q: %v", name, v, err))
		}
		return f
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			panic(fmt.Sprintf("%s=%q: %v", name, v, err))
		}
		return d
	}
	return def
}

var (
	flagConns       = flag.Int("conns", envInt("BENCH_CONNS", 32), "keep-alive connections of the load generators (wrk's -c)")
	flagDuration    = flag.Duration("duration", envDuration("BENCH_DURATION", 3*time.Second), "measurement per case and round, whole seconds (wrk's unit)")
	flagWarmup      = flag.Duration("warmup", envDuration("BENCH_WARMUP", 500*time.Millisecond), "warm-up before each measurement")
	flagRounds      = flag.Int("rounds", envInt("BENCH_ROUNDS", 5), "rounds; each runs every case once")
	flagSessions    = flag.Int("sessions", envInt("BENCH_SESSIONS", 10_000), "sessions of the main dataset")
	flagScale       = flag.Int("scale-sessions", envInt("BENCH_SCALE_SESSIONS", 1_000_000), "sessions of the scale dataset; 0 skips it")
	flagPerUser     = flag.Int("per-user", envInt("BENCH_PER_USER", 5), "sessions per seeded user")
	flagSeedWorkers = flag.Int("seed-workers", envInt("BENCH_SEED_WORKERS", 16), "goroutines seeding sessions")
	flagSeedBudget  = flag.Duration("seed-budget", envDuration("BENCH_SEED_BUDGET", 5*time.Minute), "time allowed to seed the scale dataset")
	flagMeCookies   = flag.Int("me-cookies", envInt("BENCH_ME_COOKIES", 1000), "distinct sessions the me cases cycle through")
	flagLogoutPool  = flag.Int("logout-pool", envInt("BENCH_LOGOUT_POOL", 10_000), "fresh sessions seeded before each logout run")
	flagRevocations = flag.Int("revocations", envInt("BENCH_REVOCATIONS", 200), "sessions revoked on A and polled on B")
	flagLoginUsers  = flag.Int("login-users", envInt("BENCH_LOGIN_USERS", 32), "users with default-cost hashes for the login case")
	flagWrkThreads  = flag.Int("wrk-threads", envInt("BENCH_WRK_THREADS", 1), "wrk's threads (-t) for the saturating cases")
	flagPacedLoad   = flag.Float64("paced-load", envFloat("BENCH_PACED_LOAD", 0.25), "offered load of the paced latency cases, as a fraction of the bare handler's calibrated requests/s under wrk; 0 skips them")
)

// cookieKeys is the fixed LATCHKEY_COOKIE_KEYS of every process: the
// in-process Manager signs with the same key, so its cookies are valid for
// the processes.
var cookieKey = sha256.Sum256([]byte("latchkey bench cookie key, not a secret"))

func loginUser(i int) string { return fmt.Sprintf("login-%02d", i) }

// writeTenantsFile writes the bench tenant (path form only, cross-site
// cookie) with the login users, whose hashes use the default argon2id
// parameters.
func writeTenantsFile(tb testing.TB, loginUsers int) string {
	tb.Helper()
	hash, err := session.HashPassword(loginPassword, session.DefaultPasswordParams)
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "tenants:\n  - id: %s\n    name: Bench\n    origins: [%s]\n", tenantID, allowedOrigin)
	b.WriteString("    cookie: {same_site: none, partitioned: true}\n    users:\n")
	for i := range loginUsers {
		fmt.Fprintf(&b, "      - username: %s\n        password_hash: %q\n", loginUser(i), hash)
	}
	path := filepath.Join(tb.TempDir(), "tenants.yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// sessionsLabel writes a session count the short way: 10k, 1M, 640k.
func sessionsLabel(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000_000:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	case n >= 1000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return strconv.Itoa(n)
}

func TestBench(t *testing.T) {
	conns, rounds, perUser, workers := *flagConns, *flagRounds, *flagPerUser, *flagSeedWorkers
	if conns < 1 || rounds < 1 || perUser < 1 || workers < 1 || *flagSessions < perUser || *flagDuration <= 0 || *flagWrkThreads < 1 || *flagWrkThreads > conns {
		t.Fatalf("bad settings: conns %d, rounds %d, per-user %d, seed-workers %d, sessions %d, duration %v, wrk threads %d",
			conns, rounds, perUser, workers, *flagSessions, *flagDuration, *flagWrkThreads)
	}
	if *flagDuration%time.Second != 0 {
		t.Fatalf("BENCH_DURATION=%v: wrk measures whole seconds; use 1s, 2s, 3s…", *flagDuration)
	}
	wrkBin, wrkVersion, err := findWrk()
	if err != nil {
		t.Fatal(err)
	}
	wrk := wrkConfig{Bin: wrkBin, Version: wrkVersion, Threads: *flagWrkThreads, Conns: conns}
	began := time.Now()
	logf := func(format string, args ...any) {
		t.Logf("[%6.1fs] %s", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	root := proctest.ModuleRoot(t)
	mach := machine(root)
	mach = append(mach, "wrk: "+wrkVersion)
	proctest.PrebuildLatchkey()
	bareBin := buildBare(t)
	peersBin := buildPeers(t)
	scriptDir := t.TempDir()
	tenantsFile := writeTenantsFile(t, *flagLoginUsers)
	keyB64 := base64.StdEncoding.EncodeToString(cookieKey[:])
	keys := [][]byte{cookieKey[:]}
	// startLK starts a Latchkey as shipped, but for the settings that
	// name its Redis, tenants and keys; level "" leaves LATCHKEY_LOG_LEVEL
	// unset (its default, info: one JSON line per request).
	startLK := func(rd *proctest.Redis, level string) *proctest.Latchkey {
		return proctest.StartLatchkey(t, proctest.LatchkeyConfig{
			RedisURL: rd.URL(), TenantsFile: tenantsFile, CookieKeys: keyB64,
			// LATCHKEY_HASH_MEMORY_MIB is left at its default (128).
			Env: map[string]string{"LATCHKEY_LOG_LEVEL": level},
			// The request log is read, as a log shipper would, and only
			// its tail kept for failure messages.
			OutputLimit: 1 << 20,
		})
	}

	// Processes. Cleanups run in reverse: Latchkey stops before its Redis.
	r1 := proctest.StartRedis(t, proctest.RedisConfig{})
	var r2 *proctest.Redis
	if *flagScale > 0 {
		r2 = proctest.StartRedis(t, proctest.RedisConfig{})
	}
	a1 := startLK(r1, "")     // as shipped: the default log level (info)
	b1 := startLK(r1, "warn") // the same at warn: no per-request log line
	var a2, c2 *proctest.Latchkey
	if r2 != nil {
		a2 = startLK(r2, "") // the same cases as A, for the scale check
		c2 = startLK(r2, "") // the cache-miss case, kept off A'
	}
	bare := startBare(t, bareBin)
	logf("started: redis %d (main), latchkey A %d (info, as shipped), B %d (warn); bare %d", r1.PID(), a1.PID(), b1.PID(), bare.PID())
	if r2 != nil {
		logf("started: redis %d (scale), latchkey A' %d, C %d", r2.PID(), a2.PID(), c2.PID())
	}

	// Seeding.
	mainDS := newDataset(t, sessionsLabel(*flagSessions), r1, keys)
	mainDS.seed(t, *flagSessions/perUser, perUser, *flagMeCookies, workers, false, time.Now().Add(*flagSeedBudget), logf)
	var scale *dataset
	if r2 != nil {
		scale = newDataset(t, sessionsLabel(*flagScale), r2, keys)
		scale.seed(t, *flagScale/perUser, perUser, *flagMeCookies, workers, true, time.Now().Add(*flagSeedBudget), logf)
		if scale.BudgetHit {
			scale.Name = sessionsLabel(scale.Sessions)
		}
	}
	for _, d := range []*dataset{mainDS, scale} {
		if d != nil {
			d.createPoolUsers(t, *flagLogoutPool, perUser, workers)
		}
	}
	badCookie := wrongKeyCookie(t, mainDS.Tenant)
	// The peer stacks, with as many sessions as the me cases cycle
	// through, in the main Redis beside Latchkey's.
	peerSCS := startPeer(t, peersBin, "scs", r1, len(mainDS.MeCookies))
	peerSC := startPeer(t, peersBin, "securecookie", r1, len(mainDS.MeCookies))
	logf("started: peers scs %d, securecookie %d, %d sessions each", peerSCS.PID(), peerSC.PID(), len(mainDS.MeCookies))

	// Cases.
	cookieName := mainDS.Tenant.CookieName()
	get := func(url, origin, name, cookie string) *http.Request {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if cookie != "" {
			req.Header.Set("Cookie", name+"="+cookie)
		}
		return req
	}
	post := func(url, cookie string, body []byte) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Origin", allowedOrigin)
		req.Header.Set("Content-Type", "application/json")
		if cookie != "" {
			req.Header.Set("Cookie", cookieName+"="+cookie)
		}
		return req
	}
	preflight := func(url string) *http.Request {
		req, _ := http.NewRequest(http.MethodOptions, url, nil)
		req.Header.Set("Origin", allowedOrigin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		return req
	}
	cycle := func(cs []string) func(int64) string {
		return func(seq int64) string { return cs[seq%int64(len(cs))] }
	}
	loginBodies := make([][]byte, *flagLoginUsers)
	for i := range loginBodies {
		loginBodies[i] = fmt.Appendf(nil, `{"username":%q,"password":%q}`, loginUser(i), loginPassword)
	}
	pathBase := func(lk *proctest.Latchkey) string { return "http://" + lk.Public + "/v1/t/" + string(tenantID) }
	redisPID := func(rd *proctest.Redis) func() int { return func() int { return rd.PID() } }
	pidOf := func(lk *proctest.Latchkey) func() int { return lk.PID }
	ctx := t.Context()
	var cases []*benchCase
	add := func(c *benchCase) *benchCase { cases = append(cases, c); return c }
	// wrkCase fills in what wrk needs: the server's URL, the requests'
	// cycle and the expected status, and the Go warm-up's check.
	wrkCase := func(c *benchCase, addr string, cycle, status int, acao string) *benchCase {
		c.Wrk, c.URL, c.Cycle, c.Status, c.Check = true, "http://"+addr, cycle, status, expect(status, acao)
		return c
	}

	add(wrkCase(&benchCase{
		Name: "bare: GET /me", Server: "bare", Dataset: "—", PID: bare.PID,
		Request: func(int64) *http.Request { return get("http://"+bare.Addr+"/me", "", "", "") },
	}, bare.Addr, 1, http.StatusOK, ""))
	meRequest := func(lk *proctest.Latchkey, cs []string) func(int64) *http.Request {
		next := cycle(cs)
		return func(seq int64) *http.Request { return get(pathBase(lk)+"/me", allowedOrigin, cookieName, next(seq)) }
	}
	meCase := func(name string, lk *proctest.Latchkey, server string, d *dataset) *benchCase {
		return wrkCase(&benchCase{
			Name: name, Server: server, Dataset: d.Name, PID: pidOf(lk), RedisPID: redisPID(d.Redis), Redis: d.Client,
			Request: meRequest(lk, d.MeCookies),
		}, lk.Public, len(d.MeCookies), http.StatusOK, allowedOrigin)
	}
	preflightCase := func(lk *proctest.Latchkey, server string) *benchCase {
		return wrkCase(&benchCase{
			Name: "preflight: OPTIONS login", Server: server, Dataset: mainDS.Name, PID: pidOf(lk), RedisPID: redisPID(r1), Redis: mainDS.Client,
			Request: func(int64) *http.Request { return preflight(pathBase(lk) + "/login") },
		}, lk.Public, 1, http.StatusNoContent, allowedOrigin)
	}
	loginCase := func(name string, lk *proctest.Latchkey, server string, d *dataset) *benchCase {
		return &benchCase{
			Name: name, Server: server, Dataset: d.Name, PID: pidOf(lk), RedisPID: redisPID(d.Redis), Redis: d.Client, TrackRSS: true,
			Request: func(seq int64) *http.Request {
				return post(pathBase(lk)+"/login", "", loginBodies[seq%int64(len(loginBodies))])
			},
			Check: func(res *http.Response) string {
				if l := expect(http.StatusOK, allowedOrigin)(res); l != "" {
					return l
				}
				if len(res.Cookies()) == 0 {
					return "no Set-Cookie"
				}
				return ""
			},
		}
	}
	logoutCase := func(name string, lk *proctest.Latchkey, server string, d *dataset) *benchCase {
		return &benchCase{
			Name: name, Server: server, Dataset: d.Name + " + ≤" + sessionsLabel(*flagLogoutPool) + " pool", PID: pidOf(lk), RedisPID: redisPID(d.Redis), Redis: d.Client,
			WarmupRequests: int64(max(conns*16, *flagLogoutPool/20)),
			Prepare:        func() error { return d.seedPool(ctx, *flagLogoutPool, perUser, workers) },
			Cleanup:        func() error { return d.clearPool(ctx, workers) },
			Request: func(seq int64) *http.Request {
				c := d.poolCookie(seq)
				if c == "" {
					return nil
				}
				return post(pathBase(lk)+"/logout", c, nil)
			},
			Check: expect(http.StatusNoContent, allowedOrigin),
		}
	}
	peerCases := func(p *peer, server string) (me, pre *benchCase) {
		base := "http://" + p.Addr + "/v1/t/" + string(tenantID)
		next := cycle(p.Cookies)
		me = wrkCase(&benchCase{
			Name: "me", Server: server, Dataset: sessionsLabel(len(p.Cookies)) + " of its own", PID: p.PID, RedisPID: redisPID(r1), Redis: mainDS.Client,
			Request: func(seq int64) *http.Request { return get(base+"/me", allowedOrigin, peerCookieName, next(seq)) },
		}, p.Addr, len(p.Cookies), http.StatusOK, allowedOrigin)
		pre = wrkCase(&benchCase{
			Name: "preflight: OPTIONS login", Server: server, Dataset: "—", PID: p.PID, RedisPID: redisPID(r1), Redis: mainDS.Client,
			Request: func(int64) *http.Request { return preflight(base + "/login") },
		}, p.Addr, 1, http.StatusNoContent, allowedOrigin)
		return me, pre
	}

	meMain := add(meCase("me", a1, "A", mainDS))
	meWarn := add(meCase("me", b1, "B", mainDS))
	preMain := add(preflightCase(a1, "A"))
	preWarn := add(preflightCase(b1, "B"))
	nextMain := cycle(mainDS.MeCookies)
	refused := []*benchCase{
		add(wrkCase(&benchCase{
			Name: "refused: bad cookie signature", Server: "A", Dataset: mainDS.Name, PID: pidOf(a1), RedisPID: redisPID(r1), Redis: mainDS.Client,
			Request: func(int64) *http.Request { return get(pathBase(a1)+"/me", allowedOrigin, cookieName, badCookie) },
		}, a1.Public, 1, http.StatusUnauthorized, allowedOrigin)),
		add(wrkCase(&benchCase{
			Name: "refused: disallowed origin, valid cookie", Server: "A", Dataset: mainDS.Name, PID: pidOf(a1), RedisPID: redisPID(r1), Redis: mainDS.Client,
			Request: func(seq int64) *http.Request { return get(pathBase(a1)+"/me", evilOrigin, cookieName, nextMain(seq)) },
		}, a1.Public, len(mainDS.MeCookies), http.StatusForbidden, "")), // refused before the session is read, no CORS headers
		add(wrkCase(&benchCase{
			Name: "refused: unknown tenant", Server: "A", Dataset: mainDS.Name, PID: pidOf(a1), RedisPID: redisPID(r1), Redis: mainDS.Client,
			Request: func(seq int64) *http.Request {
				return get("http://"+a1.Public+"/v1/t/nosuch/me", allowedOrigin, cookieName, nextMain(seq))
			},
		}, a1.Public, len(mainDS.MeCookies), http.StatusNotFound, "")),
	}
	scsMe, scsPre := peerCases(peerSCS, "scs")
	scMe, scPre := peerCases(peerSC, "sc")
	add(scsMe)
	add(scsPre)
	add(scMe)
	add(scPre)
	// Latency at an equal offered load: the bare handler and me paced at
	// the same rate, a fraction of what the bare handler serves flat out
	// (calibrated below, before the rounds). wrk has no open loop: these
	// run on the Go generator.
	var pacedRate float64
	var pacedBare, pacedMe *benchCase
	if *flagPacedLoad > 0 {
		rate := func() float64 { return pacedRate }
		pacedBare = add(&benchCase{
			Name: "bare: GET /me, paced", Server: "bare", Dataset: "—", PID: bare.PID, Rate: rate,
			Request: func(int64) *http.Request { return get("http://"+bare.Addr+"/me", "", "", "") },
			Check:   expect(http.StatusOK, ""),
		})
		pacedMe = &benchCase{
			Name: "me, paced", Server: "A", Dataset: mainDS.Name, PID: pidOf(a1), RedisPID: redisPID(r1), Redis: mainDS.Client, Rate: rate,
			Request: meRequest(a1, mainDS.MeCookies),
			Check:   expect(http.StatusOK, allowedOrigin),
		}
		add(pacedMe)
	}
	loginMain := add(loginCase("login (argon2id default)", a1, "A", mainDS))
	logoutMain := add(logoutCase("logout", a1, "A", mainDS))
	var meScale, loginScale, logoutScale *benchCase
	if scale != nil {
		meScale = add(meCase("me", a2, "A'", scale))
		loginScale = add(loginCase("login (argon2id default)", a2, "A'", scale))
		logoutScale = add(logoutCase("logout", a2, "A'", scale))
		// Every request names a session C has never seen, so none is in
		// its cache: the Redis-backed path of me at scale. It fills C's
		// cache, so it runs on a Latchkey of its own; login on C then
		// shows what a full cache costs a login.
		add(&benchCase{
			Name: "me, a new session each request (cache miss)", Server: "C", Dataset: scale.Name,
			PID: pidOf(c2), RedisPID: redisPID(r2), Redis: scale.Client,
			WarmupRequests: int64(conns * 16),
			Left:           func() int64 { return int64(len(scale.OnceCookies)) - scale.onceNext.Load() },
			Request: func(int64) *http.Request {
				c := scale.onceCookie()
				if c == "" {
					return nil
				}
				return get(pathBase(c2)+"/me", allowedOrigin, cookieName, c)
			},
			Check: expect(http.StatusOK, allowedOrigin),
		})
		add(loginCase("login (argon2id default), after the cache-miss me", c2, "C", scale))
	}
	ours := []func() int{a1.PID, b1.PID, bare.PID, r1.PID, peerSCS.PID, peerSC.PID}
	if r2 != nil {
		ours = append(ours, a2.PID, c2.PID, r2.PID)
	}
	for _, c := range cases {
		c.Ours = func() []int {
			ps := make([]int, len(ours))
			for i, f := range ours {
				ps[i] = f()
			}
			return ps
		}
	}
	run := func(c *benchCase) (runResult, error) {
		if c.Wrk {
			return runWrk(ctx, c, wrk, scriptDir, *flagWarmup, *flagDuration)
		}
		return runCase(ctx, c, conns, *flagWarmup, *flagDuration)
	}

	if *flagPacedLoad > 0 {
		cal, err := run(cases[0])
		if err != nil {
			t.Fatalf("calibrating the paced rate: %v", err)
		}
		pacedRate = *flagPacedLoad * cal.RPS()
		logf("paced cases: %.0f req/s (%.2f of the bare handler's %.0f under wrk)", pacedRate, *flagPacedLoad, cal.RPS())
	}

	// Rounds: every case once per round, the order rotated from round to
	// round; ratios are taken within a round.
	results := make(map[*benchCase][]runResult, len(cases))
	for r := range rounds {
		for k := range cases {
			c := cases[(k+r)%len(cases)]
			if c.Left != nil && c.Left() < minRun {
				logf("round %d/%d: %s (%s) skipped: its sessions are used up", r+1, rounds, c.Name, c.Server)
				results[c] = append(results[c], runResult{Skipped: true})
				continue
			}
			if c.Prepare != nil {
				if err := c.Prepare(); err != nil {
					t.Fatalf("%s: prepare: %v", c.Name, err)
				}
			}
			res, err := run(c)
			if err != nil {
				t.Fatalf("round %d: %s (%s): %v", r+1, c.Name, c.Server, err)
			}
			if c.Cleanup != nil {
				if err := c.Cleanup(); err != nil {
					t.Fatalf("%s: cleanup: %v", c.Name, err)
				}
			}
			results[c] = append(results[c], res)
			logf("round %d/%d: %-40s %-4s %-3s %9.0f req/s  p50 %6.3fms  p99 %7.3fms  server %5.1f µs/req  load gen %5.1f µs/req  errors %d",
				r+1, rounds, c.Name, c.Server, res.Gen, res.RPS(), ms(res.Quantile(0.5)), ms(res.Quantile(0.99)),
				res.usPerReq(res.ServerCPU), float64(res.ClientCPU.Microseconds())/float64(max(res.N, 1)), sumErrors(res.Errors))
		}
	}

	rev := measureRevocation(t, a1, b1, mainDS, *flagRevocations, cookieName)
	logf("revocation: %d sessions, p50 %v, max %v", len(rev.Delays), rev.Quantile(0.5), rev.Quantile(1))

	rep := &report{
		Machine: mach, Conns: conns, Rounds: rounds, Duration: *flagDuration, Warmup: *flagWarmup,
		Wrk: wrk, Cases: cases, Results: results, Bare: cases[0], PacedBare: pacedBare, PacedMe: pacedMe, PacedRate: pacedRate, PacedLoad: *flagPacedLoad,
		Me: meMain, MeWarn: meWarn, Preflight: preMain, PreflightWarn: preWarn, Refused: refused,
		Peers:    []peerRows{{"scs", "chi + rs/cors + scs (Redis store)", scsMe, scsPre}, {"sc", "chi + rs/cors + securecookie + one go-redis GET", scMe, scPre}},
		Datasets: []*dataset{mainDS, scale}, Revocation: rev, LogoutPool: *flagLogoutPool,
		LoginUsers: *flagLoginUsers, MeCookies: *flagMeCookies, SeedBudget: *flagSeedBudget, SeedWorkers: workers,
		Total: time.Since(began),
	}
	rep.Scale = []scalePair{{"me", meMain, meScale}, {"login", loginMain, loginScale}, {"logout", logoutMain, logoutScale}}
	out := rep.markdown()
	fmt.Print("\n" + out)
	dir := filepath.Join(root, "artifacts", "bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.md"), []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	logf("wrote %s", filepath.Join(dir, "latest.md"))
	for c, rs := range results {
		for _, r := range rs {
			if n := sumErrors(r.Errors); n > 0 {
				t.Logf("note: %s (%s) had %d unexpected answers: %v", c.Name, c.Server, n, r.Errors)
			}
		}
	}
}

// wrongKeyCookie returns a well-formed cookie for the tenant and a seeded
// user, signed with another key: Latchkey must refuse it on the signature.
func wrongKeyCookie(tb testing.TB, t *session.Tenant) string {
	tb.Helper()
	other := sha256.Sum256([]byte("another key"))
	m, err := session.NewManager(memstore.New(memstore.Config{}), session.Config{Keys: [][]byte{other[:]}, Password: cheapParams})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := tb.Context()
	if _, _, err := m.PutTenant(ctx, *t); err != nil {
		tb.Fatal(err)
	}
	pw := seedPassword
	if _, err := m.CreateUser(ctx, t.ID, session.UserInput{Username: seedUser(0), Password: &pw}); err != nil {
		tb.Fatal(err)
	}
	_, c, err := m.Login(ctx, t, session.LoginInput{Username: seedUser(0), Password: pw})
	if err != nil {
		tb.Fatal(err)
	}
	return c.Value
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sumErrors(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// revocation is what measureRevocation saw.
type revocation struct {
	Delays     []time.Duration // A's logout answered → B's first 401, sorted
	FirstPolls int             // sessions B already refused on the first poll after
	NotLive    int             // sessions B did not accept before the revocation
	Failed     int             // logout not 204, or B never refused within the bound
	MeRTT      time.Duration   // median of B's me answers before revocation
}

func (r revocation) Quantile(q float64) time.Duration {
	return runResult{Lat: r.Delays}.Quantile(q)
}

// measureRevocation seeds n sessions, and for each checks that replica B
// accepts it, ends it on A (POST logout), then polls me on B until B
// answers 401, at most 2 s or 2000 polls per session.
func measureRevocation(t *testing.T, a, b *proctest.Latchkey, d *dataset, n int, cookieName string) revocation {
	t.Helper()
	ctx := t.Context()
	cookies := make([]string, n)
	if _, err := parallel(ctx, n, 8, time.Now().Add(time.Minute), func(ctx context.Context, i int) error {
		v, err := d.login(ctx, seedUser(i%max(1, d.UsersDone)))
		cookies[i] = v
		return err
	}); err != nil {
		t.Fatalf("revocation sessions: %v", err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: newTransport(2)}
	defer client.CloseIdleConnections()
	status := func(req *http.Request) int {
		res, err := client.Do(req.WithContext(ctx))
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	me := func(lk *proctest.Latchkey, c string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+lk.Public+"/v1/t/"+string(tenantID)+"/me", nil)
		req.Header.Set("Origin", allowedOrigin)
		req.Header.Set("Cookie", cookieName+"="+c)
		return status(req)
	}
	var r revocation
	var rtts []time.Duration
	for _, c := range cookies {
		s := time.Now()
		if me(b, c) != http.StatusOK {
			r.NotLive++
			continue
		}
		rtts = append(rtts, time.Since(s))
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.Public+"/v1/t/"+string(tenantID)+"/logout", strings.NewReader(""))
		req.Header.Set("Origin", allowedOrigin)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Cookie", cookieName+"="+c)
		if status(req) != http.StatusNoContent {
			r.Failed++
			continue
		}
		t0 := time.Now()
		refused := false
		for poll := 0; poll < 2000 && time.Since(t0) < 2*time.Second; poll++ {
			if me(b, c) == http.StatusUnauthorized {
				r.Delays = append(r.Delays, time.Since(t0))
				if poll == 0 {
					r.FirstPolls++
				}
				refused = true
				break
			}
		}
		if !refused {
			r.Failed++
		}
	}
	slices.Sort(r.Delays)
	slices.Sort(rtts)
	if len(rtts) > 0 {
		r.MeRTT = rtts[len(rtts)/2]
	}
	return r
}
