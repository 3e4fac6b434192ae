package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// Timeouts of every Redis connection, whatever the topology. A Redis that
// does not answer must become a quick 503, not a request that hangs until
// the client gives up.
const (
	redisDialTimeout  = 2 * time.Second
	redisReadTimeout  = time.Second
	redisWriteTimeout = time.Second
	redisPoolTimeout  = 2 * time.Second
	// redisCheckTimeout bounds the start-up PING that tells a wrong CA or
	// password (fatal) from a Redis that is not up yet (logged).
	redisCheckTimeout = 3 * time.Second
)

// redisTopology is how Latchkey reaches Redis, chosen by the URL's scheme.
type redisTopology string

const (
	topologyStandalone redisTopology = "standalone"
	topologySentinel   redisTopology = "sentinel"
	topologyCluster    redisTopology = "cluster"
)

// redisSchemes are the schemes of LATCHKEY_REDIS_URL.
var redisSchemes = map[string]struct {
	topology redisTopology
	tls      bool
}{
	"redis":           {topologyStandalone, false},
	"rediss":          {topologyStandalone, true},
	"redis-sentinel":  {topologySentinel, false},
	"rediss-sentinel": {topologySentinel, true},
	"redis-cluster":   {topologyCluster, false},
	"rediss-cluster":  {topologyCluster, true},
}

const redisURLForms = "redis://, rediss://, redis-sentinel://, rediss-sentinel://, redis-cluster:// or rediss-cluster://"

// redisPassthrough are the go-redis URL options that LATCHKEY_REDIS_URL
// accepts in every form; go-redis parses their values.
var redisPassthrough = []string{
	"client_name", "protocol", "pool_size", "pool_fifo", "min_idle_conns", "max_idle_conns", "max_active_conns",
	"conn_max_idle_time", "conn_max_lifetime", "max_retries", "min_retry_backoff", "max_retry_backoff",
}

// redisRefused are go-redis URL options that Latchkey refuses, with why.
var redisRefused = map[string]string{
	"dial_timeout":              "Latchkey sets the Redis timeouts itself",
	"read_timeout":              "Latchkey sets the Redis timeouts itself",
	"write_timeout":             "Latchkey sets the Redis timeouts itself",
	"pool_timeout":              "Latchkey sets the Redis timeouts itself",
	"context_timeout_enabled":   "Latchkey sets the Redis timeouts itself",
	"dialer_retries":            "Latchkey sets the Redis timeouts itself",
	"dialer_retry_timeout":      "Latchkey sets the Redis timeouts itself",
	"skip_verify":               "certificate checks cannot be turned off; give the CA in LATCHKEY_REDIS_CA_FILE",
	"read_only":                 "Latchkey reads from masters only: a replica may not have a new session yet",
	"replica_only":              "Latchkey reads from masters only: a replica may not have a new session yet",
	"route_by_latency":          "Latchkey reads from masters only: a replica may not have a new session yet",
	"route_randomly":            "Latchkey reads from masters only: a replica may not have a new session yet",
	"use_disconnected_replicas": "Latchkey reads from masters only: a replica may not have a new session yet",
	"addr":                      "list every host before the path, separated by commas",
	"db":                        "give the database as the path, /DB",
	"username":                  "give the credentials as user:password@ before the hosts",
	"password":                  "give the credentials as user:password@ before the hosts, or the password in LATCHKEY_REDIS_PASSWORD_FILE",
}

// redisTarget is a parsed LATCHKEY_REDIS_URL. Exactly one of standalone,
// failover and cluster is set; they hold the URL's credentials, so a
// redisTarget is never logged or formatted whole.
type redisTarget struct {
	Topology redisTopology
	TLS      bool
	// Addrs are the host:port of the server, of the sentinels, or of the
	// cluster's seed nodes.
	Addrs []string
	// ServerName is the name the TLS certificates are checked against:
	// the URL's first host, as go-redis does.
	ServerName string
	DB         int
	// MasterName is the Sentinel master name.
	MasterName string
	// Username is the Redis ACL user of the URL; HasPassword reports
	// whether the URL holds a password.
	Username    string
	HasPassword bool

	standalone *redis.Options
	failover   *redis.FailoverOptions
	cluster    *redis.ClusterOptions
}

