package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/latchkeyhq/latchkey/api"
	"github.com/latchkeyhq/latchkey/session"
)

// config is the serve command's configuration. Every field is a flag and an
// environment variable; the flag wins.
type config struct {
	Addr        string
	AdminAddr   string
	RedisURL    string
	TenantsFile string
	CookieKeys  string
	AdminToken  string
	LogLevel    string
	// TrustedProxies, HashMemoryMiB and SessionCacheSize are the parsed
	// forms of their settings, filled in by validate.
	TrustedProxiesRaw string
	HashMemoryRaw     string
	SessionCacheRaw   string
	CookieKeysFile    string
	AdminTokenFile    string
	DrainDelayRaw     string
	DrainDelay        time.Duration
	TrustedProxies    []netip.Prefix
	IPv6PrefixRaw     string
	IPv6Prefix        int
	HashMemoryMiB     int64
	SessionCacheSize  int
	// The Redis connection's files; Redis, RedisTLS and RedisPassword
	// are their parsed forms, with LATCHKEY_REDIS_URL's, filled in by
	// validate.
	RedisCAFile       string
	RedisCertFile     string
	RedisKeyFile      string
	RedisPasswordFile string
	Redis             *redisTarget
	RedisTLS          *tls.Config
	RedisPassword     string
	// PublicHosts is the parsed form of LATCHKEY_PUBLIC_HOSTS.
	PublicHostsRaw string
	PublicHosts    []string
	// MetricsToken guards /metrics; HSTSMaxAge is the parsed
	// LATCHKEY_HSTS_MAX_AGE, filled in by validate.
	MetricsToken     string
	MetricsTokenFile string
	HSTSMaxAgeRaw    string
	HSTSMaxAge       time.Duration

	// RedisPrefix starts every Redis key and the change channel; empty
	// means redisstore.DefaultPrefix.
	RedisPrefix string
	// AddrGiven reports whether LATCHKEY_ADDR or -addr was set, rather
	// than Addr being the default: the demo listens on loopback unless
	// told otherwise.
	AddrGiven bool
}

// maxHSTSMaxAge bounds LATCHKEY_HSTS_MAX_AGE: two years is what HSTS
// preload lists ask at most; a longer promise is a typo more likely than a
// plan.
const maxHSTSMaxAge = 2 * 365 * 24 * time.Hour

// maxSessionCache bounds LATCHKEY_SESSION_CACHE_SIZE: ten million
// sessions take about 2 GB, more than a replica of a login service should
// hold; a larger number is a typo.
const maxSessionCache = 10_000_000

// setting ties a config field to its flag and environment variable.
type setting struct {
	flag, env, def, usage string
	dst                   *string
	secret                bool
}

