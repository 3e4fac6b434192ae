package proctest

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long StartLatchkey waits for /readyz.
	readyTimeout = 20 * time.Second
	// stopTimeout bounds how long Stop waits after SIGTERM: above
	// Latchkey's own shutdown timeout, so that a clean shutdown always
	// fits.
	stopTimeout = 25 * time.Second
	// startAttempts is how many times a start is tried when a picked port
	// was taken before the child bound it.
	startAttempts = 3
	// maxLogLines bounds how much of Latchkey's log a failure shows.
	maxLogLines = 150
)

// LatchkeyConfig configures StartLatchkey. Latchkey is configured only
// through its environment, as an operator would configure it; each field
// is one LATCHKEY_* variable, and an empty field leaves it unset unless
// said otherwise. The zero value runs Latchkey on its in-memory store with
// its demo tenant.
type LatchkeyConfig struct {
	// RedisURL is LATCHKEY_REDIS_URL, e.g. Redis.URL. Unset, Latchkey
	// keeps its data in memory.
	RedisURL string
	// TenantsFile is LATCHKEY_TENANTS_FILE, the path of a tenants file
	// that Latchkey applies at start-up.
	TenantsFile string
	// CookieKeys is LATCHKEY_COOKIE_KEYS: comma-separated base64 keys of
	// at least 32 bytes, the first of which signs. Empty means one fresh
	// random 32-byte key.
	CookieKeys string
	// AdminToken is LATCHKEY_ADMIN_TOKEN, the admin API's bearer token.
	// Empty means a fresh random one; Latchkey.AdminToken reports it.
	AdminToken string
	// Env sets further LATCHKEY_* variables and overrides those above and
	// the default LATCHKEY_LOG_LEVEL=info; an empty value removes a
	// variable. It may also set a Go runtime variable such as GOMEMLIMIT,
	// which replaces the one the test inherited. LATCHKEY_ADDR and LATCHKEY_ADMIN_ADDR are not the
	// caller's: StartLatchkey picks free loopback ports.
	Env map[string]string
	// OutputLimit, if positive, keeps only about the last OutputLimit
	// bytes of the process's output for Output (see SyncBuffer.Limit):
	// for a Latchkey that logs every request of a load test.
	OutputLimit int
}

// Latchkey is a running `latchkey serve` that one test owns. Its methods
// are safe for concurrent use.
type Latchkey struct {
	// Public and Admin are the host:port of the public and the admin
	// listener, both on 127.0.0.1.
	Public, Admin string
	// AdminToken is the admin API's bearer token.
	AdminToken string

	*proc
	out       *SyncBuffer
	signalled atomic.Bool // the test sent a signal through Signal
	stopOnce  sync.Once
}

// StartLatchkey builds latchkey (once per test binary, see BuildLatchkey)
// and runs `latchkey serve` configured by cfg on two free loopback ports,
// and returns once GET /readyz on the admin listener answers 200. A port
// taken between picking and binding it is retried with new ports. It
// fails tb when Latchkey exits, or is not ready within 20 s. Stop runs
// when tb ends.
func StartLatchkey(tb testing.TB, cfg LatchkeyConfig) *Latchkey {
	tb.Helper()
	bin := BuildLatchkey(tb)
	// Mark the binary as in use, so that no other build prunes it from
	// the cache while this test binary may still run it.
	now := time.Now()
	if err := os.Chtimes(bin, now, now); err != nil {
		tb.Fatalf("latchkey binary: %v", err)
	}
	env := latchkeyEnv(cfg)
	for attempt := 1; ; attempt++ {
		p, err := launchLatchkey(tb, bin, env, cfg.OutputLimit)
		if err == nil {
			return p
		}
		if attempt < startAttempts && strings.Contains(p.Output(), "address already in use") {
			tb.Logf("latchkey: a picked port was taken meanwhile; retrying (%v)", err)
			continue
		}
		tb.Fatalf("%v\n%s", err, p.Output())
	}
}

// latchkeyEnv returns the LATCHKEY_* variables of cfg, without the
// listener addresses.
func latchkeyEnv(cfg LatchkeyConfig) map[string]string {
	if cfg.CookieKeys == "" {
		key := make([]byte, 32)
		rand.Read(key)
		cfg.CookieKeys = base64.StdEncoding.EncodeToString(key)
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = rand.Text()
	}
	env := map[string]string{
		"LATCHKEY_REDIS_URL":    cfg.RedisURL,
		"LATCHKEY_TENANTS_FILE": cfg.TenantsFile,
		"LATCHKEY_COOKIE_KEYS":  cfg.CookieKeys,
		"LATCHKEY_ADMIN_TOKEN":  cfg.AdminToken,
		"LATCHKEY_LOG_LEVEL":    "info",
	}
	maps.Copy(env, cfg.Env)
	return env
}

