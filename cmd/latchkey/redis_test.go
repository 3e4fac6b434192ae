package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/internal/topology"
)

// secrets are what the bad URLs of the tests hide as passwords, whole or
// in pieces; no error may contain any of them.
var secrets = []string{"hunter2", "hunt", "er2", "sp4ss"}

func TestParseRedisURL(t *testing.T) {
	t.Parallel()
	type want struct {
		Topology                           string
		TLS                                bool
		ServerName                         string
		Addrs                              []string
		DB                                 int
		MasterName                         string
		Username, Password                 string
		SentinelUsername, SentinelPassword string
		ClientName                         string
		PoolSize                           int
	}
	tests := []struct {
		name string
		url  string
		want want
	}{
		{"standalone", "redis://127.0.0.1:6379/0", want{Topology: "standalone", Addrs: []string{"127.0.0.1:6379"}}},
		{"standalone, default port, no path", "redis://redis", want{Topology: "standalone", Addrs: []string{"redis:6379"}}},
		{"standalone TLS with ACL user and db", "rediss://alice:hunter2@redis.example.com:6380/2", want{
			Topology: "standalone", TLS: true, ServerName: "redis.example.com", Addrs: []string{"redis.example.com:6380"},
			DB: 2, Username: "alice", Password: "hunter2"}},
		{"standalone TLS, password only, IPv6", "rediss://:hunter2@[::1]:6380", want{Topology: "standalone", TLS: true, ServerName: "::1", Addrs: []string{"[::1]:6380"}, Password: "hunter2"}},
		{"percent-encoded password", "redis://alice:p%40ss%2Fw%3Ard%23@h:1", want{Topology: "standalone", Addrs: []string{"h:1"}, Username: "alice", Password: "p@ss/w:rd#"}},
		{"uppercase scheme", "REDISS://h", want{Topology: "standalone", TLS: true, ServerName: "h", Addrs: []string{"h:6379"}}},
		{"go-redis options", "redis://h/0?client_name=latchkey&pool_size=20", want{Topology: "standalone", Addrs: []string{"h:6379"}, ClientName: "latchkey", PoolSize: 20}},
		{"database as an option", "redis://h?db=3", want{Topology: "standalone", Addrs: []string{"h:6379"}, DB: 3}},
		{"sentinel", "redis://s1:26379/1?master_name=mymaster&addr=s2:26379&addr=s3:26380", want{
			Topology: "sentinel", Addrs: []string{"s1:26379", "s2:26379", "s3:26380"}, DB: 1, MasterName: "mymaster"}},
		{"one sentinel", "redis://s1:26379?master_name=m", want{Topology: "sentinel", Addrs: []string{"s1:26379"}, MasterName: "m"}},
		{"sentinel with master and sentinel credentials", "rediss://sen:sp4ss@s1:26379?master_name=m&username=alice&password=hunter2&pool_size=5", want{
			Topology: "sentinel", TLS: true, ServerName: "s1", Addrs: []string{"s1:26379"}, MasterName: "m",
			Username: "alice", Password: "hunter2", SentinelUsername: "sen", SentinelPassword: "sp4ss", PoolSize: 5}},
		{"cluster", "redis://alice:hunter2@n1:7000?addr=n2:7001&addr=10.0.0.3:7002", want{
			Topology: "cluster", Addrs: []string{"n1:7000", "n2:7001", "10.0.0.3:7002"}, Username: "alice", Password: "hunter2"}},
		{"cluster TLS, database 0", "rediss://n1/0?addr=n2:6379&client_name=lk", want{
			Topology: "cluster", TLS: true, ServerName: "n1", Addrs: []string{"n1:6379", "n2:6379"}, ClientName: "lk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseRedisURL(tt.url)
			if err != nil {
				t.Fatalf("parseRedisURL err=%v, want nil", err)
			}
			got := want{Topology: redisTopology(o), TLS: o.TLSConfig != nil, Addrs: o.Addrs, DB: o.DB, MasterName: o.MasterName,
				Username: o.Username, Password: o.Password, SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
				ClientName: o.ClientName, PoolSize: o.PoolSize}
			if o.TLSConfig != nil {
				got.ServerName = o.TLSConfig.ServerName
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseRedisURL=%+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestUniversalOptionsKeepEveryOption parses URLs that set every option
// go-redis's URL parsers know (but those Latchkey refuses) and checks that
// the universal options give back what go-redis parsed: no option is lost
// on the way to NewUniversalClient.
func TestUniversalOptionsKeepEveryOption(t *testing.T) {
	t.Parallel()
	const common = "protocol=2&client_name=lk&max_retries=4&min_retry_backoff=10ms&max_retry_backoff=1s&pool_fifo=true&pool_size=7" +
		"&min_idle_conns=1&max_idle_conns=2&max_active_conns=9&max_concurrent_dials=3&conn_max_idle_time=1m&conn_max_lifetime=1h" +
		"&conn_max_lifetime_jitter=1m&pipeline_pool_size=4&pipeline_read_buffer_size=4096&pipeline_write_buffer_size=8192"
	for _, tt := range []struct {
		name, url string
		parse     func(string) (any, error)
		back      func(*redis.UniversalOptions) any
	}{
		{"standalone", "rediss://u:p@h:1/2?" + common,
			func(s string) (any, error) { return redis.ParseURL(s) },
			func(o *redis.UniversalOptions) any { s := o.Simple(); s.Network = "tcp"; return s }},
		{"cluster", "rediss://u:p@h:1?addr=h2:2&max_redirects=5&failing_timeout_seconds=9&" + common,
			func(s string) (any, error) { return redis.ParseClusterURL(s) },
			func(o *redis.UniversalOptions) any { return o.Cluster() }},
		{"sentinel", "rediss://su:sp@h:1/3?master_name=m&addr=h2:2&username=u&password=p&disableIdentity=true&identitySuffix=x&" + common,
			func(s string) (any, error) { return redis.ParseFailoverURL(s) },
			func(o *redis.UniversalOptions) any { return o.Failover() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, err := tt.parse(tt.url)
			if err != nil {
				t.Fatalf("go-redis: %v", err)
			}
			o, err := parseRedisURL(tt.url)
			if err != nil {
				t.Fatalf("parseRedisURL err=%v, want nil", err)
			}
			got := reflect.ValueOf(tt.back(o)).Elem()
			w := reflect.ValueOf(want).Elem()
			for i := range w.NumField() {
				f := w.Type().Field(i)
				if !f.IsExported() || f.Type.Kind() == reflect.Func {
					continue
				}
				if !reflect.DeepEqual(got.Field(i).Interface(), w.Field(i).Interface()) {
					t.Errorf("%s=%v, want %v as go-redis parsed it", f.Name, got.Field(i), w.Field(i))
				}
			}
		})
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		want []string // substrings, one per expected problem
	}{
		{"other scheme", "http://user:hunter2@example", []string{"must be a redis:// or rediss:// URL"}},
		{"no scheme", "user:hunter2@redis:6379", []string{"must be a redis://"}},
		{"unix socket", "unix:///run/redis.sock", []string{"must be a redis://"}},
		{"old Sentinel scheme", "redis-sentinel://:hunter2@s1,s2?master_name=m", []string{
			"the redis-sentinel:// scheme is no longer supported: Latchkey takes go-redis's own URL forms; write redis://[sentinel-user:sentinel-password@]sentinel:26379[/db]?master_name=NAME"}},
		{"old Cluster scheme", "REDISS-CLUSTER://n1,n2", []string{"the rediss-cluster:// scheme is no longer supported", "write rediss://[user:password@]node:6379?addr=node:6379"}},
		{"two hosts", "redis://user:hunter2@h1,h2:2", []string{"takes one host before the path; give the others as addr=host:port"}},
		{"no host", "redis://user:hunter2@/0", []string{"has no host"}},
		{"slash in password", "redis://user:hunt/er2@h:1", []string{"cannot be parsed as a URL; percent-encode"}},
		{"question mark in password", "redis://user:hunt?er2@h:1", []string{"cannot be parsed"}},
		{"hash in password", "redis://user:hunt#er2@h", []string{"cannot be parsed"}},
		{"fragment", "redis://h:1#hunter2", []string{"fragment"}},
		{"bad escape in password", "redis://user:hunt%zzer2@h", []string{"cannot be parsed"}},
		{"port with sign", "redis://h:+1", []string{"cannot be parsed"}},
		{"path not a number", "redis://h/hunter2", []string{"go-redis does not accept it: invalid database number"}},
		{"path too deep", "redis://h/1/hunter2", []string{"go-redis does not accept it: invalid URL path"}},
		{"cluster db", "redis://h1/3?addr=h2:1", []string{"only database 0"}},
		{"sentinel empty master", "redis://s1:26379?master_name=", []string{"master_name is empty"}},
		{"sentinel without port", "redis://:hunter2@s1?master_name=m", []string{"give the first sentinel's port, usually :26379"}},
		{"password option elsewhere", "redis://h?password=hunter2", []string{"the option password is only for Sentinel URLs"}},
		{"timeout option", "redis://h?dial_timeout=5s", []string{"dial_timeout is not supported: Latchkey sets the Redis timeouts"}},
		{"skip_verify", "rediss://h?skip_verify=true", []string{"skip_verify is not supported: certificate checks cannot be turned off"}},
		{"replica reads", "redis://h?addr=h2:1&read_only=true", []string{"read_only is not supported: Latchkey reads from masters only"}},
		{"replica reads, Sentinel", "redis://s:26379?master_name=m&replica_only=1", []string{"replica_only is not supported"}},
		{"unknown option", "redis://h?hunter2=1", []string{"1 query option(s) unknown to go-redis"}},
		{"unknown options", "redis://h?hunt=1&er2=2", []string{"2 query option(s) unknown to go-redis"}},
		{"bad option value", "redis://h?pool_size=hunter2", []string{"go-redis does not accept it: invalid pool_size number"}},
		{"bad addr", "redis://h?addr=hunter2", []string{"go-redis does not accept it: unable to parse addr param"}},
		{"several problems", "redis://:hunter2@h1,h2/5?dial_timeout=1&addr=h3:1", []string{
			"takes one host", "dial_timeout is not supported", "only database 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseRedisURL(tt.url)
			if err == nil {
				t.Fatalf("parseRedisURL err=nil, want %q", tt.want)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("err=%q, want it to contain %q", msg, w)
				}
			}
			if n := len(joined(err)); n != len(tt.want) && !(len(tt.want) == 2 && n == 1) {
				t.Errorf("%d problems reported, want %d:\n%s", n, len(tt.want), msg)
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("err=%q contains the secret %q", msg, s)
				}
			}
		})
	}
}

// joined returns the problems of an errors.Join error, or err alone.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// TestRedisSettings checks the settings that go with LATCHKEY_REDIS_URL:
// parseConfig checks how they combine without reading a file, and
// newRedisClient reads the files and reports their problems.
func TestRedisSettings(t *testing.T) {
	t.Parallel()
	files := topology.WriteTLSFiles(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	os.WriteFile(pwFile, []byte("hunter2\n"), 0o600)
	emptyFile := filepath.Join(dir, "empty")
	os.WriteFile(emptyFile, nil, 0o600)
	const key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error; none means valid
	}{
		{"TLS with CA and client certificate", map[string]string{
			"LATCHKEY_REDIS_URL": "rediss://127.0.0.1:6380/0", "LATCHKEY_REDIS_CA_FILE": files.CA,
			"LATCHKEY_REDIS_CERT_FILE": files.ClientCert, "LATCHKEY_REDIS_KEY_FILE": files.ClientKey,
		}, nil},
		{"TLS cluster with CA only", map[string]string{"LATCHKEY_REDIS_URL": "rediss://n1?addr=n2:6379", "LATCHKEY_REDIS_CA_FILE": files.CA}, nil},
		{"master user and password file", map[string]string{"LATCHKEY_REDIS_URL": "redis://s1:26379?master_name=m&username=latchkey", "LATCHKEY_REDIS_PASSWORD_FILE": pwFile}, nil},
		{"TLS files without TLS", map[string]string{
			"LATCHKEY_REDIS_URL": "redis://h", "LATCHKEY_REDIS_CA_FILE": files.CA,
			"LATCHKEY_REDIS_CERT_FILE": files.ClientCert, "LATCHKEY_REDIS_KEY_FILE": files.ClientKey,
		}, []string{"LATCHKEY_REDIS_CA_FILE, LATCHKEY_REDIS_CERT_FILE, LATCHKEY_REDIS_KEY_FILE: only meaningful with a rediss:// URL"}},
		{"TLS file on a bad URL", map[string]string{"LATCHKEY_REDIS_URL": "redis://:hunter2@h/1?addr=h2:1", "LATCHKEY_REDIS_CA_FILE": files.CA}, []string{
			"LATCHKEY_REDIS_URL: Redis Cluster has only database 0"}},
		{"old scheme", map[string]string{"LATCHKEY_REDIS_URL": "redis-cluster://:hunter2@n1,n2"}, []string{"LATCHKEY_REDIS_URL: the redis-cluster:// scheme is no longer supported"}},
		{"certificate without key", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_CERT_FILE": files.ClientCert}, []string{"give both"}},
		{"key without certificate", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_KEY_FILE": files.ClientKey}, []string{"give both"}},
		{"mismatched key", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_CERT_FILE": files.ClientCert, "LATCHKEY_REDIS_KEY_FILE": files.ServerKey}, []string{
			"LATCHKEY_REDIS_CERT_FILE, LATCHKEY_REDIS_KEY_FILE: tls: private key does not match public key"}},
		{"CA not PEM", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_CA_FILE": pwFile}, []string{"holds no PEM certificate"}},
		{"CA missing", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_CA_FILE": filepath.Join(dir, "nope.pem")}, []string{"LATCHKEY_REDIS_CA_FILE: open"}},
		{"CA missing and password file empty", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_CA_FILE": filepath.Join(dir, "nope.pem"), "LATCHKEY_REDIS_PASSWORD_FILE": emptyFile}, []string{
			"LATCHKEY_REDIS_CA_FILE: open", "LATCHKEY_REDIS_PASSWORD_FILE: " + emptyFile + " is empty"}},
		{"password twice", map[string]string{"LATCHKEY_REDIS_URL": "redis://:hunter2@h", "LATCHKEY_REDIS_PASSWORD_FILE": pwFile}, []string{"holds a password too"}},
		{"master password twice", map[string]string{"LATCHKEY_REDIS_URL": "redis://s:26379?master_name=m&password=hunter2", "LATCHKEY_REDIS_PASSWORD_FILE": pwFile}, []string{"holds a password too"}},
		{"password file empty", map[string]string{"LATCHKEY_REDIS_URL": "redis://h", "LATCHKEY_REDIS_PASSWORD_FILE": emptyFile}, []string{"is empty"}},
		{"password file missing", map[string]string{"LATCHKEY_REDIS_URL": "redis://h", "LATCHKEY_REDIS_PASSWORD_FILE": filepath.Join(dir, "nope")}, []string{"LATCHKEY_REDIS_PASSWORD_FILE: open"}},
		{"files without a URL", map[string]string{"LATCHKEY_REDIS_CA_FILE": files.CA, "LATCHKEY_REDIS_PASSWORD_FILE": pwFile}, []string{
			"LATCHKEY_REDIS_CA_FILE: only meaningful with LATCHKEY_REDIS_URL", "LATCHKEY_REDIS_PASSWORD_FILE: only meaningful with LATCHKEY_REDIS_URL"}},
		{"key prefix", map[string]string{"LATCHKEY_REDIS_URL": "redis://h", "LATCHKEY_REDIS_PREFIX": "staging:latchkey:"}, nil},
		{"key prefix with a brace", map[string]string{"LATCHKEY_REDIS_URL": "redis://h", "LATCHKEY_REDIS_PREFIX": "lk{1}:"}, []string{"LATCHKEY_REDIS_PREFIX: prefix \"lk{1}:\" contains a brace"}},
		{"key prefix with a space", map[string]string{"LATCHKEY_REDIS_URL": "redis://h", "LATCHKEY_REDIS_PREFIX": "lk :"}, []string{"LATCHKEY_REDIS_PREFIX: prefix \"lk :\" contains whitespace"}},
		{"key prefix without a URL", map[string]string{"LATCHKEY_REDIS_PREFIX": "lk:"}, []string{"LATCHKEY_REDIS_PREFIX: only meaningful with LATCHKEY_REDIS_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"LATCHKEY_COOKIE_KEYS": key}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := parseConfig(nil, func(k string) string { return env[k] }, nil)
			var client redis.UniversalClient
			if err == nil {
				client, _, err = newRedisClient(cfg, prometheus.NewRegistry())
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("err=%v, want nil", err)
				}
				defer client.Close()
				if env["LATCHKEY_REDIS_PASSWORD_FILE"] != "" {
					opts := client.(*redis.Client).Options()
					user, pw, _ := opts.CredentialsProviderContext(t.Context())
					if user != "latchkey" || pw != "hunter2" {
						t.Errorf("credentials=%q, %q, want the URL's user and the file's content without its newline", user, pw)
					}
				}
				return
			}
			if err == nil {
				client.Close()
				t.Fatalf("err=nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err=%q, want it to contain %q", err, w)
				}
			}
			if n := len(joined(err)); n != len(tt.want) {
				t.Errorf("%d problems reported, want %d:\n%v", n, len(tt.want), err)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("err=%q contains the secret %q", err, s)
				}
			}
		})
	}
}

// TestRedisTLSConfig checks the tls.Config built from the files in a
// handshake with a server that requires a client certificate: it
// verifies the server against the CA under the URL's host name and
// presents the client certificate; with the wrong CA it refuses.
func TestRedisTLSConfig(t *testing.T) {
	t.Parallel()
	files := topology.WriteTLSFiles(t)
	serverCert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := mustConfig(t, "rediss://127.0.0.1", files.CA, "", "").RootCAs
	tests := []struct {
		name, url, ca   string
		cert, key       string
		wantClientCert  bool
		wantErrContains string
	}{
		{"CA and client certificate, IP host", "rediss://127.0.0.1:6380", files.CA, files.ClientCert, files.ClientKey, true, ""},
		{"DNS host", "rediss://localhost:26379?master_name=m", files.CA, files.ClientCert, files.ClientKey, true, ""},
		{"no client certificate", "rediss://localhost", files.CA, "", "", false, ""},
		{"wrong CA", "rediss://127.0.0.1", files.OtherCA, files.ClientCert, files.ClientKey, true, "certificate signed by unknown authority"},
		{"host not in the certificate", "rediss://redis.example.com?addr=127.0.0.1:6379", files.CA, "", "", false, "not redis.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := mustConfig(t, tt.url, tt.ca, tt.cert, tt.key)
			if cfg.MinVersion != tls.VersionTLS12 || cfg.InsecureSkipVerify {
				t.Errorf("MinVersion, InsecureSkipVerify=%v, %v, want TLS 1.2, false", cfg.MinVersion, cfg.InsecureSkipVerify)
			}
			if got := len(cfg.Certificates) == 1; got != tt.wantClientCert {
				t.Errorf("client certificate set=%v, want %v", got, tt.wantClientCert)
			}
			cConn, sConn := net.Pipe()
			defer cConn.Close()
			defer sConn.Close()
			srv := tls.Server(sConn, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clientCAs})
			got := make(chan int, 1)
			go func() {
				srv.SetDeadline(time.Now().Add(5 * time.Second))
				if srv.HandshakeContext(context.Background()) != nil {
					got <- -1
					return
				}
				got <- len(srv.ConnectionState().PeerCertificates)
			}()
			cli := tls.Client(cConn, cfg)
			cli.SetDeadline(time.Now().Add(5 * time.Second))
			err := cli.Handshake()
			if tt.wantErrContains != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrContains) {
					t.Errorf("handshake err=%v, want %q", err, tt.wantErrContains)
				}
				if redisConfigError(err) == nil {
					t.Errorf("redisConfigError(%v)=nil, want a start-up error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake err=%v, want nil", err)
			}
			if n := <-got; n != map[bool]int{true: 1, false: 0}[tt.wantClientCert] {
				t.Errorf("server saw %d client certificates, want client certificate %v", n, tt.wantClientCert)
			}
		})
	}
}

