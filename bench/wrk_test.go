//go:build bench

package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The saturating cases are driven by wrk, not by the Go load generator:
// on two cores the generator shares the machine with the server it
// measures, and Go's net/http client costs more CPU per request than the
// bare handler does to answer, so it held every server to about the same
// rate and compressed every ratio toward 1. wrk (C, epoll, one thread by
// default) costs a fraction of that; its own CPU per request is reported
// beside the server's.

// wrkConfig is how wrk is run.
type wrkConfig struct {
	Bin     string // path of wrk
	Version string // first line of `wrk -v`
	Threads int
	Conns   int
}

// findWrk returns wrk's path and version, or an error that says how to
// install it (`make bench` runs scripts/ensure-wrk.sh first).
func findWrk() (string, string, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return "", "", errors.New("wrk not found: run scripts/ensure-wrk.sh (Debian's wrk package; `make bench` runs it)")
	}
	// wrk -v prints its version and usage and exits 1.
	out, _ := exec.Command(bin, "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(line, "wrk ") {
		return "", "", fmt.Errorf("%s -v: unexpected output %q", bin, line)
	}
	return bin, strings.TrimSpace(line), nil
}

// wireRequests returns the distinct requests of c, as the bytes Go's
// client would write for them (Host, User-Agent and headers, no
// Accept-Encoding: the Go generator disables compression too), so that
// wrk sends every server exactly what the Go generator did.
func wireRequests(c *benchCase) ([][]byte, error) {
	n := max(c.Cycle, 1)
	out := make([][]byte, n)
	for i := range n {
		req := c.Request(int64(i))
		if req == nil {
			return nil, fmt.Errorf("%s: request %d is nil", c.Name, i)
		}
		var b bytes.Buffer
		if err := req.Write(&b); err != nil {
			return nil, err
		}
		out[i] = b.Bytes()
	}
	return out, nil
}

// luaQuote writes b as a Lua string literal: printable ASCII as is, the
// rest (CR, LF) as decimal escapes, which LuaJIT reads as Lua 5.1 does.
func luaQuote(w *strings.Builder, b []byte) {
	w.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			w.WriteByte('\\')
			w.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			w.WriteByte(c)
		default:
			fmt.Fprintf(w, "\\%d", c)
		}
	}
	w.WriteByte('"')
}

// wrkScript is the Lua script of one case: its requests, built once, sent
// in turn (each thread starting at its own point of the cycle), and a done
// function that prints what the benchmark reads, latencies in µs from
// wrk's histogram.
func wrkScript(reqs [][]byte) string {
	var b strings.Builder
	b.WriteString("-- Written by bench/wrk_test.go for one case of `make bench`.\nlocal reqs = {\n")
	for _, r := range reqs {
		b.WriteString("  ")
		luaQuote(&b, r)
		b.WriteString(",\n")
	}
	b.WriteString(`}
local n = #reqs
local threads = 0
local i = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  local t = tonumber(args[1]) or 1
  i = (tonumber(id) or 0) * math.floor(n / t)
end

function request()
  i = i % n + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("LKBENCH requests=%.0f duration_us=%.0f connect=%.0f read=%.0f write=%.0f status=%.0f timeout=%.0f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
`)
	return b.String()
}

// wrkSummary is the LKBENCH line of a wrk run.
type wrkSummary map[string]float64

func parseWrk(out string) (wrkSummary, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "LKBENCH ")
		if !ok {
			continue
		}
		s := wrkSummary{}
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fmt.Errorf("wrk summary %q: %w", f, err)
			}
			s[k] = x
		}
		for _, k := range []string{"requests", "duration_us", "status", "p50_us", "p99_us"} {
			if _, ok := s[k]; !ok {
				return nil, fmt.Errorf("wrk summary lacks %s: %q", k, rest)
			}
		}
		return s, nil
	}
	return nil, fmt.Errorf("no LKBENCH line in wrk's output:\n%s", out)
}

