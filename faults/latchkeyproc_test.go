package faults

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/session"
)

// cheapParams make the test users' hashes, and so their logins, cost next
// to nothing. Latchkey accepts any stored parameters within its bounds.
// (Its dummy hash for unknown users keeps DefaultPasswordParams.)
var cheapParams = session.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// The one tenant every test configures.
const (
	tenantID   = "acme"
	appOrigin  = "https://app.acme.test"
	cookieName = "__Host-latchkey-" + tenantID
)

// binDir holds the latchkey binary built for this test run; TestMain
// removes it.
var binDir string

// latchkeyBinary builds ./cmd/latchkey of this module once per test run
// and returns the binary's path.
var latchkeyBinary = sync.OnceValues(func() (string, error) {
	goBin := filepath.Join(os.Getenv("GOROOT"), "bin", "go") // go test sets GOROOT
	if _, err := os.Stat(goBin); os.Getenv("GOROOT") == "" || err != nil {
		if goBin, err = exec.LookPath("go"); err != nil {
			return "", fmt.Errorf("go not found, needed to build latchkey: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	gomod, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	out := filepath.Join(binDir, "latchkey")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./cmd/latchkey")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/latchkey in %s: %w\n%s", root, err, b)
	}
	return out, nil
})

// testUser is one user of the tenants file, with its clear-text password.
type testUser struct {
	Name, Password string
	Disabled       bool
	Params         *session.PasswordParams // hash parameters; nil means the file's
}

// writeTenantsFile writes a tenants file declaring the tenant acme, which
// allows https://app.acme.test with a SameSite=Lax cookie, and users, each
// hashed with its own Params or else params, and returns its path. Users
// with the same password and parameters share one hash, to save time.
func writeTenantsFile(tb testing.TB, users []testUser, params session.PasswordParams) string {
	tb.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "tenants:\n  - id: %s\n    name: Acme (fault tests)\n    origins: [%s]\n    cookie:\n      same_site: lax\n    users:\n", tenantID, appOrigin)
	type hashKey struct {
		password string
		params   session.PasswordParams
	}
	hashes := make(map[hashKey]string)
	for _, u := range users {
		k := hashKey{u.Password, params}
		if u.Params != nil {
			k.params = *u.Params
		}
		h, ok := hashes[k]
		if !ok {
			var err error
			if h, err = session.HashPassword(k.password, k.params); err != nil {
				tb.Fatalf("hash password: %v", err)
			}
			hashes[k] = h
		}
		fmt.Fprintf(&b, "      - username: %q\n        password_hash: %q\n        disabled: %t\n", u.Name, h, u.Disabled)
	}
	path := filepath.Join(tb.TempDir(), "tenants.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		tb.Fatalf("write tenants file: %v", err)
	}
	return path
}

// latchkeyProc is a running `latchkey serve`.
type latchkeyProc struct {
	Public, Admin string // base URLs, http://127.0.0.1:port
	AdminToken    string
	cmd           *exec.Cmd
	out           *syncBuffer
	exited        chan struct{}
}

// startLatchkey builds (once) and runs latchkey serve over the Redis at
// redisAddr with tenantsFile, waits until /readyz answers 200, and stops it
// by its PID with SIGTERM when tb ends, checking that it exits 0. A port
// taken between picking and binding it is retried with new ports.
func startLatchkey(tb testing.TB, redisAddr, tenantsFile string) *latchkeyProc {
	tb.Helper()
	bin, err := latchkeyBinary()
	if err != nil {
		tb.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		p, err := launchLatchkey(tb, bin, redisAddr, tenantsFile)
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

func launchLatchkey(tb testing.TB, bin, redisAddr, tenantsFile string) (*latchkeyProc, error) {
	tb.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	pub, adm := fmt.Sprintf("127.0.0.1:%d", freePort(tb)), fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	p := &latchkeyProc{
		Public:     "http://" + pub,
		Admin:      "http://" + adm,
		AdminToken: rand.Text(),
		out:        &syncBuffer{},
		exited:     make(chan struct{}),
	}
	p.cmd = exec.Command(bin, "serve")
	// Later entries win, so these override any LATCHKEY_* of the caller.
	p.cmd.Env = append(os.Environ(),
		"LATCHKEY_ADDR="+pub,
		"LATCHKEY_ADMIN_ADDR="+adm,
		"LATCHKEY_REDIS_URL=redis://"+redisAddr+"/0",
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

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-p.exited:
			return p, fmt.Errorf("latchkey exited before it was ready (%v)", p.cmd.ProcessState)
		default:
		}
		res, err := client.Get(p.Admin + "/readyz")
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
			return p, fmt.Errorf("latchkey not ready at %s/readyz after 20s", p.Admin)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Alive reports whether the process is still running.
func (p *latchkeyProc) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Output returns what the process has logged so far.
func (p *latchkeyProc) Output() string { return p.out.String() }

// stop sends SIGTERM to the PID and checks that the process exits 0, within
// its own shutdown timeout, and never panicked.
func (p *latchkeyProc) stop(tb testing.TB) {
	tb.Helper()
	pid := p.cmd.Process.Pid
	if !p.Alive() {
		tb.Errorf("latchkey (pid %d) had exited before the test ended: %v", pid, p.cmd.ProcessState)
	} else {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.exited:
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				tb.Errorf("latchkey exit code after SIGTERM = %d, want 0", code)
			}
		case <-time.After(25 * time.Second):
			tb.Errorf("latchkey (pid %d) ignored SIGTERM for 25s; killing it", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-p.exited
		}
	}
	if out := p.Output(); strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		tb.Errorf("latchkey output mentions a panic")
	}
	if tb.Failed() {
		tb.Logf("latchkey output, request lines left out, last %d lines:\n%s", maxLogLines, p.notable())
	}
}

// maxLogLines bounds how much of Latchkey's log a failure shows.
const maxLogLines = 150

// notable returns the process's log without its per-request lines, which
// the tests' own messages already cover, cut to its last maxLogLines.
func (p *latchkeyProc) notable() string {
	var keep []string
	for _, l := range strings.Split(p.Output(), "\n") {
		if !strings.Contains(l, `"msg":"request"`) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep[max(0, len(keep)-maxLogLines):], "\n")
}
