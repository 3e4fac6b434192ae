package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tebeka/selenium"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// WebKitGTK is driven through WebKitWebDriver (Debian webkit2gtk-driver),
// the W3C WebDriver of the engine, which launches MiniBrowser (shipped with
// libwebkit2gtk-4.1-0) in automation mode. tebeka/selenium is the Go
// client of that protocol. A WebKitWebDriver holds one session, and a
// session is one MiniBrowser with an ephemeral website data store, so
// every tab is a driver and a browser of its own: a fresh cookie jar, as
// a Chromium browser context is.
const (
	webkitDriverPath = "/usr/bin/WebKitWebDriver"
	// miniBrowserGlob is where libwebkit2gtk-4.1-0 puts MiniBrowser: in
	// the architecture's library directory.
	miniBrowserGlob = "/usr/lib/*/webkit2gtk-4.1/MiniBrowser"
	xvfbPath        = "/usr/bin/Xvfb"
)

// miniBrowserPath returns MiniBrowser's path, or the glob when there is
// none.
func miniBrowserPath() string {
	if ms, _ := filepath.Glob(miniBrowserGlob); len(ms) > 0 {
		return ms[0]
	}
	return miniBrowserGlob
}

// webkitArgs are MiniBrowser's switches per profile, besides the proxy
// and the User-Agent. Its default cookie policy is no-third-party.
var webkitArgs = map[string][]string{
	"webkit/default": nil,
	"webkit/itp":     {"--enable-itp"},
}

// seleniumClientOnce sets tebeka/selenium's HTTP client, a package
// variable, once: loopback only, never an environment proxy, every command
// bounded.
var seleniumClientOnce sync.Once

// webkit is the shared part of the WebKitGTK profiles: one X server (the
// GTK MiniBrowser needs a display, even in automation mode), the proxy,
// and MiniBrowser's own User-Agent, which each tab extends with its tag.
type webkit struct {
	display     string
	proxy       string
	miniBrowser string
	userAgent   string
}

// startWebKitProfiles starts Xvfb and checks that a WebKitGTK session
// opens; tabs then start their own driver and browser.
func startWebKitProfiles(tb testing.TB, d *deployment, ps []profile) *browserSet {
	tb.Helper()
	requireBinary(tb, webkitDriverPath, "webkit2gtk-driver")
	miniBrowser := requireBinary(tb, miniBrowserPath(), "libwebkit2gtk-4.1-0")
	requireBinary(tb, xvfbPath, "xvfb")
	seleniumClientOnce.Do(func() {
		selenium.HTTPClient = &http.Client{
			Timeout:   60 * time.Second,
			Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext},
		}
	})
	w := &webkit{display: startXvfb(tb), proxy: "http://" + d.Proxy.Addr(), miniBrowser: miniBrowser}
	env := append(os.Environ(), "DISPLAY="+w.display)
	version := "WebKitGTK " + strings.TrimPrefix(binaryVersion(tb, env, miniBrowser, "--version"), "WebKitGTK ")

	// A first session, to learn the User-Agent and fail early.
	probe := w.newSession(tb, "webkit/probe", nil, "")
	ua, err := probe.wd.ExecuteScript(`return navigator.userAgent`, nil)
	if err != nil {
		tb.Fatalf("webkit: navigator.userAgent: %v", err)
	}
	w.userAgent, _ = ua.(string)
	probe.close(tb)

	set := &browserSet{Version: version, Tabs: make(map[string]func(testing.TB, string, time.Duration) browserTab)}
	for _, p := range ps {
		args, ok := webkitArgs[p.Name]
		if !ok {
			tb.Fatalf("no WebKitGTK arguments for profile %s", p.Name)
		}
		name := p.Name
		set.Tabs[p.Name] = func(tb testing.TB, tag string, timeout time.Duration) browserTab {
			return w.newSession(tb, name, args, tag)
		}
	}
	tb.Logf("webkit: %s on display %s, User-Agent %q", version, w.display, w.userAgent)
	return set
}

// startXvfb starts an X server on a free display (-displayfd) and returns
// its name; when tb ends it stops it by PID and checks it is gone.
func startXvfb(tb testing.TB) string {
	tb.Helper()
	r, wr, err := os.Pipe()
	if err != nil {
		tb.Fatalf("xvfb: %v", err)
	}
	defer r.Close()
	out := &proctest.SyncBuffer{}
	cmd := exec.Command(xvfbPath, "-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		wr.Close()
		tb.Fatalf("xvfb: start: %v", err)
	}
	wr.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	pid := cmd.Process.Pid
	tb.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			tb.Errorf("xvfb: pid %d still runs 10s after SIGTERM; killing it", pid)
			syscall.Kill(pid, syscall.SIGKILL)
			<-exited
		}
		stopPIDs(tb, "Xvfb", []int{pid}, time.Second)
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if _, err := strconv.Atoi(s); err != nil {
			tb.Fatalf("xvfb: display %q: %s", s, out)
		}
		tb.Logf("xvfb: pid %d, display :%s", pid, s)
		return ":" + s
	case <-time.After(20 * time.Second):
		tb.Fatalf("xvfb: no display within 20s: %s", out)
	}
	return ""
}

