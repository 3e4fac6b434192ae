package e2e

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// connectProxy is how Firefox and WebKitGTK reach the front: neither can
// be told to resolve the run's names to the loopback the way Chromium's
// --host-resolver-rules does (Firefox's network.dns.localDomains takes
// exact names only, WebKitGTK has nothing), but both take an HTTP proxy,
// and through one they resolve no name themselves. The proxy answers
// CONNECT to a name of the run on the front's port by tunnelling to the
// front on 127.0.0.1 and refuses everything else, so a browser's stray
// request (an update check, telemetry) fails at once on the loopback
// instead of leaving the machine. The browser still speaks TLS end to end
// with the front, with the page's host name as SNI.
type connectProxy struct {
	ln         net.Listener
	frontPort  int
	hostSuffix string // of every name it tunnels

	mu      sync.Mutex
	refused map[string]int // host:port or URL → count, for the log
	tunnels sync.WaitGroup
	conns   map[net.Conn]struct{}
	closed  bool
}

// startProxy listens on a loopback port and serves until tb ends,
// tunnelling to host names that end in hostSuffix.
func startProxy(tb testing.TB, frontPort int, hostSuffix string) *connectProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy listen: %v", err)
	}
	p := &connectProxy{ln: ln, frontPort: frontPort, hostSuffix: hostSuffix, refused: make(map[string]int), conns: make(map[net.Conn]struct{})}
	srv := &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		srv.Close()
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.tunnels.Wait()
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("proxy: %v", err)
		}
		if r := p.Refused(); r != "" {
			tb.Logf("proxy refused (the browsers' own traffic, kept on the loopback): %s", r)
		}
	})
	return p
}

// Addr returns the proxy's host:port.
func (p *connectProxy) Addr() string { return p.ln.Addr().String() }

// Port returns the proxy's port.
func (p *connectProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Refused summarises what the proxy refused.
func (p *connectProxy) Refused() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for k, n := range p.refused {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, n))
	}
	return strings.Join(parts, ", ")
}

func (p *connectProxy) refuse(w http.ResponseWriter, what string) {
	p.mu.Lock()
	p.refused[what]++
	p.mu.Unlock()
	http.Error(w, "e2e proxy: only CONNECT to the test names on the front's port", http.StatusForbidden)
}

func (p *connectProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		p.refuse(w, r.Method+" "+r.URL.Host)
		return
	}
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || !strings.HasSuffix(host, p.hostSuffix) || port != strconv.Itoa(p.frontPort) {
		p.refuse(w, "CONNECT "+r.Host)
		return
	}
	up, err := net.DialTimeout("tcp", loopbackAddr(p.frontPort), 5*time.Second)
	if err != nil {
		http.Error(w, "e2e proxy: front: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "e2e proxy: no hijacking", http.StatusInternalServerError)
		return
	}
	down, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if !p.track(down, up) {
		return
	}
	if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		p.untrack(down, up)
		return
	}
	p.tunnels.Add(2)
	go func() {
		defer p.tunnels.Done()
		// Whatever the client sent after the CONNECT is in buf already.
		io.Copy(up, buf)
		if tc, ok := up.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	go func() {
		defer p.tunnels.Done()
		io.Copy(down, up)
		p.untrack(down, up)
	}()
}

func (p *connectProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *connectProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.conns, c)
	}
}

func loopbackAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
