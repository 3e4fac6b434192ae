package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// tab is one page in a browser context of its own (an incognito-like
// profile: its own cookie jar), with a recorder of its network events.
type tab struct {
	ctx  context.Context // carries the scenario deadline
	b    *browser
	bcid cdp.BrowserContextID
	net  *netRecorder
	tag  string
}

// newTab opens a tab in a new browser context of b. Everything done
// through it must finish within timeout. Its requests carry a User-Agent
// ending in " latchkey-e2e/<tag>", so the front can tell which tab sent
// what. The tab and its browser context are closed when tb ends.
func (b *browser) newTab(tb testing.TB, tag string, timeout time.Duration) *tab {
	tb.Helper()
	return b.openTab(tb, tag, timeout, chromedp.WithNewBrowserContext())
}

// Sibling opens another tab (a target) in the tab's browser context: the
// same cookie jar and storage, the same tag and deadline. It closes when
// tb ends, before the browser context.
func (t *tab) Sibling(tb testing.TB) browserTab {
	tb.Helper()
	deadline, _ := t.ctx.Deadline()
	return t.b.openTab(tb, t.tag, time.Until(deadline), chromedp.WithExistingBrowserContext(t.bcid))
}

// openTab opens a target in the browser context where says.
func (b *browser) openTab(tb testing.TB, tag string, timeout time.Duration, where chromedp.ContextOption) *tab {
	tb.Helper()
	tctx, cancel := chromedp.NewContext(b.ctx, where)
	dctx, dcancel := context.WithTimeout(tctx, timeout)
	tb.Cleanup(func() {
		dcancel()
		cctx, ccancel := context.WithTimeout(tctx, 10*time.Second)
		defer ccancel()
		if err := chromedp.Cancel(cctx); err != nil && !isCanceled(err) {
			tb.Logf("close tab: %v", err)
		}
		cancel()
	})
	rec := newNetRecorder()
	rec.Cookies = true
	if err := chromedp.Listen(dctx, rec.handle); err != nil {
		tb.Fatalf("%s: open tab: %v", b.Name, err)
	}
	ua := b.UserAgent + " " + uaTag(tag)
	if _, err := chromedp.Call(dctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua}); err != nil {
		tb.Fatalf("%s: set User-Agent: %v", b.Name, err)
	}
	return &tab{ctx: dctx, b: b, bcid: chromedp.FromContext(tctx).BrowserContextID, net: rec, tag: tag}
}

// uaTag is the User-Agent suffix of a tab's tag.
func uaTag(tag string) string { return "latchkey-e2e/" + tag }

func isCanceled(err error) bool { return errors.Is(err, context.Canceled) }

// Tag is the tab's User-Agent suffix.
func (t *tab) Tag() string { return t.tag }

// Open loads the SPA at url and waits for the call to /me that the page
// makes on load to be logged.
func (t *tab) Open(tb testing.TB, url string) {
	tb.Helper()
	err := chromedp.Do(t.ctx,
		chromedp.Navigate(url),
		chromedp.WaitReady(chromedp.CSS(`#log li.call[data-path="/me"]`)),
	)
	if err != nil {
		tb.Fatalf("open %s: %v", url, err)
	}
}

// EvalJSON evaluates expr, awaits it, and returns its JSON.
func (t *tab) EvalJSON(tb testing.TB, expr string) string {
	tb.Helper()
	r, err := chromedp.Run(t.ctx, chromedp.Evaluate[string](jsonOf(expr), chromedp.EvalAwaitPromise))
	if err != nil {
		tb.Fatalf("evaluate %s: %v", expr, err)
	}
	return r
}

// Type types text into the element css selects, key by key.
func (t *tab) Type(tb testing.TB, css, text string) {
	tb.Helper()
	if err := chromedp.Do(t.ctx, chromedp.SendKeys(chromedp.CSS(css), text)); err != nil {
		tb.Fatalf("type into %s: %v", css, err)
	}
}

// Click clicks the element css selects.
func (t *tab) Click(tb testing.TB, css string) {
	tb.Helper()
	if err := chromedp.Do(t.ctx, chromedp.Click(chromedp.CSS(css))); err != nil {
		tb.Fatalf("click %s: %v", css, err)
	}
}

