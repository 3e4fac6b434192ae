package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/latchkeyhq/latchkey/internal/redistest"
	"github.com/latchkeyhq/latchkey/session"
)

// cheapHash are argon2id parameters that make the test users' hashes
// (and every login) cost next to nothing. Latchkey accepts any stored
// parameters within its upper bounds.
var cheapHash = session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// moduleRoot returns the directory of go.mod: the parent of this package.
func moduleRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		tb.Fatalf("module root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		tb.Fatalf("module root %s has no go.mod: %v", dir, err)
	}
	return dir
}

// buildLatchkey builds ./cmd/latchkey of the module at root into dir and
// returns the binary's path. It runs on another goroutine than the test's,
// so it returns errors instead of failing.
func buildLatchkey(root, dir string) (string, error) {
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go") // go test sets GOROOT
	if _, err := os.Stat(goBin); os.Getenv("GOROOT") == "" || err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			return "", fmt.Errorf("go not found, needed to build latchkey: %w", err)
		}
	}
	out := filepath.Join(dir, "latchkey")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./cmd/latchkey")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/latchkey: %w\n%s", err, b)
	}
	return out, nil
}

// freeLoopbackAddr returns 127.0.0.1:port for a port that was free a
// moment ago. Latchkey does not report the port it bound, so the suite
// picks one (listen on :0, close, reuse): a small race that startLatchkey
// retries.
func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// testUser is a user of a tenant with its clear-text password.
type testUser struct {
	Name, Password string
}

// tenantConfig is one tenant of the generated tenants file.
type tenantConfig struct {
	ID          string
	Origins     []string
	Hostnames   []string
	SameSite    string
	Partitioned bool
	Users       []testUser
}

// CookieName is the tenant's session cookie name.
func (tc tenantConfig) CookieName() string { return "__Host-latchkey-" + tc.ID }

// writeTenantsFile writes the tenants file for ts, hashing every password
// with cheapHash, and returns its path.
func writeTenantsFile(tb testing.TB, ts []tenantConfig) string {
	tb.Helper()
	type user struct {
		Username     string `yaml:"username"`
		PasswordHash string `yaml:"password_hash"`
	}
	type cookie struct {
		SameSite    string `yaml:"same_site"`
		Partitioned bool   `yaml:"partitioned"`
	}
	type tenant struct {
		ID        string   `yaml:"id"`
		Name      string   `yaml:"name"`
		Origins   []string `yaml:"origins"`
		Hostnames []string `yaml:"hostnames,omitempty"`
		Cookie    cookie   `yaml:"cookie"`
		Users     []user   `yaml:"users"`
	}
	var file struct {
		Tenants []tenant `yaml:"tenants"`
	}
	for _, tc := range ts {
		t := tenant{
			ID: tc.ID, Name: "e2e " + tc.ID, Origins: tc.Origins, Hostnames: tc.Hostnames,
			Cookie: cookie{SameSite: tc.SameSite, Partitioned: tc.Partitioned},
		}
		for _, u := range tc.Users {
			h, err := session.HashPassword(u.Password, cheapHash)
			if err != nil {
				tb.Fatalf("hash password: %v", err)
			}
			t.Users = append(t.Users, user{Username: u.Name, PasswordHash: h})
		}
		file.Tenants = append(file.Tenants, t)
	}
	b, err := yaml.Marshal(&file)
	if err != nil {
		tb.Fatalf("marshal tenants file: %v", err)
	}
	path := filepath.Join(tb.TempDir(), "tenants.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatalf("write tenants file: %v", err)
	}
	return path
}

// latchkeyProc is a running `latchkey serve`.
type latchkeyProc struct {
	Public, Admin string // host:port
	AdminToken    string
	cmd           *exec.Cmd
	out           *syncBuffer
	exited        chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLatchkey runs bin serve against the test Redis with tenantsFile,
// waits until /readyz answers 200, and stops the process (SIGTERM, then
// SIGKILL) by its PID when tb ends, checking that the PID is gone. A port
// taken between picking and binding it is retried with new ports.
func startLatchkey(tb testing.TB, bin, tenantsFile string) *latchkeyProc {
	tb.Helper()
	for attempt := 1; ; attempt++ {
		p, err := launchLatchkey(tb, bin, tenantsFile)
		if err == nil {
			return p
		}
		if attempt < 3 && strings.Contains(p.out.String(), "address already in use") {
			tb.Logf("latchkey: a picked port was taken meanwhile; retrying (%v)", err)
			continue
		}
		tb.Fatalf("%v\n%s", err, p.out)
	}
}

// launchLatchkey starts one latchkey process on fresh loopback ports and
// waits for it to be ready. On error the process has exited.
func launchLatchkey(tb testing.TB, bin, tenantsFile string) (*latchkeyProc, error) {
	tb.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	p := &latchkeyProc{
		Public:     freeLoopbackAddr(tb),
		Admin:      freeLoopbackAddr(tb),
		AdminToken: rand.Text(),
		out:        &syncBuffer{},
		exited:     make(chan struct{}),
	}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Env = append(os.Environ(),
		"LATCHKEY_ADDR="+p.Public,
		"LATCHKEY_ADMIN_ADDR="+p.Admin,
		"LATCHKEY_REDIS_URL=redis://"+redistest.Addr()+"/0",
		"LATCHKEY_COOKIE_KEYS="+base64.StdEncoding.EncodeToString(key),
		"LATCHKEY_TENANTS_FILE="+tenantsFile,
		"LATCHKEY_ADMIN_TOKEN="+p.AdminToken,
		"LATCHKEY_LOG_LEVEL=info",
	)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		return p, fmt.Errorf("start latchkey: %w", err)
	}
	go func() { p.cmd.Wait(); close(p.exited) }()

	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-p.exited:
			return p, fmt.Errorf("latchkey exited before it was ready (%v)", p.cmd.ProcessState)
		default:
		}
		res, err := client.Get("http://" + p.Admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				tb.Cleanup(func() { p.stop(tb) })
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			<-p.exited
			return p, fmt.Errorf("latchkey not ready at http://%s/readyz after 20s (last: %v)", p.Admin, errOrStatus(res, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func errOrStatus(res *http.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	return res.Status
}

func (p *latchkeyProc) stop(tb testing.TB) {
	tb.Helper()
	pid := p.cmd.Process.Pid
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(25 * time.Second):
		tb.Errorf("latchkey (pid %d) ignored SIGTERM for 25s; killing it", pid)
		p.cmd.Process.Kill()
		<-p.exited
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		tb.Errorf("latchkey pid %d still exists after it exited: kill(0)=%v", pid, err)
	}
	if tb.Failed() {
		tb.Logf("latchkey output:\n%s", p.out)
	}
}

// deleteTenantsAtEnd deletes the tenants ids through the admin API when tb
// ends (before the process stops: cleanups run last-in first-out), so
// that the shared Redis keeps nothing of this run.
func (p *latchkeyProc) deleteTenantsAtEnd(tb testing.TB, ids []string) {
	tb.Helper()
	tb.Cleanup(func() {
		client := &http.Client{Timeout: 5 * time.Second}
		for _, id := range ids {
			req, _ := http.NewRequest(http.MethodDelete, "http://"+p.Admin+"/admin/v1/tenants/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+p.AdminToken)
			res, err := client.Do(req)
			if err != nil {
				tb.Errorf("delete tenant %s: %v", id, err)
				continue
			}
			res.Body.Close()
			if res.StatusCode/100 != 2 {
				tb.Errorf("DELETE tenant %s: status=%d, want 2xx", id, res.StatusCode)
			}
		}
	})
}
