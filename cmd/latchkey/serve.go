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
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/api"
	"github.com/latchkeyhq/latchkey/internal/mail"
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
	// Every return writes out what the log holds, a failed start's
	// warnings included.
	out := newLogWriter(stdout, defaultLogBuffering)
	defer out.Close()
	a, err := newApp(cfg, out)
	if err != nil {
		return err
	}
	return a.run(ctx, onListen)
}

// app is the service built from a validated config, not yet started: its
// files read, its store client made and checked, its manager and API
// built. run starts it, once.
type app struct {
	cfg *config
	log *slog.Logger
	// out is the log's output, stdout buffered; the demo's banner goes
	// there too, to keep its place among the lines.
	out *logWriter
	m   *session.Manager
	srv *api.Server
	// file is the tenants file, nil without one; demo reports whether
	// the demo runs instead (neither a tenants file nor Redis).
	file *session.TenantsFile
	demo bool
	// secrets are the files re-read while serving.
	secrets    []*secretFile
	closeStore func()
	// outbox delivers the mails of self-service accounts; nil when no
	// mail can be sent.
	outbox *mail.Outbox
}

// newApp reads every file that cfg names, reporting all their problems
// together before anything is built, then builds the store, the manager
// and the API. A bad file changes nothing.
func newApp(cfg *config, out *logWriter) (_ *app, err error) {
	a := &app{cfg: cfg, log: slog.New(newLogHandler(out, cfg.LogLevel)), out: out, closeStore: func() {}}
	reg := newRegistry()
	newLogMetrics(reg, out)
	defer func() {
		if err != nil {
			a.closeOutbox(expired())
			a.closeStore()
		}
	}()
	// The files re-read while serving apply to a.m and a.srv, built below.
	keys, keysFile, keysErr := readSecret(cfg.CookieKeys, "LATCHKEY_COOKIE_KEYS", cfg.CookieKeysFile, session.ParseKeys,
		func(keys [][]byte) error { return a.m.Codec().SetKeys(keys) })
	adminToken, adminFile, adminErr := readSecret(cfg.AdminToken, "LATCHKEY_ADMIN_TOKEN", cfg.AdminTokenFile, token,
		func(t string) error { return a.srv.SetAdminToken(t) })
	metricsToken, metricsFile, metricsErr := readSecret(cfg.MetricsToken, "LATCHKEY_METRICS_TOKEN", cfg.MetricsTokenFile, token,
		func(t string) error { return a.srv.SetMetricsToken(t) })
	var fileErr, redisErr error
	if cfg.TenantsFile != "" {
		a.file, fileErr = readTenantsFile("LATCHKEY_TENANTS_FILE", cfg.TenantsFile, cfg.PublicHosts)
	}
	var client redis.UniversalClient
	var pwFile *secretFile
	if cfg.Redis != nil {
		if client, pwFile, redisErr = newRedisClient(cfg, reg); client != nil {
			a.closeStore = func() { client.Close() }
		}
	}
	if err := errors.Join(keysErr, adminErr, metricsErr, fileErr, redisErr); err != nil {
		return nil, err
	}
	a.secrets = slices.DeleteFunc([]*secretFile{keysFile, adminFile, metricsFile, pwFile}, func(f *secretFile) bool { return f == nil })

	var st store.Store
	if client == nil {
		a.log.Warn("using the in-memory store: sessions are lost on restart and not shared between replicas; set LATCHKEY_REDIS_URL in production")
		st = memstore.New(memstore.Config{})
		a.demo = a.file == nil
	} else {
		setRedisLogger.Do(func() { redis.SetLogger(redisLogger{a.log}) }) // a global: set once
		if st, err = redisstore.New(client, redisstore.Config{Prefix: cfg.RedisPrefix}); err != nil {
			return nil, err
		}
		if err := checkRedis(client, cfg, a.log); err != nil {
			return nil, err
		}
	}
	if keys == nil {
		a.log.Warn("LATCHKEY_COOKIE_KEYS is not set: using a random key, so every restart logs everyone out")
		keys = [][]byte{session.GenerateKey()}
	}
	if a.outbox, err = newOutbox(cfg, a.log, reg, a.demo); err != nil {
		return nil, err
	}
	var mailer session.Mailer // a nil *mail.Outbox would be a non-nil Mailer
	if a.outbox != nil {
		mailer = a.outbox
	}
	if a.m, err = session.NewManager(st, session.Config{Keys: keys, Logger: a.log, HashMemory: cfg.HashMemoryMiB << 20, PublicHosts: cfg.PublicHosts, Mailer: mailer}); err != nil {
		return nil, err
	}
	if a.srv, err = api.NewServer(a.m, api.Config{Logger: a.log, AdminToken: adminToken, TrustedProxies: cfg.TrustedProxies, IPv6Prefix: cfg.IPv6Prefix, Registry: reg,
		MetricsToken: metricsToken, HSTSMaxAge: cfg.HSTSMaxAge}); err != nil {
		return nil, err
	}
	newCacheMetrics(reg, a.m)
	if a.file != nil {
		for _, spec := range a.file.Tenants {
			for _, w := range a.m.Warnings(&spec.Tenant) {
				a.log.Warn(w.LogMessage(), "tenant", w.Tenant, "field", w.Field, "engines", w.Engines, "fix", w.Message)
			}
		}
	}
	if adminToken == "" {
		a.log.Warn("admin API disabled: LATCHKEY_ADMIN_TOKEN is not set")
	}
	if metricsToken == "" && !loopbackAddr(cfg.AdminAddr) {
		a.log.Warn("/metrics answers whoever reaches the admin listener: set LATCHKEY_METRICS_TOKEN_FILE", "admin", cfg.AdminAddr)
	}
	return a, nil
}