// parseRedisURL parses LATCHKEY_REDIS_URL into its topology and go-redis
// options, reporting every problem. The errors never quote the URL, nor
// any part a misplaced character could have cut from a password: they
// name positions and option names from fixed lists. The returned target
// is nil only when the scheme is unknown; with errors it is incomplete,
// but its Topology and TLS are right.
func parseRedisURL(raw string) (*redisTarget, error) {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_URL: "+format, a...))
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	form, known := redisSchemes[strings.ToLower(scheme)]
	if !ok || !known {
		return nil, errors.New("LATCHKEY_REDIS_URL: must be a " + redisURLForms + " URL")
	}
	t := &redisTarget{Topology: form.topology, TLS: form.tls}

	// net/url knows one host per URL: take the host list out of the
	// authority (which ends at the first '/', '?' or '#') and let net/url
	// decode the rest, percent-encoded user info included.
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	userinfo, hostList := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hostList = authority[:i+1], authority[i+1:]
	}
	u, err := url.Parse("redis://" + userinfo + "placeholder" + tail)
	if err != nil {
		bad("cannot be parsed; percent-encode any of : / ? # @ %% in the user name and password")
		return t, errors.Join(errs...)
	}
	if u.Fragment != "" || strings.Contains(tail, "#") {
		bad("has a fragment (#); percent-encode a # in the password as %%23")
	}

	defPort := "6379"
	if t.Topology == topologySentinel {
		defPort = "26379"
	}
	hosts := strings.Split(hostList, ",")
	for i, h := range hosts {
		addr, name, err := parseRedisHost(h, defPort)
		if err != nil {
			if len(hosts) == 1 {
				bad("the host %v; percent-encode any of : / ? # @ %% in the user name and password", err)
			} else {
				bad("host %d of %d %v", i+1, len(hosts), err)
			}
			continue
		}
		if i == 0 {
			t.ServerName = name
		}
		t.Addrs = append(t.Addrs, addr)
	}
	if t.Topology == topologyStandalone && len(hosts) > 1 {
		bad("a %s:// URL takes one host; use redis-sentinel:// or redis-cluster:// for several", strings.ToLower(scheme))
	}

	switch p := strings.Trim(u.Path, "/"); {
	case p == "":
	case strings.Contains(p, "/"):
		bad("the path must be /DB, a database number")
	default:
		db, err := strconv.Atoi(p)
		if err != nil || db < 0 {
			bad("the path must be /DB, a database number")
		} else if db != 0 && t.Topology == topologyCluster {
			bad("Redis Cluster has only database 0")
		} else {
			t.DB = db
		}
	}

	if u.User != nil {
		t.Username = u.User.Username()
		_, t.HasPassword = u.User.Password()
	}

	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		bad("the query cannot be parsed; percent-encode its values")
	}
	own := map[string]string{}
	pass := url.Values{}
	unknown := 0
	for _, k := range slices.Sorted(maps.Keys(query)) {
		v := query[k]
		switch {
		case k == "master_name" || k == "sentinel_username" || k == "sentinel_password":
			if t.Topology != topologySentinel {
				bad("%s is only for redis-sentinel:// and rediss-sentinel:// URLs", k)
				continue
			}
			if len(v) > 1 {
				bad("%s is given more than once", k)
				continue
			}
			own[k] = v[0]
		case slices.Contains(redisPassthrough, k):
			if len(v) > 1 {
				bad("%s is given more than once", k)
				continue
			}
			pass[k] = v
		case redisRefused[k] != "":
			bad("the option %s is not supported: %s", k, redisRefused[k])
		default:
			unknown++ // never quoted: it could be a piece of a password
		}
	}
	if unknown > 0 {
		bad("%d query option(s) unknown; the options are master_name, sentinel_username and sentinel_password (Sentinel), and %s", unknown, strings.Join(redisPassthrough, ", "))
	}
	if t.Topology == topologySentinel {
		t.MasterName = own["master_name"]
		if t.MasterName == "" && len(query["master_name"]) < 2 {
			bad("a Sentinel URL needs ?master_name=NAME, the name the sentinels monitor")
		}
	}
	if len(errs) > 0 {
		return t, errors.Join(errs...)
	}

	// Let go-redis turn the options into its own types, as it would parse
	// its own URL forms.
	base := url.URL{Scheme: "redis", Host: t.Addrs[0], Path: "/" + strconv.Itoa(t.DB)}
	if t.TLS {
		base.Scheme = "rediss"
	}
	switch t.Topology {
	case topologyStandalone:
		base.User = u.User
		base.RawQuery = pass.Encode()
		t.standalone, err = redis.ParseURL(base.String())
	case topologyCluster:
		base.User, base.Path = u.User, ""
		for _, a := range t.Addrs[1:] {
			pass.Add("addr", a)
		}
		base.RawQuery = pass.Encode()
		t.cluster, err = redis.ParseClusterURL(base.String())
	case topologySentinel:
		// go-redis takes the URL's user info for the sentinels' own
		// credentials; ours is the master's, and the sentinels' come from
		// the query.
		if su, sp := own["sentinel_username"], own["sentinel_password"]; su != "" || sp != "" {
			base.User = url.UserPassword(su, sp)
		}
		pass.Set("master_name", t.MasterName)
		for _, a := range t.Addrs[1:] {
			pass.Add("addr", a)
		}
		base.RawQuery = pass.Encode()
		if t.failover, err = redis.ParseFailoverURL(base.String()); err == nil && u.User != nil {
			t.failover.Username = u.User.Username()
			t.failover.Password, _ = u.User.Password()
		}
	}
	if err != nil {
		// go-redis's messages may quote values: name the option instead.
		for k, v := range pass {
			if k == "addr" || k == "master_name" {
				continue
			}
			if _, err := redis.ParseURL("redis://localhost/?" + url.Values{k: v}.Encode()); err != nil {
				bad("the option %s has a value go-redis does not accept", k)
			}
		}
		if len(errs) == 0 {
			bad("go-redis does not accept it")
		}
		return t, errors.Join(errs...)
	}
	return t, nil
}

