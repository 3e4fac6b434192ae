package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/api"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/memstore"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// Timing of the process. shutdownTimeout stays well under Kubernetes'
// default 30 s terminationGracePeriodSeconds.
const (
	tenantReload    = 5 * time.Second
	shutdownTimeout = 20 * time.Second
	startTimeout    = 15 * time.Second
)

// listening reports the bound addresses once both listeners are open; tests
// use it with port 0.
type listening func(public, admin net.Addr)

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, onListen listening) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		serveHelp(stdout, getenv)
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg.LogLevel)

	reg := newRegistry()
	st, closeStore, err := openStore(cfg, log, reg)
	if err != nil {
		return err
	}
	defer closeStore()

	keys, err := cookieKeys(cfg, log)
	if err != nil {
		return err
	}
	m, err := session.NewManager(st, session.Config{Keys: keys, Logger: log, HashMemory: cfg.HashMemoryMiB << 20, PublicHosts: cfg.PublicHosts})
	if err != nil {
		return err
	}

	// Read the tenants file before touching the store, so that a bad file is
	// reported in full and changes nothing.
	var file *session.TenantsFile
	var demoPassword string // set when serving the demo
	if cfg.TenantsFile != "" {
		if file, err = readTenantsFile(cfg.TenantsFile, cfg.PublicHosts); err != nil {
			return err
		}
		for _, spec := range file.Tenants {
			warnBrowserTrouble(log, m, &spec.Tenant)
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	switch {
	case file != nil:
		if err := m.Apply(startCtx, file); err != nil {
			return fmt.Errorf("apply tenants file: %w", err)
		}
		log.Info("tenants file applied", "tenants", len(file.Tenants))
	case cfg.RedisURL == "":
		if demoPassword, err = seedDemo(startCtx, m); err != nil {
			return err
		}
		// The demo prints a password: keep it off the network unless
		// an address was asked for.
		if !cfg.AddrGiven {
			cfg.Addr = demoAddr(cfg.Addr)
		}
	}

	srv, err := api.NewServer(m, api.Config{Logger: log, AdminToken: cfg.AdminToken, TrustedProxies: cfg.TrustedProxies, IPv6Prefix: cfg.IPv6Prefix, Registry: reg,
		MetricsToken: cfg.MetricsToken, HSTSMaxAge: cfg.HSTSMaxAge})
	if err != nil {
		return err
	}
	if cfg.AdminToken == "" {
		log.Warn("admin API disabled: LATCHKEY_ADMIN_TOKEN is not set")
	}
	if cfg.MetricsToken == "" && !loopbackAddr(cfg.AdminAddr) {
		log.Warn("/metrics answers whoever reaches the admin listener: set LATCHKEY_METRICS_TOKEN_FILE", "admin", cfg.AdminAddr)
	}

	// Open the listeners before serving so that a taken port is an error
	// here, not in a goroutine.
	pubLn, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("public listener: %w", err)
	}
	admLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		pubLn.Close()
		return fmt.Errorf("admin listener: %w", err)
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	var wg sync.WaitGroup
	// Serve `me` from memory while the store's invalidation feed is
	// current; a revocation on any replica reaches this one within 50 ms.
	m.EnableCache(watchCtx, cfg.SessionCacheSize)
	newCacheMetrics(reg, m)
	if cfg.SessionCacheSize == 0 {
		log.Info("session cache disabled: every me reads the store")
	}
	wg.Go(func() {
		first := true
		m.WatchTenants(watchCtx, tenantReload, func(u session.TenantsUpdate) {
			if file != nil && missingTenants(file, u, first) {
				// A Redis restarted without persistence comes back empty;
				// serving no tenant until the next restart would be an
				// outage. Only tenants the store has lost along with the
				// record of the file's application come back: one
				// deleted through the admin API stays deleted.
				n, err := m.RestoreLostTenants(watchCtx, file)
				if err != nil {
					log.Error("could not apply the tenants file to the tenants the store lost", "err", err)
				}
				if n > 0 {
					// The store's change notification brings them back
					// in the next update.
					log.Error("the store had lost tenants of the tenants file (a Redis restart without persistence?); applied them again", "tenants", n)
				}
			}
			first = false
			srv.UpdateTenants(u)
			srv.MarkReady()
		})
	})

	var secrets []*secretFile
	if cfg.CookieKeysFile != "" {
		secrets = append(secrets, &secretFile{setting: "LATCHKEY_COOKIE_KEYS_FILE", path: cfg.CookieKeysFile, apply: func(v string) error {
			keys, err := session.ParseKeys(v)
			if err != nil {
				return err
			}
			return m.Codec().SetKeys(keys)
		}})
	}
	if cfg.AdminTokenFile != "" {
		secrets = append(secrets, &secretFile{setting: "LATCHKEY_ADMIN_TOKEN_FILE", path: cfg.AdminTokenFile, apply: srv.SetAdminToken})
	}
	if cfg.MetricsTokenFile != "" {
		secrets = append(secrets, &secretFile{setting: "LATCHKEY_METRICS_TOKEN_FILE", path: cfg.MetricsTokenFile, apply: srv.SetMetricsToken})
	}
	for _, f := range secrets {
		v, _ := readSecretFile(f.path) // read once already by parseConfig
		f.sum = sha256.Sum256([]byte(v))
	}
	wg.Go(func() { watchSecretFiles(watchCtx, log, secretReload, secrets) })

	pub := newHTTPServer(srv.Public(), log)
	adm := newHTTPServer(srv.Admin(), log)
	errc := make(chan error, 2)
	for _, x := range []struct {
		s  *http.Server
		ln net.Listener
	}{{pub, pubLn}, {adm, admLn}} {
		wg.Go(func() {
			if err := x.s.Serve(x.ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	log.Info("latchkey serving", "version", versionString(), "public", pubLn.Addr().String(), "admin", admLn.Addr().String())
	if demoPassword != "" {
		if !isLoopbackAddr(pubLn.Addr()) {
			log.Warn("the demo listens beyond loopback: anyone who can reach it can sign in as the demo user, whose password is printed; unset LATCHKEY_ADDR to keep it on 127.0.0.1", "public", pubLn.Addr().String())
		}
		printDemo(stdout, pubLn.Addr(), demoPassword)
	}
	if onListen != nil {
		onListen(pubLn.Addr(), admLn.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
		log.Error("listener failed", "err", serveErr)
	}
	// Fail readiness first and keep serving while load balancers notice,
	// then stop taking connections and let in-flight requests finish.
	srv.Drain()
	if serveErr == nil && cfg.DrainDelay > 0 {
		log.Info("draining", "delay", cfg.DrainDelay.String())
		time.Sleep(cfg.DrainDelay)
	}
	shutCtx, cancelShut := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancelShut()
	err = errors.Join(pub.Shutdown(shutCtx), adm.Shutdown(shutCtx))
	stopWatch()
	wg.Wait()
	return errors.Join(serveErr, err)
}

// missingTenants reports whether update u of the tenants lacks a tenant of
// the file: on the first update, which holds every tenant, one not in it;
// later, one it deletes.
func missingTenants(f *session.TenantsFile, u session.TenantsUpdate, first bool) bool {
	ids := make(map[session.TenantID]bool)
	if first {
		for _, t := range u.Changed {
			ids[t.ID] = true
		}
	} else {
		for _, id := range u.Deleted {
			ids[id] = true
		}
	}
	// First: missing if not listed; later: missing if listed as deleted.
	return slices.ContainsFunc(f.Tenants, func(spec session.TenantSpec) bool { return ids[spec.ID] != first })
}

// loopbackAddr reports whether a listener address binds loopback only
// ("127.0.0.1:8081", "[::1]:8081", "localhost:8081"), which no other host
// reaches.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// warnBrowserTrouble logs each way t's configuration would fail in a
// browser, with its fix.
func warnBrowserTrouble(log *slog.Logger, m *session.Manager, t *session.Tenant) {
	for _, w := range m.Warnings(t) {
		log.Warn("this tenant's cookie will not work in browsers for an origin", "tenant", w.Tenant, "field", w.Field, "fix", w.Message)
	}
}

// newHTTPServer sets every timeout deliberately: Go's zero values mean none,
// which lets a slow client hold a connection forever.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated in parseConfig
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func openStore(cfg *config, log *slog.Logger, reg prometheus.Registerer) (store.Store, func(), error) {
	if cfg.RedisURL == "" {
		log.Warn("using the in-memory store: sessions are lost on restart and not shared between replicas; set LATCHKEY_REDIS_URL in production")
		return memstore.New(memstore.Config{}), func() {}, nil
	}
	setRedisLogger.Do(func() { redis.SetLogger(redisLogger{log}) }) // a global: set once
	// Standalone, Sentinel or Cluster, with the same timeouts and metrics;
	// see redis.go.
	rc, err := openRedis(cfg, log, reg)
	if err != nil {
		return nil, nil, err
	}
	st, err := redisstore.New(rc.client, redisstore.Config{Prefix: cfg.RedisPrefix})
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	return st, rc.Close, nil
}

var setRedisLogger sync.Once

// redisLogger sends go-redis's own messages (pool dial failures and the
// like) to our JSON log instead of a bare stderr line.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

func cookieKeys(cfg *config, log *slog.Logger) ([][]byte, error) {
	if cfg.CookieKeys != "" {
		return session.ParseKeys(cfg.CookieKeys)
	}
	log.Warn("LATCHKEY_COOKIE_KEYS is not set: using a random key, so every restart logs everyone out")
	return [][]byte{session.GenerateKey()}, nil
}

func readTenantsFile(path string, publicHosts []string) (*session.TenantsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("LATCHKEY_TENANTS_FILE: %w", err)
	}
	defer f.Close()
	tf, err := session.ParseTenantsFile(f, publicHosts...)
	if err != nil {
		return nil, fmt.Errorf("LATCHKEY_TENANTS_FILE %s: %w", path, err)
	}
	return tf, nil
}

// Demo tenant of a fresh `make run`: the example SPA runs on port 5173.
const (
	demoTenant = "example"
	demoUser   = "demo"
	// demoOrigin is the one origin of the demo tenant. Browsers take
	// localhost and 127.0.0.1 for two sites, and the demo's cookie is
	// SameSite=Lax: a page on one name calling the API on the other could
	// log in but never keep its session. So the demo uses one name for
	// both, and the example SPA sends other loopback names to it.
	demoOrigin = "http://localhost:5173"
	// demoAPIHost is the host name that the demo tells the SPA to call,
	// the same as demoOrigin's.
	demoAPIHost = "localhost"
)

// seedDemo creates the example tenant and user when nothing is configured,
// so that a new user can try Latchkey at once, and returns the user's
// password. It is random and printed once, on stdout, as the one
// deliberate exception to keeping secrets out of output: it guards nothing
// but a throwaway in-memory store, on loopback unless asked otherwise.
func seedDemo(ctx context.Context, m *session.Manager) (string, error) {
	t := session.Tenant{
		ID:      demoTenant,
		Name:    "Example (demo)",
		Dev:     true,
		Origins: []string{demoOrigin},
		Cookie:  session.CookiePolicy{SameSite: session.SameSiteLax},
	}
	// A demo that would not work in a browser is a bug here, not a
	// warning for the user.
	if ws := t.WarningsOn(demoAPIHost); len(ws) > 0 {
		return "", fmt.Errorf("demo tenant: %s: %s", ws[0].Field, ws[0].Message)
	}
	if _, _, err := m.PutTenant(ctx, t); err != nil {
		return "", fmt.Errorf("demo tenant: %w", err)
	}
	pw := rand.Text()[:16]
	if _, err := m.CreateUser(ctx, demoTenant, session.UserInput{Username: demoUser, Password: &pw}); err != nil {
		return "", fmt.Errorf("demo user: %w", err)
	}
	return pw, nil
}

// demoAddr is the demo's public listener when none was given: the port of
// addr (the default), on 127.0.0.1.
func demoAddr(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // validated already
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// isLoopbackAddr reports whether a is a TCP address on a loopback IP.
func isLoopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// printDemo tells the user how to try the demo listening on pub.
func printDemo(stdout io.Writer, pub net.Addr, pw string) {
	host := demoAPIHost
	if ta, ok := pub.(*net.TCPAddr); ok && !ta.IP.IsLoopback() && !ta.IP.IsUnspecified() {
		host = ta.IP.String()
	}
	port := "8080"
	if ta, ok := pub.(*net.TCPAddr); ok {
		port = strconv.Itoa(ta.Port)
	}
	fmt.Fprintf(stdout, `
  No tenants file and no Redis: running a DEMO on the in-memory store.
  Tenant %q allows %s (make run serves the example SPA there);
  open it, or log in at
    POST http://%s/v1/t/%s/login
  as username %q with password %s

`, demoTenant, demoOrigin, net.JoinHostPort(host, port), demoTenant, demoUser, pw)
}
