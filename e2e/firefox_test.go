package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// firefoxPath is Debian's Firefox ESR, which the suite drives unless
// LATCHKEY_E2E_FIREFOX names another Firefox binary. Debian ships no
// geckodriver: Firefox speaks WebDriver BiDi itself when started with
// --remote-debugging-port.
const firefoxPath = "/usr/lib/firefox-esr/firefox-esr"

func firefoxBinary() string {
	if p := os.Getenv("LATCHKEY_E2E_FIREFOX"); p != "" {
		return p
	}
	return firefoxPath
}

// firefoxCookieBehavior is network.cookie.cookieBehavior per profile: 5 is
// the default, Total Cookie Protection (third-party cookies kept, in a jar
// per top-level site); 1 is "block cross-site cookies", which rejects
// every cookie a cross-site request sets, partitioned or not.
var firefoxCookieBehavior = map[string]int{
	"firefox/default":     5,
	"firefox/3pc-blocked": 1,
}

// startFirefoxProfiles starts one Firefox per profile of ps.
func startFirefoxProfiles(tb testing.TB, d *deployment, ps []profile) *browserSet {
	tb.Helper()
	path := requireBinary(tb, firefoxBinary(), "firefox-esr")
	requireBinary(tb, "certutil", "libnss3-tools")
	set := &browserSet{Version: binaryVersion(tb, firefoxEnv(), path, "--version"), Tabs: make(map[string]func(testing.TB, string, time.Duration) browserTab)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan string, len(ps))
	for _, p := range ps {
		behavior, ok := firefoxCookieBehavior[p.Name]
		if !ok {
			tb.Fatalf("no Firefox cookie behaviour for profile %s", p.Name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := startFirefox(tb, path, p.Name, behavior, d)
			if err != nil {
				errs <- err.Error()
				return
			}
			mu.Lock()
			set.Tabs[p.Name] = f.newTab
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		tb.Error(e)
	}
	if tb.Failed() {
		tb.FailNow()
	}
	return set
}

// firefoxEnv is the environment of every Firefox process: no crash
// reporter dialog or upload, and no remote-control of another instance.
func firefoxEnv() []string {
	return append(os.Environ(), "MOZ_CRASHREPORTER_DISABLE=1", "MOZ_NO_REMOTE=1", "MOZ_HEADLESS=1")
}

// firefox is a running Firefox, driven over WebDriver BiDi.
type firefox struct {
	name      string
	pid       int
	userAgent string
	bidi      *bidiConn

	mu   sync.Mutex
	nets map[string]*netRecorder // by browsing context
}

var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// startFirefox starts Firefox headless with a fresh profile: the test CA
// imported into its certificate database (certutil), and user.js setting
// the cookie behaviour, the proxy to the front, and none of the background
// services that would reach the network. When tb ends it closes the
// browser and checks that its processes are gone.
func startFirefox(tb testing.TB, path, name string, cookieBehavior int, d *deployment) (*firefox, error) {
	dir := tb.TempDir()
	if err := firefoxProfile(dir, cookieBehavior, d); err != nil {
		return nil, fmt.Errorf("%s: profile: %w", name, err)
	}
	out := &proctest.SyncBuffer{}
	cmd := exec.Command(path, "--headless", "--no-remote", "--profile", dir, "--remote-debugging-port", "0", "about:blank")
	cmd.Env = firefoxEnv()
	cmd.Stdout = out
	// Its children inherit stdout: once Firefox has exited, Wait must not
	// wait for them too.
	cmd.WaitDelay = 2 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", name, path, err)
	}
	f := &firefox{name: name, pid: cmd.Process.Pid, nets: make(map[string]*netRecorder)}
	exited := make(chan struct{})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if m := bidiListening.FindStringSubmatch(line); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		io.Copy(out, stderr)
	}()
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() { f.stop(tb, exited, out) })

	var url string
	select {
	case url = <-urls:
	case <-exited:
		return nil, fmt.Errorf("%s: Firefox exited before it listened (%v):\n%s", name, cmd.ProcessState, tail(out.String(), 4000))
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s: Firefox did not listen for WebDriver BiDi within 30s:\n%s", name, tail(out.String(), 4000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if f.bidi, err = dialBiDi(ctx, url+"/session"); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var sess struct {
		Capabilities struct {
			BrowserVersion string `json:"browserVersion"`
			UserAgent      string `json:"userAgent"`
		} `json:"capabilities"`
	}
	if err := f.bidi.call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}, &sess); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f.userAgent = sess.Capabilities.UserAgent
	f.bidi.onEvent(f.event)
	if err := f.bidi.call(ctx, "session.subscribe", map[string]any{
		"events": []string{"network.beforeRequestSent", "network.responseCompleted", "network.fetchError"},
	}, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	tb.Logf("%s: pid %d, Firefox %s, cookieBehavior %d, WebDriver BiDi %s", name, f.pid, sess.Capabilities.BrowserVersion, cookieBehavior, url)
	return f, nil
}

