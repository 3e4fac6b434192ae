package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// TestDemoListensOnLoopback runs the demo as `make run` and a bare
// `latchkey serve` do, with no LATCHKEY_ADDR: it prints a password, so it
// must bind 127.0.0.1:8080, not every interface. The port is fixed, and
// may be taken on a shared machine; then the listen error still shows
// which address was tried.
func TestDemoListensOnLoopback(t *testing.T) {
	t.Parallel()
	env := map[string]string{"LATCHKEY_ADMIN_ADDR": "127.0.0.1:0"}
	out := &proctest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- serve(ctx, nil, func(k string) string { return env[k] }, out, out, func(p, _ net.Addr) { addrs <- p })
	}()
	select {
	case pub := <-addrs:
		if pub.String() != "127.0.0.1:8080" {
			t.Errorf("the demo listens on %s, want 127.0.0.1:8080", pub)
		}
		if !strings.Contains(out.String(), "POST http://localhost:8080/v1/t/example/login") {
			t.Errorf("the demo banner does not name the address it serves:\n%s", out)
		}
		if strings.Contains(out.String(), "beyond loopback") {
			t.Errorf("a loopback demo warns that it is reachable:\n%s", out)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	case err := <-errc:
		// Something else holds port 8080 (another `make run`?): the
		// address tried is the proof.
		if err == nil || !strings.Contains(err.Error(), "listen tcp 127.0.0.1:8080: ") {
			t.Fatalf("serve = %v, want it to listen on 127.0.0.1:8080\n%s", err, out)
		}
		t.Logf("port 8080 is taken; serve tried 127.0.0.1:8080 as it should: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not start\n%s", out)
	}
}

func TestAddrGiven(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"neither", nil, nil, false},
		{"variable", nil, map[string]string{"LATCHKEY_ADDR": ":8080"}, true},
		{"flag", []string{"-addr", "0.0.0.0:9000"}, nil, true},
		{"another flag", []string{"-admin-addr", "127.0.0.1:9001"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseConfig(tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if c.AddrGiven != tt.want {
				t.Errorf("AddrGiven=%v, want %v", c.AddrGiven, tt.want)
			}
		})
	}
}

func TestDemoAddr(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ addr, want string }{
		{":8080", "127.0.0.1:8080"},
		{"0.0.0.0:9000", "127.0.0.1:9000"},
		{"[::]:8080", "127.0.0.1:8080"},
	} {
		if got := demoAddr(tt.addr); got != tt.want {
			t.Errorf("demoAddr(%q)=%v, want %v", tt.addr, got, tt.want)
		}
	}
	for _, tt := range []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 8080}, true},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}, false},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8080}, false},
	} {
		if got := loopbackAddr(tt.addr.String()); got != tt.want {
			t.Errorf("loopbackAddr(%v)=%v, want %v", tt.addr, got, tt.want)
		}
	}
}

// TestDemoOrigins: the demo advertises one origin, on the name its API is
// called by, and allows no other, so that no advertised page logs in
// without keeping its session (localhost and 127.0.0.1 are two sites).
func TestDemoOrigins(t *testing.T) {
	t.Parallel()
	pub, _, out := boot(t, map[string]string{})
	if !strings.Contains(out.String(), "allows http://localhost:5173 ") || strings.Contains(out.String(), "127.0.0.1:5173") {
		t.Errorf("the demo banner advertises other origins than http://localhost:5173:\n%s", out)
	}
	for origin, want := range map[string]int{"http://localhost:5173": 204, "http://127.0.0.1:5173": 403} {
		req, _ := http.NewRequest("OPTIONS", pub+"/v1/t/example/login", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("preflight from %s: %d, want %d", origin, r.StatusCode, want)
		}
	}
	if strings.Contains(out.String(), "will not work in browsers") {
		t.Errorf("the demo tenant warns about itself:\n%s", out)
	}
	// Safari keeps no Secure cookie set over plain HTTP, localhost
	// included (WebKit bug 281149): the demo's cookie there is not Secure,
	// so the banner promises every browser.
	if !strings.Contains(out.String(), "open it in any browser") {
		t.Errorf("the demo banner does not say it works in every browser:\n%s", out)
	}
}

// TestDemoCookieOverPlainLoopback: the demo's login over plain HTTP on
// localhost sets a cookie that Safari keeps (not Secure, so not __Host-),
// which then authenticates; -demo-origin moves the one allowed origin.
func TestDemoCookieOverPlainLoopback(t *testing.T) {
	t.Parallel()
	const origin = "http://localhost:3000"
	pub, _, out := boot(t, map[string]string{"LATCHKEY_DEMO_ORIGIN": origin})
	pw := regexp.MustCompile(`username "demo" with password (\S+)`).FindStringSubmatch(out.String())
	if pw == nil || !strings.Contains(out.String(), "allows "+origin+" ") {
		t.Fatalf("the banner names no password or not %s:\n%s", origin, out)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(pub, "http://"))
	api := "http://localhost:" + port + "/v1/t/example"
	req, _ := http.NewRequest("POST", api+"/login", strings.NewReader(fmt.Sprintf(`{"username":"demo","password":%q}`, pw[1])))
	req.Header.Set("Origin", origin)
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("login from %s: %v %v", origin, r, err)
	}
	r.Body.Close()
	set := r.Header.Values("Set-Cookie")
	if len(set) != 1 || !strings.HasPrefix(set[0], "latchkey-example=") || strings.Contains(set[0], "Secure") || !strings.Contains(set[0], "HttpOnly") || !strings.Contains(set[0], "SameSite=Lax") {
		t.Fatalf("login over plain HTTP on localhost set %q, want one HttpOnly SameSite=Lax latchkey-example cookie without Secure", set)
	}
	req, _ = http.NewRequest("GET", api+"/me", nil)
	req.Header.Set("Origin", origin)
	req.AddCookie(r.Cookies()[0])
	if r, err = http.DefaultClient.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("me with the plain cookie: %v %v", r, err)
	}
	r.Body.Close()
	// The default origin is no longer allowed.
	req, _ = http.NewRequest("GET", api+"/me", nil)
	req.Header.Set("Origin", defaultDemoOrigin)
	if r, err = http.DefaultClient.Do(req); err != nil || r.StatusCode != 403 {
		t.Fatalf("me from %s: %v %v, want 403", defaultDemoOrigin, r, err)
	}
	r.Body.Close()
}

// TestDemoOriginMustBeLoopback: the demo grants its printed password's
// session to one origin, which must be on this machine.
func TestDemoOriginMustBeLoopback(t *testing.T) {
	t.Parallel()
	for _, o := range []string{"https://app.example.com", "http://localhost:3000/", "localhost:3000", "http://user@localhost:3000", ""} {
		var out proctest.SyncBuffer
		err := serve(context.Background(), []string{"-demo-origin", o}, func(string) string { return "" }, &out, &out, nil)
		if err == nil || !strings.Contains(out.String()+err.Error(), "LATCHKEY_DEMO_ORIGIN") {
			t.Errorf("-demo-origin %q: %v, want a refusal naming LATCHKEY_DEMO_ORIGIN\n%s", o, err, &out)
		}
	}
}
