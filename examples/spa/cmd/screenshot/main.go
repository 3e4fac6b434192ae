package main

import (
	"bufio"
	"bytes"
	"context"
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
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	"github.com/latchkeyhq/latchkey/internal/chromium"
)

const (
	pageStart = "http://127.0.0.1:5173/" // an address a user may type
	pageURL   = "http://localhost:5173/" // the one the demo tenant allows
	// buildTimeout bounds run.sh up to the password: the first build
	// downloads the modules.
	buildTimeout = 5 * time.Minute
	stepTimeout  = 30 * time.Second
	stopTimeout  = 25 * time.Second
	width        = 1280
	height       = 1100
)

var passwordLine = regexp.MustCompile(`username "demo" with password (\S+)`)

func main() {
	out := flag.String("out", "docs/example-spa.png", "`file` to write the PNG to")
	chromium := flag.String("chromium", "/usr/bin/chromium", "Chromium `binary`")
	flag.Parse()
	if err := run(*out, *chromium); err != nil {
		fmt.Fprintln(os.Stderr, "screenshot:", err)
		os.Exit(1)
	}
}

func run(out, chromium string) (err error) {
	if _, err := exec.LookPath(chromium); err != nil {
		return fmt.Errorf("no Chromium at %s (scripts/ensure-chromium.sh installs Debian's): %w", chromium, err)
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	for _, a := range []string{"127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:5173"} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("%s is taken: stop the make run that holds it", a)
		}
	}

	demo, err := startDemo(root)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, demo.stop()) }()

	shot, err := shoot(chromium, demo.password)
	if err != nil {
		return err
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		return fmt.Errorf("the screenshot is not a PNG: %w", err)
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "screenshot: wrote %s (%dx%d, %d bytes)\n", out, cfg.Width, cfg.Height, len(shot))
	return nil
}

// moduleRoot is the directory of go.mod, where run.sh expects to start.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run this inside the Latchkey module")
	}
	return filepath.Dir(gomod), nil
}

// demo is a running scripts/run.sh.
type demo struct {
	cmd      *exec.Cmd
	exited   chan error
	children []int // Latchkey's and the SPA's PIDs
	password string
}

// startDemo runs scripts/run.sh and waits for the demo password and the
// page. Its output goes to stderr, but for the password.
func startDemo(root string) (*demo, error) {
	cmd := exec.Command(filepath.Join(root, "scripts", "run.sh"))
	cmd.Dir = root
	// Its own process group, so that a Ctrl-C here reaches run.sh only
	// through stop, which it traps to stop its two children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("scripts/run.sh: %w", err)
	}
	d := &demo{cmd: cmd, exited: make(chan error, 1)}
	go func() { err := cmd.Wait(); pw.Close(); d.exited <- err }()

	found := make(chan string, 1)
	go func() {
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
		io.Copy(io.Discard, pr)
	}()
	select {
	case d.password = <-found:
	case err := <-d.exited:
		d.exited <- err
		return nil, fmt.Errorf("scripts/run.sh exited before printing the demo password: %v", err)
	case <-time.After(buildTimeout):
		return nil, errors.Join(errors.New("scripts/run.sh printed no demo password within "+buildTimeout.String()), d.stop())
	}
	d.children = childrenOf(cmd.Process.Pid)
	deadline := time.Now().Add(stepTimeout)
	for {
		res, err := http.Get(pageURL)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return d, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.Join(fmt.Errorf("the SPA did not answer at %s: %v", pageURL, err), d.stop())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM to run.sh, which stops Latchkey and the SPA, and
// checks that all three are gone.
func (d *demo) stop() error {
	pid := d.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-d.exited
		return fmt.Errorf("scripts/run.sh (pid %d) ignored SIGTERM for %v", pid, stopTimeout)
	}
	var errs []error
	for _, c := range d.children {
		if !waitGone(c, stopTimeout) {
			errs = append(errs, fmt.Errorf("pid %d, started by scripts/run.sh, still runs after it stopped", c))
		}
	}
	if len(errs) == 0 {
		fmt.Fprintf(os.Stderr, "screenshot: scripts/run.sh (pid %d) and its processes %v stopped\n", pid, d.children)
	}
	return errors.Join(errs...)
}

