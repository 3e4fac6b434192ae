//go:build bench

package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/redis/go-redis/v9"
)

// A benchCase is one row of the table: a kind of request sent to one
// server process, with what counts as the expected answer.
type benchCase struct {
	Name    string
	Server  string // which process answers, for the table
	Dataset string // the sessions in its Redis, for the table
	// PID returns the serving process's PID; RedisPID that of its Redis,
	// or nil when the server uses none (the bare handler).
	PID      func() int
	RedisPID func() int
	// Redis is a client of that Redis, for INFO commandstats.
	Redis *redis.Client
	// Ours returns the PIDs of every process the benchmark started, so
	// that the CPU the idle ones use is told apart from outside load.
	Ours func() []int
	// Request builds request number seq of a run (seq counts from 0 over
	// warm-up and measurement). Nil means there is nothing left to send
	// (a pool of sessions to end is used up): the worker stops.
	Request func(seq int64) *http.Request
	// Check returns "" for an expected answer, else a short label that the
	// error column counts.
	Check func(*http.Response) string
	// Prepare runs before each run of the case, outside the measurement
	// (e.g. seeding the sessions that logout ends); Cleanup after it.
	Prepare func() error
	Cleanup func() error
	// Left, if set, says how many requests the case can still send in all
	// (a one-time pool); a run is skipped when fewer than minRun are left.
	Left func() int64
	// WarmupRequests, if positive, ends the warm-up after that many
	// requests even before the configured warm-up time: a case with a
	// limited pool of requests keeps most of it for the measurement.
	WarmupRequests int64
	// TrackRSS records the server's peak RSS during the measurement.
	TrackRSS bool
	// Rate, if set, paces the case (open loop): request n is sent no
	// earlier than n/Rate() seconds after the run starts, whatever the
	// answers, so that latency is measured at an offered load rather than
	// at saturation, where it only restates throughput (Little's law).
	// wrk has no open loop, so a paced case runs on the Go generator.
	Rate func() float64

	// Wrk runs the case's measurement with wrk (runWrk) instead of the Go
	// generator; the warm-up stays Go's, and checks every answer. URL is
	// where wrk connects (scheme, host and port; the requests carry their
	// own paths), Cycle how many distinct requests Request cycles through
	// (Request(seq) = Request(seq mod Cycle)), and Status the expected
	// status, whose side of 400 is all wrk tells apart.
	Wrk    bool
	URL    string
	Cycle  int
	Status int
	script string // the Lua script, written on the first run
}

// runResult is one run of one case: one cell of one round.
type runResult struct {
	Gen        string                    // "wrk" or "Go": the load generator
	N          int                       // requests completed within the measurement
	Elapsed    time.Duration             // length of the measurement
	Wall       time.Duration             // the CPU readings' window, when longer than Elapsed (wrk's start-up)
	Errors     map[string]int            // unexpected answers by label
	Lat        []time.Duration           // sorted latencies (Go generator)
	Pct        map[float64]time.Duration // latency quantiles (wrk: 0.5, 0.9, 0.99, 1)
	ServerCPU  int64                     // ticks of the server process
	RedisCPU   int64                     // ticks of its Redis (0 if none)
	ClientCPU  time.Duration             // CPU of the load generator: wrk's rusage, or this process's ticks
	Machine    machineTicks              // the whole machine over the measurement
	OurOthers  int64                     // ticks of our other processes (idle servers, the other Redis)
	RSSBefore  int64                     // VmRSS before the measurement, when TrackRSS
	PeakRSSKiB int64                     // VmHWM after a reset, when TrackRSS
	MaxRSSKiB  int64                     // largest VmRSS sampled every 20 ms, when TrackRSS
	HWMReset   bool                      // whether VmHWM could be reset before the run
	Exhausted  bool                      // the case ran out of requests before the duration
	Skipped    bool                      // not run: its pool was used up in earlier rounds
	RedisCmds  map[string]int64          // Redis commands by name over the measurement
}

// minRun is the fewest requests a pool-limited run is started with.
const minRun = 2000

func (r runResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.N) / r.Elapsed.Seconds()
}

