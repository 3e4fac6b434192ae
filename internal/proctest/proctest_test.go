package proctest

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestModuleRoot(t *testing.T) {
	t.Parallel()
	root := ModuleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatalf("ReadFile(go.mod)=%v, want nil", err)
	}
	if !strings.Contains(string(b), "module github.com/latchkeyhq/latchkey\n") {
		t.Errorf("go.mod in %s does not declare github.com/latchkeyhq/latchkey", root)
	}
}

func TestFreeAddr(t *testing.T) {
	t.Parallel()
	// The port was free a moment ago; a process of the tests running in
	// parallel may take it before we bind (as FreePort says), so a few
	// tries may be needed, and one of them must bind.
	var errs []error
	for range 5 {
		addr := FreeAddr(t)
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Fatalf("FreeAddr=%v, want 127.0.0.1:PORT", addr)
		}
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return
		}
		errs = append(errs, err)
	}
	t.Fatalf("no FreeAddr could be listened on in 5 tries: %v", errs)
}

func TestSyncBuffer(t *testing.T) {
	t.Parallel()
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprintf(&b, "%d", i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Errorf("len(String())=%v, want %v", got, 800)
	}
}

func TestSyncBufferLimit(t *testing.T) {
	t.Parallel()
	b := SyncBuffer{Limit: 100}
	for i := range 1000 {
		fmt.Fprintf(&b, "line %04d\n", i) // 10 bytes each
		if n := len(b.String()); n > 200 {
			t.Fatalf("after line %d: len(String())=%v, want at most %v", i, n, 200)
		}
	}
	got := b.String()
	if len(got) < 100 || !strings.HasSuffix(got, "line 0998\nline 0999\n") {
		t.Errorf("String()=%q, want at least 100 bytes ending with the last lines", got)
	}
}

func TestLatchkeyEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  LatchkeyConfig
		want map[string]string // "?" means any non-empty value
	}{
		{
			name: "generated secrets",
			cfg:  LatchkeyConfig{RedisURL: "redis://127.0.0.1:1/0", TenantsFile: "/t.yaml"},
			want: map[string]string{
				"LATCHKEY_REDIS_URL": "redis://127.0.0.1:1/0", "LATCHKEY_TENANTS_FILE": "/t.yaml",
				"LATCHKEY_COOKIE_KEYS": "?", "LATCHKEY_ADMIN_TOKEN": "?", "LATCHKEY_LOG_LEVEL": "info",
			},
		},
		{
			name: "given secrets, Env wins and removes",
			cfg: LatchkeyConfig{CookieKeys: "k", AdminToken: "a", Env: map[string]string{
				"LATCHKEY_LOG_LEVEL": "debug", "LATCHKEY_ADMIN_TOKEN": "b", "LATCHKEY_COOKIE_KEYS": "", "LATCHKEY_DRAIN_DELAY": "1s",
			}},
			want: map[string]string{
				"LATCHKEY_REDIS_URL": "", "LATCHKEY_TENANTS_FILE": "",
				"LATCHKEY_COOKIE_KEYS": "", "LATCHKEY_ADMIN_TOKEN": "b", "LATCHKEY_LOG_LEVEL": "debug", "LATCHKEY_DRAIN_DELAY": "1s",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := latchkeyEnv(tt.cfg)
			for k, v := range tt.want {
				if v == "?" && got[k] != "" {
					got[k] = "?" // generated: any value will do
				}
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("latchkeyEnv=%v, want %v", got, tt.want)
			}
		})
	}
}

// TestStartLatchkey boots Latchkey on its in-memory store and checks what
// a test sees of it: ready listeners, the admin token, and a clean stop.
func TestStartLatchkey(t *testing.T) {
	t.Parallel()
	lk := StartLatchkey(t, LatchkeyConfig{Env: map[string]string{"LATCHKEY_LOG_LEVEL": "warn"}})
	client := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, "http://"+lk.Admin+"/admin/v1/tenants", nil)
	req.Header.Set("Authorization", "Bearer "+lk.AdminToken)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /admin/v1/tenants: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /admin/v1/tenants StatusCode=%v, want %v", res.StatusCode, http.StatusOK)
	}
	res, err = client.Get("http://" + lk.Public + "/v1/t/nosuch/me")
	if err != nil {
		t.Fatalf("GET public: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/t/nosuch/me StatusCode=%v, want %v", res.StatusCode, http.StatusNotFound)
	}
	if !lk.Alive() || lk.PID() <= 0 {
		t.Errorf("Alive()=%v PID()=%v, want a live process", lk.Alive(), lk.PID())
	}
	if out := lk.Output(); !strings.Contains(out, `"level":"WARN"`) || strings.Contains(out, `"level":"INFO"`) {
		t.Errorf("Output() does not show LATCHKEY_LOG_LEVEL=warn from Env applied:\n%s", out)
	}
	lk.Stop(t)
	if lk.Alive() {
		t.Error("Alive()=true after Stop, want false")
	}
	lk.Stop(t) // a second Stop, and the cleanup's, do nothing
}