// firefoxProfile writes the profile in dir.
func firefoxProfile(dir string, cookieBehavior int, d *deployment) error {
	ca := filepath.Join(dir, "e2e-ca.pem")
	if err := os.WriteFile(ca, d.PKI.CAPEM, 0o600); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-N", "-d", "sql:" + dir, "--empty-password"},
		{"-A", "-d", "sql:" + dir, "-n", "Latchkey e2e test CA", "-t", "C,,", "-i", ca},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, "certutil", args...).CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("certutil %v: %v: %s", args, err, out)
		}
	}
	proxyPort := d.Proxy.Port()
	prefs := map[string]any{
		"network.cookie.cookieBehavior": cookieBehavior,
		// Every request goes to the e2e proxy, which tunnels *.test to the
		// front and refuses the rest (see connectProxy), but localhost's
		// (the demo's, TestDemoInEngines), which goes direct, as by
		// default: it is this machine.
		"network.proxy.type":                      1,
		"network.proxy.ssl":                       "127.0.0.1",
		"network.proxy.ssl_port":                  proxyPort,
		"network.proxy.http":                      "127.0.0.1",
		"network.proxy.http_port":                 proxyPort,
		"network.proxy.share_proxy_settings":      false,
		"network.proxy.no_proxies_on":             "",
		"network.proxy.allow_hijacking_localhost": false,
		// Firefox resolves the names of its own services (Remote Settings)
		// itself, proxy or not: every name is the loopback, so that no
		// lookup leaves the machine.
		"network.dns.forceResolve":                   "127.0.0.1",
		"network.trr.mode":                           5, // no DNS over HTTPS
		"network.dns.disablePrefetch":                true,
		"network.http.speculative-parallel-limit":    0,
		"network.captive-portal-service.enabled":     false,
		"network.connectivity-service.enabled":       false,
		"browser.shell.checkDefaultBrowser":          false,
		"browser.startup.homepage_override.mstone":   "ignore",
		"browser.aboutwelcome.enabled":               false,
		"browser.safebrowsing.malware.enabled":       false,
		"browser.safebrowsing.phishing.enabled":      false,
		"browser.safebrowsing.downloads.enabled":     false,
		"browser.region.update.enabled":              false,
		"datareporting.policy.dataSubmissionEnabled": false,
		"datareporting.healthreport.uploadEnabled":   false,
		"toolkit.telemetry.enabled":                  false,
		"app.update.auto":                            false,
		"app.normandy.enabled":                       false,
		"extensions.update.enabled":                  false,
		"extensions.getAddons.cache.enabled":         false,
		"security.OCSP.enabled":                      0,
	}
	var b strings.Builder
	for k, v := range prefs {
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", k, j)
	}
	return os.WriteFile(filepath.Join(dir, "user.js"), []byte(b.String()), 0o600)
}