// shoot signs in through the page and returns the screenshot.
func shoot(chromiumPath, password string) (shot []byte, err error) {
	dataDir, err := os.MkdirTemp("", "latchkey-screenshot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dataDir)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), append(chromium.Options(chromiumPath, dataDir),
		chromedp.Flag("force-device-scale-factor", "1"),
		// Only localhost and 127.0.0.1 resolve: nothing leaves this machine.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.WindowSize(width, height),
	)...)
	bctx, bcancel := chromedp.NewContext(allocCtx)
	pid := 0
	defer func() {
		cctx, ccancel := context.WithTimeout(bctx, 10*time.Second)
		_ = chromedp.Cancel(cctx)
		ccancel()
		bcancel()
		allocCancel()
		if pid != 0 && !waitGone(pid, stopTimeout) {
			err = errors.Join(err, fmt.Errorf("chromium (pid %d) still runs after closing", pid))
		}
	}()
	// The first call starts the browser, and must not run under a
	// timeout: that would bound the browser's life.
	if _, err := chromedp.CallBrowser(bctx, browser.GetVersion, cdp.Empty{}); err != nil {
		return nil, fmt.Errorf("start %s: %w", chromiumPath, err)
	}
	if c := chromedp.FromContext(bctx); c != nil && c.Browser != nil && c.Browser.Process() != nil {
		pid = c.Browser.Process().Pid
	}
	// A tab, likewise opened by a first call without a timeout: the
	// steps below each run under one.
	ctx, cancel := chromedp.NewContext(bctx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		return nil, fmt.Errorf("open a tab: %w", err)
	}

	step := func(what string, actions ...chromedp.Action[chromedp.Void]) error {
		sctx, scancel := context.WithTimeout(ctx, stepTimeout)
		defer scancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintln(os.Stderr, "screenshot:", what)
		return nil
	}
	const signedIn = `document.getElementById('who').textContent === 'Signed in as demo'`
	if err := step("open "+pageStart, chromedp.EmulateViewport(width, height), chromedp.Navigate(pageStart)); err != nil {
		return nil, err
	}
	lctx, lcancel := context.WithTimeout(ctx, stepTimeout)
	location, err := chromedp.Run(lctx, chromedp.Evaluate[string](`location.href`))
	lcancel()
	if err != nil {
		return nil, fmt.Errorf("read the location: %w", err)
	}
	if location != pageURL {
		return nil, fmt.Errorf("%s ended at %s, want %s: the SPA must send other loopback names on to the one the tenant allows", pageStart, location, pageURL)
	}
	if err := step("wait for the page to ask who we are",
		chromedp.Poll[chromedp.Void](`document.getElementById('who-status').textContent !== 'Checking for a session…'`),
	); err != nil {
		return nil, err
	}
	if err := step("sign in as demo through the form",
		chromedp.SendKeys(chromedp.CSS("#username"), "demo"),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.Poll[chromedp.Void](signedIn),
	); err != nil {
		return nil, err
	}
	if err := step("load the sessions",
		chromedp.Click(chromedp.CSS("#load-sessions")),
		chromedp.Poll[chromedp.Void](`/live session/.test(document.getElementById('sessions-status').textContent)`),
		chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
		chromedp.Sleep(300*time.Millisecond), // let a repaint land
	); err != nil {
		return nil, err
	}
	sctx, scancel := context.WithTimeout(ctx, stepTimeout)
	shot, err = chromedp.Run(sctx, chromedp.CaptureScreenshot())
	scancel()
	if err != nil {
		return nil, fmt.Errorf("take the screenshot: %w", err)
	}
	if err := step("reload: still signed in",
		chromedp.Reload(),
		chromedp.Poll[chromedp.Void](signedIn),
	); err != nil {
		return nil, fmt.Errorf("%w (the session did not stick)", err)
	}
	return shot, nil
}

// childrenOf returns the PIDs whose parent is pid.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, p)
		}
	}
	return kids
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