// launchLatchkey starts one latchkey process on fresh loopback ports and
// waits for it to be ready. On error the process has exited.
func launchLatchkey(tb testing.TB, bin string, vars map[string]string, outputLimit int) (*Latchkey, error) {
	tb.Helper()
	p := &Latchkey{Public: FreeAddr(tb), Admin: FreeAddr(tb), AdminToken: vars["LATCHKEY_ADMIN_TOKEN"], out: &SyncBuffer{Limit: outputLimit}}
	vars = maps.Clone(vars)
	vars["LATCHKEY_ADDR"] = p.Public
	vars["LATCHKEY_ADMIN_ADDR"] = p.Admin
	// Secrets go in the environment, not on the command line, which other
	// users of the machine can read.
	cmd := exec.Command(bin, "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LATCHKEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if vars[k] != "" {
			cmd.Env = append(cmd.Env, k+"="+vars[k])
		}
	}
	var err error
	if p.proc, err = startProc(cmd, p.out); err != nil {
		return p, fmt.Errorf("start latchkey: %w", err)
	}
	client := &http.Client{Timeout: time.Second}
	err = p.waitReady(readyTimeout, 50*time.Millisecond, func() error {
		res, err := client.Get("http://" + p.Admin + "/readyz")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return errors.New(res.Status)
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("latchkey at http://%s/readyz: %w", p.Admin, err)
	}
	tb.Cleanup(func() { p.Stop(tb) })
	return p, nil
}

// PID returns the process ID.
func (p *Latchkey) PID() int { return p.pid() }

// Output returns what the process has written to stdout and stderr so
// far: its JSON log.
func (p *Latchkey) Output() string { return p.out.String() }

// Alive reports whether the process is still running.
func (p *Latchkey) Alive() bool { return p.alive() }

// Signal sends sig to the process. Once a test has signalled it, Stop no
// longer reports the process's having exited before Stop as an error; the
// exit was the test's doing.
func (p *Latchkey) Signal(sig os.Signal) error {
	p.signalled.Store(true)
	return p.cmd.Process.Signal(sig)
}

// Stop ends the process by its PID: SIGCONT (should it be frozen), then
// SIGTERM, and waits for it to exit, for at most 25 s before SIGKILL. It
// reports through tb.Errorf a process that did not exit 0 on SIGTERM, that
// exited before Stop without the test's signalling it, whose PID still
// exists afterwards, or whose output mentions a panic; when tb has
// failed, it logs the output without its per-request lines. StartLatchkey
// registers Stop with tb.Cleanup; only the first call does anything.
func (p *Latchkey) Stop(tb testing.TB) {
	tb.Helper()
	p.stopOnce.Do(func() { p.stop(tb) })
}

func (p *Latchkey) stop(tb testing.TB) {
	tb.Helper()
	pid := p.PID()
	switch {
	case !p.alive():
		if !p.signalled.Load() {
			tb.Errorf("latchkey (pid %d) had exited before it was stopped: %v", pid, p.cmd.ProcessState)
		}
	// SIGCONT first: a stopped process would hold SIGTERM.
	case p.signal(stopTimeout, syscall.SIGCONT, syscall.SIGTERM):
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			tb.Errorf("latchkey exit code after SIGTERM = %d, want 0", code)
		}
	default:
		tb.Errorf("latchkey (pid %d) ignored SIGTERM for %v; killing it", pid, stopTimeout)
		p.signal(killTimeout, syscall.SIGKILL)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		tb.Errorf("latchkey pid %d still exists after it exited: kill(0)=%v", pid, err)
	}
	if out := p.Output(); strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		tb.Errorf("latchkey output mentions a panic")
	}
	if tb.Failed() {
		tb.Logf("latchkey output, request lines left out, last %d lines:\n%s", maxLogLines, p.notable())
	}
}

// notable returns the process's log without its per-request lines, which
// the tests' own messages already cover, cut to its last maxLogLines.
func (p *Latchkey) notable() string {
	var keep []string
	for _, l := range strings.Split(p.Output(), "\n") {
		if !strings.Contains(l, `"msg":"request"`) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep[max(0, len(keep)-maxLogLines):], "\n")
}