// wkTab is one WebKitWebDriver and the MiniBrowser of its session, or
// another window of that session (Sibling).
type wkTab struct {
	name string
	tag  string
	wd   selenium.WebDriver
	url  string // the driver's
	pid  int    // the driver's
	out  *proctest.SyncBuffer
	done chan struct{}
	once sync.Once
	// handle is the tab's window; current, shared by the windows of the
	// session, the one its commands go to.
	handle  string
	current *string
}

// newSession starts WebKitWebDriver on a free port, then a session:
// MiniBrowser with args, through the proxy, accepting the front's
// certificate (WebKitGTK trusts only the system's store), with a
// User-Agent tagged with tag (none for an empty tag). The driver and the
// browser stop when tb ends, checked by PID.
func (w *webkit) newSession(tb testing.TB, name string, args []string, tag string) *wkTab {
	tb.Helper()
	// localhost (the demo's, TestDemoInEngines) goes direct: it is this
	// machine.
	browserArgs := append([]string{"--automation", "--proxy=" + w.proxy, "--ignore-host=localhost"}, args...)
	if tag != "" {
		browserArgs = append(browserArgs, "--user-agent="+w.userAgent+" "+uaTag(tag))
	}
	caps := selenium.Capabilities{
		"acceptInsecureCerts": true,
		"webkitgtk:browserOptions": map[string]any{
			"binary": w.miniBrowser,
			"args":   browserArgs,
		},
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		x, err := w.launch(tb, name, tag, caps)
		if err == nil {
			return x
		}
		lastErr = err
	}
	tb.Fatalf("%s: %v", name, lastErr)
	return nil
}