// parseRedisHost checks one host[:port] of the URL and returns it as
// host:port, with the host name alone for TLS. Its errors complete "the
// host …" and quote nothing.
func parseRedisHost(h, defPort string) (addr, name string, err error) {
	host, port := h, defPort
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", "", errors.New("is not host[:port]")
		}
		host = h[1:end]
		rest := h[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return "", "", errors.New("is not host[:port]")
			}
			port = p
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", "", errors.New("is not an IPv6 address in brackets")
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host, port = h[:i], h[i+1:]
	}
	if host == "" {
		return "", "", errors.New("is missing")
	}
	if !strings.HasPrefix(h, "[") && !validHostName(host) {
		return "", "", errors.New("is not a host name or IPv4 address")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", "", errors.New("has no valid port (1 to 65535)")
	}
	return net.JoinHostPort(host, port), host, nil
}

// validHostName reports whether s is made of letters, digits, '-', '_'
// and '.': a DNS name or an IPv4 address.
func validHostName(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '-' && r != '_' && r != '.' {
			return false
		}
	}
	return len(s) <= 253
}

// validateRedis checks LATCHKEY_REDIS_URL and the settings that go with
// it, reads their files, and fills in c.Redis, c.RedisTLS and
// c.RedisPassword. It returns every problem.
func (c *config) validateRedis() []error {
	var errs []error
	files := []struct{ name, path string }{
		{"LATCHKEY_REDIS_CA_FILE", c.RedisCAFile},
		{"LATCHKEY_REDIS_CERT_FILE", c.RedisCertFile},
		{"LATCHKEY_REDIS_KEY_FILE", c.RedisKeyFile},
		{"LATCHKEY_REDIS_PASSWORD_FILE", c.RedisPasswordFile},
	}
	switch {
	case c.RedisPrefix == "":
	case c.RedisURL == "":
		errs = append(errs, errors.New("LATCHKEY_REDIS_PREFIX: only meaningful with LATCHKEY_REDIS_URL"))
	default:
		if err := redisstore.CheckPrefix(c.RedisPrefix); err != nil {
			errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_PREFIX: %w", err))
		}
	}
	if c.RedisURL == "" {
		for _, f := range files {
			if f.path != "" {
				errs = append(errs, fmt.Errorf("%s: only meaningful with LATCHKEY_REDIS_URL", f.name))
			}
		}
		return errs
	}
	t, err := parseRedisURL(c.RedisURL)
	if err != nil {
		errs = append(errs, err)
	}

	var tlsFiles []string
	for _, f := range files[:3] {
		if f.path != "" {
			tlsFiles = append(tlsFiles, f.name)
		}
	}
	if len(tlsFiles) > 0 && t != nil && !t.TLS {
		errs = append(errs, fmt.Errorf("%s: only meaningful with a rediss://, rediss-sentinel:// or rediss-cluster:// URL", strings.Join(tlsFiles, ", ")))
	}
	var roots *x509.CertPool
	if c.RedisCAFile != "" {
		pem, err := os.ReadFile(c.RedisCAFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_CA_FILE: %w", err))
		default:
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_CA_FILE: %s holds no PEM certificate", c.RedisCAFile))
			}
		}
	}
	var certs []tls.Certificate
	switch {
	case (c.RedisCertFile == "") != (c.RedisKeyFile == ""):
		errs = append(errs, errors.New("LATCHKEY_REDIS_CERT_FILE, LATCHKEY_REDIS_KEY_FILE: give both, the client certificate and its key, or neither"))
	case c.RedisCertFile != "":
		// LoadX509KeyPair's errors name the files and the problem, never
		// key material.
		cert, err := tls.LoadX509KeyPair(c.RedisCertFile, c.RedisKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_CERT_FILE, LATCHKEY_REDIS_KEY_FILE: %w", err))
		} else {
			certs = []tls.Certificate{cert}
		}
	}

	var password string
	if c.RedisPasswordFile != "" {
		v, err := readSecretFile(c.RedisPasswordFile)
		switch {
		case t != nil && t.HasPassword:
			errs = append(errs, errors.New("LATCHKEY_REDIS_PASSWORD_FILE: LATCHKEY_REDIS_URL holds a password too: give one"))
		case err != nil:
			errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_PASSWORD_FILE: %w", err))
		case v == "":
			errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_PASSWORD_FILE: %s is empty", c.RedisPasswordFile))
		default:
			password = v
		}
	}
	if len(errs) > 0 {
		return errs
	}
	c.Redis = t
	c.RedisPassword = password
	if t.TLS {
		c.RedisTLS = &tls.Config{
			ServerName:   t.ServerName,
			MinVersion:   tls.VersionTLS12,
			RootCAs:      roots, // nil: the system's
			Certificates: certs,
		}
	}
	return nil
}