// runWrk runs case c: a warm-up of the Go generator, whose every answer is
// checked (status, Access-Control-Allow-Origin) and counted under
// "warm-up" errors, then wrk for dur (whole seconds, wrk's unit) on the
// same connections, measured: requests, wrk's latency percentiles, the CPU
// of the server, its Redis, wrk itself (from its rusage) and the rest of
// the machine. During the wrk run, answers are told apart by status class
// only (wrk counts statuses ≥ 400): an answer on the wrong side of 400 for
// c.Status is an error.
func runWrk(ctx context.Context, c *benchCase, w wrkConfig, dir string, warmup, dur time.Duration) (runResult, error) {
	var warmErrs map[string]int
	if warmup > 0 {
		wr, err := runCase(ctx, c, w.Conns, 0, warmup)
		if err != nil {
			return runResult{}, fmt.Errorf("warm-up: %w", err)
		}
		warmErrs = wr.Errors
	}
	if c.script == "" {
		reqs, err := wireRequests(c)
		if err != nil {
			return runResult{}, err
		}
		f, err := os.CreateTemp(dir, "case-*.lua")
		if err != nil {
			return runResult{}, err
		}
		_, err = f.WriteString(wrkScript(reqs))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return runResult{}, err
		}
		c.script = f.Name()
	}
	secs := int(dur / time.Second)
	cmd := exec.CommandContext(ctx, w.Bin, "-t", strconv.Itoa(w.Threads), "-c", strconv.Itoa(w.Conns),
		"-d", strconv.Itoa(secs)+"s", "--timeout", strconv.Itoa(int(requestTimeout/time.Second))+"s", "--latency",
		"-s", c.script, c.URL, "--", strconv.Itoa(w.Threads))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out

	res := runResult{Gen: "wrk"}
	serverPID := c.PID()
	redisPID := 0
	if c.RedisPID != nil {
		redisPID = c.RedisPID()
	}
	var ours []int
	if c.Ours != nil {
		for _, p := range c.Ours() {
			if p != serverPID && p != redisPID {
				ours = append(ours, p)
			}
		}
	}
	cmds0 := commandStats(ctx, c.Redis)
	// This process idles during the run except for reading the logs of
	// the Latchkeys at info level; it counts with "our idle".
	o0 := sumTicks(ours) + mustTicks(0)
	s0, r0, m0 := mustTicks(serverPID), ticksOrZero(redisPID), readMachineTicks()
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	s1, r1, m1 := mustTicks(serverPID), ticksOrZero(redisPID), readMachineTicks()
	res.OurOthers = sumTicks(ours) + mustTicks(0) - o0
	cmds1 := commandStats(ctx, c.Redis)
	if err != nil {
		return res, fmt.Errorf("wrk: %w\n%s", err, out.String())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.ClientCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	sum, err := parseWrk(out.String())
	if err != nil {
		return res, err
	}
	res.ServerCPU, res.RedisCPU, res.Machine = s1-s0, r1-r0, m1.sub(m0)
	res.RedisCmds = diffCommands(cmds0, cmds1)
	res.N = int(sum["requests"])
	// wrk's own clock covers the load, not its start-up and Lua set-up;
	// the CPU readings above cover the whole process (wall).
	res.Elapsed = time.Duration(sum["duration_us"]) * time.Microsecond
	res.Wall = wall
	res.Pct = map[float64]time.Duration{}
	for q, k := range map[float64]string{0.5: "p50_us", 0.9: "p90_us", 0.99: "p99_us", 1: "max_us"} {
		res.Pct[q] = time.Duration(sum[k]) * time.Microsecond
	}
	res.Errors = map[string]int{}
	for k, v := range warmErrs {
		res.Errors["warm-up "+k] += v
	}
	for _, k := range []string{"connect", "read", "write", "timeout"} {
		if n := int(sum[k]); n > 0 {
			res.Errors[k] += n
		}
	}
	status := int(sum["status"]) // answers ≥ 400
	if c.Status >= 400 {
		if n := res.N - status; n > 0 {
			res.Errors["status < 400"] += n
		}
	} else if status > 0 {
		res.Errors["status ≥ 400"] += status
	}
	if res.N == 0 {
		return res, fmt.Errorf("%s: wrk completed no request:\n%s", c.Name, out.String())
	}
	return res, nil
}
