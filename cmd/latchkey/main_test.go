package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/session"
)

// boot runs serve on loopback port 0 with env and returns the two base URLs
// and the output; the process is stopped (and checked to stop cleanly) when
// the test ends.
func boot(t *testing.T, env map[string]string) (pub, adm string, out *proctest.SyncBuffer) {
	t.Helper()
	env["LATCHKEY_ADDR"] = "127.0.0.1:0"
	env["LATCHKEY_ADMIN_ADDR"] = "127.0.0.1:0"
	out = &proctest.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- serve(ctx, nil, func(k string) string { return env[k] }, out, out, func(p, a net.Addr) { addrs <- [2]net.Addr{p, a} })
	}()
	select {
	case a := <-addrs:
		pub, adm = "http://"+a[0].String(), "http://"+a[1].String()
	case err := <-errc:
		cancel()
		t.Fatalf("serve returned early: %v\n%s", err, out)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatalf("serve did not start\n%s", out)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(25 * time.Second):
			t.Error("serve did not stop")
		}
	})
	// Ready once tenants are loaded.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get(adm + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return pub, adm, out
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("never ready\n%s", out)
	return
}

// logSettled returns once out holds every line logged so far: the log is
// written in batches, up to 100 ms late, so it sends one more request to
// adm and waits, at most 5 s, for that request's line, which comes after
// them. Checks that no line holds a secret read out after it.
func logSettled(t *testing.T, adm string, out *proctest.SyncBuffer) {
	t.Helper()
	r, err := http.Get(adm + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	id := r.Header.Get("X-Request-Id")
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), `"request_id":"`+id+`"`); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the line of request %s was not written within 5 s", id)
		}
	}
}

