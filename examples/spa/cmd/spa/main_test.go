package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

func TestRunServesAndStops(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantAPI string
	}{
		{name: "default API", args: []string{"-addr", "127.0.0.1:0"}, env: map[string]string{}, wantAPI: defaultAPI},
		{name: "env", env: map[string]string{"SPA_ADDR": "127.0.0.1:0", "SPA_API": "https://auth.acme.test/v1"}, wantAPI: "https://auth.acme.test/v1"},
		{name: "flag wins", args: []string{"-api", "http://127.0.0.1:18180/v1/t/example"}, env: map[string]string{"SPA_ADDR": "127.0.0.1:0", "SPA_API": "https://auth.acme.test/v1"}, wantAPI: "http://127.0.0.1:18180/v1/t/example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := &proctest.SyncBuffer{}
			addrs := make(chan net.Addr, 1)
			errc := make(chan error, 1)
			go func() {
				errc <- run(ctx, tt.args, func(k string) string { return tt.env[k] }, out, out, func(a net.Addr) { addrs <- a })
			}()
			var addr net.Addr
			select {
			case addr = <-addrs:
			case err := <-errc:
				t.Fatalf("run error = %v before listening; output:\n%s", err, out)
			case <-time.After(10 * time.Second):
				t.Fatal("run did not start listening")
			}

			res, err := http.Get("http://" + addr.String() + "/config.js")
			if err != nil {
				t.Fatalf("GET /config.js: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("StatusCode=%v, want %v", res.StatusCode, http.StatusOK)
			}
			if want := `{"api": "` + tt.wantAPI + `"}`; !strings.Contains(string(body), want) {
				t.Errorf("config.js=%v, want it to contain %v", string(body), want)
			}
			if got := out.String(); !strings.Contains(got, `"msg":"example SPA serving"`) || !strings.Contains(got, `"url":"http://127.0.0.1:`) {
				t.Errorf("log=%v, want an \"example SPA serving\" line with the URL", got)
			}

			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("run error=%v, want nil after cancel", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("run did not stop after cancel")
			}
		})
	}
}

func TestRunRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // a substring; "usage" means errUsage
	}{
		{name: "bad flag API", args: []string{"-addr", "127.0.0.1:0", "-api", "http://localhost:8080/v1/"}, wantErr: "trailing slash"},
		{name: "bad env API", env: map[string]string{"SPA_ADDR": "127.0.0.1:0", "SPA_API": "localhost:8080"}, wantErr: "scheme must be http or https"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "usage"},
		{name: "extra argument", args: []string{"serve"}, wantErr: "usage"},
		{name: "bad address", args: []string{"-addr", "127.0.0.1:-1"}, wantErr: "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := &proctest.SyncBuffer{}
			err := run(context.Background(), tt.args, func(k string) string { return tt.env[k] }, out, out, nil)
			switch {
			case err == nil:
				t.Errorf("run error=%v, want %v", err, tt.wantErr)
			case tt.wantErr == "usage":
				if !errors.Is(err, errUsage) {
					t.Errorf("run error=%v, want %v", err, errUsage)
				}
			case !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("run error=%v, want it to contain %v", err, tt.wantErr)
			}
		})
	}
}

func TestPageURL(t *testing.T) {
	t.Parallel()
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5173}
	tests := []struct{ addr, want string }{
		{"localhost:5173", "http://localhost:5173/"},
		{"127.0.0.1:5173", "http://127.0.0.1:5173/"},
		{":5173", "http://localhost:5173/"},
		{"0.0.0.0:5173", "http://localhost:5173/"},
		{"[::]:5173", "http://localhost:5173/"},
		{"localhost:0", "http://localhost:5173/"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			if got := pageURL(tt.addr, bound); got != tt.want {
				t.Errorf("pageURL=%v, want %v", got, tt.want)
			}
		})
	}
}

// TestOneLoopbackName: the page answers under -addr's name only; another
// name of this machine is redirected to it, path and query kept, because
// a page there could log in but never keep its session.
func TestOneLoopbackName(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	out := &proctest.SyncBuffer{}
	addrs := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"-addr", "localhost:0", "-api", "http://localhost:8080/v1/t/example"},
			func(string) string { return "" }, out, out, func(a net.Addr) { addrs <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrs:
	case err := <-errc:
		t.Fatalf("run error = %v before listening; output:\n%s", err, out)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not start listening")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	_, port, _ := net.SplitHostPort(addr.String())
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		host, path   string
		wantStatus   int
		wantLocation string
	}{
		{"localhost:" + port, "/", http.StatusOK, ""},
		{"LOCALHOST:" + port, "/app.js", http.StatusOK, ""},
		{"127.0.0.1:" + port, "/", http.StatusTemporaryRedirect, "http://localhost:" + port + "/"},
		{"127.0.0.1:" + port, "/config.js?x=1", http.StatusTemporaryRedirect, "http://localhost:" + port + "/config.js?x=1"},
		{"[::1]:" + port, "/", http.StatusTemporaryRedirect, "http://localhost:" + port + "/"},
		{"app.example.test:" + port, "/", http.StatusOK, ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", "http://"+addr.String()+tt.path, nil)
		req.Host = tt.host
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.wantStatus || res.Header.Get("Location") != tt.wantLocation {
			t.Errorf("GET %s%s: %d Location %q, want %d %q", tt.host, tt.path, res.StatusCode, res.Header.Get("Location"), tt.wantStatus, tt.wantLocation)
		}
	}
	if strings.Contains(out.String(), "different names of this machine") {
		t.Errorf("a page and an API on the same name warn:\n%s", out)
	}
}

func TestSitesApart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		page, api string
		warn      bool
	}{
		{"http://localhost:5173/", "http://localhost:8080/v1/t/example", false},
		{"http://127.0.0.1:5173/", "http://localhost:8080/v1/t/example", true},
		{"http://localhost:5173/", "http://[::1]:8080/v1/t/example", true},
		{"http://localhost:5173/", "https://auth.acme.test/v1", false}, // not local: Latchkey's warnings judge it
	}
	for _, tt := range tests {
		if got := sitesApart(tt.page, tt.api) != ""; got != tt.warn {
			t.Errorf("sitesApart(%s, %s) warns=%v, want %v", tt.page, tt.api, got, tt.warn)
		}
	}
}
