package main

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/api"
	"github.com/latchkeyhq/latchkey/internal/mail"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// config is the serve command's validated configuration. Every field is
// one setting, a flag and an environment variable (the flag wins), parsed
// into its type once. Files are named here and read by newApp.
type config struct {
	Addr      string
	AdminAddr string
	// AddrGiven reports whether LATCHKEY_ADDR or -addr was set, rather
	// than Addr being the default: the demo listens on loopback unless
	// told otherwise.
	AddrGiven bool
	// Redis is LATCHKEY_REDIS_URL as go-redis parsed it; nil means the
	// in-memory store. It holds the URL's credentials: never log it.
	Redis *redis.UniversalOptions
	// RedisPrefix starts every Redis key and the change channel; empty
	// means redisstore.DefaultPrefix.
	RedisPrefix       string
	RedisCAFile       string
	RedisCertFile     string
	RedisKeyFile      string
	RedisPasswordFile string
	TenantsFile       string
	// DemoOrigin is the one origin of the demo's tenant.
	DemoOrigin string
	// CookieKeys, AdminToken and MetricsToken are given as values or in
	// their _FILE; nil or empty when not given as values.
	CookieKeys       [][]byte
	CookieKeysFile   string
	AdminToken       string
	AdminTokenFile   string
	MetricsToken     string
	MetricsTokenFile string
	LogLevel         slog.Level
	TrustedProxies   []netip.Prefix
	PublicHosts      []string
	HashMemoryMiB    int64
	SessionCacheSize int
	IPv6Prefix       int
	DrainDelay       time.Duration
	HSTSMaxAge       time.Duration
	// SMTPURL is LATCHKEY_SMTP_URL, empty for none; it may hold a
	// password: never log or echo it.
	SMTPURL          string
	SMTPPasswordFile string
	SMTPCAFile       string
	MailFrom         string
}

// maxSessionCache bounds LATCHKEY_SESSION_CACHE_SIZE: ten million
// sessions take about 2 GB, more than a replica of a login service should
// hold; a larger number is a typo.
const maxSessionCache = 10_000_000

// A setting is one configuration value bound to its flag and its
// environment variable: the text given (flag over variable over default)
// is parsed into its config field once, after the flags. Its errors are
// prefixed with the variable's name and never quote a secret's value.
type setting struct {
	flag, env, def, usage string
	secret                bool // kept out of -help
	raw                   string
	parse                 func(string) error // sets the field from raw
}

// bind returns the setting that parse sets *dst from.
func bind[T any](dst *T, flag, env, def, usage string, parse func(string) (T, error)) *setting {
	return &setting{flag: flag, env: env, def: def, usage: usage, parse: func(s string) error {
		v, err := parse(s)
		if err == nil {
			*dst = v
		}
		return err
	}}
}

// secret marks s as holding a secret, whose value -help never shows.
func secret(s *setting) *setting { s.secret = true; return s }

// String and Set make a setting the flag.Value of its flag.
func (s *setting) String() string {
	if s.secret {
		return ""
	}
	return s.raw
}

func (s *setting) Set(v string) error { s.raw = v; return nil }

