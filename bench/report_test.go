//go:build bench

package bench

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// report gathers everything the benchmark measured and writes it as
// markdown.
type report struct {
	Machine          []string
	Conns, Rounds    int
	Duration, Warmup time.Duration
	Wrk              wrkConfig
	Cases            []*benchCase
	Results          map[*benchCase][]runResult
	Bare             *benchCase
	// The rows the targets are checked on: Latchkey as shipped (A, info)
	// and at warn (B), its refusals (on A), and the peer stacks.
	Me, MeWarn               *benchCase
	Preflight, PreflightWarn *benchCase
	Refused                  []*benchCase
	Peers                    []peerRows
	PacedBare, PacedMe       *benchCase // nil when not run
	PacedRate, PacedLoad     float64
	Datasets                 []*dataset // main, then scale (nil when skipped)
	Scale                    []scalePair
	Revocation               revocation
	LogoutPool, LoginUsers   int
	MeCookies, SeedWorkers   int
	SeedBudget               time.Duration
	Total                    time.Duration
}

// peerRows are the rows of one peer stack (bench/peers).
type peerRows struct {
	Server, Stack string
	Me, Preflight *benchCase
}

// scalePair is one request measured on the main and on the scale dataset.
type scalePair struct {
	Name        string
	Main, Scale *benchCase
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// per applies f to each round of c and returns the median.
func (r *report) per(c *benchCase, f func(round int, res runResult) float64) float64 {
	var xs []float64
	for i, res := range r.Results[c] {
		if !res.Skipped {
			xs = append(xs, f(i, res))
		}
	}
	return median(xs)
}

func (r *report) ratioToBare(c *benchCase) float64 {
	return r.per(c, func(i int, res runResult) float64 {
		b := r.Results[r.Bare][i].RPS()
		if b == 0 {
			return 0
		}
		return res.RPS() / b
	})
}

func (r *report) errorsOf(c *benchCase) (string, int) {
	all := map[string]int{}
	n := 0
	for _, res := range r.Results[c] {
		n += res.N
		for k, v := range res.Errors {
			all[k] += v
		}
	}
	if len(all) == 0 {
		return "0", n
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(all)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, all[k]))
	}
	return strings.Join(parts, ", "), n
}

func rps(_ int, res runResult) float64 { return res.RPS() }
func p50(_ int, res runResult) float64 { return ms(res.Quantile(0.50)) }
func p99(_ int, res runResult) float64 { return ms(res.Quantile(0.99)) }

// cpu returns CPU µs per request of c over every round: the sum of the
// ticks over the sum of the requests, which is finer than a median of
// per-round figures when a run lasts only some tens of ticks.
func (r *report) cpu(c *benchCase, ticks func(runResult) int64) float64 {
	var t, n int64
	for _, res := range r.Results[c] {
		t += ticks(res)
		n += int64(res.N)
	}
	if n == 0 {
		return 0
	}
	return float64(t) * 1e6 / float64(clockTicks) / float64(n)
}

func srvTicks(res runResult) int64   { return res.ServerCPU }
func redisTicks(res runResult) int64 { return res.RedisCPU }
func selfTicks(res runResult) int64  { return res.clientTicks() }

