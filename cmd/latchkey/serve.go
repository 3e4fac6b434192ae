package main

import (
	"context"
	"crypto/rand"
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
	a, err := newApp(cfg, stdout)
	if err != nil {
		return err
	}
	return a.run(ctx, onListen)
}

// app is the service built from a validated config, not yet started: its
// files read, its store client made and checked, its manager and API
// built. run starts it, once.
type app struct {
	cfg    *config
	log    *slog.Logger
	stdout io.Writer
	reg    *prometheus.Registry
	m      *session.Manager
	srv    *api.Server
	// file is the tenants file, nil without one; demo reports whether
	// the demo runs instead (neither a tenants file nor Redis).
	file *session.TenantsFile
	demo bool
	// secrets are the files re-read while serving.
	secrets    []*secretFile
	closeStore func()
}

// newApp reads every file that cfg names, reporting all their problems
// together before anything is built, then builds the store, the manager
// and the API. A bad file changes nothing.
func newApp(cfg *config, stdout io.Writer) (*app, error) {
	a := &app{cfg: cfg, log: newLogger(stdout, cfg.LogLevel), stdout: stdout, reg: newRegistry(), closeStore: func() {}}
	var errs []error
	keys, adminToken, metricsToken := cfg.CookieKeys, cfg.AdminToken, cfg.MetricsToken
	var keysFile, adminFile, metricsFile *secretFile
	var err error
	if cfg.CookieKeysFile != "" {
		keys, keysFile, err = readSecret("LATCHKEY_COOKIE_KEYS", cfg.CookieKeysFile, session.ParseKeys)
		errs = append(errs, err)
	}
	if cfg.AdminTokenFile != "" {
		adminToken, adminFile, err = readSecret("LATCHKEY_ADMIN_TOKEN", cfg.AdminTokenFile, token)
		errs = append(errs, err)
	}
	if cfg.MetricsTokenFile != "" {
		metricsToken, metricsFile, err = readSecret("LATCHKEY_METRICS_TOKEN", cfg.MetricsTokenFile, token)
		errs = append(errs, err)
	}
	if cfg.TenantsFile != "" {
		a.file, err = readTenantsFile(cfg.TenantsFile, cfg.PublicHosts)
		errs = append(errs, err)
	}
	var st store.Store
	var client redis.UniversalClient
	if cfg.Redis != nil {
		var pwFile *secretFile
		client, pwFile, err = newRedisClient(cfg, a.reg)
		errs = append(errs, err)
		if pwFile != nil {
			a.secrets = append(a.secrets, pwFile)
		}
	}
	if err := errors.Join(errs...); err != nil {
		if client != nil {
			client.Close()
		}
		return nil, err
	}

	if client == nil {
		a.log.Warn("using the in-memory store: sessions are lost on restart and not shared between replicas; set LATCHKEY_REDIS_URL in production")
		st = memstore.New(memstore.Config{})
		a.demo = a.file == nil
	} else {
		setRedisLogger.Do(func() { redis.SetLogger(redisLogger{a.log}) }) // a global: set once
		if st, err = redisstore.New(client, redisstore.Config{Prefix: cfg.RedisPrefix}); err == nil {
			err = checkRedis(client, cfg, a.log)
		}
		if err != nil {
			client.Close()
			return nil, err
		}
		a.closeStore = func() { client.Close() }
	}
	if keys == nil {
		a.log.Warn("LATCHKEY_COOKIE_KEYS is not set: using a random key, so every restart logs everyone out")
		keys = [][]byte{session.GenerateKey()}
	}
	a.m, err = session.NewManager(st, session.Config{Keys: keys, Logger: a.log, HashMemory: cfg.HashMemoryMiB << 20, PublicHosts: cfg.PublicHosts})
	if err == nil {
		a.srv, err = api.NewServer(a.m, api.Config{Logger: a.log, AdminToken: adminToken, TrustedProxies: cfg.TrustedProxies, IPv6Prefix: cfg.IPv6Prefix, Registry: a.reg,
			MetricsToken: metricsToken, HSTSMaxAge: cfg.HSTSMaxAge})
	}
	if err != nil {
		a.closeStore()
		return nil, err
	}
	newCacheMetrics(a.reg, a.m)
	if a.file != nil {
		for _, spec := range a.file.Tenants {
			warnBrowserTrouble(a.log, a.m, &spec.Tenant)
		}
	}
	if adminToken == "" {
		a.log.Warn("admin API disabled: LATCHKEY_ADMIN_TOKEN is not set")
	}
	if metricsToken == "" && !loopbackAddr(cfg.AdminAddr) {
		a.log.Warn("/metrics answers whoever reaches the admin listener: set LATCHKEY_METRICS_TOKEN_FILE", "admin", cfg.AdminAddr)
	}
	if keysFile != nil {
		keysFile.apply = func(v string) error {
			keys, err := session.ParseKeys(v)
			if err != nil {
				return err
			}
			return a.m.Codec().SetKeys(keys)
		}
		a.secrets = append(a.secrets, keysFile)
	}
	if adminFile != nil {
		adminFile.apply = a.srv.SetAdminToken
		a.secrets = append(a.secrets, adminFile)
	}
	if metricsFile != nil {
		metricsFile.apply = a.srv.SetMetricsToken
		a.secrets = append(a.secrets, metricsFile)
	}
	return a, nil
}

// run applies the tenants file (or seeds the demo), opens the listeners,
// serves until ctx is done or a listener fails, then drains, shuts down
// and closes the store.
func (a *app) run(ctx context.Context, onListen listening) error {
	defer a.closeStore()
	cfg, log, m, srv, file := a.cfg, a.log, a.m, a.srv, a.file
	demoPassword, err := a.start(ctx)
	if err != nil {
		return err
	}
	addr := cfg.Addr
	if a.demo && !cfg.AddrGiven {
		// The demo prints a password: keep it off the network unless
		// an address was asked for.
		addr = demoAddr(addr)
	}
	// Open the listeners before serving so that a taken port is an error
	// here, not in a goroutine.
	pubLn, err := net.Listen("tcp", addr)
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
	wg.Go(func() { watchSecretFiles(watchCtx, log, secretReload, a.secrets) })

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
		printDemo(a.stdout, pubLn.Addr(), demoPassword)
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

// start applies the tenants file to the store, or seeds the demo and
// returns its user's password.
func (a *app) start(ctx context.Context) (demoPassword string, err error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	switch {
	case a.file != nil:
		if err := a.m.Apply(ctx, a.file); err != nil {
			return "", fmt.Errorf("apply tenants file: %w", err)
		}
		a.log.Info("tenants file applied", "tenants", len(a.file.Tenants))
	case a.demo:
		return seedDemo(ctx, a.m)
	}
	return "", nil
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

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

var setRedisLogger sync.Once

// redisLogger sends go-redis's own messages (pool dial failures and the
// like) to our JSON log instead of a bare stderr line.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
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
