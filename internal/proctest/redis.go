package proctest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// pingTimeout bounds how long a start waits for Redis to answer PING.
	pingTimeout = 10 * time.Second
	// redisStopTimeout bounds how long Stop waits after SIGTERM.
	redisStopTimeout = 10 * time.Second
)

// RedisConfig configures StartRedis. The zero value is a Redis on a free
// port that keeps its data in memory only.
type RedisConfig struct {
	// AOF turns on the append-only file with appendfsync always, so that
	// every write acknowledged to a client is on disk before the reply and
	// comes back after Kill and Restart. Without it the dataset lives in
	// memory only (and --save "" keeps RDB snapshots off too), so a
	// restart starts empty.
	AOF bool
	// Port is the port to listen on, on 127.0.0.1; 0 means a free one,
	// picked anew should another process take it first. Tests that wire
	// several servers together (a Sentinel naming its master) may need to
	// know a port before its server starts.
	Port int
	// Conf, if not empty, is the content of a configuration file, written
	// to redis.conf in the Redis's own working directory (which also holds
	// its append-only file and a cluster node's nodes.conf, across
	// restarts) and passed before every other argument.
	// Sentinel needs one: it rewrites its file as it learns the set-up.
	Conf string
	// Args are further redis-server arguments, after StartRedis's own, e.g.
	// "--cluster-enabled", "yes" or "--sentinel". Where they name the same
	// directive as StartRedis's own, they win.
	Args []string
}

// Redis is a redis-server process that one test owns: its own loopback
// port and data directory, so that the test may stop, kill, pause and
// restart it without touching any Redis another test (or a developer)
// uses. It is not safe for concurrent use: one goroutine drives it.
type Redis struct {
	tb   testing.TB
	bin  string
	cfg  RedisConfig
	port int
	dir  string // the working directory, the same across restarts

	run *proc       // the current or last run; nil before the first
	out *SyncBuffer // every run's output, for failure reports
}

// StartRedis starts a redis-server as cfg says and waits until it answers
// PING. It is stopped when tb ends, and its output logged if tb failed. A
// missing redis-server fails tb under CI=true and skips it elsewhere.
func StartRedis(tb testing.TB, cfg RedisConfig) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(tb, "redis-server not found: %v", err)
	}
	r := &Redis{tb: tb, bin: bin, cfg: cfg, dir: tb.TempDir(), out: &SyncBuffer{}}
	if cfg.Conf != "" {
		if err := os.WriteFile(r.confPath(), []byte(cfg.Conf), 0o600); err != nil {
			tb.Fatalf("redis.conf: %v", err)
		}
	}
	tb.Cleanup(func() {
		r.Stop()
		if tb.Failed() {
			tb.Logf("redis-server output:\n%s", r.out)
		}
	})
	// A picked port is free when picked but could be taken before
	// redis-server binds it; try again with another.
	for attempt := 1; ; attempt++ {
		r.port = cfg.Port
		if r.port == 0 {
			r.port = FreePort(tb)
		}
		err := r.launch()
		if err == nil {
			return r
		}
		if cfg.Port == 0 && attempt < startAttempts && strings.Contains(r.out.String(), "Address already in use") {
			tb.Logf("redis-server: port %d was taken meanwhile; retrying", r.port)
			continue
		}
		tb.Fatalf("start redis-server: %v\n%s", err, r.out)
	}
}

// Addr returns the host:port the Redis listens on, the same across
// restarts.
func (r *Redis) Addr() string { return loopback(r.port) }

// Port returns the port the Redis listens on, the same across restarts.
func (r *Redis) Port() int { return r.port }

// URL returns redis://Addr/0, the form of LATCHKEY_REDIS_URL.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// PID returns the process ID of the current run, or of the last one if
// Redis is not running; 0 if no run started.
func (r *Redis) PID() int {
	if r.run == nil {
		return 0
	}
	return r.run.pid()
}

// Running reports whether the process is running (paused counts).
func (r *Redis) Running() bool { return r.run != nil && r.run.alive() }

