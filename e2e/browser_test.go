package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// chromiumPath is Debian's chromium, which the suite drives unless
// LATCHKEY_E2E_CHROMIUM names another Chromium binary.
const chromiumPath = "/usr/bin/chromium"

// chromiumBinary returns LATCHKEY_E2E_CHROMIUM, or else chromiumPath, and
// whether it is installed (with the reason if not).
func chromiumBinary() (string, error) {
	path := chromiumPath
	if p := os.Getenv("LATCHKEY_E2E_CHROMIUM"); p != "" {
		path = p
	}
	if _, err := exec.LookPath(path); err != nil {
		return path, fmt.Errorf("no Chromium at %s (Debian package chromium; scripts/ensure-browsers.sh installs it): %w", path, err)
	}
	return path, nil
}

// requireChromium returns the path of Chromium, or ends tb: under CI=true a
// missing browser is a failure (the suite must run there), elsewhere a
// skip.
func requireChromium(tb testing.TB) string {
	tb.Helper()
	path, err := chromiumBinary()
	if err != nil {
		proctest.Unavailable(tb, "%v, needed by the browser suite", err)
	}
	return path
}

// chromiumVersion runs chromium --version.
func chromiumVersion(tb testing.TB, path string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		tb.Fatalf("%s --version: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// browserSpec describes one Chromium process of the suite.
type browserSpec struct {
	// Name labels the browser in logs and the summary.
	Name string
	// Prefs are written to <user-data-dir>/Default/Preferences before
	// start, e.g. {"profile": {"cookie_controls_mode": 1}}.
	Prefs map[string]any
	// Flags are extra command-line switches.
	Flags map[string]any
}

// browser is a running Chromium, driven over the DevTools protocol.
type browser struct {
	Name      string
	PID       int
	Product   string // Browser.getVersion product, e.g. Chrome/156.0.8078.108
	UserAgent string
	ctx       context.Context
	dataDir   string
	out       *proctest.SyncBuffer
}

// startBrowser starts Chromium for spec, headless, with its own fresh
// profile, resolving every *.test host to 127.0.0.1 and trusting the
// certificate whose SPKI hash is spkiHash. When tb ends it closes the
// browser, and checks that its PID and every process of its profile are
// gone (killing leftovers by PID).
func startBrowser(tb testing.TB, execPath string, spec browserSpec, spkiHash string) *browser {
	tb.Helper()
	dataDir := tb.TempDir()
	if spec.Prefs != nil {
		b, err := json.Marshal(spec.Prefs)
		if err != nil {
			tb.Fatalf("preferences: %v", err)
		}
		if err := os.MkdirAll(filepath.Join(dataDir, "Default"), 0o700); err != nil {
			tb.Fatalf("profile: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dataDir, "Default", "Preferences"), b, 0o600); err != nil {
			tb.Fatalf("preferences: %v", err)
		}
	}
	out := &proctest.SyncBuffer{}
	// Hermetic on a machine with a closed network: headless, no sandbox
	// (the tests run as root), a fresh profile, and none of the background
	// services (updates, sync, metrics, QUIC) that would try to reach the
	// outside.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.UserDataDir(dataDir),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("metrics-recording-only", true),
		// No name resolves (a spec maps the test names to the loopback),
		// so a stray request cannot leave the machine.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND"),
		chromedp.Flag("ignore-certificate-errors-spki-list", spkiHash),
		chromedp.WindowSize(1280, 1024),
		chromedp.CombinedOutput(out),
	}
	for k, v := range spec.Flags {
		opts = append(opts, chromedp.Flag(k, v))
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &browser{Name: spec.Name, ctx: ctx, dataDir: dataDir, out: out}

	// The first call starts the process. It must not run under a timeout
	// (that would bound the browser's life), so bound it from outside.
	type started struct {
		v   cdpbrowser.GetVersionResult
		err error
	}
	done := make(chan started, 1)
	go func() {
		v, err := chromedp.CallBrowser(ctx, cdpbrowser.GetVersion, cdp.Empty{})
		done <- started{v, err}
	}()
	var s started
	select {
	case s = <-done:
	case <-time.After(30 * time.Second):
		allocCancel()
		s = <-done
		s.err = errors.Join(errors.New("no answer within 30s"), s.err)
	}
	if c := chromedp.FromContext(ctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		b.PID = c.Browser.Process().Pid
	}
	tb.Cleanup(func() { b.stop(tb, cancel, allocCancel) })
	if s.err != nil {
		tb.Fatalf("start %s (%s): %v\nChromium output:\n%s", spec.Name, execPath, s.err, out)
	}
	b.Product, b.UserAgent = s.v.Product, s.v.UserAgent
	return b
}

// stop closes the browser gracefully (Browser.close), then makes sure the
// process and its children are gone.
func (b *browser) stop(tb testing.TB, cancel, allocCancel context.CancelFunc) {
	tb.Helper()
	cctx, ccancel := context.WithTimeout(b.ctx, 10*time.Second)
	if err := chromedp.Cancel(cctx); err != nil && !errors.Is(err, context.Canceled) {
		tb.Logf("%s: graceful close: %v", b.Name, err)
	}
	ccancel()
	cancel()
	allocCancel() // kills the process if it is still there
	if b.PID == 0 {
		return
	}
	if !waitGone(b.PID, 10*time.Second) {
		tb.Errorf("%s: Chromium pid %d still runs 10s after close; killing it", b.Name, b.PID)
		syscall.Kill(b.PID, syscall.SIGKILL)
		if !waitGone(b.PID, 5*time.Second) {
			tb.Errorf("%s: Chromium pid %d survived SIGKILL", b.Name, b.PID)
		}
	}
	// Children (zygote, network service, renderers) carry the profile's
	// --user-data-dir; they exit with the browser, but give them a moment
	// and then end the stragglers by PID before the profile is removed.
	deadline := time.Now().Add(5 * time.Second)
	left := profileProcesses(b.dataDir)
	for len(left) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		left = profileProcesses(b.dataDir)
	}
	for _, pid := range left {
		tb.Logf("%s: Chromium child pid %d outlived the browser by 5s; killing it", b.Name, pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if tb.Failed() {
		tb.Logf("%s: Chromium output (tail):\n%s", b.Name, tail(b.out.String(), 4000))
	}
}

// waitGone reports whether pid stopped existing within d.
func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// profileProcesses returns the PIDs of the processes whose command line
// has --user-data-dir=dir: the browser started with that (unique) profile
// and its children.
func profileProcesses(dir string) []int {
	want := []byte("--user-data-dir=" + dir)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
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
		for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
			if bytes.Equal(arg, want) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// startChromiumProfiles starts one Chromium per profile of ps, each with
// the preferences and switches of its setting (chromiumSpecs).
func startChromiumProfiles(tb testing.TB, d *deployment, ps []profile) *browserSet {
	tb.Helper()
	path := requireChromium(tb)
	set := &browserSet{Version: chromiumVersion(tb, path), Tabs: make(map[string]func(testing.TB, string, time.Duration) browserTab)}
	specs := chromiumSpecs()
	for _, p := range ps {
		spec, ok := specs[p.Name]
		if !ok {
			tb.Fatalf("no Chromium spec for profile %s", p.Name)
		}
		spec.Name = p.Name
		// Every name of the run is this machine, and localhost is (the
		// demo's, TestDemoInEngines); nothing else resolves.
		spec.Flags = maps.Clone(spec.Flags)
		if spec.Flags == nil {
			spec.Flags = make(map[string]any)
		}
		spec.Flags["host-resolver-rules"] = "MAP *" + d.HostSuffix() + " 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE localhost"
		b := startBrowser(tb, path, spec, d.PKI.SPKIHash)
		tb.Logf("%s: pid %d, DevTools product %s", p.Name, b.PID, b.Product)
		set.Tabs[p.Name] = func(tb testing.TB, tag string, timeout time.Duration) browserTab {
			return b.newTab(tb, tag, timeout)
		}
	}
	return set
}

// cookieControls is the profile preference behind chrome://settings/cookies:
// 0 allows third-party cookies, 1 blocks them, 2 blocks them in Incognito
// only. This Chromium (156, headless) blocks them when the preference is
// unset, so the "allowed" browser must set it.
func cookieControls(mode int) map[string]any {
	return map[string]any{"profile": map[string]any{"cookie_controls_mode": mode}}
}

// chromiumSpecs are the Chromium browsers of the suite, by profile name.
// The phase-out one allows third-party cookies by the preference and
// blocks them by the --test-third-party-cookie-phaseout switch, to show
// which mechanism takes effect.
func chromiumSpecs() map[string]browserSpec {
	return map[string]browserSpec{
		"chromium/3pc-allowed": {Prefs: cookieControls(2)},
		"chromium/3pc-blocked": {Prefs: cookieControls(1)},
		"chromium/3pc-phaseout": {
			Prefs: cookieControls(2),
			Flags: map[string]any{"test-third-party-cookie-phaseout": true},
		},
	}
}