// stop closes the browser (browser.close), then makes sure every process
// of it is gone: its descendants, and the crash helper that Firefox
// re-parents away from itself, which names its PID.
func (f *firefox) stop(tb testing.TB, exited <-chan struct{}, out *proctest.SyncBuffer) {
	tb.Helper()
	pids := processTree(f.pid)
	for _, p := range processesWithArg("/crashhelper", strconv.Itoa(f.pid)) {
		if !slices.Contains(pids, p) {
			pids = append(pids, p)
		}
	}
	if f.bidi != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := f.bidi.call(ctx, "browser.close", nil, nil); err != nil && !strings.Contains(err.Error(), "connection closed") {
			tb.Logf("%s: browser.close: %v", f.name, err)
		}
		cancel()
		f.bidi.close()
	}
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		tb.Errorf("%s: Firefox pid %d still runs 15s after browser.close; killing it", f.name, f.pid)
		syscall.Kill(f.pid, syscall.SIGKILL)
		<-exited
	}
	stopPIDs(tb, f.name+" (Firefox)", pids, 5*time.Second)
	if tb.Failed() {
		tb.Logf("%s: Firefox output (tail):\n%s", f.name, tail(out.String(), 4000))
	}
}

// event routes the network events of each browsing context to its tab.
func (f *firefox) event(method string, params json.RawMessage) {
	if !strings.HasPrefix(method, "network.") {
		return
	}
	var ev struct {
		Context string `json:"context"`
	}
	if json.Unmarshal(params, &ev) != nil {
		return
	}
	f.mu.Lock()
	n := f.nets[ev.Context]
	f.mu.Unlock()
	if n != nil {
		n.handleBiDi(method, params)
	}
}

// ffTab is one scenario's tab in a user context of its own (a cookie jar
// and storage of its own, as a container).
type ffTab struct {
	f           *firefox
	ctx         context.Context
	userContext string
	context     string
	net         *netRecorder
	tag         string
	host        string // of the page last opened
}

func (f *firefox) newTab(tb testing.TB, tag string, timeout time.Duration) browserTab {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t := &ffTab{f: f, ctx: ctx, net: newNetRecorder(), tag: tag}
	var uc struct {
		UserContext string `json:"userContext"`
	}
	if err := f.bidi.call(ctx, "browser.createUserContext", nil, &uc); err != nil {
		cancel()
		tb.Fatalf("%s: %v", f.name, err)
	}
	t.userContext = uc.UserContext
	tb.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := f.bidi.call(cctx, "browser.removeUserContext", map[string]any{"userContext": t.userContext}, nil); err != nil {
			tb.Logf("%s: remove user context: %v", f.name, err)
		}
		f.mu.Lock()
		delete(f.nets, t.context)
		f.mu.Unlock()
		cancel()
	})
	t.open(tb)
	return t
}

// Sibling opens another tab in the tab's user context: the same cookie
// jar and storage, the same tag and deadline. It closes when tb ends; the
// user context's removal would close it too.
func (t *ffTab) Sibling(tb testing.TB) browserTab {
	tb.Helper()
	s := &ffTab{f: t.f, ctx: t.ctx, userContext: t.userContext, net: newNetRecorder(), tag: t.tag}
	s.open(tb)
	tb.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := t.f.bidi.call(cctx, "browsingContext.close", map[string]any{"context": s.context}, nil); err != nil && !isBiDiError(err, "no such frame") {
			tb.Logf("%s: close tab: %v", t.f.name, err)
		}
		t.f.mu.Lock()
		delete(t.f.nets, s.context)
		t.f.mu.Unlock()
	})
	return s
}

// open creates the tab's browsing context, a tab in its user context,
// and tags its User-Agent.
func (t *ffTab) open(tb testing.TB) {
	tb.Helper()
	f, ctx := t.f, t.ctx
	var bc struct {
		Context string `json:"context"`
	}
	// Now and then, with other scenarios' tabs closing, Firefox answers
	// that a browsing context is gone ("no such frame"): the new tab's
	// window was another's. Another try opens it.
	for attempt := 1; ; attempt++ {
		err := f.bidi.call(ctx, "browsingContext.create", map[string]any{"type": "tab", "userContext": t.userContext}, &bc)
		if err == nil {
			break
		}
		if !isBiDiError(err, "no such frame") || attempt == 3 {
			tb.Fatalf("%s: %v", f.name, err)
		}
		tb.Logf("%s: %v; trying again", f.name, err)
		time.Sleep(100 * time.Millisecond)
	}
	t.context = bc.Context
	f.mu.Lock()
	f.nets[t.context] = t.net
	f.mu.Unlock()
	if err := f.bidi.call(ctx, "emulation.setUserAgentOverride", map[string]any{
		"userAgent": f.userAgent + " " + uaTag(t.tag), "contexts": []string{t.context},
	}, nil); err != nil {
		tb.Fatalf("%s: %v", f.name, err)
	}
}