// Quantile returns the q-quantile of the latencies (nearest rank), or for
// a wrk run the one wrk reported (0.5, 0.9, 0.99 or 1).
func (r runResult) Quantile(q float64) time.Duration {
	if r.Pct != nil {
		return r.Pct[q]
	}
	if len(r.Lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Lat))+0.5) - 1
	return r.Lat[min(max(i, 0), len(r.Lat)-1)]
}

// cores converts ticks over the CPU readings' window to CPUs busy on
// average.
func (r runResult) cores(ticks int64) float64 {
	w := max(r.Elapsed, r.Wall)
	if w <= 0 {
		return 0
	}
	return float64(ticks) / float64(clockTicks) / w.Seconds()
}

// clientTicks is ClientCPU in clock ticks, for sums with the other ticks.
func (r runResult) clientTicks() int64 {
	return int64(r.ClientCPU) * clockTicks / int64(time.Second)
}

// ticksDuration converts clock ticks to CPU time.
func ticksDuration(t int64) time.Duration { return time.Duration(t * int64(time.Second) / clockTicks) }

// usPerReq converts ticks over the run to CPU microseconds per request.
func (r runResult) usPerReq(ticks int64) float64 {
	if r.N == 0 {
		return 0
	}
	return float64(ticks) * 1e6 / float64(clockTicks) / float64(r.N)
}

// maxSamplesPerWorker bounds the latencies kept per worker and run.
const maxSamplesPerWorker = 1 << 20

// requestTimeout bounds every request of the load generator.
const requestTimeout = 10 * time.Second

