package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
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
}

// oldRedisSchemes are the schemes of the multi-host URLs Latchkey took
// before it used go-redis's own forms, with the form that replaces each.
var oldRedisSchemes = map[string]string{
	"redis-sentinel":  "redis://[sentinel-user:sentinel-password@]sentinel:26379[/db]?master_name=NAME[&addr=sentinel:26379…][&username=U][&password=P]",
	"rediss-sentinel": "rediss://[sentinel-user:sentinel-password@]sentinel:26379[/db]?master_name=NAME[&addr=sentinel:26379…][&username=U][&password=P]",
	"redis-cluster":   "redis://[user:password@]node:6379?addr=node:6379[&addr=node:6379…]",
	"rediss-cluster":  "rediss://[user:password@]node:6379?addr=node:6379[&addr=node:6379…]",
}

// parseRedisURL parses LATCHKEY_REDIS_URL with go-redis's own parsers and
// returns the options of the client redis.NewUniversalClient builds: with
// master_name, a Sentinel client (redis.ParseFailoverURL); else with
// addr=, a Cluster client (redis.ParseClusterURL); else one server
// (redis.ParseURL). It adds the checks Latchkey needs and reports every
// problem. The errors never quote the URL, nor any part a misplaced
// character could have cut from a password: they name option names from
// fixed lists, and go-redis's own messages are cut to their fixed part.
func parseRedisURL(raw string) (*redis.UniversalOptions, error) {
	if raw == "" {
		return nil, nil
	}
	scheme, _, _ := strings.Cut(raw, "://")
	if form, ok := oldRedisSchemes[strings.ToLower(scheme)]; ok {
		return nil, fmt.Errorf("the %s:// scheme is no longer supported: Latchkey takes go-redis's own URL forms; write %s", strings.ToLower(scheme), form)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("cannot be parsed as a URL; percent-encode any of : / ? # @ % in the user name and password")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, errors.New("must be a redis:// or rediss:// URL")
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if strings.Contains(raw, "#") {
		bad("has a fragment (#); percent-encode a # in the password as %%23")
	}
	switch host := u.Hostname(); {
	case host == "":
		bad("has no host")
	case strings.Contains(host, ","):
		bad("takes one host before the path; give the others as addr=host:port options (Cluster seeds, or more sentinels with master_name)")
	}
	q := u.Query()
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if why := redisRefused[k]; why != "" {
			bad("the option %s is not supported: %s", k, why)
		}
	}
	sentinel, cluster := q.Has("master_name"), q.Has("addr") && !q.Has("master_name")
	if !sentinel {
		for _, k := range []string{"username", "password"} {
			if q.Has(k) {
				bad("the option %s is only for Sentinel URLs (the master's credentials); give the credentials as user:password@ before the host", k)
			}
		}
	}
	switch {
	case sentinel && q.Get("master_name") == "":
		bad("master_name is empty: give the name the sentinels monitor")
	case sentinel && u.Port() == "":
		bad("give the first sentinel's port, usually :26379 (go-redis would take 6379)")
	case cluster && strings.Trim(u.Path, "/") != "" && strings.Trim(u.Path, "/") != "0":
		bad("Redis Cluster has only database 0")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var parsed any // what universalOptions takes
	switch {
	case sentinel:
		parsed, err = redis.ParseFailoverURL(raw)
	case cluster:
		parsed, err = redis.ParseClusterURL(raw)
	default:
		parsed, err = redis.ParseURL(raw)
	}
	if err != nil {
		return nil, goRedisError(err)
	}
	return universalOptions(parsed), nil
}

// universalOptions returns the UniversalOptions that hold what a go-redis
// URL parser set in o (a *redis.Options, *redis.ClusterOptions or
// *redis.FailoverOptions): every field of the same name and type, so that
// an option go-redis learns to parse reaches the client too, and the
// addresses, whatever their field.
func universalOptions(o any) *redis.UniversalOptions {
	u := &redis.UniversalOptions{}
	dst, src := reflect.ValueOf(u).Elem(), reflect.ValueOf(o).Elem()
	for i := range src.NumField() {
		f := src.Type().Field(i)
		if d := dst.FieldByName(f.Name); f.IsExported() && d.IsValid() && d.Type() == f.Type {
			d.Set(src.Field(i))
		}
	}
	switch o := o.(type) {
	case *redis.Options:
		u.Addrs = []string{o.Addr}
	case *redis.FailoverOptions:
		u.Addrs = o.SentinelAddrs
	}
	return u
}

// goRedisError reports a go-redis URL error by its fixed part alone:
// "redis: invalid pool_size number: strconv.Atoi: parsing …" becomes
// "invalid pool_size number"; what follows may quote the URL.
func goRedisError(err error) error {
	msg, ok := strings.CutPrefix(err.Error(), "redis: ")
	if !ok {
		return errors.New("go-redis does not accept it")
	}
	what, rest, _ := strings.Cut(msg, ": ")
	if what == "unexpected option" {
		return fmt.Errorf("%d query option(s) unknown to go-redis; see its ParseURL, ParseClusterURL and ParseFailoverURL", strings.Count(rest, ", ")+1)
	}
	return fmt.Errorf("go-redis does not accept it: %s", what)
}

// redisTopology names the client NewUniversalClient builds for o, for logs.
func redisTopology(o *redis.UniversalOptions) string {
	switch {
	case o.MasterName != "":
		return "sentinel"
	case len(o.Addrs) > 1:
		return "cluster"
	}
	return "standalone"
}

// newRedisClient builds the client of cfg.Redis with what Latchkey layers
// on the URL's options: its timeouts on every topology, TLS with the CA
// and client certificate files, the password file (re-read by the
// returned secretFile, nil without one), and the metrics hook. It reads
// the files, reporting every problem, and connects to nothing yet.
func newRedisClient(cfg *config, reg prometheus.Registerer) (redis.UniversalClient, *secretFile, error) {
	o := *cfg.Redis
	var errs []error
	if o.TLSConfig != nil {
		t, err := redisTLS(cfg, o.TLSConfig.ServerName)
		errs = append(errs, err)
		o.TLSConfig = t // the sentinels' connections too
	}
	// New connections authenticate with the value of the moment; open
	// ones stay authenticated.
	var cur atomic.Pointer[string]
	pw, pwFile, err := readSecret("", "LATCHKEY_REDIS_PASSWORD", cfg.RedisPasswordFile, text, func(v string) error { cur.Store(&v); return nil })
	errs = append(errs, err)
	if pwFile != nil {
		cur.Store(&pw)
		username := o.Username
		o.CredentialsProviderContext = func(context.Context) (string, string, error) { return username, *cur.Load(), nil }
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = redisDialTimeout, redisReadTimeout, redisWriteTimeout, redisPoolTimeout
	// Honour request deadlines too (a readiness probe's 800 ms), not only
	// the socket timeouts above.
	o.ContextTimeoutEnabled = true
	client := redis.NewUniversalClient(&o)
	m := newRedisMetrics(reg)
	client.AddHook(m)
	if cc, ok := client.(*redis.ClusterClient); ok {
		// The cluster client dials through its node clients, whose own
		// hooks would count every command twice: count only their dials.
		cc.OnNewNode(func(node *redis.Client) { node.AddHook(redisDialMetrics{m}) })
	}
	return client, pwFile, nil
}

// redisTLS is the TLS configuration of a rediss:// URL: TLS 1.2 or later,
// certificates checked for serverName (the URL's first host, as go-redis
// does) against LATCHKEY_REDIS_CA_FILE or the system's CAs, and the client
// certificate of LATCHKEY_REDIS_CERT_FILE and LATCHKEY_REDIS_KEY_FILE.
func redisTLS(cfg *config, serverName string) (*tls.Config, error) {
	var errs []error
	t := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if cfg.RedisCAFile != "" {
		t.RootCAs = x509.NewCertPool()
		if pem, err := os.ReadFile(cfg.RedisCAFile); err != nil {
			errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_CA_FILE: %w", err))
		} else if !t.RootCAs.AppendCertsFromPEM(pem) {
			errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_CA_FILE: %s holds no PEM certificate", cfg.RedisCAFile))
		}
	}
	if cfg.RedisCertFile != "" {
		// LoadX509KeyPair's errors name the files and the problem, never
		// key material.
		cert, err := tls.LoadX509KeyPair(cfg.RedisCertFile, cfg.RedisKeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("LATCHKEY_REDIS_CERT_FILE, LATCHKEY_REDIS_KEY_FILE: %w", err))
		}
		t.Certificates = []tls.Certificate{cert}
	}
	return t, errors.Join(errs...)
}

// checkRedis sends Redis one PING and returns the error to stop start-up
// with when Redis refuses Latchkey's certificate or credentials. A Redis
// that does not answer yet is only logged: the store then answers 503
// until it does.
func checkRedis(client redis.UniversalClient, cfg *config, log *slog.Logger) error {
	o := cfg.Redis
	ctx, cancel := context.WithTimeout(context.Background(), redisCheckTimeout)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if ferr := redisConfigError(err); ferr != nil {
			return ferr
		}
		log.Warn("Redis does not answer yet; the store answers 503 until it does", "topology", redisTopology(o), "err", err)
	}
	log.Info("using the Redis store", "topology", redisTopology(o), "addrs", o.Addrs, "db", o.DB, "master_name", o.MasterName,
		"tls", o.TLSConfig != nil, "client_cert", cfg.RedisCertFile != "", "password_file", cfg.RedisPasswordFile != "")
	return nil
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