// mustConfig returns the TLS configuration that the Redis client gets
// from the URL and the files.
func mustConfig(t *testing.T, url, ca, cert, key string) *tls.Config {
	t.Helper()
	env := map[string]string{
		"LATCHKEY_COOKIE_KEYS": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "LATCHKEY_REDIS_URL": url,
		"LATCHKEY_REDIS_CA_FILE": ca, "LATCHKEY_REDIS_CERT_FILE": cert, "LATCHKEY_REDIS_KEY_FILE": key,
	}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatalf("parseConfig err=%v, want nil", err)
	}
	tc, err := redisTLS(cfg, cfg.Redis.TLSConfig.ServerName)
	if err != nil {
		t.Fatalf("redisTLS err=%v, want nil", err)
	}
	return tc
}

func TestRedisConfigError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		err   error
		fatal bool
	}{
		{"wrong password", errors.New("WRONGPASS invalid username-password pair or user is disabled."), true},
		{"no password", errors.New("NOAUTH Authentication required."), true},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}, false},
		{"TLS alert", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, true},
		{"timeout", context.DeadlineExceeded, false},
		{"cluster down", errors.New("CLUSTERDOWN The cluster is down"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := redisConfigError(tt.err) != nil; got != tt.fatal {
				t.Errorf("redisConfigError(%v) fatal=%v, want %v", tt.err, got, tt.fatal)
			}
		})
	}
}

