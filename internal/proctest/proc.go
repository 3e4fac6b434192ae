package proctest

import (
	"fmt"
	"os"
	"testing"
)

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