func (c *config) settings() []*setting {
	return []*setting{
		bind(&c.Addr, "addr", "LATCHKEY_ADDR", ":8080", "public listener (the SPA-facing API)", hostPort),
		bind(&c.AdminAddr, "admin-addr", "LATCHKEY_ADMIN_ADDR", "127.0.0.1:8081", "admin listener: admin API, /healthz, /readyz", hostPort),
		secret(bind(&c.Redis, "redis-url", "LATCHKEY_REDIS_URL", "", "go-redis URL of Redis: redis:// or rediss:// (TLS); master_name= for Sentinel, addr= for more Cluster seeds; unset means the in-memory store", parseRedisURL)),
		bind(&c.TenantsFile, "tenants-file", "LATCHKEY_TENANTS_FILE", "", "YAML tenants file applied at start-up", text),
		secret(bind(&c.CookieKeys, "cookie-keys", "LATCHKEY_COOKIE_KEYS", "", fmt.Sprintf("comma-separated base64 cookie keys (>= %d bytes each); the first signs", session.MinKeyLen), optional(session.ParseKeys))),
		secret(bind(&c.AdminToken, "admin-token", "LATCHKEY_ADMIN_TOKEN", "", "bearer token of the admin API; unset disables it", optional(token))),
		bind(&c.LogLevel, "log-level", "LATCHKEY_LOG_LEVEL", "info", "debug, info, warn or error", logLevel),
		bind(&c.TrustedProxies, "trusted-proxies", "LATCHKEY_TRUSTED_PROXIES", "", "comma-separated CIDRs or IPs of proxies whose X-Forwarded-For is believed (e.g. the ingress)", list(prefix)),
		bind(&c.HashMemoryMiB, "hash-memory", "LATCHKEY_HASH_MEMORY_MIB", strconv.Itoa(session.DefaultHashMemory>>20), "MiB that concurrent password hashes may use together",
			number[int64](20, 1<<20, "a whole number of MiB from 20 (one hash) to 1048576")),
		bind(&c.SessionCacheSize, "session-cache-size", "LATCHKEY_SESSION_CACHE_SIZE", strconv.Itoa(session.DefaultCacheSize), "sessions each replica keeps in memory for me (about 220 bytes each), evicting the least recently used; 0 disables the cache",
			number[int](0, maxSessionCache, fmt.Sprintf("a whole number of sessions from 0 (no cache) to %d", maxSessionCache))),
		bind(&c.CookieKeysFile, "cookie-keys-file", "LATCHKEY_COOKIE_KEYS_FILE", "", "file holding LATCHKEY_COOKIE_KEYS, re-read when it changes", text),
		bind(&c.AdminTokenFile, "admin-token-file", "LATCHKEY_ADMIN_TOKEN_FILE", "", "file holding LATCHKEY_ADMIN_TOKEN, re-read when it changes", text),
		bind(&c.DrainDelay, "drain-delay", "LATCHKEY_DRAIN_DELAY", "0s", "after SIGTERM, how long to keep serving with /readyz failing before closing",
			duration(5*time.Minute, time.Nanosecond, "a duration from 0s to 5m")),
		bind(&c.RedisCAFile, "redis-ca-file", "LATCHKEY_REDIS_CA_FILE", "", "PEM file of the CA certificates that Redis's TLS certificate must verify against (rediss:// URLs); unset means the system's", text),
		bind(&c.RedisCertFile, "redis-cert-file", "LATCHKEY_REDIS_CERT_FILE", "", "PEM file of the TLS client certificate to present to Redis, with -redis-key-file", text),
		bind(&c.RedisKeyFile, "redis-key-file", "LATCHKEY_REDIS_KEY_FILE", "", "PEM file of the TLS client certificate's private key", text),
		bind(&c.RedisPasswordFile, "redis-password-file", "LATCHKEY_REDIS_PASSWORD_FILE", "", "file holding the Redis password, re-read when it changes; the URL then holds none", text),
		bind(&c.PublicHosts, "public-hosts", "LATCHKEY_PUBLIC_HOSTS", "", "comma-separated hostnames of the shared public API, which serve every tenant in path form (/v1/t/{tenant}/…); no tenant may claim one", list(publicHost)),
		secret(bind(&c.MetricsToken, "metrics-token", "LATCHKEY_METRICS_TOKEN", "", fmt.Sprintf("bearer token that /metrics requires (>= %d bytes); unset serves /metrics to whoever reaches the admin listener", api.MinTokenLen), optional(token))),
		bind(&c.MetricsTokenFile, "metrics-token-file", "LATCHKEY_METRICS_TOKEN_FILE", "", "file holding LATCHKEY_METRICS_TOKEN, re-read when it changes", text),
		bind(&c.HSTSMaxAge, "hsts-max-age", "LATCHKEY_HSTS_MAX_AGE", "8760h", "max-age of the Strict-Transport-Security header on answers to HTTPS requests (TLS, or X-Forwarded-Proto: https from a trusted proxy); 0 sends none",
			duration(api.MaxHSTSMaxAge, time.Second, fmt.Sprintf("a whole number of seconds from 0 (no header) to %gh (two years), as a duration such as 8760h", api.MaxHSTSMaxAge.Hours()))),
		bind(&c.IPv6Prefix, "ipv6-prefix", "LATCHKEY_IPV6_PREFIX", strconv.Itoa(api.DefaultIPv6Prefix), fmt.Sprintf("prefix length (%d to 128) of the IPv6 network a client is counted under by the per-address login limit", api.MinIPv6Prefix),
			number[int](api.MinIPv6Prefix, 128, fmt.Sprintf("a prefix length from %d to 128", api.MinIPv6Prefix))),
		bind(&c.DemoOrigin, "demo-origin", "LATCHKEY_DEMO_ORIGIN", defaultDemoOrigin, "the SPA origin the demo's tenant allows (a loopback origin, such as your dev server's http://localhost:3000); only without -redis-url and -tenants-file", loopbackOrigin),
		secret(bind(&c.SMTPURL, "smtp-url", "LATCHKEY_SMTP_URL", "", "SMTP server of the self-service accounts' mails: smtp://[user[:password]@]host[:port] (STARTTLS, required unless the host is loopback; port 587) or smtps://… (TLS; port 465); unset sends none, and a tenant with accounts is refused", optional(smtpURL))),
		bind(&c.SMTPPasswordFile, "smtp-password-file", "LATCHKEY_SMTP_PASSWORD_FILE", "", "file holding the SMTP password, read at every connection; the URL then holds the user and no password", text),
		bind(&c.SMTPCAFile, "smtp-ca-file", "LATCHKEY_SMTP_CA_FILE", "", "PEM file of the CA certificates that the SMTP server's certificate must verify against; unset means the system's", text),
		bind(&c.MailFrom, "mail-from", "LATCHKEY_MAIL_FROM", "", `sender of the mails, "addr" or "Name <addr>"; required with -smtp-url`, optional(mailFrom)),
		bind(&c.RedisPrefix, "redis-prefix", "LATCHKEY_REDIS_PREFIX", "", "prefix of every Redis key and of the change channel, so that deployments (or tests) can share one Redis; unset means "+redisstore.DefaultPrefix, optional(redisPrefix)),
	}
}