// TestRedisPasswordFileRotates runs serve on a Redis with a password from
// LATCHKEY_REDIS_PASSWORD_FILE, then changes Redis's password and drops
// Latchkey's connections: its new connections fail until the file holds
// the new password, and then succeed, without a restart. No password
// reaches the log.
func TestRedisPasswordFileRotates(t *testing.T) {
	t.Parallel()
	const first, second = "first-redis-password-1", "second-redis-password-2"
	rd := startRedisWithPassword(t, first)
	pwFile := filepath.Join(t.TempDir(), "redis-password")
	writeAtomically(t, pwFile, first+"\n")
	_, adm, out := boot(t, map[string]string{
		"LATCHKEY_REDIS_URL":           rd.URL(),
		"LATCHKEY_REDIS_PASSWORD_FILE": pwFile,
		"LATCHKEY_COOKIE_KEYS":         "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
	})
	ready := func() int {
		r, err := http.Get(adm + "/readyz")
		if err != nil {
			return 0
		}
		r.Body.Close()
		return r.StatusCode
	}
	if got := ready(); got != http.StatusOK {
		t.Fatalf("readyz with the first password: %d, want 200", got)
	}

	admin := redis.NewClient(&redis.Options{Addr: rd.Addr(), Password: first})
	t.Cleanup(func() { admin.Close() })
	ctx := t.Context()
	if err := admin.ConfigSet(ctx, "requirepass", second).Err(); err != nil {
		t.Fatalf("CONFIG SET requirepass: %v", err)
	}
	// Open connections stay authenticated; close Latchkey's, so that it
	// must authenticate again (SKIPME yes spares ours).
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal").Err(); err != nil {
		t.Fatalf("CLIENT KILL: %v", err)
	}
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Errorf("readyz with the old password in the file: %d, want 503", got)
	}
	writeAtomically(t, pwFile, second+"\n")
	start := time.Now()
	for ready() != http.StatusOK {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("readyz not 200 within 5 s of the new password file\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the new Redis password was in use %v after the file changed", time.Since(start).Round(time.Millisecond))
	logSettled(t, adm, out)
	if !strings.Contains(out.String(), `"setting":"LATCHKEY_REDIS_PASSWORD_FILE"`) {
		t.Errorf("the log does not say that LATCHKEY_REDIS_PASSWORD_FILE changed:\n%s", out)
	}
	for _, s := range []string{first, second} {
		if strings.Contains(out.String(), s) {
			t.Errorf("a Redis password reached the log")
		}
	}
}

