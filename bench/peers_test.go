//go:build bench

package bench

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// peerCookieName is the session cookie of both peer stacks (bench/peers).
const peerCookieName = "session"

// peerCookieKey is the securecookie stack's fixed hash key, like
// cookieKey for Latchkey: not a secret.
var peerCookieKey = base64.StdEncoding.EncodeToString([]byte("latchkey bench peers hash key, not a secret"))

// peer is one running peer stack with the cookies of its seeded sessions.
type peer struct {
	*serverProc
	Stack   string
	Cookies []string
}

// startPeer seeds n sessions of stack into rd (`peers seed`, at most 2
// minutes) and then serves stack on a free loopback port, for the bench
// tenant and its one origin.
func startPeer(tb testing.TB, bin, stack string, rd *proctest.Redis, n int) *peer {
	tb.Helper()
	env := []string{"PEERS_COOKIE_KEY=" + peerCookieKey}
	ctx, cancel := context.WithTimeout(tb.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "seed", "-stack", stack, "-redis", rd.Addr(), "-sessions", strconv.Itoa(n))
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("peers seed -stack %s: %v\n%s", stack, err, stderr.String())
	}
	cookies := strings.Fields(string(out))
	if len(cookies) != n {
		tb.Fatalf("peers seed -stack %s: %d cookies, want %d", stack, len(cookies), n)
	}
	srv := startServer(tb, "peer "+stack, bin,
		[]string{"serve", "-stack", stack, "-redis", rd.Addr(), "-origin", allowedOrigin, "-tenant", string(tenantID)},
		env, "/healthz")
	return &peer{serverProc: srv, Stack: stack, Cookies: cookies}
}