func (c *config) settings() []setting {
	return []setting{
		{"addr", "LATCHKEY_ADDR", ":8080", "public listener (the SPA-facing API)", &c.Addr, false},
		{"admin-addr", "LATCHKEY_ADMIN_ADDR", "127.0.0.1:8081", "admin listener: admin API, /healthz, /readyz", &c.AdminAddr, false},
		{"redis-url", "LATCHKEY_REDIS_URL", "", "redis://, redis-sentinel:// or redis-cluster:// URL (rediss… for TLS); unset means the in-memory store", &c.RedisURL, true},
		{"tenants-file", "LATCHKEY_TENANTS_FILE", "", "YAML tenants file applied at start-up", &c.TenantsFile, false},
		{"cookie-keys", "LATCHKEY_COOKIE_KEYS", "", "comma-separated base64 cookie keys (>= 32 bytes each); the first signs", &c.CookieKeys, true},
		{"admin-token", "LATCHKEY_ADMIN_TOKEN", "", "bearer token of the admin API; unset disables it", &c.AdminToken, true},
		{"log-level", "LATCHKEY_LOG_LEVEL", "info", "debug, info, warn or error", &c.LogLevel, false},
		{"trusted-proxies", "LATCHKEY_TRUSTED_PROXIES", "", "comma-separated CIDRs or IPs of proxies whose X-Forwarded-For is believed (e.g. the ingress)", &c.TrustedProxiesRaw, false},
		{"hash-memory", "LATCHKEY_HASH_MEMORY_MIB", "128", "MiB that concurrent password hashes may use together", &c.HashMemoryRaw, false},
		{"session-cache-size", "LATCHKEY_SESSION_CACHE_SIZE", strconv.Itoa(session.DefaultCacheSize), "sessions each replica keeps in memory for me (about 220 bytes each), evicting the least recently used; 0 disables the cache", &c.SessionCacheRaw, false},
		{"cookie-keys-file", "LATCHKEY_COOKIE_KEYS_FILE", "", "file holding LATCHKEY_COOKIE_KEYS, re-read when it changes", &c.CookieKeysFile, false},
		{"admin-token-file", "LATCHKEY_ADMIN_TOKEN_FILE", "", "file holding LATCHKEY_ADMIN_TOKEN, re-read when it changes", &c.AdminTokenFile, false},
		{"drain-delay", "LATCHKEY_DRAIN_DELAY", "0s", "after SIGTERM, how long to keep serving with /readyz failing before closing", &c.DrainDelayRaw, false},
		{"redis-ca-file", "LATCHKEY_REDIS_CA_FILE", "", "PEM file of the CA certificates that Redis's TLS certificate must verify against (rediss… URLs); unset means the system's", &c.RedisCAFile, false},
		{"redis-cert-file", "LATCHKEY_REDIS_CERT_FILE", "", "PEM file of the TLS client certificate to present to Redis, with -redis-key-file", &c.RedisCertFile, false},
		{"redis-key-file", "LATCHKEY_REDIS_KEY_FILE", "", "PEM file of the TLS client certificate's private key", &c.RedisKeyFile, false},
		{"redis-password-file", "LATCHKEY_REDIS_PASSWORD_FILE", "", "file holding the Redis password, re-read when it changes; the URL then holds none", &c.RedisPasswordFile, false},
		{"public-hosts", "LATCHKEY_PUBLIC_HOSTS", "", "comma-separated hostnames of the shared public API, which serve every tenant in path form (/v1/t/{tenant}/…); no tenant may claim one", &c.PublicHostsRaw, false},
		{"metrics-token", "LATCHKEY_METRICS_TOKEN", "", "bearer token that /metrics requires (>= 16 bytes); unset serves /metrics to whoever reaches the admin listener", &c.MetricsToken, true},
		{"metrics-token-file", "LATCHKEY_METRICS_TOKEN_FILE", "", "file holding LATCHKEY_METRICS_TOKEN, re-read when it changes", &c.MetricsTokenFile, false},
		{"hsts-max-age", "LATCHKEY_HSTS_MAX_AGE", "8760h", "max-age of the Strict-Transport-Security header on answers to HTTPS requests (TLS, or X-Forwarded-Proto: https from a trusted proxy); 0 sends none", &c.HSTSMaxAgeRaw, false},
		{"ipv6-prefix", "LATCHKEY_IPV6_PREFIX", strconv.Itoa(api.DefaultIPv6Prefix), "prefix length (32 to 128) of the IPv6 network a client is counted under by the per-address login limit", &c.IPv6PrefixRaw, false},
		{"redis-prefix", "LATCHKEY_REDIS_PREFIX", "", "prefix of every Redis key and of the change channel, so that deployments (or tests) can share one Redis; unset means latchkey:", &c.RedisPrefix, false},
	}
}

// parseConfig reads flags over environment over defaults and validates the
// result, reporting every problem at once. Secrets are better passed in the
// environment: flags show up in process listings. For -h or -help it
// returns flag.ErrHelp, for which serve prints serveHelp; for a bad flag,
// errUsage, explained on stderr already.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := c.flagSet(getenv)
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
	return c, c.validate()
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
store and a tenant "example" for the example SPA on http://localhost:5173,
whose user "demo" gets a random password, printed on stdout. The demo
listens on 127.0.0.1:8080 (loopback only) unless -addr or LATCHKEY_ADDR is
given.