// run applies the tenants file (or seeds the demo), opens the listeners,
// serves until ctx is done or a listener fails, then drains, shuts down
// and closes the store.
func (a *app) run(ctx context.Context, onListen listening) error {
	defer a.closeStore()
	defer a.closeOutbox(expired()) // after a failed start; a no-op after shutdown's
	log := a.log
	demoPassword, err := a.start(ctx)
	if err != nil {
		return err
	}
	pubLn, admLn, err := a.listen()
	if err != nil {
		return err
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	var wg sync.WaitGroup
	// Serve `me` from memory while the store's invalidation feed is
	// current; a revocation on any replica reaches this one within 50 ms.
	a.m.EnableCache(watchCtx, a.cfg.SessionCacheSize)
	if a.cfg.SessionCacheSize == 0 {
		log.Info("session cache disabled: every me reads the store")
	}
	wg.Go(func() { a.watchTenants(watchCtx) })
	wg.Go(func() { watchSecretFiles(watchCtx, log, secretReload, a.secrets) })

	// The start-up lines are written now, before /readyz can answer, and
	// the banner's below as soon as they are logged: those are the lines
	// someone starting Latchkey waits for. The others wait for the
	// interval.
	a.out.Flush()
	pub, adm := newHTTPServer(a.srv.Public(), log), newHTTPServer(a.srv.Admin(), log)
	errc := make(chan error, 2)
	for s, ln := range map[*http.Server]net.Listener{pub: pubLn, adm: admLn} {
		wg.Go(func() {
			if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	log.Info("latchkey serving", "version", versionString(), "public", pubLn.Addr().String(), "admin", admLn.Addr().String())
	if demoPassword != "" {
		if !loopbackAddr(pubLn.Addr().String()) {
			log.Warn("the demo listens beyond loopback: anyone who can reach it can sign in as the demo user, whose password is printed; unset LATCHKEY_ADDR to keep it on 127.0.0.1", "public", pubLn.Addr().String())
		}
		printDemo(a.out, pubLn.Addr(), a.cfg.DemoOrigin, demoPassword, a.cfg.SMTPURL == "")
	}
	a.out.Flush()
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
	a.srv.Drain()
	if serveErr == nil && a.cfg.DrainDelay > 0 {
		log.Info("draining", "delay", a.cfg.DrainDelay.String())
		time.Sleep(a.cfg.DrainDelay)
	}
	shutCtx, cancelShut := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancelShut()
	err = errors.Join(pub.Shutdown(shutCtx), adm.Shutdown(shutCtx))
	// The requests are done: finish their background work, then send
	// what is queued.
	a.finishMail(mailDrainTimeout)
	stopWatch()
	wg.Wait()
	return errors.Join(serveErr, err)
}

// listen opens the listeners before anything serves, so that a taken port
// is an error here, not in a goroutine.
func (a *app) listen() (pub, adm net.Listener, err error) {
	addr := a.cfg.Addr
	if a.demo && !a.cfg.AddrGiven {
		// The demo prints a password: keep it off the network unless
		// an address was asked for.
		addr = demoAddr(addr)
	}
	if pub, err = net.Listen("tcp", addr); err != nil {
		return nil, nil, fmt.Errorf("public listener: %w", err)
	}
	if adm, err = net.Listen("tcp", a.cfg.AdminAddr); err != nil {
		pub.Close()
		return nil, nil, fmt.Errorf("admin listener: %w", err)
	}
	return pub, adm, nil
}

// watchTenants keeps the API's tenants those of the store until ctx is
// done, and marks the API ready once it has them.
func (a *app) watchTenants(ctx context.Context) {
	first := true
	a.m.WatchTenants(ctx, tenantReload, func(u session.TenantsUpdate) {
		if a.file != nil && missingTenants(a.file, u, first) {
			// A Redis restarted without persistence comes back empty;
			// serving no tenant until the next restart would be an
			// outage. Only tenants the store has lost along with the
			// record of the file's application come back: one deleted
			// through the admin API stays deleted.
			n, err := a.m.RestoreLostTenants(ctx, a.file)
			if err != nil {
				a.log.Error("could not apply the tenants file to the tenants the store lost", "err", err)
			}
			if n > 0 {
				// The store's change notification brings them back in
				// the next update.
				a.log.Error("the store had lost tenants of the tenants file (a Redis restart without persistence?); applied them again", "tenants", n)
			}
		}
		first = false
		a.srv.UpdateTenants(u)
		a.srv.MarkReady()
	})
}

// start applies the tenants file to the store, or seeds the demo and
// returns its user's password.
func (a *app) start(ctx context.Context) (demoPassword string, err error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := a.checkMailNeeded(ctx); err != nil {
		return "", err
	}
	switch {
	case a.file != nil:
		if err := a.m.Apply(ctx, a.file); err != nil {
			return "", fmt.Errorf("apply tenants file: %w", err)
		}
		a.log.Info("tenants file applied", "tenants", len(a.file.Tenants))
	case a.demo:
		return seedDemo(ctx, a.m, a.cfg.DemoOrigin)
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

var setRedisLogger sync.Once

// redisLogger sends go-redis's own messages (pool dial failures and the
// like) to our JSON log instead of a bare stderr line.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// readTenantsFile reads and validates the tenants file at path, which
// setting names (LATCHKEY_TENANTS_FILE, or the doctor's --tenants-file),
// reporting every problem.
func readTenantsFile(setting, path string, publicHosts []string) (*session.TenantsFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	defer f.Close()
	tf, err := session.ParseTenantsFile(f, publicHosts...)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", setting, path, err)
	}
	return tf, nil
}

// Demo tenant of a fresh `make run`: the example SPA runs on port 5173.
const (
	demoTenant = "example"
	demoUser   = "demo"
	// defaultDemoOrigin is the one origin of the demo tenant, unless
	// -demo-origin says otherwise. Browsers take localhost and 127.0.0.1
	// for two sites, and the demo's cookie is SameSite=Lax: a page on one
	// name calling the API on the other could log in but never keep its
	// session. So the demo uses one name for both, and the example SPA
	// sends other loopback names to it.
	defaultDemoOrigin = "http://localhost:5173"
	// demoAPIHost is the host name that the demo tells the SPA to call,
	// the same as defaultDemoOrigin's.
	demoAPIHost = "localhost"
)

// seedDemo creates the example tenant, allowing origin, and its user when
// nothing is configured, so that a new user can try Latchkey at once, and
// returns the user's password. It is random and printed once, on stdout,
// as the one deliberate exception to keeping secrets out of output: it
// guards nothing but a throwaway in-memory store, on loopback unless asked
// otherwise.
func seedDemo(ctx context.Context, m *session.Manager, origin string) (string, error) {
	t := session.Tenant{
		ID:      demoTenant,
		Name:    "Example (demo)",
		Dev:     true,
		Origins: []string{origin},
		Cookie:  session.CookiePolicy{SameSite: session.SameSiteLax},
		// Self-service accounts on the example SPA's own pages; the
		// demo's mails, links included, are printed to the log.
		Accounts: demoAccounts(origin),
	}
	// A dev tenant's cookie over plain HTTP on loopback is not Secure
	// (session.Tenant.OverPlainLoopback), so the demo works in Safari as
	// in Chrome and Firefox: a warning for it is a bug here, or an origin
	// under another loopback name than the API's, which the user must fix.
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

// demoAccounts is the demo tenant's self-service accounts: signup with a
// verified address, login by address, password reset, their links on the
// example SPA's /verify and /reset.
func demoAccounts(origin string) *session.AccountsPolicy {
	return &session.AccountsPolicy{
		Signup:            true,
		EmailVerification: session.VerificationRequired,
		LoginWithEmail:    true,
		VerifyURL:         origin + "/verify",
		ResetURL:          origin + "/reset",
	}
}

// demoAddr is the demo's public listener when none was given: the port of
// addr (the default, validated already), on 127.0.0.1.
func demoAddr(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort("127.0.0.1", port)
}

// printDemo tells the user how to try the demo listening on pub, whose
// tenant allows origin; mailsLogged reports whether its mails go to the
// log (no LATCHKEY_SMTP_URL).
func printDemo(stdout io.Writer, pub net.Addr, origin, pw string, mailsLogged bool) {
	host, port, _ := net.SplitHostPort(pub.String())
	if ip, err := netip.ParseAddr(host); err != nil || ip.IsLoopback() || ip.IsUnspecified() {
		host = demoAPIHost
	}
	mails := "  Sign up there too: mails are sent through LATCHKEY_SMTP_URL.\n"
	if mailsLogged {
		mails = `  Sign up there too: mails are not sent but printed to this log, each
  with its link (email verification, password reset): open it to go on.
`
	}
	fmt.Fprintf(stdout, `
  No tenants file and no Redis: running a DEMO on the in-memory store.
  Tenant %q allows %s (make run serves the example SPA there);
  open it in any browser, or log in at
    POST http://%s/v1/t/%s/login
  as username %q with password %s
%s
`, demoTenant, origin, net.JoinHostPort(host, port), demoTenant, demoUser, pw, mails)
}
