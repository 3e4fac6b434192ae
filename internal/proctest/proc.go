package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// killTimeout bounds how long a process may take to go after SIGKILL.
const killTimeout = 10 * time.Second

// Unavailable ends tb because something it needs (a Redis, a binary, a
// browser) is missing: under CI=true it fails tb, since there a skip would
// hide untested code, and elsewhere it skips tb, so that `go test ./...`
// still works on a machine without it. The message says what is missing.
func Unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s; CI=true requires it", msg)
	}
	tb.Skipf("%s; skipping outside CI", msg)
}

// proc is a started child process that a goroutine of its own waits for.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has been waited for
}

// startProc starts cmd with its stdout and stderr going to out.
func startProc(cmd *exec.Cmd, out *SyncBuffer) (*proc, error) {
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sigs, in order, to the process's PID and reports whether it
// exits within d.
func (p *proc) signal(d time.Duration, sigs ...syscall.Signal) bool {
	for _, sig := range sigs {
		_ = syscall.Kill(p.pid(), sig)
	}
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// waitReady calls ready every interval until it returns nil, for at most
// d. It fails when the process exits first and, having killed it, when d
// runs out.
func (p *proc) waitReady(d, interval time.Duration, ready func() error) error {
	deadline := time.Now().Add(d)
	for {
		if !p.alive() {
			return fmt.Errorf("exited before it was ready (%v)", p.cmd.ProcessState)
		}
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			p.signal(killTimeout, syscall.SIGKILL)
			return fmt.Errorf("not ready within %v (last: %v)", d, err)
		}
		time.Sleep(interval)
	}
}