// parseConfig reads flags over environment over defaults and validates the
// result, reporting every problem at once; it reads no file. Secrets are
// better passed in the environment: flags show up in process listings.
// For -h or -help it returns flag.ErrHelp, for which serve prints
// serveHelp; for a bad flag, errUsage, explained on stderr already.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	settings := c.settings()
	fs := flagSet(settings, getenv)
	// The flag package reports a bad flag, and -h, through Output and
	// Usage; only a bad flag's report is for stderr.
	var report bytes.Buffer
	fs.SetOutput(&report)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), `usage: latchkey serve [flags]; "latchkey serve -h" lists them`) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		if stderr != nil {
			stderr.Write(report.Bytes())
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	c.AddrGiven = getenv("LATCHKEY_ADDR") != ""
	fs.Visit(func(f *flag.Flag) { c.AddrGiven = c.AddrGiven || f.Name == "addr" })
	var errs []error
	given := map[string]bool{}
	for _, s := range settings {
		given[s.env] = s.raw != ""
		if err := s.parse(s.raw); err != nil {
			// Prefix each problem, one or several joined, with the name.
			for _, e := range unjoin(err) {
				errs = append(errs, fmt.Errorf("%s: %w", s.env, e))
			}
		}
	}
	errs = append(errs, c.validate(given)...)
	return c, errors.Join(errs...)
}