// TestLatchkeySignal checks that a process the test itself ends through
// Signal is not reported as having died on its own.
func TestLatchkeySignal(t *testing.T) {
	t.Parallel()
	lk := StartLatchkey(t, LatchkeyConfig{})
	if err := lk.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("Signal(SIGTERM)=%v, want nil", err)
	}
	for deadline := time.Now().Add(25 * time.Second); lk.Alive() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if lk.Alive() {
		t.Fatal("latchkey still alive 25 s after SIGTERM")
	}
}

func TestRedisKillRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		aof  bool
		want string // the value read back after Kill and Restart
	}{
		{name: "AOF keeps acknowledged writes", aof: true, want: "v"},
		{name: "memory only starts empty", aof: false, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rd := StartRedis(t, RedisConfig{AOF: tt.aof})
			c := rd.Client()
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			port, pid := rd.Port(), rd.PID()
			rd.Kill()
			if rd.Running() {
				t.Fatal("Running()=true after Kill, want false")
			}
			rd.Restart()
			if rd.Port() != port || rd.PID() == pid || !rd.Running() {
				t.Errorf("after Restart Port()=%v PID()=%v Running()=%v, want port %v, a new PID, running", rd.Port(), rd.PID(), rd.Running(), port)
			}
			if got := c.Get(ctx, "k").Val(); got != tt.want {
				t.Errorf("GET k after Kill and Restart=%q, want %q", got, tt.want)
			}
			rd.Stop()
			if rd.Running() {
				t.Error("Running()=true after Stop, want false")
			}
		})
	}
}

func TestRedisPause(t *testing.T) {
	t.Parallel()
	rd := StartRedis(t, RedisConfig{})
	c := rd.Client()
	rd.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("PING of a paused Redis=nil, want an error")
	}
	rd.Resume()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Errorf("PING after Resume=%v, want nil", err)
	}
}

// TestRedisSentinel shows the set-ups that need a fixed port, a config
// file and extra arguments: a Sentinel watching a master.
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	master := StartRedis(t, RedisConfig{})
	sentinel := StartRedis(t, RedisConfig{
		Conf: fmt.Sprintf("sentinel monitor main 127.0.0.1 %d 1\n", master.Port()),
		Args: []string{"--sentinel"},
	})
	got, err := sentinel.Client().Do(context.Background(), "SENTINEL", "get-master-addr-by-name", "main").StringSlice()
	if err != nil {
		t.Fatalf("SENTINEL get-master-addr-by-name: %v", err)
	}
	if want := []string{"127.0.0.1", fmt.Sprint(master.Port())}; !slices.Equal(got, want) {
		t.Errorf("SENTINEL get-master-addr-by-name=%v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(sentinel.dir, "redis.conf")); err != nil {
		t.Errorf("redis.conf in the working directory: %v", err)
	}
}

func TestRedisClusterNode(t *testing.T) {
	t.Parallel()
	port := FreePort(t)
	rd := StartRedis(t, RedisConfig{Port: port, Args: []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}})
	if rd.Port() != port {
		t.Errorf("Port()=%v, want %v", rd.Port(), port)
	}
	info, err := rd.Client().ClusterInfo(context.Background()).Result()
	if err != nil || !strings.Contains(info, "cluster_state:") {
		t.Fatalf("CLUSTER INFO=%q, %v; want cluster mode", info, err)
	}
	if _, err := os.Stat(filepath.Join(rd.dir, "nodes.conf")); err != nil {
		t.Errorf("nodes.conf in the working directory: %v", err)
	}
}

func TestStatusKiB(t *testing.T) {
	t.Parallel()
	rss, err := StatusKiB(os.Getpid(), "VmRSS")
	if err != nil || rss <= 0 {
		t.Fatalf("StatusKiB(self, VmRSS)=%v, %v; want a positive size", rss, err)
	}
	hwm, err := StatusKiB(os.Getpid(), "VmHWM")
	if err != nil || hwm < rss {
		t.Errorf("StatusKiB(self, VmHWM)=%v, %v; want at least VmRSS %v", hwm, err, rss)
	}
	if _, err := StatusKiB(os.Getpid(), "NoSuchField"); err == nil {
		t.Error("StatusKiB(self, NoSuchField)=nil error, want one")
	}
	if err := ResetPeakRSS(os.Getpid()); err != nil {
		t.Errorf("ResetPeakRSS(self)=%v, want nil", err)
	}
}
