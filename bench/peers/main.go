package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/cors"
)

// Session lifetimes, Latchkey's defaults.
const (
	absoluteLifetime = 7 * 24 * time.Hour
	idleTimeout      = 12 * time.Hour
)

// redisConns is the idle Redis connections each stack keeps: above the
// benchmark's 32 HTTP connections, so that no request dials Redis.
const redisConns = 64

// cookieName is the session cookie of both stacks.
const cookieName = "session"

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

// stack is one hand-rolled stack: its routes' `me` handler chain and its
// seeding.
type stack interface {
	// me returns the handler of GET me, sessions included.
	me() http.Handler
	// seed stores a session of user and returns its cookie value.
	seed(ctx context.Context, user string, created time.Time) (string, error)
	close() error
}

func run(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: peers serve|seed [flags]")
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	name := fs.String("stack", "", "scs or securecookie")
	redisAddr := fs.String("redis", "", "Redis host:port (loopback)")
	addr := fs.String("addr", "127.0.0.1:0", "listen address (serve)")
	origin := fs.String("origin", "", "the one allowed origin (serve)")
	tenant := fs.String("tenant", "", "the tenant ID in the path /v1/t/{tenant}/ (serve)")
	sessions := fs.Int("sessions", 1000, "sessions to seed (seed)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *redisAddr == "" {
		return errors.New("-redis is required")
	}
	st, err := newStack(*name, *redisAddr, getenv)
	if err != nil {
		return err
	}
	defer st.close()
	switch cmd {
	case "seed":
		return seed(st, *sessions, stdout)
	case "serve":
		if *origin == "" || *tenant == "" {
			return errors.New("-origin and -tenant are required")
		}
		return serve(st, *addr, *origin, *tenant, stdout)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func newStack(name, redisAddr string, getenv func(string) string) (stack, error) {
	switch name {
	case "scs":
		return newSCS(redisAddr), nil
	case "securecookie":
		key, err := base64.StdEncoding.DecodeString(getenv("PEERS_COOKIE_KEY"))
		if err != nil || len(key) < 32 {
			return nil, errors.New("PEERS_COOKIE_KEY must be base64 of at least 32 bytes")
		}
		return newSecureCookie(redisAddr, key), nil
	}
	return nil, fmt.Errorf("-stack %q: want scs or securecookie", name)
}

func seed(st stack, n int, stdout io.Writer) error {
	ctx := context.Background()
	created := time.Now()
	for i := range n {
		v, err := st.seed(ctx, fmt.Sprintf("u%06d", i), created)
		if err != nil {
			return fmt.Errorf("seed session %d: %w", i, err)
		}
		if _, err := fmt.Fprintln(stdout, v); err != nil {
			return err
		}
	}
	return nil
}

// routes is what both stacks serve: CORS for the one origin around every
// route (rs/cors answers preflights itself), and me under the tenant's
// path, as Latchkey's path form.
func routes(st stack, origin, tenant string) http.Handler {
	c := cors.New(cors.Options{
		AllowedOrigins:   []string{origin},
		AllowCredentials: true,
		// Latchkey's: the safelisted methods and DELETE, Content-Type, 600 s.
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete},
		AllowedHeaders: []string{"Content-Type"},
		MaxAge:         600,
		ExposedHeaders: []string{"Retry-After", "X-Request-Id", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Vary"},
	})
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	r.Group(func(r chi.Router) {
		r.Use(c.Handler)
		r.Route("/v1/t/{tenant}", func(r chi.Router) {
			r.Use(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if chi.URLParam(r, "tenant") != tenant {
						writeJSON(w, http.StatusNotFound, []byte(`{"error":"unknown tenant"}`))
						return
					}
					next.ServeHTTP(w, r)
				})
			})
			r.Method(http.MethodGet, "/me", st.me())
		})
	})
	return r
}

// sessionView is the answer to me, shaped like Latchkey's (a user and its
// session).
type sessionView struct {
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	Session struct {
		ID            string    `json:"id"`
		CreatedAt     time.Time `json:"created_at"`
		LastSeenAt    time.Time `json:"last_seen_at"`
		IdleExpiresAt time.Time `json:"idle_expires_at"`
		ExpiresAt     time.Time `json:"expires_at"`
		UserAgent     string    `json:"user_agent"`
		Current       bool      `json:"current"`
	} `json:"session"`
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

var unauthorized = []byte(`{"error":"unauthorized"}`)

func serve(st stack, addr, origin, tenant string, stdout io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// The bare handler's settings (bench/bare).
	srv := &http.Server{Handler: routes(st, origin, tenant), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "peers listening on %s\n", ln.Addr())
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
