package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/latchkeyhq/latchkey/examples/spa"
)

const (
	defaultAddr = "localhost:5173"
	defaultAPI  = "http://localhost:8080/v1/t/example"
	// shutdownTimeout bounds how long open requests may finish after a
	// signal; the files are small, so this is generous.
	shutdownTimeout = 10 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil)
	stop()
	if err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, "spa:", err)
		}
		os.Exit(2)
	}
}

// errUsage reports bad flags, which the flag package has already explained.
var errUsage = errors.New("usage")

// run is main without the process: tests call it with their own arguments,
// environment and output, and learn the bound address from onListen.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, onListen func(net.Addr)) error {
	fs := flag.NewFlagSet("spa", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(getenv, "SPA_ADDR", defaultAddr), "`address` to serve the page on (env SPA_ADDR)")
	apiURL := fs.String("api", envOr(getenv, "SPA_API", defaultAPI), "Latchkey base `URL` including the tenant prefix, no trailing slash (env SPA_API)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected arguments: %q\n", fs.Args())
		fs.Usage()
		return errUsage
	}

	h, err := spa.Handler(spa.Config{API: *apiURL})
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil))

	// Listen before serving so that a taken port is an error here.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	page := pageURL(*addr, ln.Addr())
	h = oneLoopbackName(page, h)
	if msg := sitesApart(page, *apiURL); msg != "" {
		log.Warn(msg, "url", page, "api", *apiURL)
	}
	// Every timeout is set: Go's zero values mean none, which lets a slow
	// client hold a connection forever.
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("example SPA serving", "url", page, "api", *apiURL)
	if onListen != nil {
		onListen(ln.Addr())
	}

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		return err // Serve returned before any Shutdown: the listener failed
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// oneLoopbackName redirects a request for the page under another name of
// this machine (127.0.0.1 or [::1] for localhost, and so on) to page's
// own, on the same path. Browsers take those names for different sites:
// the tenant lists the page's origin, and a page on another name calling
// the API on this one could log in but never keep its SameSite=Lax
// session. Other hosts (a LAN address of a wildcard listener) are served.
func oneLoopbackName(page string, h http.Handler) http.Handler {
	u, err := url.Parse(page)
	if err != nil || !isLoopbackHost(u.Hostname()) {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hn, _, err := net.SplitHostPort(host); err == nil {
			host = hn
		}
		if isLoopbackHost(host) && !strings.EqualFold(strings.TrimSuffix(strings.Trim(host, "[]"), "."), u.Hostname()) {
			http.Redirect(w, r, u.Scheme+"://"+u.Host+r.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// sitesApart explains why the page at page cannot keep a Lax session of
// the API at api when both are on this machine under different names, or
// returns "".
func sitesApart(page, api string) string {
	pu, err1 := url.Parse(page)
	au, err2 := url.Parse(api)
	if err1 != nil || err2 != nil || !isLoopbackHost(pu.Hostname()) || !isLoopbackHost(au.Hostname()) ||
		strings.EqualFold(pu.Hostname(), au.Hostname()) {
		return ""
	}
	return "the page and the API are on different names of this machine, which browsers take for two sites: a login will not keep its SameSite=Lax session; use the same host name in -addr and -api"
}

// isLoopbackHost reports whether host (no port; brackets allowed) names
// this machine: localhost, a name under .localhost, or a loopback IP.
func isLoopbackHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pageURL is the URL to open. It keeps the host as given in -addr, because
// the page's origin is what the tenant must list: localhost and 127.0.0.1
// are different origins even when they reach the same socket.
func pageURL(addr string, bound net.Addr) string {
	host, _, _ := net.SplitHostPort(addr)
	_, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}
