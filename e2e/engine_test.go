package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// Engines of the suite.
const (
	engineChromium = "chromium"
	engineFirefox  = "firefox"
	engineWebKit   = "webkit"
)

// profile is one browser set-up the scenarios run in: an engine and the
// cookie setting a user may have.
type profile struct {
	Name    string // engine/setting, as the expectation table names it
	Engine  string
	Setting string // what the profile is, for the matrix and the docs
}

// profiles are every engine profile of the suite, in the order of the
// matrix and the docs.
func profiles() []profile {
	return []profile{
		{"chromium/3pc-allowed", engineChromium, "third-party cookies allowed (profile preference cookie_controls_mode 2)"},
		{"chromium/3pc-blocked", engineChromium, "third-party cookies blocked by the user (cookie_controls_mode 1; also this headless Chromium's default)"},
		{"chromium/3pc-phaseout", engineChromium, "third-party cookies allowed by the preference, blocked by --test-third-party-cookie-phaseout"},
		{"firefox/default", engineFirefox, "default: Total Cookie Protection (network.cookie.cookieBehavior 5)"},
		{"firefox/3pc-blocked", engineFirefox, "cross-site cookies blocked by the user (network.cookie.cookieBehavior 1)"},
		{"webkit/default", engineWebKit, "MiniBrowser's default policy (no third-party cookies), no ITP"},
		{"webkit/itp", engineWebKit, "the same with Intelligent Tracking Prevention (--enable-itp), as in Safari"},
	}
}

func profilesOf(engine string) []profile {
	var out []profile
	for _, p := range profiles() {
		if p.Engine == engine {
			out = append(out, p)
		}
	}
	return out
}

// browserTab is one scenario's page, in a cookie jar of its own (a
// Chromium browser context, a Firefox user context, a fresh WebKitGTK
// session), whatever the engine, or another tab in the same jar
// (Sibling).
type browserTab interface {
	// Tag is the tab's User-Agent suffix (see uaTag), by which the front
	// tells its requests from those of parallel tabs.
	Tag() string
	// Open loads the SPA at url and waits for its first call to /me to be
	// logged.
	Open(tb testing.TB, url string)
	// EvalJSON evaluates the JavaScript expression expr in the page,
	// awaits it if it is a promise, and returns the JSON of its value.
	EvalJSON(tb testing.TB, expr string) string
	// Type types text into the element css selects, as a person would.
	Type(tb testing.TB, css, text string)
	// Click clicks the element css selects.
	Click(tb testing.TB, css string)
	// Jar returns the cookies named name in the tab's cookie jar that a
	// request from this page to apiOrigin would see, partitioned ones
	// included, and false when the engine offers no view of its jar.
	Jar(tb testing.TB, name, apiOrigin string) ([]jarCookie, bool)
	// Net returns the engine's own log of the tab's requests, or nil when
	// it keeps none.
	Net() *netRecorder
	// Screenshot saves a PNG of the page to path.
	Screenshot(tb testing.TB, path string)
	// Sibling opens a second tab in this tab's cookie jar and storage,
	// as a user opens another tab of the same browser (a target in the
	// same Chromium browser context, a browsing context in the same
	// Firefox user context, a window of the same WebKitGTK session),
	// with the same tag: the tabs of one page share its BroadcastChannel.
	// It closes with this tab.
	Sibling(tb testing.TB) browserTab
}

// jarCookie is a cookie as an engine's jar reports it.
type jarCookie struct {
	Name, Domain string
	SameSite     string // lax, strict, none, or "" when unset
	Secure       bool
	HTTPOnly     bool
	// PartitionKey is the top-level site the cookie is keyed to (e.g.
	// https://beta-R.test), empty when it is unpartitioned.
	PartitionKey string
}

// browserSet is the running browsers of one engine, by profile name.
type browserSet struct {
	Version string // the engine's version, as its binary reports it
	Tabs    map[string]func(tb testing.TB, tag string, timeout time.Duration) browserTab
}

// engineStarter starts the browsers of an engine for its profiles; tb's
// cleanups stop them, by PID, and check they are gone.
type engineStarter func(tb testing.TB, d *deployment, ps []profile) *browserSet

// engines returns how to start each engine, in matrix order.
func engines() []struct {
	Name  string
	Start engineStarter
} {
	return []struct {
		Name  string
		Start engineStarter
	}{
		{engineChromium, startChromiumProfiles},
		{engineFirefox, startFirefoxProfiles},
		{engineWebKit, startWebKitProfiles},
	}
}

// requireBinary returns path if it is an executable, or ends tb: under
// CI=true a missing engine fails (the suite must run there), elsewhere it
// skips. pkg is the Debian package that has it.
func requireBinary(tb testing.TB, path, pkg string) string {
	tb.Helper()
	if _, err := exec.LookPath(path); err != nil {
		proctest.Unavailable(tb, "no %s (Debian package %s; scripts/ensure-browsers.sh installs it): %v, needed by the browser suite", path, pkg, err)
	}
	return path
}

// binaryVersion runs path with args (e.g. --version) and returns its
// first line of output.
func binaryVersion(tb testing.TB, env []string, path string, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s %v: %v", path, args, err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// processTree returns pid and its descendants, from /proc.
func processTree(pid int) []int {
	children := make(map[int][]int)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parentPID(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// parentPID reads the PPid of pid from /proc/pid/stat.
func parentPID(pid int) (int, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

// processesWithArg returns the PIDs of the program whose path ends in
// prog and whose command line has arg as one of its arguments: children
// that a browser re-parents away from itself (Firefox's crash helper,
// which names its parent's PID).
func processesWithArg(prog, arg string) []int {
	want := []byte(arg)
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(cmdline, []byte{0})
		if !bytes.HasSuffix(args[0], []byte(prog)) {
			continue
		}
		for _, a := range args[1:] {
			if bytes.Equal(a, want) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// stopPIDs waits up to grace for every one of pids (processes this suite
// started, or their children) to be gone, then kills the rest by PID and
// checks that they went: no process of a browser outlives the test. what
// names them in the messages.
func stopPIDs(tb testing.TB, what string, pids []int, grace time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(grace)
	left := slices.DeleteFunc(slices.Clone(pids), func(p int) bool { return !alive(p) })
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		left = slices.DeleteFunc(left, func(p int) bool { return !alive(p) })
	}
	if len(left) == 0 {
		return
	}
	tb.Logf("%s: pids %v still run %v after the browser was closed; killing them", what, left, grace)
	for _, p := range left {
		syscall.Kill(p, syscall.SIGKILL)
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		left = slices.DeleteFunc(left, func(p int) bool { return !alive(p) })
	}
	if len(left) > 0 {
		tb.Errorf("%s: pids %v survived SIGKILL", what, left)
	}
}