// TestRedisRefusesAtStart checks that credentials Redis refuses stop
// start-up with an error that says so, without the password.
func TestRedisRefusesAtStart(t *testing.T) {
	t.Parallel()
	rd := startRedisWithPassword(t, "the-right-password")
	for _, tt := range []struct{ name, url string }{
		{"wrong password", "redis://:hunter2@" + rd.Addr() + "/0"},
		{"no password", "redis://" + rd.Addr() + "/0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{
				"LATCHKEY_REDIS_URL": tt.url, "LATCHKEY_COOKIE_KEYS": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
				"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_ADMIN_ADDR": "127.0.0.1:0",
			}
			var out proctest.SyncBuffer
			start := time.Now()
			err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, nil, &out, &out)
			if err == nil || !strings.Contains(err.Error(), "Redis refused the credentials") {
				t.Fatalf("run err=%v, want Redis refused the credentials", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("run took %v to refuse, want under 5 s", d)
			}
			if strings.Contains(err.Error()+out.String(), "hunter2") {
				t.Errorf("the password reached the error or the log")
			}
		})
	}
}

// startRedisWithPassword starts a Redis and then sets its password:
// StartRedis's readiness PING does not authenticate.
func startRedisWithPassword(t *testing.T, password string) *proctest.Redis {
	t.Helper()
	rd := proctest.StartRedis(t, proctest.RedisConfig{})
	c := redis.NewClient(&redis.Options{Addr: rd.Addr(), MaxRetries: -1})
	defer c.Close()
	if err := c.ConfigSet(t.Context(), "requirepass", password).Err(); err != nil {
		t.Fatalf("CONFIG SET requirepass: %v", err)
	}
	return rd
}

