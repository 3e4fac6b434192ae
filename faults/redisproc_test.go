package faults

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisProc is a redis-server process that one test owns: its own loopback
// port and data directory, so that the test may stop, kill, pause and
// restart it without touching any Redis another test (or a developer)
// uses. It is not safe for concurrent use: one goroutine drives it.
type redisProc struct {
	tb      testing.TB
	bin     string
	port    int
	dir     string
	persist bool

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	out    *syncBuffer   // every run's output, for failure reports
	paused bool
}

// redisOptions choose how the owned Redis persists its data.
type redisOptions struct {
	// AOF turns on the append-only file with appendfsync always, so that
	// every write acknowledged to a client is on disk before the reply and
	// comes back after Kill and Restart. Without it the dataset lives in
	// memory only (and --save "" keeps RDB snapshots off too), so a restart
	// starts empty.
	AOF bool
}

// startRedis starts a redis-server on a free loopback port and waits until
// it answers PING. It is stopped when tb ends. A missing redis-server fails
// tb under CI=true and skips it elsewhere.
func startRedis(tb testing.TB, opts redisOptions) *redisProc {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("redis-server not found, and CI=true requires it: %v", err)
		}
		tb.Skipf("redis-server not found, skipping outside CI: %v", err)
	}
	r := &redisProc{tb: tb, bin: bin, dir: tb.TempDir(), persist: opts.AOF, out: &syncBuffer{}}
	tb.Cleanup(func() {
		r.Stop()
		if tb.Failed() {
			tb.Logf("redis-server output:\n%s", r.out)
		}
	})
	// The port is free when picked but could be taken before redis-server
	// binds it; try again with another.
	for attempt := 1; ; attempt++ {
		r.port = freePort(tb)
		err := r.launch()
		if err == nil {
			return r
		}
		if attempt < 3 && strings.Contains(r.out.String(), "Address already in use") {
			tb.Logf("redis-server: port %d was taken meanwhile; retrying", r.port)
			continue
		}
		tb.Fatalf("start redis-server: %v\n%s", err, r.out)
	}
}

// Addr returns the host:port the Redis listens on, the same across
// restarts.
func (r *redisProc) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

// Running reports whether the process is running (paused counts).
func (r *redisProc) Running() bool {
	if r.cmd == nil {
		return false
	}
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

func (r *redisProc) launch() error {
	appendonly := "no"
	if r.persist {
		appendonly = "yes"
	}
	args := []string{
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--save", "",
		"--appendonly", appendonly,
		"--appendfsync", "always",
		"--dir", r.dir,
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--loglevel", "warning",
	}
	fmt.Fprintf(r.out, "--- redis-server %v\n", args)
	r.cmd = exec.Command(r.bin, args...)
	r.cmd.Stdout = r.out
	r.cmd.Stderr = r.out
	if err := r.cmd.Start(); err != nil {
		return err
	}
	r.exited = make(chan struct{})
	cmd, exited := r.cmd, r.exited
	go func() { cmd.Wait(); close(exited) }()
	r.paused = false
	return r.waitPing(10 * time.Second)
}

// waitPing waits until Redis answers PING (not LOADING) or the process
// exits, for at most d.
func (r *redisProc) waitPing(d time.Duration) error {
	c := redis.NewClient(&redis.Options{
		Addr: r.Addr(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond, MaxRetries: -1, PoolSize: 1,
	})
	defer c.Close()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-r.exited:
			return fmt.Errorf("redis-server exited before answering PING (%v)", r.cmd.ProcessState)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		last = c.Ping(ctx).Err()
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.kill()
	return fmt.Errorf("redis-server on %s did not answer PING within %v: %v", r.Addr(), d, last)
}

// Stop ends Redis gracefully: SIGTERM to its PID (after SIGCONT, should it
// be paused), then waits for it to exit. With AOF on, Redis flushes the
// file before exiting. It does nothing when Redis is not running.
func (r *redisProc) Stop() {
	r.tb.Helper()
	if !r.Running() {
		return
	}
	pid := r.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGCONT) // a stopped process would hold SIGTERM
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.tb.Errorf("redis-server (pid %d) ignored SIGTERM for 10s; killing it", pid)
		r.kill()
	}
	r.paused = false
}

// Kill ends Redis with SIGKILL, as a crash would: no shutdown, no final
// flush. Only what Redis wrote before the signal survives.
func (r *redisProc) Kill() {
	r.tb.Helper()
	if r.Running() {
		r.kill()
	}
	r.paused = false
}

func (r *redisProc) kill() {
	_ = syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		r.tb.Errorf("redis-server (pid %d) still running 10s after SIGKILL", r.cmd.Process.Pid)
	}
}

// Pause freezes Redis with SIGSTOP: its port still accepts connections (the
// kernel completes the handshake) but nothing answers, which is what a
// hung or overloaded server looks like to a client.
func (r *redisProc) Pause() {
	r.tb.Helper()
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		r.tb.Fatalf("SIGSTOP redis-server: %v", err)
	}
	r.paused = true
}

// Resume undoes Pause with SIGCONT.
func (r *redisProc) Resume() {
	r.tb.Helper()
	if !r.paused {
		return
	}
	if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		r.tb.Fatalf("SIGCONT redis-server: %v", err)
	}
	r.paused = false
}

// Restart starts Redis again on the same port and directory, so that an
// AOF-persisted dataset comes back, and waits for PING. Redis must have
// been stopped or killed.
func (r *redisProc) Restart() {
	r.tb.Helper()
	if r.Running() {
		r.tb.Fatalf("Restart: redis-server (pid %d) is still running", r.cmd.Process.Pid)
	}
	if err := r.launch(); err != nil {
		r.tb.Fatalf("restart redis-server: %v\n%s", err, r.out)
	}
}

// Client returns a go-redis client of this Redis for inspection, with
// short timeouts, closed when tb ends.
func (r *redisProc) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: r.Addr(), DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	r.tb.Cleanup(func() { c.Close() })
	return c
}

// freePort returns a loopback TCP port that was free a moment ago (listen
// on :0, close, reuse).
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer that a child process and the test may use
// at once.
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

// quietRedisLog discards go-redis's own log lines (dial failures), which the
// tests provoke on purpose. The logger is a global: set once, in TestMain.
type quietRedisLog struct{}

func (quietRedisLog) Printf(context.Context, string, ...any) {}