func (t *ffTab) Tag() string { return t.tag }

func (t *ffTab) Open(tb testing.TB, url string) {
	tb.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	t.host = u.Hostname()
	if err := t.f.bidi.call(t.ctx, "browsingContext.navigate", map[string]any{"context": t.context, "url": url, "wait": "complete"}, nil); err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
	waitFor(tb, t, `document.querySelector('#log li.call[data-path="/me"]') !== null`)
}

func (t *ffTab) EvalJSON(tb testing.TB, expr string) string {
	tb.Helper()
	var r struct {
		Type   string `json:"type"`
		Result struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := t.f.bidi.call(t.ctx, "script.evaluate", map[string]any{
		"expression": jsonOf(expr), "target": map[string]any{"context": t.context},
		"awaitPromise": true, "resultOwnership": "none",
	}, &r); err != nil {
		tb.Fatalf("evaluate %s: %v", expr, err)
	}
	if r.Type != "success" || r.Result.Type != "string" {
		tb.Fatalf("evaluate %s: %s %s %s", expr, r.Type, r.Result.Type, r.ExceptionDetails.Text)
	}
	return r.Result.Value
}

// node returns the shared reference of the element css selects.
func (t *ffTab) node(tb testing.TB, css string) map[string]any {
	tb.Helper()
	var r struct {
		Nodes []struct {
			SharedID string `json:"sharedId"`
		} `json:"nodes"`
	}
	if err := t.f.bidi.call(t.ctx, "browsingContext.locateNodes", map[string]any{
		"context": t.context, "locator": map[string]any{"type": "css", "value": css}, "maxNodeCount": 1,
	}, &r); err != nil {
		tb.Fatalf("locate %s: %v", css, err)
	}
	if len(r.Nodes) == 0 {
		tb.Fatalf("locate %s: no such element", css)
	}
	return map[string]any{"sharedId": r.Nodes[0].SharedID}
}

func (t *ffTab) actions(tb testing.TB, what string, sources ...map[string]any) {
	tb.Helper()
	if err := t.f.bidi.call(t.ctx, "input.performActions", map[string]any{"context": t.context, "actions": sources}, nil); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

func clickOn(element map[string]any) map[string]any {
	return map[string]any{
		"type": "pointer", "id": "mouse", "parameters": map[string]any{"pointerType": "mouse"},
		"actions": []map[string]any{
			{"type": "pointerMove", "x": 0, "y": 0, "origin": map[string]any{"type": "element", "element": element}},
			{"type": "pointerDown", "button": 0},
			{"type": "pointerUp", "button": 0},
		},
	}
}

// Type clicks into the element and types text, key by key.
func (t *ffTab) Type(tb testing.TB, css, text string) {
	tb.Helper()
	t.scrollTo(tb, css)
	t.actions(tb, "focus "+css, clickOn(t.node(tb, css)))
	var keys []map[string]any
	for _, r := range text {
		keys = append(keys, map[string]any{"type": "keyDown", "value": string(r)}, map[string]any{"type": "keyUp", "value": string(r)})
	}
	t.actions(tb, "type into "+css, map[string]any{"type": "key", "id": "keyboard", "actions": keys})
}

func (t *ffTab) Click(tb testing.TB, css string) {
	tb.Helper()
	t.scrollTo(tb, css)
	t.actions(tb, "click "+css, clickOn(t.node(tb, css)))
}

// scrollTo scrolls the element css selects into the viewport: BiDi's
// pointer actions, unlike a WebDriver element click, do not, and fail on
// an element below the fold (the example SPA's signup form).
func (t *ffTab) scrollTo(tb testing.TB, css string) {
	tb.Helper()
	t.EvalJSON(tb, fmt.Sprintf(`(document.querySelector(%s)?.scrollIntoView({block: 'center'}), true)`, jsString(css)))
}

// Jar returns the cookies named name that a request from the tab's page
// to apiOrigin would see: storage.getCookies in the partition of the
// tab's browsing context. Firefox reports no partition per cookie, so a
// second look in the partition of apiOrigin itself, its first-party jar,
// tells them apart: a cookie the page sees but apiOrigin's own jar does
// not hold is kept in the jar of the page's site (Total Cookie Protection).
func (t *ffTab) Jar(tb testing.TB, name, apiOrigin string) ([]jarCookie, bool) {
	tb.Helper()
	seen := t.cookies(tb, name, map[string]any{"type": "context", "context": t.context})
	own := t.cookies(tb, name, map[string]any{"type": "storageKey", "userContext": t.userContext, "sourceOrigin": apiOrigin})
	var out []jarCookie
	for _, c := range seen {
		if len(own) == 0 {
			c.PartitionKey = siteOf(t.host)
		}
		out = append(out, c)
	}
	return out, true
}

func (t *ffTab) cookies(tb testing.TB, name string, partition map[string]any) []jarCookie {
	tb.Helper()
	var r struct {
		Cookies []struct {
			Name     string `json:"name"`
			Domain   string `json:"domain"`
			HTTPOnly bool   `json:"httpOnly"`
			Secure   bool   `json:"secure"`
			SameSite string `json:"sameSite"`
		} `json:"cookies"`
	}
	if err := t.f.bidi.call(t.ctx, "storage.getCookies", map[string]any{
		"filter": map[string]any{"name": name}, "partition": partition,
	}, &r); err != nil {
		tb.Fatalf("storage.getCookies: %v", err)
	}
	var out []jarCookie
	for _, c := range r.Cookies {
		out = append(out, jarCookie{Name: c.Name, Domain: c.Domain, SameSite: c.SameSite, Secure: c.Secure, HTTPOnly: c.HTTPOnly})
	}
	return out
}

func (t *ffTab) Net() *netRecorder { return t.net }

func (t *ffTab) Screenshot(tb testing.TB, path string) {
	tb.Helper()
	var r struct {
		Data string `json:"data"`
	}
	if err := t.f.bidi.call(t.ctx, "browsingContext.captureScreenshot", map[string]any{"context": t.context, "origin": "document"}, &r); err != nil {
		tb.Errorf("screenshot: %v", err)
		return
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		tb.Errorf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Errorf("screenshot: %v", err)
	}
}

// handleBiDi records a BiDi network event of the tab
// (https://w3c.github.io/webdriver-bidi/#module-network).
func (n *netRecorder) handleBiDi(method string, params json.RawMessage) {
	var ev struct {
		Request struct {
			Request string `json:"request"`
			URL     string `json:"url"`
			Method  string `json:"method"`
			Cookies []struct {
				Name string `json:"name"`
			} `json:"cookies"`
		} `json:"request"`
		Response struct {
			Status  int64 `json:"status"`
			Headers []struct {
				Name  string `json:"name"`
				Value struct {
					Value string `json:"value"`
				} `json:"value"`
			} `json:"headers"`
		} `json:"response"`
		ErrorText string `json:"errorText"`
	}
	if json.Unmarshal(params, &ev) != nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// A preflight shares its request's id in some engines: key by method
	// too, so that each has an entry.
	r := n.get(network.RequestID(ev.Request.Request + " " + ev.Request.Method))
	r.Method, r.URL = ev.Request.Method, ev.Request.URL
	r.HasRequestExtra = true
	switch method {
	case "network.beforeRequestSent":
		r.WillBeSent = true
		r.SentCookies = nil
		for _, c := range ev.Request.Cookies {
			r.SentCookies = append(r.SentCookies, c.Name)
		}
	case "network.responseCompleted":
		r.Status, r.RawStatus, r.HasRaw, r.Finished = ev.Response.Status, ev.Response.Status, ev.Response.Status != 0, true
		for _, h := range ev.Response.Headers {
			if strings.EqualFold(h.Name, "set-cookie") {
				for line := range strings.SplitSeq(h.Value.Value, "\n") {
					r.SetCookies = append(r.SetCookies, redactCookieLine(line))
				}
			}
		}
	case "network.fetchError":
		r.Failed, r.FailedAt = ev.ErrorText, time.Now()
		if r.Failed == "" {
			r.Failed = "failed"
		}
	}
}