// redisPassword is the Redis password of LATCHKEY_REDIS_PASSWORD_FILE,
// kept current by watchSecretFiles. New connections authenticate with
// the value of the moment; open ones stay authenticated. It is safe for
// concurrent use.
type redisPassword struct{ v atomic.Pointer[string] }

func (p *redisPassword) set(v string) error {
	if v == "" {
		return errors.New("the file is empty")
	}
	p.v.Store(&v)
	return nil
}

// redisConn is an open go-redis client of any topology, with what must be
// stopped along with it.
type redisConn struct {
	client redis.UniversalClient
	stop   func()
}

// Close stops watching the password file and closes the client.
func (rc *redisConn) Close() {
	rc.stop()
	rc.client.Close()
}

// openRedis builds the client that cfg.Redis describes, with Latchkey's
// timeouts, TLS settings, credentials and metrics hook on every topology,
// and checks at once that Redis accepts its certificate and credentials.
// A Redis that does not answer yet is only logged: the store then answers
// 503 until it does.
func openRedis(cfg *config, log *slog.Logger, reg prometheus.Registerer) (*redisConn, error) {
	t := cfg.Redis
	if t == nil {
		return nil, errors.New("LATCHKEY_REDIS_URL: not validated") // a wiring bug
	}
	var creds func(context.Context) (string, string, error)
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stop := func() { stopWatch(); wg.Wait() }
	if cfg.RedisPasswordFile != "" {
		pw := &redisPassword{}
		_ = pw.set(cfg.RedisPassword) // validated non-empty
		username := t.Username
		creds = func(context.Context) (string, string, error) { return username, *pw.v.Load(), nil }
		f := &secretFile{setting: "LATCHKEY_REDIS_PASSWORD_FILE", path: cfg.RedisPasswordFile, apply: pw.set, sum: sha256.Sum256([]byte(cfg.RedisPassword))}
		wg.Go(func() { watchSecretFiles(watchCtx, log, secretReload, []*secretFile{f}) })
	}

	var client redis.UniversalClient
	switch t.Topology {
	case topologyStandalone:
		o := t.standalone
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = redisDialTimeout, redisReadTimeout, redisWriteTimeout, redisPoolTimeout
		// Honour request deadlines too (a readiness probe's 800 ms), not
		// only the socket timeouts above.
		o.ContextTimeoutEnabled = true
		o.TLSConfig = cfg.RedisTLS
		o.CredentialsProviderContext = creds
		client = redis.NewClient(o)
	case topologySentinel:
		o := t.failover
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = redisDialTimeout, redisReadTimeout, redisWriteTimeout, redisPoolTimeout
		o.ContextTimeoutEnabled = true
		o.TLSConfig = cfg.RedisTLS // the sentinels' connections too
		o.CredentialsProviderContext = creds
		client = redis.NewFailoverClient(o)
	case topologyCluster:
		o := t.cluster
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = redisDialTimeout, redisReadTimeout, redisWriteTimeout, redisPoolTimeout
		o.ContextTimeoutEnabled = true
		o.TLSConfig = cfg.RedisTLS
		o.CredentialsProviderContext = creds
		client = redis.NewClusterClient(o)
	}
	m := newRedisMetrics(reg)
	client.AddHook(m)
	if cc, ok := client.(*redis.ClusterClient); ok {
		// The cluster client dials through its node clients, whose own
		// hooks would count every command twice: count only their dials.
		cc.OnNewNode(func(node *redis.Client) { node.AddHook(redisDialMetrics{m}) })
	}
	rc := &redisConn{client: client, stop: stop}

	ctx, cancel := context.WithTimeout(context.Background(), redisCheckTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if ferr := redisConfigError(err); ferr != nil {
			rc.Close()
			return nil, ferr
		}
		log.Warn("Redis does not answer yet; the store answers 503 until it does", "topology", string(t.Topology), "err", err)
	}
	log.Info("using the Redis store", "topology", string(t.Topology), "addrs", t.Addrs, "db", t.DB, "master_name", t.MasterName,
		"tls", t.TLS, "client_cert", cfg.RedisCertFile != "", "password_file", cfg.RedisPasswordFile != "")
	return rc, nil
}

