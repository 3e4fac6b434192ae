package redistest

import (
	"context"
	"crypto/rand"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// Addr returns the address of the test Redis.
func Addr() string {
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

var probeRedis = sync.OnceValues(func() (string, error) {
	addr := Addr()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second, MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return addr, c.Ping(ctx).Err()
})

// Client returns a client of the Redis at REDIS_ADDR (default
// 127.0.0.1:6379), closed when t ends. If that Redis does not answer, it
// fails t under CI=true, where the test command provides Redis and a skip
// would hide an untested store, and skips t elsewhere.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	addr, err := probeRedis()
	if err != nil {
		proctest.Unavailable(t, "Redis at %s (REDIS_ADDR) does not answer: %v", addr, err)
	}
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// Down returns a client of a loopback port that nobody listens on,
// with short timeouts and no retries.
func Down(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr:          proctest.FreeAddr(t),
		DialTimeout:   200 * time.Millisecond,
		ReadTimeout:   200 * time.Millisecond,
		WriteTimeout:  200 * time.Millisecond,
		PoolTimeout:   200 * time.Millisecond,
		MaxRetries:    -1,
		DialerRetries: 1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// Prefix returns a key prefix of its own for t and deletes every key
// under it when t ends. It never flushes: the Redis may be shared.
func Prefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	prefix := "lktest:" + strings.ToLower(rand.Text()[:16]) + ":"
	t.Cleanup(func() {
		// t.Context is already done during cleanup.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ks := Keys(t, c, prefix)
		if len(ks) == 0 {
			return
		}
		if err := c.Del(ctx, ks...).Err(); err != nil {
			t.Errorf("cleanup of %s*: %v", prefix, err)
		}
	})
	return prefix
}

// LeavesNoKeyWith fails t if, when t ends, any key of the Redis contains
// s: register it before starting what writes to Redis, so that it runs
// after that has stopped and Prefix has cleaned up. With s a name unique
// to t (a tenant ID with a random part), it catches keys written outside
// t's prefix, which a developer's own Latchkey on the same Redis would
// then read.
func LeavesNoKeyWith(t testing.TB, c *redis.Client, s string) {
	t.Helper()
	t.Cleanup(func() {
		if left := Keys(t, c, "*"+s); len(left) > 0 {
			t.Errorf("%d keys containing %q were left in the Redis at %s: %v", len(left), s, Addr(), left)
		}
	})
}

// Keys returns the keys under prefix, sorted, using SCAN so as not to
// block a shared Redis.
func Keys(t testing.TB, c *redis.Client, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var all []string
	iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
	for iter.Next(ctx) {
		all = append(all, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN %s*: %v", prefix, err)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// go-redis logs pool dial failures itself; Down makes them on purpose.
// Set once, before any test runs, since the logger is a global.
func init() { redis.SetLogger(quiet{}) }

// quiet discards go-redis's log lines.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
