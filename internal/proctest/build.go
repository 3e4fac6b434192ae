package proctest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds one go command: a cold build of cmd/latchkey takes
// well under a minute, even on a busy machine.
const buildTimeout = 3 * time.Minute

// binMaxAge is how long a cached binary may go unused before a build
// removes it.
const binMaxAge = 24 * time.Hour

// ModuleRoot returns the directory of the go.mod of the module under test,
// as `go env GOMOD` reports it from the test's working directory. It fails
// tb outside a module. The answer is computed once per test binary.
func ModuleRoot(tb testing.TB) string {
	tb.Helper()
	return must(tb, moduleRoot)
}

var moduleRoot = sync.OnceValues(func() (string, error) {
	goBin, err := goCommand()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
})

// goCommand returns the go command of the toolchain running the tests
// (go test sets GOROOT), or else the one on PATH.
func goCommand() (string, error) {
	if root := os.Getenv("GOROOT"); root != "" {
		goBin := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(goBin); err == nil {
			return goBin, nil
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go not found: %w", err)
	}
	return goBin, nil
}

// GoBuild runs `go build args...` in the module root with the go command
// of the toolchain running the tests, for at most 3 minutes, and fails tb
// if the build fails.
func GoBuild(tb testing.TB, args ...string) {
	tb.Helper()
	if err := goBuild(args...); err != nil {
		tb.Fatal(err)
	}
}

func goBuild(args ...string) error {
	goBin, err := goCommand()
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, append([]string{"build"}, args...)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %w\n%s", strings.Join(args, " "), root, err, b)
	}
	return nil
}

// BuildLatchkey builds ./cmd/latchkey of the module under test and returns
// the binary's path. The build runs once per test binary, however many
// tests and goroutines ask; later calls wait for it and return the same
// path (or fail the same way). It fails tb when the build fails. The
// binary lands in a cache shared with other test binaries (see the package
// documentation).
func BuildLatchkey(tb testing.TB) string {
	tb.Helper()
	return must(tb, latchkeyBinary)
}

// must returns what f returns, or fails tb with its error.
func must(tb testing.TB, f func() (string, error)) string {
	tb.Helper()
	s, err := f()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// PrebuildLatchkey starts BuildLatchkey's build in the background and
// returns at once, so that the build overlaps other set-up; the next
// BuildLatchkey waits for it. It is safe to call from any goroutine, and
// any number of times.
func PrebuildLatchkey() { go latchkeyBinary() }

var latchkeyBinary = sync.OnceValues(func() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("latchkey binary cache: %w", err)
	}
	dir := filepath.Join(cache, "latchkey-proctest")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("latchkey binary cache: %w", err)
	}
	pruneCache(dir)
	// Build into a directory of this process's own, then move the result
	// into place under its hash: a rename never shows a half-written
	// file, and replacing an identical file is harmless even while
	// another test binary runs it.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("latchkey binary cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "latchkey")
	if err := goBuild("-o", out, "./cmd/latchkey"); err != nil {
		return "", err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return "", fmt.Errorf("latchkey binary: %w", err)
	}
	sum := sha256.Sum256(b)
	bin := filepath.Join(dir, "latchkey-"+hex.EncodeToString(sum[:10]))
	if err := os.Rename(out, bin); err != nil {
		return "", fmt.Errorf("latchkey binary: %w", err)
	}
	return bin, nil
})

// pruneCache removes what in dir has not been modified for binMaxAge:
// binaries no test has started since (StartLatchkey touches the one it
// runs) and the leftovers of builds that were cut short. Errors are
// ignored; the next build tries again.
func pruneCache(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || time.Since(info.ModTime()) < binMaxAge {
			continue
		}
		if strings.HasPrefix(e.Name(), "latchkey-") || strings.HasPrefix(e.Name(), "build-") {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}
