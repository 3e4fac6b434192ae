//go:build bench

package bench

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// buildBare builds ./bench/bare into the test's temporary directory.
func buildBare(tb testing.TB) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "bare")
	proctest.GoBuild(tb, "-tags", "bench", "-o", out, "./bench/bare")
	return out
}

// buildPeers builds bench/peers, a module of its own, into the test's
// temporary directory.
func buildPeers(tb testing.TB) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "peers")
	proctest.GoBuild(tb, "-C", "bench/peers", "-o", out, ".")
	return out
}

// serverProc is a running server of the benchmark other than Latchkey
// (the bare handler, a peer stack). It is stopped by its PID when the test
// ends.
type serverProc struct {
	Name   string
	Addr   string
	cmd    *exec.Cmd
	exited chan struct{}
	out    *proctest.SyncBuffer
}

// startServer runs bin with args, then "-addr" and a free loopback port,
// with env added to the environment, and waits until GET readyPath
// answers 200 (at most 10 s). A port taken between picking and binding is
// retried with another, at most 3 times.
func startServer(tb testing.TB, name, bin string, args []string, env []string, readyPath string) *serverProc {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		p := &serverProc{Name: name, Addr: proctest.FreeAddr(tb), exited: make(chan struct{}), out: &proctest.SyncBuffer{Limit: 1 << 20}}
		p.cmd = exec.Command(bin, append(slices.Clone(args), "-addr", p.Addr)...)
		p.cmd.Env = append(os.Environ(), env...)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			tb.Fatalf("start %s: %v", name, err)
		}
		go func() { p.cmd.Wait(); close(p.exited) }()
		err := p.waitReady(readyPath, 10*time.Second)
		if err == nil {
			tb.Cleanup(func() { p.stop(tb) })
			return p
		}
		p.kill()
		if attempt < 3 && strings.Contains(p.out.String(), "address already in use") {
			continue
		}
		tb.Fatalf("%s: %v\n%s", name, err, p.out)
	}
}

func startBare(tb testing.TB, bin string) *serverProc {
	tb.Helper()
	return startServer(tb, "bare", bin, nil, nil, "/me")
}

func (p *serverProc) waitReady(path string, d time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(d)
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("exited before it was ready (%v)", p.cmd.ProcessState)
		default:
		}
		res, err := c.Get("http://" + p.Addr + path)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s not 200 within %v (last: %v)", path, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID returns the process ID.
func (p *serverProc) PID() int { return p.cmd.Process.Pid }

// stop ends the process by its PID: SIGTERM, then SIGKILL after 10 s. It
// must have exited 0.
func (p *serverProc) stop(tb testing.TB) {
	select {
	case <-p.exited:
	default:
		_ = syscall.Kill(p.PID(), syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			tb.Errorf("%s (pid %d) ignored SIGTERM for 10s; killing it", p.Name, p.PID())
			p.kill()
			return
		}
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		tb.Errorf("%s (pid %d) exited %d:\n%s", p.Name, p.PID(), code, p.out)
	}
}

func (p *serverProc) kill() {
	_ = syscall.Kill(p.PID(), syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// clockTicks is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat (getconf CLK_TCK; 100 on Linux in practice).
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || n <= 0 {
		return 100
	}
	return n
}()

// cpuTicks returns utime+stime of a process (every thread) in clock ticks;
// pid 0 means this process.
func cpuTicks(pid int) (int64, error) {
	path := "/proc/self/stat"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, errors.New("unexpected " + path)
	}
	f := strings.Fields(s[i+2:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, errors.New("short " + path)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return ut + st, nil
}

// machineTicks is the first line of /proc/stat: CPU time of the whole
// machine, in clock ticks summed over the CPUs.
type machineTicks struct {
	Busy  int64 // user, nice, system, irq, softirq (guest is within user)
	Idle  int64 // idle and iowait
	Steal int64 // taken by the hypervisor
}

func readMachineTicks() machineTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTicks{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return machineTicks{}
	}
	v := make([]int64, 8)
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	return machineTicks{Busy: v[0] + v[1] + v[2] + v[5] + v[6], Idle: v[3] + v[4], Steal: v[7]}
}

func (a machineTicks) sub(b machineTicks) machineTicks {
	return machineTicks{Busy: a.Busy - b.Busy, Idle: a.Idle - b.Idle, Steal: a.Steal - b.Steal}
}

// machine describes the host for the report.
func machine(root string) []string {
	model := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	nproc := strconv.Itoa(runtime.NumCPU())
	if out, err := exec.Command("nproc").Output(); err == nil {
		nproc = strings.TrimSpace(string(out))
	}
	redisV := "unknown"
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		redisV = strings.TrimSpace(string(out))
	}
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	commit := "unknown"
	git := exec.Command("git", "rev-parse", "--short", "HEAD") // read-only
	git.Dir = root
	if out, err := git.Output(); err == nil {
		commit = strings.TrimSpace(string(out)) + " (plus any uncommitted changes in the tree)"
	}
	return []string{
		"date: " + time.Now().UTC().Format(time.RFC3339),
		"nproc: " + nproc + fmt.Sprintf(" (GOMAXPROCS %d)", runtime.GOMAXPROCS(0)),
		"cpu: " + model,
		"kernel: " + kernel,
		"go: " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		"redis: " + redisV,
		"commit: " + commit,
		"load average at start: " + loadAvg(),
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
