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
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/topology"
)

// secrets are what the bad URLs of the tests hide as passwords, whole or
// in pieces; no error may contain any of them.
var secrets = []string{"hunter2", "hunt", "er2", "sp4ss"}

func TestParseRedisURL(t *testing.T) {
	t.Parallel()
	type want struct {
		Topology                           redisTopology
		TLS                                bool
		Addrs                              []string
		ServerName                         string
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
		{"standalone", "redis://127.0.0.1:6379/0", want{Topology: topologyStandalone, Addrs: []string{"127.0.0.1:6379"}, ServerName: "127.0.0.1"}},
		{"standalone, default port, no path", "redis://redis", want{Topology: topologyStandalone, Addrs: []string{"redis:6379"}, ServerName: "redis"}},
		{"standalone TLS with ACL user and db", "rediss://alice:hunter2@redis.example.com:6380/2", want{
			Topology: topologyStandalone, TLS: true, Addrs: []string{"redis.example.com:6380"}, ServerName: "redis.example.com",
			DB: 2, Username: "alice", Password: "hunter2"}},
		{"standalone, password only, IPv6", "redis://:hunter2@[::1]:6380", want{Topology: topologyStandalone, Addrs: []string{"[::1]:6380"}, ServerName: "::1", Password: "hunter2"}},
		{"percent-encoded password", "redis://alice:p%40ss%2Fw%3Ard%23@h:1", want{Topology: topologyStandalone, Addrs: []string{"h:1"}, ServerName: "h", Username: "alice", Password: "p@ss/w:rd#"}},
		{"uppercase scheme", "REDISS://h", want{Topology: topologyStandalone, TLS: true, Addrs: []string{"h:6379"}, ServerName: "h"}},
		{"go-redis options", "redis://h/0?client_name=latchkey&pool_size=20", want{Topology: topologyStandalone, Addrs: []string{"h:6379"}, ServerName: "h", ClientName: "latchkey", PoolSize: 20}},
		{"sentinel", "redis-sentinel://s1:26379,s2,s3:26380/1?master_name=mymaster", want{
			Topology: topologySentinel, Addrs: []string{"s1:26379", "s2:26379", "s3:26380"}, ServerName: "s1", DB: 1, MasterName: "mymaster"}},
		{"sentinel with master and sentinel credentials", "rediss-sentinel://alice:hunter2@s1?master_name=m&sentinel_username=sen&sentinel_password=sp4ss&pool_size=5", want{
			Topology: topologySentinel, TLS: true, Addrs: []string{"s1:26379"}, ServerName: "s1", MasterName: "m",
			Username: "alice", Password: "hunter2", SentinelUsername: "sen", SentinelPassword: "sp4ss", PoolSize: 5}},
		{"sentinel password only", "redis-sentinel://s1?master_name=m&sentinel_password=sp4ss", want{
			Topology: topologySentinel, Addrs: []string{"s1:26379"}, ServerName: "s1", MasterName: "m", SentinelPassword: "sp4ss"}},
		{"cluster", "redis-cluster://alice:hunter2@n1:7000,n2:7001,10.0.0.3:7002", want{
			Topology: topologyCluster, Addrs: []string{"n1:7000", "n2:7001", "10.0.0.3:7002"}, ServerName: "n1", Username: "alice", Password: "hunter2"}},
		{"cluster TLS, database 0", "rediss-cluster://n1,n2/0?client_name=lk", want{
			Topology: topologyCluster, TLS: true, Addrs: []string{"n1:6379", "n2:6379"}, ServerName: "n1", ClientName: "lk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tgt, err := parseRedisURL(tt.url)
			if err != nil {
				t.Fatalf("parseRedisURL err=%v, want nil", err)
			}
			got := want{Topology: tgt.Topology, TLS: tgt.TLS, Addrs: tgt.Addrs, ServerName: tgt.ServerName, DB: tgt.DB, MasterName: tgt.MasterName}
			set := 0
			if o := tgt.standalone; o != nil {
				set++
				got.Username, got.Password, got.ClientName, got.PoolSize = o.Username, o.Password, o.ClientName, o.PoolSize
				if o.Addr != tgt.Addrs[0] || o.DB != tgt.DB {
					t.Errorf("go-redis Addr, DB=%v, %v, want %v, %v", o.Addr, o.DB, tgt.Addrs[0], tgt.DB)
				}
			}
			if o := tgt.failover; o != nil {
				set++
				got.Username, got.Password, got.ClientName, got.PoolSize = o.Username, o.Password, o.ClientName, o.PoolSize
				got.SentinelUsername, got.SentinelPassword = o.SentinelUsername, o.SentinelPassword
				if !slices.Equal(o.SentinelAddrs, tgt.Addrs) || o.MasterName != tgt.MasterName || o.DB != tgt.DB {
					t.Errorf("go-redis SentinelAddrs, MasterName, DB=%v, %v, %v, want %v, %v, %v", o.SentinelAddrs, o.MasterName, o.DB, tgt.Addrs, tgt.MasterName, tgt.DB)
				}
			}
			if o := tgt.cluster; o != nil {
				set++
				got.Username, got.Password, got.ClientName, got.PoolSize = o.Username, o.Password, o.ClientName, o.PoolSize
				if !slices.Equal(o.Addrs, tgt.Addrs) {
					t.Errorf("go-redis Addrs=%v, want %v", o.Addrs, tgt.Addrs)
				}
			}
			if set != 1 {
				t.Errorf("%d go-redis option sets, want 1", set)
			}
			if tgt.HasPassword != (tt.want.Password != "") {
				t.Errorf("HasPassword=%v, want %v", tgt.HasPassword, tt.want.Password != "")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseRedisURL=%+v, want %+v", got, tt.want)
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
		{"other scheme", "http://user:hunter2@example", []string{"must be a redis://, rediss://, redis-sentinel://"}},
		{"no scheme", "user:hunter2@redis:6379", []string{"must be a redis://"}},
		{"unix socket", "unix:///run/redis.sock", []string{"must be a redis://"}},
		{"two hosts standalone", "redis://user:hunter2@h1:1,h2:2", []string{"takes one host"}},
		{"empty host in list", "redis-cluster://user:hunter2@h1:1,,h3:3", []string{"host 2 of 3 is missing"}},
		{"no host", "redis://user:hunter2@/0", []string{"the host is missing"}},
		{"slash in password", "redis://user:hunt/er2@h:1", []string{"the host has no valid port", "percent-encode"}},
		{"question mark in password", "redis://user:hunt?er2@h:1", []string{"the host has no valid port", "1 query option(s) unknown"}},
		{"hash in password", "redis://user:hunt#er2@h", []string{"fragment", "the host has no valid port"}},
		{"bad escape in password", "redis://user:hunt%zzer2@h", []string{"cannot be parsed"}},
		{"port 0", "redis://h:0", []string{"no valid port"}},
		{"port too big", "redis://h:65536", []string{"no valid port"}},
		{"port with sign", "redis://h:+1", []string{"no valid port"}},
		{"odd host", "redis://h$st:1", []string{"not a host name"}},
		{"unclosed IPv6", "redis://[::1:6379", []string{"not host[:port]"}},
		{"IPv4 in brackets", "redis://[127.0.0.1]:6379", []string{"not an IPv6 address"}},
		{"path not a number", "redis://h/zero", []string{"the path must be /DB"}},
		{"path too deep", "redis://h/1/2", []string{"the path must be /DB"}},
		{"negative db", "redis://h/-1", []string{"the path must be /DB"}},
		{"cluster db", "redis-cluster://h1,h2/3", []string{"only database 0"}},
		{"sentinel without master", "redis-sentinel://:hunter2@s1,s2", []string{"needs ?master_name=NAME"}},
		{"sentinel empty master", "redis-sentinel://s1?master_name=", []string{"needs ?master_name=NAME"}},
		{"master_name elsewhere", "redis-cluster://h?master_name=m", []string{"master_name is only for redis-sentinel://"}},
		{"sentinel_password elsewhere", "redis://h?sentinel_password=sp4ss", []string{"sentinel_password is only for redis-sentinel://"}},
		{"master_name twice", "redis-sentinel://s?master_name=a&master_name=b", []string{"master_name is given more than once"}},
		{"timeout option", "redis://h?dial_timeout=5s", []string{"dial_timeout is not supported: Latchkey sets the Redis timeouts"}},
		{"skip_verify", "rediss://h?skip_verify=true", []string{"skip_verify is not supported: certificate checks cannot be turned off"}},
		{"replica reads", "redis-cluster://h?read_only=true", []string{"read_only is not supported: Latchkey reads from masters only"}},
		{"addr option", "redis-cluster://h?addr=h2:1", []string{"addr is not supported"}},
		{"password option", "redis-sentinel://s?master_name=m&password=hunter2", []string{"password is not supported"}},
		{"unknown option", "redis://h?hunter2=1", []string{"1 query option(s) unknown"}},
		{"bad option value", "redis://h?pool_size=hunter2", []string{"pool_size has a value go-redis does not accept"}},
		{"option twice", "redis://h?pool_size=1&pool_size=2", []string{"pool_size is given more than once"}},
		{"several problems", "redis-cluster://:hunter2@h1:0,h2/5?dial_timeout=1&sp4ss", []string{
			"host 1 of 2 has no valid port", "only database 0", "dial_timeout is not supported", "1 query option(s) unknown"}},
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
			if n := len(joined(err)); n != len(tt.want) {
				t.Errorf("%d problems reported, want %d:\n%s", n, len(tt.want), msg)
			}
			for _, line := range joined(err) {
				if !strings.HasPrefix(line.Error(), "LATCHKEY_REDIS_URL: ") {
					t.Errorf("problem %q does not name LATCHKEY_REDIS_URL", line)
				}
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
		{"TLS cluster with CA only", map[string]string{"LATCHKEY_REDIS_URL": "rediss-cluster://n1,n2", "LATCHKEY_REDIS_CA_FILE": files.CA}, nil},
		{"user and password file", map[string]string{"LATCHKEY_REDIS_URL": "redis-sentinel://latchkey@s1?master_name=m", "LATCHKEY_REDIS_PASSWORD_FILE": pwFile}, nil},
		{"TLS files without TLS", map[string]string{
			"LATCHKEY_REDIS_URL": "redis://h", "LATCHKEY_REDIS_CA_FILE": files.CA,
			"LATCHKEY_REDIS_CERT_FILE": files.ClientCert, "LATCHKEY_REDIS_KEY_FILE": files.ClientKey,
		}, []string{"LATCHKEY_REDIS_CA_FILE, LATCHKEY_REDIS_CERT_FILE, LATCHKEY_REDIS_KEY_FILE: only meaningful with a rediss://"}},
		{"TLS file without TLS on a bad URL", map[string]string{"LATCHKEY_REDIS_URL": "redis-cluster://:hunter2@h/1", "LATCHKEY_REDIS_CA_FILE": files.CA}, []string{
			"only database 0", "LATCHKEY_REDIS_CA_FILE: only meaningful with a rediss://"}},
		{"certificate without key", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_CERT_FILE": files.ClientCert}, []string{"give both"}},
		{"key without certificate", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_KEY_FILE": files.ClientKey}, []string{"give both"}},
		{"mismatched key", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_CERT_FILE": files.ClientCert, "LATCHKEY_REDIS_KEY_FILE": files.ServerKey}, []string{
			"LATCHKEY_REDIS_CERT_FILE, LATCHKEY_REDIS_KEY_FILE: tls: private key does not match public key"}},
		{"CA not PEM", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_CA_FILE": pwFile}, []string{"holds no PEM certificate"}},
		{"CA missing", map[string]string{"LATCHKEY_REDIS_URL": "rediss://h", "LATCHKEY_REDIS_CA_FILE": filepath.Join(dir, "nope.pem")}, []string{"LATCHKEY_REDIS_CA_FILE: open"}},
		{"password twice", map[string]string{"LATCHKEY_REDIS_URL": "redis://:hunter2@h", "LATCHKEY_REDIS_PASSWORD_FILE": pwFile}, []string{"holds a password too"}},
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
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("parseConfig err=%v, want nil", err)
				}
				if cfg.Redis == nil {
					t.Fatal("cfg.Redis=nil, want the parsed URL")
				}
				if cfg.Redis.TLS != (cfg.RedisTLS != nil) {
					t.Errorf("RedisTLS set=%v, want %v", cfg.RedisTLS != nil, cfg.Redis.TLS)
				}
				if env["LATCHKEY_REDIS_PASSWORD_FILE"] != "" && cfg.RedisPassword != "hunter2" {
					t.Errorf("RedisPassword=%q, want the file's content without its newline", cfg.RedisPassword)
				}
				return
			}
			if err == nil {
				t.Fatalf("parseConfig err=nil, want %q", tt.want)
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
		{"DNS host", "rediss-sentinel://localhost:26379?master_name=m", files.CA, files.ClientCert, files.ClientKey, true, ""},
		{"no client certificate", "rediss://localhost", files.CA, "", "", false, ""},
		{"wrong CA", "rediss://127.0.0.1", files.OtherCA, files.ClientCert, files.ClientKey, true, "certificate signed by unknown authority"},
		{"host not in the certificate", "rediss-cluster://redis.example.com,127.0.0.1", files.CA, "", "", false, "not redis.example.com"},
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

// mustConfig returns the TLS configuration that parseConfig builds.
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
	return cfg.RedisTLS
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
// out of the user info), and that a URL it accepts has one set of go-redis
// options and at least one address.
func FuzzParseRedisURL(f *testing.F) {
	const marker = "Zq7Xw9Kp"
	for _, seed := range [][2]string{
		{"redis://user:", "@127.0.0.1:6379/0"},
		{"rediss://:", "@redis.example.com"},
		{"redis-sentinel://u:", "@s1:26379,s2/1?master_name=m"},
		{"redis-sentinel://s1?master_name=m&sentinel_password=", ""},
		{"redis-cluster://u:", "@n1:7000,n2:7001"},
		{"redis://u:pa/", "@h:1"},
		{"redis://u:pa?", "@h:1"},
		{"redis://u:pa#", "@h"},
		{"redis://h?", "=1"},
		{"redis://h?pool_size=", ""},
		{"redis://h:", "/0"},
		{"redis://", ":6379/0"},
		{"", "://h"},
		{"redis://h/", ""},
		{"redis-cluster://h1,", ",h3"},
		{"redis://[", "]:1"},
		{"redis://u%", "@h"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, prefix, suffix string) {
		tgt, err := parseRedisURL(prefix + marker + suffix)
		if err != nil {
			msg := strings.ToLower(err.Error())
			for i := 0; i+4 <= len(marker); i++ {
				if w := strings.ToLower(marker[i : i+4]); strings.Contains(msg, w) {
					t.Fatalf("err=%q quotes %q of the password", err, w)
				}
			}
			return
		}
		set := 0
		for _, ok := range []bool{tgt.standalone != nil, tgt.failover != nil, tgt.cluster != nil} {
			if ok {
				set++
			}
		}
		if set != 1 || len(tgt.Addrs) == 0 {
			t.Fatalf("accepted with %d go-redis option sets and %d addresses, want 1 and some", set, len(tgt.Addrs))
		}
	})
}