// Jar returns the cookies named name in the tab's browser context, from
// the browser's cookie jar (Storage.getCookies on the browser endpoint):
// partitioned cookies included, with their partition keys.
func (t *tab) Jar(tb testing.TB, name, _ string) ([]jarCookie, bool) {
	tb.Helper()
	res, err := chromedp.CallBrowser(t.ctx, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: t.bcid})
	if err != nil {
		tb.Fatalf("Storage.getCookies: %v", err)
	}
	var out []jarCookie
	for _, c := range res.Cookies {
		if c.Name != name {
			continue
		}
		jc := jarCookie{Name: c.Name, Domain: c.Domain, SameSite: strings.ToLower(string(c.SameSite)), Secure: c.Secure, HTTPOnly: c.HTTPOnly}
		if c.PartitionKey != nil {
			jc.PartitionKey = c.PartitionKey.TopLevelSite
		}
		out = append(out, jc)
	}
	return out, true
}

// Net returns the DevTools network log of the tab.
func (t *tab) Net() *netRecorder { return t.net }

// Screenshot saves a full-page PNG of the tab to path.
func (t *tab) Screenshot(tb testing.TB, path string) {
	tb.Helper()
	png, err := chromedp.Run(t.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Errorf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Errorf("screenshot: %v", err)
	}
}

// netRequest is what DevTools reported about one request of the tab.
type netRequest struct {
	ID     network.RequestID
	Method string
	URL    string
	Type   network.ResourceType

	WillBeSent bool  // Network.requestWillBeSent
	Status     int64 // Network.responseReceived
	RawStatus  int64 // Network.responseReceivedExtraInfo: what the server answered
	HasRaw     bool
	Finished   bool
	Failed     string // Network.loadingFailed errorText
	FailedAt   time.Time
	// ExpectExtra: responseReceived said extra-info events come.
	ExpectExtra bool
	CORSError   string // loadingFailed corsErrorStatus
	Blocked     string // loadingFailed blockedReason

	SentCookies       []string // cookies sent with the request (associated, not blocked)
	NotSentCookies    []string // "name: reasons"
	SetCookies        []string // raw Set-Cookie lines, values redacted
	BlockedSetCookies []string // "name: reasons"
	ExemptSetCookies  []string // "name: reason"
	HasRequestExtra   bool
}

// Settled reports whether the request's fate is known, extra-info
// events (raw status, cookies sent, Set-Cookie verdicts) included: they
// come from the network service and may trail the page's promise.
func (r *netRequest) Settled() bool {
	switch {
	case r.Failed != "":
		// A request refused before it left (preflight failed) gets no
		// extra info; give one that did a moment to report it.
		return r.HasRequestExtra || time.Since(r.FailedAt) > 500*time.Millisecond
	case r.Finished:
		return !r.ExpectExtra || (r.HasRaw && r.HasRequestExtra)
	}
	return false
}

// netRecorder keeps the Network events of one tab, by request ID.
type netRecorder struct {
	// Cookies reports whether the log's cookie lists are the engine's
	// truth (DevTools'), so that the suite fails when they disagree with
	// the front's; Firefox's BiDi events list no partitioned cookie.
	Cookies bool

	mu    sync.Mutex
	byID  map[network.RequestID]*netRequest
	order []network.RequestID
}

func newNetRecorder() *netRecorder {
	return &netRecorder{byID: make(map[network.RequestID]*netRequest)}
}

func (n *netRecorder) get(id network.RequestID) *netRequest {
	r := n.byID[id]
	if r == nil {
		r = &netRequest{ID: id}
		n.byID[id] = r
		n.order = append(n.order, id)
	}
	return r
}