// unjoin returns the errors that err joins, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// serveHelp is the text of "latchkey serve -h".
func serveHelp(w io.Writer, getenv func(string) string) {
	fmt.Fprint(w, `usage: latchkey serve [flags]

Runs Latchkey: the public API on -addr, the admin API, /healthz, /readyz and
/metrics on -admin-addr. Every flag is also the environment variable named
with it; a flag wins over its variable, and a variable over the default.
Give secrets in the environment or as files: flags show in process listings.
All problems are reported together, and serve then exits with status 2.

With neither -redis-url nor -tenants-file, serve runs a demo: the in-memory
store and a tenant "example" for the example SPA on http://localhost:5173
(or -demo-origin), whose user "demo" gets a random password, printed on
stdout. The demo listens on 127.0.0.1:8080 (loopback only) unless -addr or
LATCHKEY_ADDR is given.

flags:
`)
	fs := flagSet((&config{}).settings(), getenv)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// flagSet returns the serve flags, each defaulting to its environment
// variable, else to its default.
func flagSet(settings []*setting, getenv func(string) string) *flag.FlagSet {
	fs := flag.NewFlagSet("latchkey serve", flag.ContinueOnError)
	for _, s := range settings {
		s.raw = cmp.Or(getenv(s.env), s.def)
		fs.Var(s, s.flag, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	return fs
}

// validate checks what no single setting can: the settings that go
// together. given names the settings given a value, valid or not.
func (c *config) validate(given map[string]bool) []error {
	var errs []error
	for _, name := range []string{"LATCHKEY_COOKIE_KEYS", "LATCHKEY_ADMIN_TOKEN", "LATCHKEY_METRICS_TOKEN"} {
		if given[name] && given[name+"_FILE"] {
			errs = append(errs, fmt.Errorf("%s and %s_FILE are both set: give one", name, name))
		}
	}
	// Never echo the URL: it may hold a password.
	if given["LATCHKEY_REDIS_URL"] && !given["LATCHKEY_COOKIE_KEYS"] && !given["LATCHKEY_COOKIE_KEYS_FILE"] {
		errs = append(errs, errors.New("LATCHKEY_COOKIE_KEYS: required with LATCHKEY_REDIS_URL, or replicas would reject each other's cookies and every restart would log everyone out"))
	}
	errs = append(errs, c.validateMail(given)...)
	tlsFiles := []string{"LATCHKEY_REDIS_CA_FILE", "LATCHKEY_REDIS_CERT_FILE", "LATCHKEY_REDIS_KEY_FILE"}
	if !given["LATCHKEY_REDIS_URL"] {
		for _, name := range append(tlsFiles, "LATCHKEY_REDIS_PASSWORD_FILE") {
			if given[name] {
				errs = append(errs, fmt.Errorf("%s: only meaningful with LATCHKEY_REDIS_URL", name))
			}
		}
		if c.RedisPrefix != "" { // a bad one is reported already
			errs = append(errs, errors.New("LATCHKEY_REDIS_PREFIX: only meaningful with LATCHKEY_REDIS_URL"))
		}
		return errs
	}
	if given["LATCHKEY_REDIS_CERT_FILE"] != given["LATCHKEY_REDIS_KEY_FILE"] {
		errs = append(errs, errors.New("LATCHKEY_REDIS_CERT_FILE, LATCHKEY_REDIS_KEY_FILE: give both, the client certificate and its key, or neither"))
	}
	if c.Redis == nil {
		return errs // the URL's problems are reported already
	}
	if tlsFiles = slices.DeleteFunc(tlsFiles, func(name string) bool { return !given[name] }); len(tlsFiles) > 0 && c.Redis.TLSConfig == nil {
		errs = append(errs, fmt.Errorf("%s: only meaningful with a rediss:// URL", strings.Join(tlsFiles, ", ")))
	}
	if c.RedisPasswordFile != "" && c.Redis.Password != "" {
		errs = append(errs, errors.New("LATCHKEY_REDIS_PASSWORD_FILE: LATCHKEY_REDIS_URL holds a password too: give one"))
	}
	return errs
}

// validateMail checks the mail settings that go together.
func (c *config) validateMail(given map[string]bool) []error {
	var errs []error
	if !given["LATCHKEY_SMTP_URL"] {
		for _, name := range []string{"LATCHKEY_SMTP_PASSWORD_FILE", "LATCHKEY_SMTP_CA_FILE", "LATCHKEY_MAIL_FROM"} {
			if given[name] {
				errs = append(errs, fmt.Errorf("%s: only meaningful with LATCHKEY_SMTP_URL", name))
			}
		}
		return errs
	}
	if !given["LATCHKEY_MAIL_FROM"] {
		errs = append(errs, errors.New("LATCHKEY_MAIL_FROM: required with LATCHKEY_SMTP_URL"))
	}
	// Never echo the URL: it may hold a password.
	if u, err := url.Parse(c.SMTPURL); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok && given["LATCHKEY_SMTP_PASSWORD_FILE"] {
			errs = append(errs, errors.New("LATCHKEY_SMTP_PASSWORD_FILE: LATCHKEY_SMTP_URL holds a password too: give one"))
		}
	}
	return errs
}

// The parsers of the settings. Their errors complete "SETTING: " and
// quote the value only where it cannot be a secret.

func text(s string) (string, error) { return s, nil }

// optional parses a setting that may be left empty, which means unset.
func optional[T any](parse func(string) (T, error)) func(string) (T, error) {
	return func(s string) (T, error) {
		if s == "" {
			var zero T
			return zero, nil
		}
		return parse(s)
	}
}

func hostPort(s string) (string, error) {
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", fmt.Errorf("%q is not host:port", s)
	}
	return s, nil
}

// token checks a bearer token; the error never quotes it.
func token(s string) (string, error) {
	if len(s) < api.MinTokenLen {
		return "", fmt.Errorf("must be at least %d bytes; generate one with `openssl rand -base64 32`", api.MinTokenLen)
	}
	return s, nil
}

func logLevel(s string) (slog.Level, error) {
	var l slog.Level
	switch s {
	case "debug", "info", "warn", "error":
		return l, l.UnmarshalText([]byte(s))
	}
	return l, fmt.Errorf("%q is not debug, info, warn or error", s)
}

// number parses a whole number from lo to hi, which want describes.
func number[T int | int64](lo, hi T, want string) func(string) (T, error) {
	return func(s string) (T, error) {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || T(n) < lo || T(n) > hi || int64(T(n)) != n {
			return 0, fmt.Errorf("%q is not %s", s, want)
		}
		return T(n), nil
	}
}

// duration parses a duration from 0 to hi in whole multiples of unit,
// which want describes.
func duration(hi, unit time.Duration, want string) func(string) (time.Duration, error) {
	return func(s string) (time.Duration, error) {
		if d, err := time.ParseDuration(s); err == nil && d >= 0 && d <= hi && d%unit == 0 {
			return d, nil
		}
		return 0, fmt.Errorf("%q is not %s", s, want)
	}
}

// list parses comma-separated items, skipping empty ones, and reports
// every bad one.
func list[T any](parse func(string) (T, error)) func(string) ([]T, error) {
	return func(s string) ([]T, error) {
		var out []T
		var errs []error
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			if v, err := parse(item); err != nil {
				errs = append(errs, err)
			} else {
				out = append(out, v)
			}
		}
		return out, errors.Join(errs...)
	}
}

// prefix parses a CIDR, or an IP address standing for itself alone.
func prefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or an IP address", s)
	}
	return netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()), nil
}

func publicHost(s string) (string, error) {
	if msg := session.ValidPublicHost(s); msg != "" {
		return "", errors.New(msg)
	}
	return s, nil
}

// loopbackOrigin accepts an origin on this machine only: the demo's user has a
// printed password, and its tenant grants credentialed access to the origin.
func loopbackOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme+"://"+u.Host != s || !session.IsLoopbackHost(u.Hostname()) {
		return "", fmt.Errorf("%q is not a loopback origin such as http://localhost:5173", s)
	}
	return s, nil
}

// smtpURL checks an SMTP URL; its error never quotes it.
func smtpURL(s string) (string, error) { return s, mail.CheckURL(s) }

func mailFrom(s string) (string, error) { return s, mail.CheckFrom(s) }

func redisPrefix(s string) (string, error) { return s, redisstore.CheckPrefix(s) }
