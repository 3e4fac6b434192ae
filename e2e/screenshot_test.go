//go:build screenshot

package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

var screenshotOut = flag.String("out", "docs/example-spa.png", "`file` to write the screenshot to, relative to the module root")

const (
	demoStart = "http://127.0.0.1:5173/" // an address a user may type
	demoURL   = "http://localhost:5173/" // the one the demo tenant allows
	// demoBuildTimeout bounds run.sh up to the password: the first build
	// downloads the modules.
	demoBuildTimeout = 5 * time.Minute
	demoStopTimeout  = 25 * time.Second
)

// TestScreenshot is `make screenshot`, never part of `go test ./...` (the
// screenshot build tag keeps it out): it retakes the README's picture of
// the example SPA from what `make run` really gives, and checks on the way
// that the demo works in a browser. It runs scripts/run.sh from the module
// root, reads the demo password it prints, opens http://127.0.0.1:5173/,
// which must send it on to http://localhost:5173/, signs in as the demo
// user through the page's form, loads the sessions, takes the screenshot,
// then reloads the page and requires it to still be signed in. The PNG
// (-out) is written only if every step held. Chromium resolves no name
// (localhost and IP literals need none), so nothing leaves this machine;
// run.sh (which stops Latchkey and the SPA), and then Chromium, are
// stopped by their PIDs and checked to be gone.
func TestScreenshot(t *testing.T) {
	const width, height = 1280, 1100
	chromium, err := chromiumBinary()
	if err != nil {
		t.Fatal(err) // make screenshot installs it first
	}
	root := proctest.ModuleRoot(t)
	for _, a := range []string{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:5173"} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s is taken: stop the make run that holds it", a)
		}
	}
	password := startDemo(t, root)
	b := startBrowser(t, chromium, browserSpec{Name: "screenshot", Flags: map[string]any{
		// Only localhost and 127.0.0.1 resolve.
		"host-resolver-rules":       "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
		"window-size":               fmt.Sprintf("%d,%d", width, height),
		"force-device-scale-factor": "1",
	}}, "")
	tab := b.newTab(t, "screenshot", 3*time.Minute)
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab.ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Log(what)
	}

	const signedIn = `document.getElementById('who').textContent === 'Signed in as demo'`
	step("open "+demoStart, chromedp.EmulateViewport(width, height), chromedp.Navigate(demoStart))
	if location, err := chromedp.Run(tab.ctx, chromedp.Evaluate[string](`location.href`)); err != nil || location != demoURL {
		t.Fatalf("%s ended at %q (%v), want %s: the SPA must send other loopback names on to the one the tenant allows", demoStart, location, err, demoURL)
	}
	step("wait for the page to ask who we are",
		chromedp.Poll[chromedp.Void](`document.getElementById('who-status').textContent !== 'Checking for a session…'`))
	step("sign in as demo through the form",
		chromedp.SendKeys(chromedp.CSS("#username"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.Poll[chromedp.Void](signedIn),
	)
	step("load the sessions",
		chromedp.Click(chromedp.CSS("#load-sessions")),
		chromedp.Poll[chromedp.Void](`/live session/.test(document.getElementById('sessions-status').textContent)`),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
		chromedp.Sleep(300*time.Millisecond), // let a repaint land
	)
	shot, err := chromedp.Run(tab.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("take the screenshot: %v", err)
	}
	step("reload: still signed in (the session sticks)", chromedp.Reload(), chromedp.Poll[chromedp.Void](signedIn))

	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	out := *screenshotOut
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%dx%d, %d bytes)", out, cfg.Width, cfg.Height, len(shot))
}

// startDemo runs scripts/run.sh and returns the demo password it prints,
// once the SPA answers. Its output goes to stderr, but for the password.
// When t ends, run.sh is stopped by its PID, which it traps to stop
// Latchkey and the SPA; it waits for them before it exits, so once it has,
// no process of its group may be left.
func startDemo(t *testing.T, root string) string {
	cmd := exec.Command(filepath.Join(root, "scripts", "run.sh"))
	cmd.Dir = root
	// Its own process group, so that a Ctrl-C here reaches run.sh only
	// through the SIGTERM of the cleanup, and so that the cleanup can tell
	// that none of its children is left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close() // run.sh and its children hold their own copies
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("scripts/run.sh: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		pid := cmd.Process.Pid
		select {
		case <-exited:
			return // on its own: its EXIT trap has stopped its children
		default:
		}
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(demoStopTimeout):
			t.Errorf("scripts/run.sh (pid %d) ignored SIGTERM for %v; killing it", pid, demoStopTimeout)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("processes that scripts/run.sh (pid %d) started still run after it stopped: kill(-%d, 0)=%v", pid, pid, err)
		}
	})

	found := make(chan string, 1)
	go func() {
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			if m := passwordLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1]:
				default:
				}
				line = strings.Replace(line, m[1], "(password)", 1)
			}
			fmt.Fprintln(os.Stderr, "  run.sh |", line)
		}
		io.Copy(io.Discard, pr) // a line too long for the scanner must not block run.sh
	}()
	var password string
	select {
	case password = <-found:
	case <-exited:
		t.Fatalf("scripts/run.sh exited before printing the demo password: %v", cmd.ProcessState)
	case <-time.After(demoBuildTimeout):
		t.Fatalf("scripts/run.sh printed no demo password within %v", demoBuildTimeout)
	}
	client := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res, err := client.Get(demoURL)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return password
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the SPA did not answer at %s: %v", demoURL, err)
		}
	}
}