// redisConfigError returns the error to stop start-up with when err, from
// the first PING, shows a configuration that cannot work however long one
// waits: a certificate that does not verify, or refused credentials. It
// returns nil for anything else, such as a Redis that is not up yet.
// go-redis's errors carry no password.
func redisConfigError(err error) error {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		op      *net.OpError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid):
		return fmt.Errorf("LATCHKEY_REDIS_URL: the Redis server's TLS certificate does not verify against LATCHKEY_REDIS_CA_FILE (or the system's CAs when unset) for the URL's first host name: %w", err)
	case errors.As(err, &op) && op.Op == "remote error": // a TLS alert from the server
		return fmt.Errorf("LATCHKEY_REDIS_URL: the Redis server refused the TLS handshake; check LATCHKEY_REDIS_CERT_FILE and LATCHKEY_REDIS_KEY_FILE: %w", err)
	}
	msg := err.Error()
	for _, prefix := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "ERR invalid password"} {
		if strings.HasPrefix(msg, prefix) || strings.Contains(msg, ": "+prefix) {
			return fmt.Errorf("LATCHKEY_REDIS_URL: Redis refused the credentials (check the URL's user and password, or LATCHKEY_REDIS_PASSWORD_FILE): %w", err)
		}
	}
	return nil
}

// redisDialMetrics counts a cluster node client's dials into m and passes
// its commands through: the cluster client's own hook counts those.
type redisDialMetrics struct{ m *redisMetrics }

func (h redisDialMetrics) DialHook(next redis.DialHook) redis.DialHook { return h.m.DialHook(next) }

func (redisDialMetrics) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (redisDialMetrics) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