func TestServeDemo(t *testing.T) {
	t.Parallel()
	pub, adm, out := boot(t, map[string]string{})
	r, err := http.Get(adm + "/healthz")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", r, err)
	}
	r.Body.Close()
	m := regexp.MustCompile(`username "demo" with password (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no demo password printed:\n%s", out)
	}
	if !strings.Contains(out.String(), "in-memory store") {
		t.Errorf("no in-memory store warning:\n%s", out)
	}

	// The README's walk-through: preflight, login, me, logout.
	req, _ := http.NewRequest("OPTIONS", pub+"/v1/t/example/login", nil)
	req.Header.Set("Origin", "http://localhost:5173")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	r, err = http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != 204 || r.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
		t.Fatalf("preflight: %v %v", r, err)
	}
	r.Body.Close()
	req, _ = http.NewRequest("POST", pub+"/v1/t/example/login", strings.NewReader(fmt.Sprintf(`{"username":"demo","password":%q}`, m[1])))
	req.Header.Set("Origin", "http://localhost:5173")
	req.Header.Set("Content-Type", "application/json")
	r, err = http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("login: %v %v", r, err)
	}
	r.Body.Close()
	cookie := r.Cookies()[0]
	req, _ = http.NewRequest("GET", pub+"/v1/t/example/me", nil)
	req.AddCookie(cookie)
	r, err = http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("me: %v %v", r, err)
	}
	var me struct{ User struct{ Username string } }
	json.NewDecoder(r.Body).Decode(&me)
	r.Body.Close()
	if me.User.Username != "demo" {
		t.Errorf("me = %+v, want demo", me)
	}
	// A second me is answered from the session cache, which /metrics shows.
	r, err = http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("second me: %v %v", r, err)
	}
	r.Body.Close()
	mr, err := http.Get(adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	for _, want := range []string{
		`latchkey_session_cache_lookups_total{result="hit"} 1`, `latchkey_session_cache_lookups_total{result="miss"} 1`,
		`latchkey_session_cache_lookups_total{result="lagging"} 0`, `latchkey_session_cache_evictions_total{reason="lru"} 0`,
		"latchkey_session_cache_entries 1", "latchkey_session_cache_max_entries 50000",
	} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	logSettled(t, adm, out)
	if strings.Contains(out.String(), cookie.Value) {
		t.Error("the session cookie reached the log")
	}
}

func TestServeWithoutSessionCache(t *testing.T) {
	t.Parallel()
	_, adm, out := boot(t, map[string]string{"LATCHKEY_SESSION_CACHE_SIZE": "0"})
	if !strings.Contains(out.String(), "session cache disabled") {
		t.Errorf("no log line saying the session cache is off:\n%s", out)
	}
	mr, err := http.Get(adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if !strings.Contains(string(mb), "latchkey_session_cache_max_entries 0") {
		t.Errorf("/metrics lacks latchkey_session_cache_max_entries 0")
	}
}

func TestServeTenantsFileWithRedis(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	id := "cmdtest-" + strings.ToLower(rand.Text()[:8])
	// Checked last, once the process has stopped: nothing of this test
	// may stay in a Redis that a developer's own Latchkey may be using.
	redistest.LeavesNoKeyWith(t, c, id)
	prefix := redistest.Prefix(t, c)
	hash, err := session.HashPassword("correct horse", session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf(`
tenants:
  - id: %s
    name: Cmd test
    origins: [https://app.example.test]
    cookie: {same_site: none, partitioned: true}
    users:
      - {username: alice, password_hash: "%s"}
`, id, hash)), 0o600)
	key := "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	token := "cmd-test-admin-token-123456"
	pub, adm, out := boot(t, map[string]string{
		"LATCHKEY_REDIS_URL":    "redis://" + redistest.Addr() + "/0",
		"LATCHKEY_REDIS_PREFIX": prefix,
		"LATCHKEY_TENANTS_FILE": file,
		"LATCHKEY_COOKIE_KEYS":  key,
		"LATCHKEY_ADMIN_TOKEN":  token,
	})
	req, _ := http.NewRequest("POST", pub+"/v1/t/"+id+"/login", strings.NewReader(`{"username":"alice","password":"correct horse"}`))
	req.Header.Set("Origin", "https://app.example.test")
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("login: %v %v\n%s", r, err, out)
	}
	r.Body.Close()
	if sc := r.Header.Get("Set-Cookie"); !strings.Contains(sc, "SameSite=None") || !strings.Contains(sc, "Partitioned") {
		t.Errorf("Set-Cookie = %q, want SameSite=None and Partitioned", sc)
	}
	// Everything went under LATCHKEY_REDIS_PREFIX, which Prefix deletes.
	if ks := redistest.Keys(t, c, prefix); !slices.Contains(ks, prefix+"tenants") || !slices.Contains(ks, prefix+"users:"+id) {
		t.Errorf("keys under %s = %v, want the tenants and the tenant's users there", prefix, ks)
	}
	mr, err := http.Get(adm + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	for _, want := range []string{"latchkey_redis_commands_total{", "latchkey_redis_command_duration_seconds_bucket{", "go_goroutines", "process_resident_memory_bytes", `latchkey_logins_total{outcome="success",tenant="` + id + `"} 1`} {
		if !strings.Contains(string(mb), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	logSettled(t, adm, out)
	for _, secret := range []string{key, token, r.Cookies()[0].Value, "correct horse"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("a secret reached the output")
		}
	}
}

func TestConfigProblemsReportedTogether(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"LATCHKEY_ADDR":               "nonsense",
		"LATCHKEY_REDIS_URL":          "http://user:hunter2@example",
		"LATCHKEY_ADMIN_TOKEN":        "short",
		"LATCHKEY_LOG_LEVEL":          "loud",
		"LATCHKEY_TRUSTED_PROXIES":    "10.0.0.0/8, ingress",
		"LATCHKEY_HASH_MEMORY_MIB":    "1",
		"LATCHKEY_SESSION_CACHE_SIZE": "-1",
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, nil, &out, &out)
	if err == nil {
		t.Fatal("run = nil, want configuration errors")
	}
	for _, want := range []string{"LATCHKEY_ADDR", "LATCHKEY_REDIS_URL", "LATCHKEY_COOKIE_KEYS: required", "LATCHKEY_ADMIN_TOKEN", "LATCHKEY_LOG_LEVEL", `"ingress" is not a CIDR`, "LATCHKEY_HASH_MEMORY_MIB", "LATCHKEY_SESSION_CACHE_SIZE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Error("the error echoes the Redis password")
	}
}

// TestFileProblemsReportedTogether: the files that the settings name are
// read before anything is built, and their problems are reported together
// (the tenants file's too), without a connection to Redis.
func TestFileProblemsReportedTogether(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{
		"LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_ADMIN_ADDR": "127.0.0.1:0",
		"LATCHKEY_REDIS_URL":        "rediss://127.0.0.1:1/0",
		"LATCHKEY_REDIS_CA_FILE":    filepath.Join(dir, "ca.pem"),
		"LATCHKEY_COOKIE_KEYS_FILE": filepath.Join(dir, "keys"),
		"LATCHKEY_ADMIN_TOKEN_FILE": filepath.Join(dir, "token"),
		"LATCHKEY_TENANTS_FILE":     filepath.Join(dir, "tenants.yaml"),
	}
	os.WriteFile(env["LATCHKEY_ADMIN_TOKEN_FILE"], []byte("short\n"), 0o600)
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, nil, &out, &out)
	if err == nil {
		t.Fatal("run = nil, want the files' problems")
	}
	for _, want := range []string{"LATCHKEY_REDIS_CA_FILE: open", "LATCHKEY_COOKIE_KEYS_FILE: open", "LATCHKEY_ADMIN_TOKEN_FILE: must be at least 16 bytes", "LATCHKEY_TENANTS_FILE: open"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(out.String(), "Redis") {
		t.Errorf("Redis was reached before the files were read:\n%s", &out)
	}
}

func TestSessionCacheSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, env string
		args      []string
		want      int
		wantErr   bool
	}{
		{name: "default", want: session.DefaultCacheSize},
		{name: "off", env: "0", want: 0},
		{name: "one", env: "1", want: 1},
		{name: "largest", env: "10000000", want: 10_000_000},
		{name: "the flag wins", env: "5", args: []string{"-session-cache-size", "7"}, want: 7},
		{name: "negative", env: "-1", wantErr: true},
		{name: "too large", env: "10000001", wantErr: true},
		{name: "a fraction", env: "1.5", wantErr: true},
		{name: "a unit", env: "20MB", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"LATCHKEY_SESSION_CACHE_SIZE": tc.env}
			c, err := parseConfig(tc.args, func(k string) string { return env[k] }, io.Discard)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "LATCHKEY_SESSION_CACHE_SIZE: ") {
					t.Errorf("parseConfig = %v, want an error naming LATCHKEY_SESSION_CACHE_SIZE", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.SessionCacheSize != tc.want {
				t.Errorf("SessionCacheSize = %d, want %d", c.SessionCacheSize, tc.want)
			}
		})
	}
}

func TestIPv6Prefix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, env string
		args      []string
		want      int
		wantErr   bool
	}{
		{name: "default", want: 64},
		{name: "shortest", env: "32", want: 32},
		{name: "one address", env: "128", want: 128},
		{name: "the flag wins", env: "48", args: []string{"-ipv6-prefix", "56"}, want: 56},
		{name: "too short", env: "31", wantErr: true},
		{name: "too long", env: "129", wantErr: true},
		{name: "a CIDR", env: "/64", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"LATCHKEY_IPV6_PREFIX": tc.env}
			c, err := parseConfig(tc.args, func(k string) string { return env[k] }, io.Discard)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), "LATCHKEY_IPV6_PREFIX: ") {
					t.Errorf("parseConfig = %v, want an error naming LATCHKEY_IPV6_PREFIX", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.IPv6Prefix != tc.want {
				t.Errorf("IPv6Prefix = %d, want %d", c.IPv6Prefix, tc.want)
			}
		})
	}
}

// TestTenantsFileHashOverTheBudget starts with a tenants file whose hash
// needs more memory than LATCHKEY_HASH_MEMORY_MIB: refused at start-up,
// naming the tenant and field, before anything is served.
func TestTenantsFileHashOverTheBudget(t *testing.T) {
	t.Parallel()
	hash, err := session.HashPassword("correct horse", session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	// 32 MiB over a 20 MiB budget; the key need not match, it is never checked.
	hash = strings.Replace(hash, "m=64,", "m=32768,", 1)
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	os.WriteFile(file, []byte("tenants:\n  - id: acme\n    name: A\n    origins: [https://app.acme.com]\n    cookie: {same_site: lax}\n    users:\n      - username: alice\n        password_hash: \""+hash+"\"\n"), 0o600)
	env := map[string]string{"LATCHKEY_TENANTS_FILE": file, "LATCHKEY_HASH_MEMORY_MIB": "20", "LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_ADMIN_ADDR": "127.0.0.1:0"}
	// Bounded, should it start serving after all.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	err = run(ctx, []string{"serve"}, func(k string) string { return env[k] }, nil, &out, &out)
	if err == nil || !strings.Contains(err.Error(), `tenant "acme": users[0].password_hash: `) || !strings.Contains(err.Error(), "hashing budget") {
		t.Errorf("run = %v, want the hash over the budget named", err)
	}
}

func TestBadTenantsFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	os.WriteFile(file, []byte("tenants:\n  - id: acme\n    name: A\n    origins: ['*', 'null']\n    cookie: {same_site: lax}\n"), 0o600)
	var out bytes.Buffer
	env := map[string]string{"LATCHKEY_TENANTS_FILE": file, "LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_ADMIN_ADDR": "127.0.0.1:0"}
	err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, nil, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "origins[0]") || !strings.Contains(err.Error(), "origins[1]") {
		t.Errorf("run = %v, want both origin problems", err)
	}
}

func TestHashPasswordAndVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"hash-password"}, os.Getenv, strings.NewReader("correct horse\n"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(out.String())
	if err := session.CheckPasswordHash(h); err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash-password printed %q (%v), want an argon2id PHC string", h, err)
	}
	if err := run(context.Background(), []string{"hash-password"}, os.Getenv, strings.NewReader("short\n"), io.Discard, io.Discard); err == nil {
		t.Error("hash-password accepted a 5-byte password")
	}
	out.Reset()
	if err := run(context.Background(), []string{"version"}, os.Getenv, nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "latchkey ") {
		t.Errorf("version = %q, %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"bogus"}, os.Getenv, nil, io.Discard, io.Discard); err == nil {
		t.Error("an unknown command succeeded")
	}
}

func TestTenantsFileBrowserWarnings(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	os.WriteFile(file, []byte("tenants:\n  - id: shop\n    name: Shop\n    origins: [https://app.shop.test]\n    hostnames: [auth.latchkey.test]\n    cookie: {same_site: lax}\n"), 0o600)
	_, _, out := boot(t, map[string]string{"LATCHKEY_TENANTS_FILE": file})
	if !strings.Contains(out.String(), "will not work in browsers") || !strings.Contains(out.String(), "add a hostname on the SPA's site (e.g. auth.shop.test)") {
		t.Errorf("no browser warning naming the fix in the output:\n%s", out)
	}
}

func init() {
	// Secret files are polled every 10 s in production; tests do not wait
	// that long. Set before any test starts, so no test races on it.
	secretReload = 100 * time.Millisecond
}

func TestSecretFilesRotate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keysFile, tokenFile := filepath.Join(dir, "keys"), filepath.Join(dir, "token")
	key1 := "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	key2 := "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="
	write := func(path, v string) {
		t.Helper()
		// Write then rename, as a Secret volume's symlink swap is atomic.
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	write(keysFile, key1)
	write(tokenFile, "first-admin-token-0123")
	pub, adm, out := boot(t, map[string]string{"LATCHKEY_COOKIE_KEYS_FILE": keysFile, "LATCHKEY_ADMIN_TOKEN_FILE": tokenFile})
	pw := regexp.MustCompile(`username "demo" with password (\S+)`).FindStringSubmatch(out.String())[1]

	login := func() *http.Cookie {
		t.Helper()
		req, _ := http.NewRequest("POST", pub+"/v1/t/example/login", strings.NewReader(fmt.Sprintf(`{"username":"demo","password":%q}`, pw)))
		req.Header.Set("Content-Type", "application/json")
		r, err := http.DefaultClient.Do(req)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("login: %v %v", r, err)
		}
		r.Body.Close()
		return r.Cookies()[0]
	}
	me := func(c *http.Cookie) int {
		req, _ := http.NewRequest("GET", pub+"/v1/t/example/me", nil)
		req.AddCookie(c)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		r.Body.Close()
		return r.StatusCode
	}
	admin := func(token string) int {
		req, _ := http.NewRequest("GET", adm+"/admin/v1/tenants", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		r.Body.Close()
		return r.StatusCode
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("%s did not happen within 5 s", what)
	}

	old := login()
	if admin("first-admin-token-0123") != 200 {
		t.Fatal("the first admin token does not work")
	}
	// Rotate: the new key signs, the old one still verifies.
	write(keysFile, key2+","+key1)
	write(tokenFile, "second-admin-token-456")
	eventually("the token rotation", func() bool { return admin("second-admin-token-456") == 200 })
	if got := admin("first-admin-token-0123"); got != 401 {
		t.Errorf("old admin token after rotation: %d, want 401", got)
	}
	if got := me(old); got != 200 {
		t.Errorf("old cookie during key rotation: %d, want 200", got)
	}
	fresh := login()
	// Retire the old key: old cookies end, new ones live on.
	write(keysFile, key2)
	eventually("the old key's retirement", func() bool { return me(old) == 401 })
	if got := me(fresh); got != 200 {
		t.Errorf("cookie signed with the new key: %d, want 200", got)
	}
	// A broken file is refused and the current keys kept.
	write(keysFile, "not base64!")
	time.Sleep(500 * time.Millisecond)
	if got := me(fresh); got != 200 {
		t.Errorf("after a broken keys file: %d, want 200 (current keys kept)", got)
	}
	logSettled(t, adm, out)
	if !strings.Contains(out.String(), "unusable value") {
		t.Error("no log line about the unusable keys file")
	}
	for _, secret := range []string{key1, key2, "second-admin-token-456", "first-admin-token-0123"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("a secret reached the log")
		}
	}
}

func TestPublicHosts(t *testing.T) {
	t.Parallel()
	env := map[string]string{"LATCHKEY_PUBLIC_HOSTS": "auth.example.com, login.example.com,"}
	c, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(c.PublicHosts, " "), "auth.example.com login.example.com"; got != want {
		t.Errorf("PublicHosts = %q, want %q", got, want)
	}
	for _, bad := range []string{"Auth.Example.com", "auth.example.com:443", "https://auth.example.com"} {
		env := map[string]string{"LATCHKEY_PUBLIC_HOSTS": bad}
		if _, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), "LATCHKEY_PUBLIC_HOSTS: ") {
			t.Errorf("LATCHKEY_PUBLIC_HOSTS=%q: %v, want an error naming the setting", bad, err)
		}
	}

	// A tenants file claiming one is refused before anything is stored.
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	os.WriteFile(file, []byte("tenants:\n  - id: acme\n    name: A\n    origins: [https://app.acme.test]\n    hostnames: [auth.example.com]\n    cookie: {same_site: lax}\n"), 0o600)
	var out bytes.Buffer
	env = map[string]string{"LATCHKEY_TENANTS_FILE": file, "LATCHKEY_PUBLIC_HOSTS": "auth.example.com", "LATCHKEY_ADDR": "127.0.0.1:0", "LATCHKEY_ADMIN_ADDR": "127.0.0.1:0"}
	err = run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, nil, &out, &out)
	if err == nil || !strings.Contains(err.Error(), `hostnames[0]: "auth.example.com" is a public host`) {
		t.Errorf("run = %v, want the claim on the public host refused", err)
	}
}