// handle runs on the tab's event loop: it only copies under a lock.
func (n *netRecorder) handle(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		r := n.get(ev.RequestID)
		r.WillBeSent = true
		r.Method, r.URL, r.Type = ev.Request.Method, ev.Request.URL, ev.Type
	case *network.EventRequestWillBeSentExtraInfo:
		r := n.get(ev.RequestID)
		r.HasRequestExtra = true
		for _, c := range ev.AssociatedCookies {
			if c.Cookie == nil {
				continue
			}
			if len(c.BlockedReasons) == 0 {
				r.SentCookies = append(r.SentCookies, c.Cookie.Name)
			} else {
				r.NotSentCookies = append(r.NotSentCookies, fmt.Sprintf("%s: %v", c.Cookie.Name, c.BlockedReasons))
			}
		}
	case *network.EventResponseReceived:
		r := n.get(ev.RequestID)
		r.Status = ev.Response.Status
		r.ExpectExtra = ev.HasExtraInfo
		if r.Type == "" {
			r.Type = ev.Type
		}
	case *network.EventResponseReceivedExtraInfo:
		r := n.get(ev.RequestID)
		r.HasRaw = true
		r.RawStatus = ev.StatusCode
		for k, v := range ev.Headers {
			if strings.EqualFold(k, "set-cookie") {
				if s, ok := v.(string); ok {
					for line := range strings.SplitSeq(s, "\n") {
						r.SetCookies = append(r.SetCookies, redactCookieLine(line))
					}
				}
			}
		}
		for _, c := range ev.BlockedCookies {
			name := cookieLineName(c.CookieLine)
			r.BlockedSetCookies = append(r.BlockedSetCookies, fmt.Sprintf("%s: %v", name, c.BlockedReasons))
		}
		for _, c := range ev.ExemptedCookies {
			r.ExemptSetCookies = append(r.ExemptSetCookies, fmt.Sprintf("%s: %s", cookieLineName(c.CookieLine), c.ExemptionReason))
		}
	case *network.EventLoadingFinished:
		n.get(ev.RequestID).Finished = true
	case *network.EventLoadingFailed:
		r := n.get(ev.RequestID)
		r.Failed, r.FailedAt = ev.ErrorText, time.Now()
		if r.Failed == "" {
			r.Failed = "failed"
		}
		r.Blocked = string(ev.BlockedReason)
		if ev.CorsErrorStatus != nil {
			r.CORSError = string(ev.CorsErrorStatus.CorsError)
		}
	}
}

// redactCookieLine replaces a Set-Cookie value by "…", keeping the name
// and attributes: the evidence, without the session secret.
func redactCookieLine(line string) string {
	nv, attrs, _ := strings.Cut(line, ";")
	name, value, _ := strings.Cut(nv, "=")
	if value != "" {
		value = "…"
	}
	if attrs != "" {
		attrs = ";" + attrs
	}
	return strings.TrimSpace(name) + "=" + value + attrs
}

func cookieLineName(line string) string {
	name, _, _ := strings.Cut(line, "=")
	return strings.TrimSpace(name)
}

// find returns copies of the requests for url (any method when method is
// empty), oldest first.
func (n *netRecorder) find(method, url string) []netRequest {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []netRequest
	for _, id := range n.order {
		r := n.byID[id]
		if r.URL == url && (method == "" || r.Method == method) {
			out = append(out, *r)
		}
	}
	return out
}

// last waits up to 3 s for the latest request for method and url to settle
// (extra-info events may trail the page's promise) and returns it, and the
// preflight (OPTIONS) for it when DevTools reported one.
func (n *netRecorder) last(tb testing.TB, method, url string) (req, preflight *netRequest) {
	tb.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		rs := n.find(method, url)
		if len(rs) > 0 {
			r := rs[len(rs)-1]
			req = &r
		}
		if (req != nil && req.Settled()) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range n.find("OPTIONS", url) {
		p := p
		preflight = &p
	}
	return req, preflight
}

// dump lists every request of the tab for a failure message.
func (n *netRecorder) dump() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var lines []string
	for _, id := range n.order {
		r := n.byID[id]
		lines = append(lines, fmt.Sprintf("%s %s %s type=%s status=%d raw=%d failed=%q cors=%q sent=%v notsent=%v setcookie=%q blockedset=%v",
			r.ID, r.Method, r.URL, r.Type, r.Status, r.RawStatus, r.Failed, r.CORSError, r.SentCookies, r.NotSentCookies, r.SetCookies, r.BlockedSetCookies))
	}
	return strings.Join(lines, "\n")
}

// artifactsDir returns <module root>/artifacts/<name> (git-ignored
// through /artifacts/), created anew: without the screenshots and tables
// of a previous run.
func artifactsDir(tb testing.TB, name string) string {
	tb.Helper()
	dir := filepath.Join(proctest.ModuleRoot(tb), "artifacts", name)
	if err := os.RemoveAll(dir); err != nil {
		tb.Fatalf("artifacts: %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("artifacts: %v", err)
	}
	return dir
}

// fileName turns a test name into a file name.
func fileName(name string) string {
	name = strings.ToLower(name)
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	return b.String()
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