// writeAtomically replaces path's content with v by a rename, as a
// Secret volume's symlink swap does.
func writeAtomically(t *testing.T, path, v string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseRedisURL puts a marker password anywhere in a URL (between the
// fuzzed prefix and suffix) and checks that parsing never panics, never
// quotes any four characters of the marker in an error (whatever cuts it
// out of the user info), and that a URL it accepts has an address.
func FuzzParseRedisURL(f *testing.F) {
	const marker = "Zq7Xw9Kp"
	for _, seed := range [][2]string{
		{"redis://user:", "@127.0.0.1:6379/0"},
		{"rediss://:", "@redis.example.com"},
		{"redis://u:", "@s1:26379/1?master_name=m&addr=s2:26379"},
		{"redis://s1:26379?master_name=m&password=", ""},
		{"redis://u:", "@n1:7000?addr=n2:7001"},
		{"redis://h?addr=", ""},
		{"redis://h/", "/1"},
		{"redis-sentinel://u:", "@s1,s2?master_name=m"},
		{"redis://u:pa/", "@h:1"},
		{"redis://u:pa?", "@h:1"},
		{"redis://u:pa#", "@h"},
		{"redis://h?", "=1"},
		{"redis://h?pool_size=", ""},
		{"redis://h?db=", ""},
		{"redis://h:", "/0"},
		{"redis://", ":6379/0"},
		{"", "://h"},
		{"redis://h/", ""},
		{"redis://h1,", ",h3"},
		{"redis://[", "]:1"},
		{"redis://u%", "@h"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		o, err := parseRedisURL(prefix + marker + suffix)
		if err != nil {
			msg := strings.ToLower(err.Error())
			for i := 0; i+4 <= len(marker); i++ {
				if w := strings.ToLower(marker[i : i+4]); strings.Contains(msg, w) {
					t.Fatalf("err=%q quotes %q of the password", err, w)
				}
			}
			return
		}
		if o == nil || len(o.Addrs) == 0 {
			t.Fatalf("accepted with no address: %v", o)
		}
	})
}