flags:
`)
	fs := (&config{}).flagSet(getenv)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// flagSet returns the serve flags, each bound to its field of c and
// defaulting to its environment variable, else to its default.
func (c *config) flagSet(getenv func(string) string) *flag.FlagSet {
	fs := flag.NewFlagSet("latchkey serve", flag.ContinueOnError)
	for _, s := range c.settings() {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		usage := fmt.Sprintf("%s (env %s)", s.usage, s.env)
		if s.secret {
			// Keep secret values out of -help output.
			fs.Func(s.flag, usage, func(v string) error { *s.dst = v; return nil })
			*s.dst = def
			continue
		}
		fs.StringVar(s.dst, s.flag, def, usage)
	}
	return fs
}

func (c *config) validate() error {
	var errs []error
	// A secret given as a file is read now, so that its problems are
	// reported with the rest; it is re-read while serving.
	for _, s := range []struct {
		name, file string
		dst        *string
	}{
		{"LATCHKEY_COOKIE_KEYS", c.CookieKeysFile, &c.CookieKeys},
		{"LATCHKEY_ADMIN_TOKEN", c.AdminTokenFile, &c.AdminToken},
		{"LATCHKEY_METRICS_TOKEN", c.MetricsTokenFile, &c.MetricsToken},
	} {
		if s.file == "" {
			continue
		}
		if *s.dst != "" {
			errs = append(errs, fmt.Errorf("%s and %s_FILE are both set: give one", s.name, s.name))
			continue
		}
		v, err := readSecretFile(s.file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s_FILE: %w", s.name, err))
			continue
		}
		if v == "" {
			errs = append(errs, fmt.Errorf("%s_FILE: %s is empty", s.name, s.file))
			continue
		}
		*s.dst = v
	}
	if d, err := time.ParseDuration(c.DrainDelayRaw); err != nil || d < 0 || d > 5*time.Minute {
		errs = append(errs, fmt.Errorf("LATCHKEY_DRAIN_DELAY: %q is not a duration from 0s to 5m", c.DrainDelayRaw))
	} else {
		c.DrainDelay = d
	}
	for _, a := range []struct{ name, v string }{{"LATCHKEY_ADDR", c.Addr}, {"LATCHKEY_ADMIN_ADDR", c.AdminAddr}} {
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", a.name, a.v))
		}
	}
	// Never echo the URL: it may hold a password.
	errs = append(errs, c.validateRedis()...)
	if c.RedisURL != "" {
		if c.CookieKeys == "" {
			errs = append(errs, errors.New("LATCHKEY_COOKIE_KEYS: required with LATCHKEY_REDIS_URL, or replicas would reject each other's cookies and every restart would log everyone out"))
		}
	}
	if c.CookieKeys != "" {
		if _, err := session.ParseKeys(c.CookieKeys); err != nil {
			errs = append(errs, fmt.Errorf("LATCHKEY_COOKIE_KEYS: %w", err))
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		errs = append(errs, errors.New("LATCHKEY_ADMIN_TOKEN: must be at least 16 bytes; generate one with `openssl rand -base64 32`"))
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		errs = append(errs, errors.New("LATCHKEY_METRICS_TOKEN: must be at least 16 bytes; generate one with `openssl rand -base64 32`"))
	}
	if d, err := time.ParseDuration(c.HSTSMaxAgeRaw); err != nil || d < 0 || d > maxHSTSMaxAge || d%time.Second != 0 {
		errs = append(errs, fmt.Errorf("LATCHKEY_HSTS_MAX_AGE: %q is not a whole number of seconds from 0 (no header) to 17520h (two years), as a duration such as 8760h", c.HSTSMaxAgeRaw))
	} else {
		c.HSTSMaxAge = d
	}
	for p := range strings.SplitSeq(c.TrustedProxiesRaw, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("LATCHKEY_TRUSTED_PROXIES: %q is not a CIDR or an IP address", p))
				continue
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	for h := range strings.SplitSeq(c.PublicHostsRaw, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if msg := session.ValidPublicHost(h); msg != "" {
			errs = append(errs, fmt.Errorf("LATCHKEY_PUBLIC_HOSTS: %s", msg))
			continue
		}
		c.PublicHosts = append(c.PublicHosts, h)
	}
	if n, err := strconv.Atoi(c.IPv6PrefixRaw); err != nil || n < 32 || n > 128 {
		errs = append(errs, fmt.Errorf("LATCHKEY_IPV6_PREFIX: %q is not a prefix length from 32 to 128", c.IPv6PrefixRaw))
	} else {
		c.IPv6Prefix = n
	}
	if n, err := strconv.ParseInt(c.HashMemoryRaw, 10, 64); err != nil || n < 20 || n > 1<<20 {
		errs = append(errs, fmt.Errorf("LATCHKEY_HASH_MEMORY_MIB: %q is not a whole number of MiB from 20 (one hash) to 1048576", c.HashMemoryRaw))
	} else {
		c.HashMemoryMiB = n
	}
	if n, err := strconv.Atoi(c.SessionCacheRaw); err != nil || n < 0 || n > maxSessionCache {
		errs = append(errs, fmt.Errorf("LATCHKEY_SESSION_CACHE_SIZE: %q is not a whole number of sessions from 0 (no cache) to %d", c.SessionCacheRaw, maxSessionCache))
	} else {
		c.SessionCacheSize = n
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LATCHKEY_LOG_LEVEL: %q is not debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}