func (r *Redis) confPath() string { return filepath.Join(r.dir, "redis.conf") }

func (r *Redis) launch() error {
	appendonly := "no"
	if r.cfg.AOF {
		appendonly = "yes"
	}
	var args []string
	if r.cfg.Conf != "" {
		args = append(args, r.confPath())
	}
	args = append(args,
		"--bind", "127.0.0.1",
		"--port", strconv.Itoa(r.port),
		"--save", "",
		"--appendonly", appendonly,
		"--appendfsync", "always",
		"--dir", r.dir,
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--loglevel", "warning",
	)
	args = append(args, r.cfg.Args...)
	fmt.Fprintf(r.out, "--- redis-server %v\n", args)
	run, err := startProc(exec.Command(r.bin, args...), r.out)
	if err != nil {
		return err
	}
	r.run = run
	// Redis answers LOADING, an error, until it has read its files.
	c := redis.NewClient(&redis.Options{
		Addr: r.Addr(), DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond, MaxRetries: -1, PoolSize: 1,
	})
	defer c.Close()
	err = run.waitReady(pingTimeout, 20*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err()
	})
	if err != nil {
		return fmt.Errorf("redis-server on %s, PING: %w", r.Addr(), err)
	}
	return nil
}

// Stop ends Redis gracefully: SIGTERM to its PID (after SIGCONT, should it
// be paused), then waits for it to exit, for at most 10 s before SIGKILL.
// With AOF on, Redis flushes the file before exiting. It does nothing when
// Redis is not running.
func (r *Redis) Stop() {
	r.tb.Helper()
	if !r.Running() {
		return
	}
	// SIGCONT first: a stopped process would hold SIGTERM.
	if !r.run.signal(redisStopTimeout, syscall.SIGCONT, syscall.SIGTERM) {
		r.tb.Errorf("redis-server (pid %d) ignored SIGTERM for %v; killing it", r.PID(), redisStopTimeout)
		r.kill()
	}
}

// Kill ends Redis with SIGKILL, as a crash would: no shutdown, no final
// flush. Only what Redis wrote before the signal survives.
func (r *Redis) Kill() {
	r.tb.Helper()
	if r.Running() {
		r.kill()
	}
}

func (r *Redis) kill() {
	r.tb.Helper()
	if !r.run.signal(killTimeout, syscall.SIGKILL) {
		r.tb.Errorf("redis-server (pid %d) still running %v after SIGKILL", r.PID(), killTimeout)
	}
}

// Pause freezes Redis with SIGSTOP: its port still accepts connections (the
// kernel completes the handshake) but nothing answers, which is what a
// hung or overloaded server looks like to a client.
func (r *Redis) Pause() {
	r.tb.Helper()
	if err := syscall.Kill(r.PID(), syscall.SIGSTOP); err != nil {
		r.tb.Fatalf("SIGSTOP redis-server: %v", err)
	}
}

// Resume undoes Pause with SIGCONT. On a Redis that is not paused it does
// nothing, and on one that is not running nothing either.
func (r *Redis) Resume() {
	r.tb.Helper()
	if !r.Running() {
		return
	}
	if err := syscall.Kill(r.PID(), syscall.SIGCONT); err != nil {
		r.tb.Fatalf("SIGCONT redis-server: %v", err)
	}
}

// Restart starts Redis again with the same arguments, port and directory,
// so that an AOF-persisted dataset (and a cluster node's nodes.conf) comes
// back, and waits for PING. Redis must have been stopped or killed.
func (r *Redis) Restart() {
	r.tb.Helper()
	if r.Running() {
		r.tb.Fatalf("Restart: redis-server (pid %d) is still running", r.PID())
	}
	if err := r.launch(); err != nil {
		r.tb.Fatalf("restart redis-server: %v\n%s", err, r.out)
	}
}

// Client returns a go-redis client of this Redis for inspection, with
// 2 s timeouts, closed when the test ends.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: r.Addr(), DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	r.tb.Cleanup(func() { c.Close() })
	return c
}
