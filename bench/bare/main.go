//go:build bench

// Command bare is the benchmark's baseline: an HTTP server that answers
// GET /me with a fixed JSON body the size and shape of Latchkey's, and
// nothing else (no routing beyond that path, no CORS, no session, no
// logging). `make bench` builds it, runs it on a loopback port next to
// Latchkey and compares every case with it in the same round, so that what
// the machine, the kernel's loopback and the Go HTTP stack cost is
// measured once and divided out.
//
// Usage: bare -addr 127.0.0.1:PORT. It exits 0 on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// body is shaped like Latchkey's answer to GET me (a user and its
// session), about 250 bytes.
const body = `{"user":{"username":"u000042"},"session":{"id":"q1Jx0b8mFh2cYk3PZ9wTnA","created_at":"2026-01-02T03:04:05Z","last_seen_at":"2026-01-02T03:04:05Z","idle_expires_at":"2026-01-02T15:04:05Z","expires_at":"2026-01-09T03:04:05Z","user_agent":"","current":true}}` + "\n"

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(body))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("bare listening on %s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