// clientCPU returns the load generator's CPU µs per request of c over
// every round (wrk's from its rusage, to the microsecond).
func (r *report) clientCPU(c *benchCase) float64 {
	var d time.Duration
	var n int64
	for _, res := range r.Results[c] {
		d += res.ClientCPU
		n += int64(res.N)
	}
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// gen names the load generator of c's runs.
func (r *report) gen(c *benchCase) string {
	for _, res := range r.Results[c] {
		if res.Gen != "" {
			return res.Gen
		}
	}
	return "—"
}

// commands formats c's Redis commands per request, most frequent first.
func (r *report) commands(c *benchCase) string {
	total := map[string]int64{}
	var n int64
	for _, res := range r.Results[c] {
		n += int64(res.N)
		for k, v := range res.RedisCmds {
			total[k] += v
		}
	}
	if n == 0 {
		return "—"
	}
	names := slices.Collect(maps.Keys(total))
	slices.SortFunc(names, func(a, b string) int {
		if total[a] != total[b] {
			return int(total[b] - total[a])
		}
		return strings.Compare(a, b)
	})
	var parts []string
	sum := 0.0
	for _, k := range names {
		if k == "ping" || k == "info" {
			continue
		}
		per := float64(total[k]) / float64(n)
		if per >= 0.005 {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, per))
			sum += per
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return fmt.Sprintf("%.2f: %s", sum, strings.Join(parts, ", "))
}

func (r *report) machineCPUs() string {
	for _, m := range r.Machine {
		if v, ok := strings.CutPrefix(m, "nproc: "); ok {
			n, _, _ := strings.Cut(v, " ")
			return n
		}
	}
	return "?"
}

func mib(kib int64) string { return fmt.Sprintf("%.0f", float64(kib)/1024) }

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Latchkey benchmark\n\n")
	for _, m := range r.Machine {
		w("- %s\n", m)
	}
	w("- load: %d keep-alive connections; saturating cases from wrk (-t%d -c%d, closed loop, its Lua script cycling through each case's requests), the paced, login, logout and cache-miss cases from the Go generator (net/http); %d rounds, each case %v after a %v warm-up (Go generator, every answer checked) per round; cases alternate within each round (order rotated each round); total run %v\n\n",
		r.Conns, r.Wrk.Threads, r.Wrk.Conns, r.Rounds, r.Duration, r.Warmup, r.Total.Round(time.Second))

	w("## Requests (medians over %d rounds)\n\n", r.Rounds)
	w("Server A: Latchkey as shipped, its default settings and log level (info: one JSON line per request, which this process reads, as a log shipper would), on the main Redis; B: the same at LATCHKEY_LOG_LEVEL=warn (no per-request log line), on the same Redis; scs and sc: the peer stacks of bench/peers on the same Redis (see below); A': Latchkey as shipped on the scale Redis, with the same cases as A; C: another Latchkey on the scale Redis, for the cache-miss me and a login after it. \"× bare\" is the ratio of requests/s to the bare handler in the same round. p50 and p99 are wrk's (from the request written to the answer read) or the Go generator's. CPU is utime+stime from /proc/PID/stat over each measurement (%d ticks/s), summed over the rounds and divided by the requests completed in them; \"load gen CPU\" is wrk's own (its rusage) or, for the Go generator, this test process's (which also reads the info-level Latchkeys' logs).\n\n", clockTicks)
	w("| case | server | sessions in Redis | load gen | req/s | × bare | p50 ms | p99 ms | server CPU µs/req | Redis CPU µs/req | load gen CPU µs/req | errors | requests |\n")
	w("|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|---|--:|\n")
	for _, c := range r.Cases {
		if c.Rate != nil {
			continue // paced: see the latency table
		}
		errs, n := r.errorsOf(c)
		redis := "—"
		if c.RedisPID != nil {
			redis = fmt.Sprintf("%.1f", r.cpu(c, redisTicks))
		}
		w("| %s | %s | %s | %s | %.0f | %.3f | %.3f | %.3f | %.1f | %s | %.1f | %s | %d |\n",
			c.Name, c.Server, c.Dataset, r.gen(c), r.per(c, rps), r.ratioToBare(c), r.per(c, p50), r.per(c, p99),
			r.cpu(c, srvTicks), redis, r.clientCPU(c), errs, n)
	}
	if len(r.Peers) > 0 {
		w("\nThe peer stacks (bench/peers, a module of its own) answer the same `me` (the JSON of the session's user, cookie-authenticated, credentialed CORS for the one origin) and the same preflight, from sessions seeded in the same Redis, with the bare handler's http.Server settings and keep-alive:\n\n")
		for _, p := range r.Peers {
			w("- %s: %s.\n", p.Server, p.Stack)
		}
		w("\nscs runs with Latchkey's default lifetimes (7 days, 12 hours idle); scs enforces an idle timeout by writing the session back on every request (GET, then MULTI, SET, PEXPIREAT, EXEC, and a Set-Cookie), which its Redis commands show. sc has no idle expiry: one GET per me.\n")
	}

	r.targets(w)

	if r.PacedBare != nil {
		w("\n## Latency at an equal offered load\n\n")
		w("At saturation (the table above) every server answers as fast as it can and %d connections queue on it, so its latency restates its throughput (Little's law: mean latency = connections / requests per second). Here the bare handler and `me` are both offered the same %.0f requests/s (%.2f of what the bare handler served flat out under wrk in a calibration run before the rounds), each request sent at its scheduled time whatever the answers to earlier ones, so the difference in latency is the cost of the session check itself. wrk has no open loop, so these run on the Go generator, whose own CPU is shown: it shares the two cores with the server, and when the two together cannot keep up, the served rate falls below the offered one and the load is no longer equal (the targets say so). Latency runs from sending the request to reading the whole answer; medians over the rounds.\n\n", r.Conns, r.PacedRate, r.PacedLoad)
		w("| case | server | offered req/s | served req/s | p50 ms | p90 ms | p99 ms | p99 − bare p99 (same round) ms | server CPU µs/req | load gen (Go) CPU µs/req | errors |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
		p90 := func(_ int, res runResult) float64 { return ms(res.Quantile(0.90)) }
		for _, c := range []*benchCase{r.PacedBare, r.PacedMe} {
			diff := r.per(c, func(i int, res runResult) float64 {
				return ms(res.Quantile(0.99)) - ms(r.Results[r.PacedBare][i].Quantile(0.99))
			})
			errs, _ := r.errorsOf(c)
			w("| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f | %+.2f | %.1f | %.1f | %s |\n", c.Name, c.Server, r.PacedRate, r.per(c, rps),
				r.per(c, p50), r.per(c, p90), r.per(c, p99), diff, r.cpu(c, srvTicks), r.clientCPU(c), errs)
		}
	}

	w("\n## Login at the default argon2id cost (m=%d KiB, t=%d, p=%d; LATCHKEY_HASH_MEMORY_MIB default)\n\n",
		session.DefaultPasswordParams.Memory, session.DefaultPasswordParams.Time, session.DefaultPasswordParams.Threads)
	w("%d users with default-cost hashes, one per connection in turn; every login succeeds (failures alone count toward the rate limits). A and A' serve the same cases (10k against 1M sessions); C is the Latchkey that also serves the cache-miss me, so its session cache fills up (to its LATCHKEY_SESSION_CACHE_SIZE bound, 50,000 sessions by default, then evicts). Peak RSS is VmHWM of the Latchkey process, reset (clear_refs 5) before each measurement; the largest over the rounds is shown, with the largest VmRSS sampled every 20 ms, and the smallest VmRSS before a login round (Go keeps freed memory for a while, so later rounds start higher).\n\n", r.LoginUsers)
	w("| server | sessions in Redis | logins/s | p50 ms | p99 ms | server CPU ms/login | peak RSS MiB (VmHWM) | max sampled VmRSS MiB | smallest VmRSS before MiB | errors |\n")
	w("|---|---|--:|--:|--:|--:|--:|--:|--:|---|\n")
	var logins []*benchCase
	for _, c := range r.Cases {
		if c.TrackRSS {
			logins = append(logins, c)
		}
	}
	{
		for _, c := range logins {
			var hwm, maxRSS int64
			before := int64(-1)
			reset := true
			for _, res := range r.Results[c] {
				hwm, maxRSS = max(hwm, res.PeakRSSKiB), max(maxRSS, res.MaxRSSKiB)
				if before < 0 || res.RSSBefore < before {
					before = res.RSSBefore
				}
				reset = reset && res.HWMReset
			}
			hwmS := mib(hwm)
			if !reset {
				hwmS += " (VmHWM could not be reset: lifetime peak)"
			}
			errs, _ := r.errorsOf(c)
			w("| %s | %s | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %s |\n", c.Server, c.Dataset, r.per(c, rps), r.per(c, p50), r.per(c, p99),
				r.cpu(c, srvTicks)/1000, hwmS, mib(maxRSS), mib(before), errs)
		}
	}
	w("\nPer round, logins/s and VmRSS before → peak (VmHWM) in MiB:\n\n| server | case |")
	for i := range r.Rounds {
		w(" %d |", i+1)
	}
	w("\n|---|---|%s\n", strings.Repeat("--:|", r.Rounds))
	for _, c := range logins {
		w("| %s | %s |", c.Server, c.Name)
		for _, res := range r.Results[c] {
			w(" %.0f/s, %s → %s |", res.RPS(), mib(res.RSSBefore), mib(res.PeakRSSKiB))
		}
		w("\n")
	}

	if r.Datasets[1] != nil {
		main, scale := r.Datasets[0], r.Datasets[1]
		w("\n## Scale: %s against %s sessions\n\n", main.Name, scale.Name)
		w("The same requests on two Latchkey processes (A on the %s Redis, A' on the %s one), in the same rounds. The ratio is the median of the per-round ratios %s / %s.\n\n", main.Name, scale.Name, scale.Name, main.Name)
		w("| request | req/s %s | req/s %s | ratio | p50 ms %s / %s | p99 ms %s / %s | Redis CPU µs/req %s / %s |\n", main.Name, scale.Name, main.Name, scale.Name, main.Name, scale.Name, main.Name, scale.Name)
		w("|---|--:|--:|--:|--:|--:|--:|\n")
		for _, sp := range r.Scale {
			if sp.Scale == nil {
				continue
			}
			ratio := r.per(sp.Scale, func(i int, res runResult) float64 {
				m := r.Results[sp.Main][i].RPS()
				if m == 0 {
					return 0
				}
				return res.RPS() / m
			})
			w("| %s | %.0f | %.0f | %.3f | %.2f / %.2f | %.2f / %.2f | %.1f / %.1f |\n", sp.Name,
				r.per(sp.Main, rps), r.per(sp.Scale, rps), ratio,
				r.per(sp.Main, p50), r.per(sp.Scale, p50), r.per(sp.Main, p99), r.per(sp.Scale, p99),
				r.cpu(sp.Main, redisTicks), r.cpu(sp.Scale, redisTicks))
		}
	}

	w("\n## Redis memory per session\n\n")
	w("INFO memory before and after seeding sessions for users that already exist (users created first, measured, then sessions added), so only the sessions' cost is counted: the session field and value in the user's sessions hash, that hash's key and TTL entry, and the share of the key dictionaries' growth. Each user has a sessions hash of its own, so a user's first session costs more than the next ones. Bytes per session use used_memory less mem_clients_normal and used_memory_scripts_eval (the seeding's connection buffers and the Lua script cache, which are not data); the raw used_memory difference is shown too.\n\n")
	w("| dataset | users | sessions per user | sessions | Δ used_memory | Δ without clients and scripts | bytes per session |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, d := range r.Datasets {
		if d == nil {
			continue
		}
		if d.Passes >= 1 {
			w("| %s | %d | 1 | %d | %d | %d | %.0f |\n", d.Name, d.UsersDone, d.UsersDone, d.Mem1.Used-d.MemUsers.Used,
				d.Mem1.Data()-d.MemUsers.Data(), float64(d.Mem1.Data()-d.MemUsers.Data())/float64(d.UsersDone))
		}
		if d.Sessions > d.UsersDone {
			w("| %s | %d | %.2f | %d | %d | %d | %.0f |\n", d.Name, d.UsersDone, float64(d.Sessions)/float64(d.UsersDone), d.Sessions,
				d.Mem5.Used-d.MemUsers.Used, d.Mem5.Data()-d.MemUsers.Data(), float64(d.Mem5.Data()-d.MemUsers.Data())/float64(d.Sessions))
		}
	}
	for _, d := range r.Datasets {
		if d != nil && d.UsersDone > 0 {
			w("\nUsers of %s, for comparison: %.0f bytes per user (the record with its argon2id hash, and the tenant's user index).\n", d.Name, float64(d.MemUsers.Data()-d.MemEmpty.Data())/float64(d.UsersDone))
		}
	}

	w("\n## Seeding\n\n")
	w("In-process session.Manager over redisstore on the same Redis, same cookie keys, argon2id m=%d KiB t=%d p=%d for the seeded users (created with CreateUser), sessions by Manager.Login on %d goroutines; the time excludes the pauses to read used_memory. Budget for the scale dataset: %v.\n\n",
		cheapParams.Memory, cheapParams.Time, cheapParams.Threads, r.SeedWorkers, r.SeedBudget)
	w("| dataset | users | users/s | sessions | sessions/s | users + sessions time | note |\n|---|--:|--:|--:|--:|--:|---|\n")
	for _, d := range r.Datasets {
		if d == nil {
			continue
		}
		note := "complete"
		if d.BudgetHit {
			note = fmt.Sprintf("budget hit: %d of %d sessions asked (%d full passes); the largest count that fit", d.Sessions, d.Users*d.PerUser, d.Passes)
		}
		w("| %s | %d | %.0f | %d | %.0f | %v | %s |\n", d.Name, d.UsersDone, float64(d.UsersDone)/d.UserTime.Seconds(),
			d.Sessions, float64(d.Sessions)/d.SessionTime.Seconds(), (d.UserTime + d.SessionTime).Round(time.Second), note)
	}
	for _, d := range r.Datasets {
		if d == nil || len(d.poolSeedTimes) == 0 {
			continue
		}
		var rates []float64
		for i, t := range d.poolSeedTimes {
			rates = append(rates, float64(d.poolSeedCounts[i])/t.Seconds())
		}
		w("\nLogout pool of %s: %d fresh sessions before each logout run, median %.0f sessions/s.\n", d.Name, r.LogoutPool, median(rates))
	}

	rv := r.Revocation
	w("\n## Revocation across replicas\n\n")
	w("Two Latchkey processes on one Redis. For each session: B answers me 200, A ends it (POST logout, 204), then B is polled with me until it answers 401. The delay runs from A's 204 to B's 401 and so includes one me round trip (median me on B: %.2f ms).\n\n", ms(rv.MeRTT))
	w("| sessions | refused on the first poll | p50 | p99 | max | not live on B before | failed |\n|--:|--:|--:|--:|--:|--:|--:|\n")
	w("| %d | %d | %.2f ms | %.2f ms | %.2f ms | %d | %d |\n", len(rv.Delays), rv.FirstPolls, ms(rv.Quantile(0.5)), ms(rv.Quantile(0.99)), ms(rv.Quantile(1)), rv.NotLive, rv.Failed)

	w("\n## Redis commands per request\n\n")
	w("From INFO commandstats around each measurement, summed over the rounds and divided by the requests (commands under 0.005 per request left out). Commands that Lua scripts run count too, so EVALSHA's own calls appear beside it. Every Latchkey also pings Redis on its invalidation feed every 10 ms, whatever the load; those pings, and PUBLISH deliveries, are not requests and are left out.\n\n")
	w("| case | server | commands per request |\n|---|---|---|\n")
	for _, c := range r.Cases {
		if c.Redis == nil {
			continue
		}
		w("| %s | %s | %s |\n", c.Name, c.Server, r.commands(c))
	}

	w("\n## CPU of the machine during the measurements (medians over the rounds, in cores of %s)\n\n", r.machineCPUs())
	w("From /proc/stat and /proc/PID/stat around each measurement. \"our idle\" is the benchmark's other processes (the servers and Redis not under load, and during a wrk run this test process, which reads the info-level Latchkeys' logs); \"outside\" is the rest of the machine's busy time: other work on this shared machine and the kernel's own threads (small negative values are the skew between the readings); steal is time the hypervisor gave to other guests.\n\n")
	w("| case | server | server | Redis | load gen | our idle | outside | steal | idle |\n|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, c := range r.Cases {
		core := func(f func(runResult) int64) float64 {
			return r.per(c, func(_ int, res runResult) float64 { return res.cores(f(res)) })
		}
		w("| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", c.Name, c.Server,
			core(srvTicks), core(redisTicks), core(selfTicks),
			core(func(res runResult) int64 { return res.OurOthers }),
			core(func(res runResult) int64 {
				return res.Machine.Busy - res.ServerCPU - res.RedisCPU - res.clientTicks() - res.OurOthers
			}),
			core(func(res runResult) int64 { return res.Machine.Steal }),
			core(func(res runResult) int64 { return res.Machine.Idle }))
	}

	w("\n## Per round (req/s), to show drift\n\n| case | server |")
	for i := range r.Rounds {
		w(" %d |", i+1)
	}
	w("\n|---|---|%s\n", strings.Repeat("--:|", r.Rounds))
	for _, c := range r.Cases {
		w("| %s | %s |", c.Name, c.Server)
		for _, res := range r.Results[c] {
			if res.Skipped {
				w(" — |")
			} else {
				w(" %.0f |", res.RPS())
			}
		}
		w("\n")
	}

	w("\n## Notes\n\n")
	w("- The me cases cycle through %d sessions, one per user, spread evenly over the dataset's users. Latchkey serves a session it read recently from a per-replica cache (while its invalidation feed is current), so these are mostly cache hits; a session's idle expiry is still written back at most every 5 minutes, so each may cost one read and one write (HGET, EVALSHA) now and then. \"me, a new session each request\" sends every request with a session that replica has never seen (each used once over the whole run, from the first two sessions of every user of the scale dataset), so every request reads Redis. It runs on Latchkey C (on the scale Redis), so that the cache it fills does not change A'; it is skipped in a round once fewer than %d are left.\n", r.MeCookies, minRun)
	w("- \"refused: disallowed origin, valid cookie\" is answered 403 without CORS headers, before the session is read (see its Redis commands per request).\n")
	w("- Load generators: wrk drives every saturating case that it can express (its Lua script sends the same bytes Go's client would, cycling through the seeded sessions' cookies). It tells answers apart by status class only (it counts statuses ≥ 400), so the Go warm-up before each wrk run checks every answer exactly (status, Access-Control-Allow-Origin), and its mismatches count under \"warm-up\" errors. The Go generator keeps: the paced cases (wrk has no open loop); logout and the cache-miss me (each request uses up a one-time session from a pool, and the run must stop, warm-up included, when the pool is spent); and login (its check needs the Set-Cookie header, and at tens of milliseconds of server CPU per login the generator's cost is a fraction of a percent). The revocation check is its own loop of single requests.\n")
	w("- Logout ends sessions from a pool of %d fresh sessions seeded before each run (outside the measurement; its warm-up ends after 5%% of the pool or 16 requests per connection, whichever is more); a run ends early when the pool is used up, and what is left is removed afterwards. The dataset is the seeded sessions plus that pool.\n", r.LogoutPool)
	w("- Expected answers: 200 bare and me (with Access-Control-Allow-Origin), 204 preflight and logout, 401 bad cookie, 403 without Access-Control-Allow-Origin for the disallowed origin, 404 unknown tenant, 200 with Set-Cookie for login. Anything else is counted under errors.\n")
	minTicks, minCase := int64(-1), ""
	for _, c := range r.Cases {
		for _, res := range r.Results[c] {
			if res.Skipped {
				continue
			}
			if minTicks < 0 || res.ServerCPU < minTicks {
				minTicks, minCase = res.ServerCPU, c.Name+" ("+c.Server+")"
			}
		}
	}
	w("- CPU resolution: the smallest server CPU sample of any case and round was %d ticks (%s), so one tick is at most %.1f%% of one round's figure; the CPU columns sum all rounds.\n", minTicks, minCase, 100/float64(max(minTicks, 1)))
	w("- Two cores are shared by the load generator, the server, Redis and other work on the machine: compare ratios within this run, not absolute numbers across runs. During a wrk run this test process idles but for reading the info-level Latchkeys' logs; its CPU counts under \"our idle\" in the machine table.\n")
	return b.String()
}
