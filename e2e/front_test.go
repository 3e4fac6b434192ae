package e2e

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// front is the TLS ingress of the test deployment: one loopback port that
// routes by Host. app.* hosts serve the example SPA configured for that
// host; auth.* hosts are reverse-proxied to Latchkey's plain-HTTP public
// listener with the Host header preserved (Latchkey resolves host-form
// tenants from it) and X-Forwarded-For, -Host and -Proto set, as
// ingress-nginx, Traefik and Envoy do; Latchkey trusts the front
// (LATCHKEY_TRUSTED_PROXIES), as the README has it deployed, so that it
// knows the page called it over HTTPS.
type front struct {
	ln   net.Listener
	Port int

	mu   sync.Mutex
	apps map[string]http.Handler // by host name, without port
	hits []frontHit
	srv  *http.Server
}

// frontHit is one request the front passed to Latchkey, as the server saw
// it: evidence that a request really left the browser.
type frontHit struct {
	At        time.Time
	Host      string
	Method    string
	Path      string
	Origin    string
	UserAgent string
	Cookies   []string // names of the cookies sent
	Status    int
	SetCookie []string
	// Problem is the body of a 5xx answer (Latchkey's problem detail),
	// which says what went wrong on its side.
	Problem string
}

// listenFront reserves the front's loopback port. The port is needed before
// anything else (origins, tenants file, SPA config carry it), and keeping
// the listener open means nobody can take it meanwhile.
func listenFront(tb testing.TB) *front {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("front listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	return &front{ln: ln, Port: ln.Addr().(*net.TCPAddr).Port, apps: make(map[string]http.Handler)}
}

// Origin returns https://host:port on the front.
func (f *front) Origin(host string) string {
	return fmt.Sprintf("https://%s:%d", host, f.Port)
}

// AddApp serves h on host (an app.* name).
func (f *front) AddApp(host string, h http.Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps[host] = h
}

// Serve starts TLS on the reserved port with cert, proxying auth.* hosts to
// the Latchkey public listener at upstream (host:port), and stops it when
// tb ends.
func (f *front) Serve(tb testing.TB, cert tls.Certificate, upstream string) {
	tb.Helper()
	target := &url.URL{Scheme: "http", Host: upstream}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// SetURL sets Out.Host to the target's host; a real ingress
			// passes the client's Host on. Rewrite strips any X-Forwarded-*
			// header the client sent; SetXForwarded writes the front's own
			// (Proto https: the browser's connection is TLS). Without it
			// Latchkey would take the API for http:// and its doctor would
			// blame mixed content for every call that reached it.
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport: &http.Transport{
			Proxy:               nil, // loopback only, never an environment proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		ModifyResponse: func(res *http.Response) error {
			f.record(res)
			return nil
		},
		ErrorLog: log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "front: upstream: "+err.Error(), http.StatusBadGateway)
		},
	}
	f.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host := hostOnly(r.Host)
			switch {
			case strings.HasPrefix(host, "auth."):
				proxy.ServeHTTP(w, r)
			case strings.HasPrefix(host, "app."):
				f.mu.Lock()
				h := f.apps[host]
				f.mu.Unlock()
				if h == nil {
					http.Error(w, "front: no app on "+host, http.StatusMisdirectedRequest)
					return
				}
				h.ServeHTTP(w, r)
			default:
				http.Error(w, "front: unknown host "+host, http.StatusMisdirectedRequest)
			}
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // browsers probe and drop connections
	}
	errc := make(chan error, 1)
	go func() { errc <- f.srv.ServeTLS(f.ln, "", "") }()
	tb.Cleanup(func() {
		f.srv.Close()
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("front: %v", err)
		}
	})
}

func (f *front) record(res *http.Response) {
	r := res.Request
	h := frontHit{
		At:        time.Now(),
		Host:      r.Host,
		Method:    r.Method,
		Path:      r.URL.Path,
		Origin:    r.Header.Get("Origin"),
		UserAgent: r.Header.Get("User-Agent"),
		Status:    res.StatusCode,
	}
	for _, c := range r.Cookies() {
		h.Cookies = append(h.Cookies, c.Name)
	}
	h.SetCookie = slices.Clone(res.Header.Values("Set-Cookie"))
	if res.StatusCode >= 500 {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(b))
		h.Problem = string(b[:min(len(b), 2048)])
	}
	f.mu.Lock()
	f.hits = append(f.hits, h)
	f.mu.Unlock()
}

// Hits returns the requests proxied so far.
func (f *front) Hits() []frontHit {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hits)
}

// HitsOf returns the requests of the tab tagged tag (see newTab) from
// origin for method and path.
func (f *front) HitsOf(tag, origin, method, path string) []frontHit {
	var out []frontHit
	for _, h := range f.Hits() {
		if strings.HasSuffix(h.UserAgent, " "+uaTag(tag)) && h.Origin == origin && h.Method == method && h.Path == path {
			out = append(out, h)
		}
	}
	return out
}

// Shed returns a 503 that Latchkey answered to a tab whose tag starts
// with prefix, if any.
func (f *front) Shed(prefix string) (frontHit, bool) {
	for _, h := range f.Hits() {
		if h.Status == http.StatusServiceUnavailable && strings.Contains(h.UserAgent, " "+uaTag(prefix)) {
			return h, true
		}
	}
	return frontHit{}, false
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
