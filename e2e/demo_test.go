package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// passwordLine is how `latchkey serve` prints the demo user's password.
var passwordLine = regexp.MustCompile(`username "demo" with password (\S+)`)

// demoProfiles are the profiles TestDemoInEngines runs the demo in, one
// per engine.
var demoProfiles = []string{"chromium/3pc-blocked", "firefox/default", "webkit/default"}

// TestDemoInEngines runs what `make run` runs, on free ports, and proves
// that its session sticks in every engine: in one profile of each, at
// once, a fresh tab opens the example SPA on http://localhost, signs in as
// the demo user through the form, reloads and must still be signed in (the
// cookie was stored, and sent with the reloaded page's me), logs out
// through the page and, reloaded, must be signed out. Latchkey runs with no configuration
// but its listeners and the demo tenant's origin (LATCHKEY_DEMO_ORIGIN);
// the SPA is its binary, as run.sh builds it. The browsers reach
// localhost directly: the suite's proxy has no front here, and refuses
// whatever else they try.
func TestDemoInEngines(t *testing.T) {
	page, password := startDemoPair(t)
	// The launchers take a deployment; this one has no front, so its proxy
	// (which tunnels only to a front on port 0) refuses everything, and a
	// certificate nobody serves.
	d := &deployment{Run: randHex(t, 3), PKI: newPKI(t, []string{"localhost"})}
	d.Proxy = startProxy(t, 0, d.HostSuffix())
	for _, e := range engines() {
		t.Run(e.Name, func(t *testing.T) {
			t.Parallel()
			ps := slices.DeleteFunc(profilesOf(e.Name), func(p profile) bool { return !slices.Contains(demoProfiles, p.Name) })
			set := e.Start(t, d, ps)
			t.Logf("%s: %s", ps[0].Name, set.Version)
			keepsDemoSession(t, set.Tabs[ps[0].Name](t, "demo-"+e.Name, scenarioTimeout), page, password)
		})
	}
}

// keepsDemoSession signs in on page in x, reloads, logs out and reloads,
// and checks what the page shows after each.
func keepsDemoSession(t *testing.T, x browserTab, page, password string) {
	const me = `document.querySelectorAll('#log li.call[data-path="/me"]').length`
	x.Open(t, page)
	demoShows(t, x, "a fresh tab", "/me", "401", "Not signed in")
	if r := loginUI(t, x, "demo", password); r.Status != 200 {
		t.Fatalf("login through the form: %s, want 200", r.Outcome())
	}
	waitFor(t, x, me+" === 2") // the form asks who we are after a login
	demoShows(t, x, "after signing in", "/me", "200", "Signed in as demo")
	x.Open(t, page) // a reload: a new document, the same jar
	demoShows(t, x, "after a reload", "/me", "200", "Signed in as demo")
	if t.Failed() {
		return // no session to log out of
	}
	x.Click(t, "#logout")
	waitFor(t, x, `document.querySelector('#log li.call[data-path="/logout"]') !== null`)
	demoShows(t, x, "after logging out", "/logout", "204", "Not signed in")
	x.Open(t, page)
	demoShows(t, x, "after logging out and a reload", "/me", "401", "Not signed in")
}

// demoShows checks that the page's last call to path ended with status
// and that #who reads want.
func demoShows(t *testing.T, x browserTab, when, path, status, want string) {
	t.Helper()
	got := strings.Trim(x.EvalJSON(t, fmt.Sprintf(`document.querySelector('#log li.call[data-path="%s"]').dataset.status`, path)), `"`)
	w := who(t, x, want)
	t.Logf("%s: %s → %s, #who %q", when, path, got, w)
	if got != status || w != want {
		t.Errorf("%s: %s → %s and #who %q, want %s and %q", when, path, got, w, status, want)
	}
}

// startDemoPair starts the demo's two processes: Latchkey with no
// configuration (the in-memory store and the demo tenant), whose origin is
// http://localhost:S, then the example SPA there, calling Latchkey at
// http://localhost:P. It returns the page's URL and the password Latchkey
// printed. S was free a moment ago; should the SPA find it taken, both
// start again on new ports. Both stop by PID when t ends.
func startDemoPair(t *testing.T) (page, password string) {
	proctest.PrebuildLatchkey()
	spa := filepath.Join(t.TempDir(), "spa")
	proctest.GoBuild(t, "-o", spa, "./examples/spa/cmd/spa")
	for attempt := 1; ; attempt++ {
		page = "http://localhost:" + strconv.Itoa(proctest.FreePort(t))
		// As run.sh runs it: no cookie key and no admin token either.
		lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{Env: map[string]string{
			"LATCHKEY_DEMO_ORIGIN": page, "LATCHKEY_COOKIE_KEYS": "", "LATCHKEY_ADMIN_TOKEN": "",
		}})
		_, port, _ := net.SplitHostPort(lk.Public)
		err := startSPA(t, spa, strings.TrimPrefix(page, "http://"), "http://localhost:"+port+"/v1/t/example")
		if err == nil {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if m := passwordLine.FindStringSubmatch(lk.Output()); m != nil {
					return page + "/", m[1]
				}
				if time.Now().After(deadline) {
					t.Fatalf("latchkey printed no demo password within 10s")
				}
			}
		}
		lk.Stop(t)
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
}

// startSPA runs the SPA binary on addr, calling api, and returns once it
// serves; when t ends it is stopped by its PID (SIGTERM, then SIGKILL after
// 15 s), must have exited 0 and be gone.
func startSPA(t *testing.T, bin, addr, api string) error {
	out := &proctest.SyncBuffer{}
	cmd := exec.Command(bin, "-addr", addr, "-api", api)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	pid, exited := cmd.Process.Pid, make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return // it failed to start: reported then
		default:
		}
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-exited:
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("example SPA exit code after SIGTERM = %d, want 0\n%s", code, out)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("example SPA (pid %d) ignored SIGTERM for 15s; killing it", pid)
			syscall.Kill(pid, syscall.SIGKILL)
			<-exited
		}
		stopPIDs(t, "example SPA", []int{pid}, time.Second)
	})
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), `"msg":"example SPA serving"`); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("example SPA on %s exited (%v):\n%s", addr, cmd.ProcessState, out)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("example SPA on %s not serving within 20s:\n%s", addr, out)
		}
	}
	return nil
}