// newTransport returns a keep-alive transport of at most conns connections
// to one host, with no proxy (everything stays on loopback).
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// runCase sends c's requests on conns keep-alive connections, one worker
// goroutine each, for warm-up then dur (or until c runs out of requests),
// and measures the measurement part only: completed requests, their
// latencies (request written to body read), unexpected answers, and the
// CPU time of the server, its Redis and this process.
func runCase(ctx context.Context, c *benchCase, conns int, warmup, dur time.Duration) (runResult, error) {
	tr := newTransport(conns)
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	const (
		warming = iota
		measuring
		stopping
	)
	var phase atomic.Int32
	var seq atomic.Int64
	var rate float64
	if c.Rate != nil {
		rate = c.Rate()
	}
	began := time.Now()
	type worker struct {
		n    int
		lat  []time.Duration
		errs map[string]int
	}
	ws := make([]*worker, conns)
	var wg sync.WaitGroup
	var running atomic.Int32
	allDone := make(chan struct{})
	warmDone := make(chan struct{})
	running.Store(int32(conns))
	for i := range ws {
		w := &worker{lat: make([]time.Duration, 0, 4096), errs: map[string]int{}}
		ws[i] = w
		wg.Go(func() {
			defer func() {
				if running.Add(-1) == 0 {
					close(allDone)
				}
			}()
			for phase.Load() != stopping && ctx.Err() == nil {
				n := seq.Add(1) - 1
				if n == c.WarmupRequests && n > 0 {
					close(warmDone)
				}
				req := c.Request(n)
				if req == nil {
					return
				}
				if rate > 0 {
					due := began.Add(time.Duration(float64(n) / rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				start := time.Now()
				res, err := client.Do(req.WithContext(ctx))
				label := ""
				if err != nil {
					label = transportLabel(err)
				} else {
					_, cerr := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if label = c.Check(res); label == "" && cerr != nil {
						label = "body: " + cerr.Error()
					}
				}
				d := time.Since(start)
				if phase.Load() != measuring {
					continue
				}
				w.n++
				if len(w.lat) < maxSamplesPerWorker {
					w.lat = append(w.lat, d)
				}
				if label != "" {
					w.errs[label]++
				}
			}
		})
	}

	res := runResult{Gen: "Go"}
	wait := func(d time.Duration, early <-chan struct{}) bool { // false when every worker stopped
		select {
		case <-time.After(d):
			return true
		case <-early:
			return true
		case <-allDone:
			return false
		case <-ctx.Done():
			return false
		}
	}
	wait(warmup, warmDone)
	if c.TrackRSS {
		res.RSSBefore, _ = proctest.StatusKiB(c.PID(), "VmRSS")
		res.HWMReset = proctest.ResetPeakRSS(c.PID()) == nil
	}
	serverPID := c.PID()
	redisPID := 0
	if c.RedisPID != nil {
		redisPID = c.RedisPID()
	}
	cmds0 := commandStats(ctx, c.Redis)
	var ours []int
	if c.Ours != nil {
		for _, p := range c.Ours() {
			if p != serverPID && p != redisPID {
				ours = append(ours, p)
			}
		}
	}
	o0 := sumTicks(ours)
	s0, r0, self0, m0 := mustTicks(serverPID), ticksOrZero(redisPID), mustTicks(0), readMachineTicks()
	start := time.Now()
	phase.Store(measuring)
	stopRSS := make(chan struct{})
	rssDone := make(chan int64, 1)
	if c.TrackRSS {
		go func() {
			var peak int64
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				if v, err := proctest.StatusKiB(serverPID, "VmRSS"); err == nil {
					peak = max(peak, v)
				}
				select {
				case <-stopRSS:
					rssDone <- peak
					return
				case <-tick.C:
				}
			}
		}()
	}
	res.Exhausted = !wait(dur, nil)
	phase.Store(stopping)
	res.Elapsed = time.Since(start)
	s1, r1, self1, m1 := mustTicks(serverPID), ticksOrZero(redisPID), mustTicks(0), readMachineTicks()
	res.OurOthers = sumTicks(ours) - o0
	cmds1 := commandStats(ctx, c.Redis)
	if c.TrackRSS {
		close(stopRSS)
		res.MaxRSSKiB = <-rssDone
		res.PeakRSSKiB, _ = proctest.StatusKiB(serverPID, "VmHWM")
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.ServerCPU, res.RedisCPU, res.ClientCPU, res.Machine = s1-s0, r1-r0, ticksDuration(self1-self0), m1.sub(m0)
	res.RedisCmds = diffCommands(cmds0, cmds1)
	res.Errors = map[string]int{}
	for _, w := range ws {
		res.N += w.n
		res.Lat = append(res.Lat, w.lat...)
		for k, v := range w.errs {
			res.Errors[k] += v
		}
	}
	slices.Sort(res.Lat)
	if res.N == 0 {
		return res, fmt.Errorf("%s: no request completed in %v", c.Name, res.Elapsed)
	}
	return res, nil
}

// diffCommands returns the commands run between two INFO commandstats,
// or nil if either is missing.
func diffCommands(cmds0, cmds1 map[string]int64) map[string]int64 {
	if cmds0 == nil || cmds1 == nil {
		return nil
	}
	out := map[string]int64{}
	for k, v := range cmds1 {
		if d := v - cmds0[k]; d > 0 {
			out[k] = d
		}
	}
	out["info"]-- // the first INFO commandstats itself
	if out["info"] <= 0 {
		delete(out, "info")
	}
	return out
}

// commandStats returns the calls of every command from INFO commandstats,
// or nil without a client or on error.
func commandStats(ctx context.Context, c *redis.Client) map[string]int64 {
	if c == nil {
		return nil
	}
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: INFO commandstats: %v\n", err)
		return nil
	}
	out := map[string]int64{}
	for _, l := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(l), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		if n, err := strconv.ParseInt(calls, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out
}

func mustTicks(pid int) int64 {
	n, err := cpuTicks(pid)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: cpu ticks of pid %d: %v\n", pid, err)
	}
	return n
}

func sumTicks(pids []int) int64 {
	var n int64
	for _, p := range pids {
		n += ticksOrZero(p)
	}
	return n
}

func ticksOrZero(pid int) int64 {
	if pid == 0 {
		return 0
	}
	return mustTicks(pid)
}

// transportLabel shortens a client error for the error column.
func transportLabel(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "reset"
	case strings.Contains(err.Error(), "EOF"):
		return "EOF"
	}
	return "transport"
}

// expect returns a Check for a status and whether the answer must carry
// Access-Control-Allow-Origin (the exact origin) or must not carry it.
func expect(status int, acao string) func(*http.Response) string {
	return func(res *http.Response) string {
		if res.StatusCode != status {
			return fmt.Sprint(res.StatusCode)
		}
		if got := res.Header.Get("Access-Control-Allow-Origin"); got != acao {
			if acao == "" {
				return "ACAO present"
			}
			return "ACAO missing"
		}
		return ""
	}
}