func (w *webkit) launch(tb testing.TB, name, tag string, caps selenium.Capabilities) (*wkTab, error) {
	port := proctest.FreePort(tb)
	out := &proctest.SyncBuffer{}
	cmd := exec.Command(webkitDriverPath, "--port="+strconv.Itoa(port), "--host=127.0.0.1")
	cmd.Env = append(os.Environ(), "DISPLAY="+w.display)
	cmd.Stdout, cmd.Stderr = out, out
	// MiniBrowser inherits the output pipe: once the driver has exited,
	// Wait must not wait for the browser too.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", webkitDriverPath, err)
	}
	x := &wkTab{name: name, tag: tag, pid: cmd.Process.Pid, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(x.done) }()
	tb.Cleanup(func() { x.close(tb) })
	url := "http://" + loopbackAddr(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-x.done:
			return nil, fmt.Errorf("WebKitWebDriver exited (port %d taken?): %s", port, out)
		default:
		}
		c, err := net.DialTimeout("tcp", loopbackAddr(port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("WebKitWebDriver did not listen within 20s: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wd, err := selenium.NewRemote(caps, url)
	if err != nil {
		return nil, fmt.Errorf("new session: %w\n%s", err, out)
	}
	x.wd, x.url = wd, url
	if err := wd.SetAsyncScriptTimeout(30 * time.Second); err != nil {
		return nil, fmt.Errorf("script timeout: %w", err)
	}
	if x.handle, err = wd.CurrentWindowHandle(); err != nil {
		return nil, fmt.Errorf("window handle: %w", err)
	}
	cur := x.handle
	x.current = &cur
	return x, nil
}

// Sibling opens another window of the tab's session (WebDriver's New
// Window, which tebeka/selenium lacks): the same MiniBrowser and its one
// data store, so the same cookie jar and storage, and the same
// User-Agent, a browser argument. It closes with the session.
func (x *wkTab) Sibling(tb testing.TB) browserTab {
	tb.Helper()
	var r struct {
		Value struct {
			Handle string `json:"handle"`
		} `json:"value"`
	}
	url := x.url + "/session/" + x.wd.SessionID() + "/window/new"
	res, err := selenium.HTTPClient.Post(url, "application/json", strings.NewReader(`{"type": "tab"}`))
	if err != nil {
		tb.Fatalf("%s: new window: %v", x.name, err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil || res.StatusCode != http.StatusOK || r.Value.Handle == "" {
		tb.Fatalf("%s: new window: %s, %v, handle %q", x.name, res.Status, err, r.Value.Handle)
	}
	return &wkTab{name: x.name, tag: x.tag, wd: x.wd, url: x.url, pid: x.pid, out: x.out, done: x.done, handle: r.Value.Handle, current: x.current}
}

// focus makes the tab's window the one the session's commands go to.
func (x *wkTab) focus(tb testing.TB) {
	tb.Helper()
	if err := x.switchTo(); err != nil {
		tb.Fatalf("%s: %v", x.name, err)
	}
}

func (x *wkTab) switchTo() error {
	if *x.current == x.handle {
		return nil
	}
	if err := x.wd.SwitchWindow(x.handle); err != nil {
		return fmt.Errorf("switch to window %s: %w", x.handle, err)
	}
	*x.current = x.handle
	return nil
}

// close ends the session (MiniBrowser quits), stops the driver, and checks
// that every process of both is gone.
func (x *wkTab) close(tb testing.TB) {
	tb.Helper()
	x.once.Do(func() {
		pids := processTree(x.pid)
		if x.wd != nil {
			if err := x.wd.Quit(); err != nil {
				tb.Logf("%s: end session: %v", x.name, err)
			}
		}
		syscall.Kill(x.pid, syscall.SIGTERM)
		select {
		case <-x.done:
		case <-time.After(10 * time.Second):
			tb.Errorf("%s: WebKitWebDriver pid %d still runs 10s after SIGTERM; killing it", x.name, x.pid)
			syscall.Kill(x.pid, syscall.SIGKILL)
			<-x.done
		}
		stopPIDs(tb, x.name+" (WebKitGTK)", pids, 5*time.Second)
		if tb.Failed() {
			tb.Logf("%s: WebKitWebDriver output (tail):\n%s", x.name, tail(x.out.String(), 2000))
		}
	})
}

func (x *wkTab) Tag() string { return x.tag }

func (x *wkTab) Open(tb testing.TB, url string) {
	tb.Helper()
	x.focus(tb)
	if err := x.wd.Get(url); err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	waitFor(tb, x, `document.querySelector('#log li.call[data-path="/me"]') !== null`)
}

// EvalJSON runs expr as an asynchronous script: WebDriver's Execute Async
// Script resolves when the script calls its last argument.
func (x *wkTab) EvalJSON(tb testing.TB, expr string) string {
	tb.Helper()
	x.focus(tb)
	script := `const done = arguments[arguments.length - 1];
		` + jsonOf(expr) + `.then(done, e => done(JSON.stringify({"__error": String(e)})));`
	v, err := x.wd.ExecuteScriptAsync(script, nil)
	if err != nil {
		tb.Fatalf("evaluate %s: %v", expr, err)
	}
	s, ok := v.(string)
	if !ok {
		tb.Fatalf("evaluate %s: got %T %v, want a string", expr, v, v)
	}
	var e struct {
		Error string `json:"__error"`
	}
	if json.Unmarshal([]byte(s), &e) == nil && e.Error != "" {
		tb.Fatalf("evaluate %s: %s", expr, e.Error)
	}
	return s
}

func (x *wkTab) element(tb testing.TB, css string) selenium.WebElement {
	tb.Helper()
	x.focus(tb)
	el, err := x.wd.FindElement(selenium.ByCSSSelector, css)
	if err != nil {
		tb.Fatalf("find %s: %v", css, err)
	}
	return el
}

func (x *wkTab) Type(tb testing.TB, css, text string) {
	tb.Helper()
	if err := x.element(tb, css).SendKeys(text); err != nil {
		tb.Fatalf("type into %s: %v", css, err)
	}
}

func (x *wkTab) Click(tb testing.TB, css string) {
	tb.Helper()
	if err := x.element(tb, css).Click(); err != nil {
		tb.Fatalf("click %s: %v", css, err)
	}
}

// Jar: WebDriver's cookie commands see only the current document's
// cookies, never those of the API's host, so there is no jar view; the
// suite infers what was stored from what the browser sends next.
func (x *wkTab) Jar(testing.TB, string, string) ([]jarCookie, bool) { return nil, false }

func (x *wkTab) Net() *netRecorder { return nil }

func (x *wkTab) Screenshot(tb testing.TB, path string) {
	tb.Helper()
	png, err := []byte(nil), x.switchTo()
	if err == nil {
		png, err = x.wd.Screenshot()
	}
	if err != nil {
		tb.Errorf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Errorf("screenshot: %v", err)
	}
}
