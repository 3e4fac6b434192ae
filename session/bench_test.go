package session

// Micro-benchmarks of the session hot path, run by `make bench` (and by
// any `go test -bench`): the cookie codec, Manager.Load over memstore, and
// the per-process session cache.
// The process-level benchmark is in bench/.

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store/memstore"
)

var (
	benchCodecKey = bytes.Repeat([]byte{7}, 32)
	benchOtherKey = bytes.Repeat([]byte{8}, 32)
)

const benchCookieName = "__Host-latchkey-bench"

// benchCodecValue returns a codec, a cookie payload as Login makes it and
// that payload encoded.
func benchCodecValue(b *testing.B, key []byte) (*Codec, []byte, string) {
	b.Helper()
	c, err := NewCodec([][]byte{key})
	if err != nil {
		b.Fatal(err)
	}
	payload := cookiePayload(bytes.Repeat([]byte{9}, tokenLen), "u000042")
	v, err := c.encode(benchCookieName, payload)
	if err != nil {
		b.Fatal(err)
	}
	return c, payload, v
}

func BenchmarkCodecEncode(b *testing.B) {
	c, payload, _ := benchCodecValue(b, benchCodecKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.encode(benchCookieName, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodecDecode(b *testing.B) {
	c, _, v := benchCodecValue(b, benchCodecKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.decode(benchCookieName, DefaultAbsoluteLifetime, v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCodecDecodeBadSignature decodes a well-formed value signed with
// another key: what a forged or stale cookie costs.
func BenchmarkCodecDecodeBadSignature(b *testing.B) {
	c, _, _ := benchCodecValue(b, benchCodecKey)
	_, _, v := benchCodecValue(b, benchOtherKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.decode(benchCookieName, DefaultAbsoluteLifetime, v); err == nil {
			b.Fatal("a value signed with another key decoded")
		}
	}
}

// BenchmarkManagerLoad is the session lookup of GET me without the
// per-process cache: verify the cookie, read and decode the session from
// memstore. The clock stands still, so no iteration writes the idle expiry
// back.
func BenchmarkManagerLoad(b *testing.B) {
	benchManagerLoad(b, false)
}

func benchManagerLoad(b *testing.B, cached bool) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st := memstore.New(memstore.Config{Now: clock})
	m, err := NewManager(st, Config{Keys: [][]byte{benchCodecKey}, Now: clock,
		Password: PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	t, _, err := m.PutTenant(ctx, Tenant{ID: "bench", Name: "Bench", Origins: []string{"https://app.bench.test"},
		Cookie: CookiePolicy{SameSite: SameSiteNone, Partitioned: true}})
	if err != nil {
		b.Fatal(err)
	}
	pw := "bench-password"
	if _, err := m.CreateUser(ctx, t.ID, UserInput{Username: "u000042", Password: &pw}); err != nil {
		b.Fatal(err)
	}
	_, c, err := m.Login(ctx, &t, LoginInput{Username: "u000042", Password: pw, UserAgent: "Go-http-client/1.1"})
	if err != nil {
		b.Fatal(err)
	}
	values := []string{c.Value}
	if cached {
		m.EnableCache(ctx, DefaultCacheSize)
		if _, err := m.Load(ctx, &t, values); err != nil { // fills the cache
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Load(ctx, &t, values); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManagerLoadCached is the same lookup with the per-process
// session cache on (EnableCache): after the first load, a MAC check and a
// map lookup.
func BenchmarkManagerLoadCached(b *testing.B) {
	benchManagerLoad(b, true)
}

// benchCacheSessions returns n sessions of distinct users as a load from
// the store makes them: each with its own ID, username and user-agent
// strings, which a cache entry keeps.
func benchCacheSessions(n int) []Session {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ss := make([]Session, n)
	for i := range ss {
		ss[i] = Session{
			ID: sessionID(fmt.Appendf(nil, "token %d", i)), Tenant: "bench", Username: fmt.Sprintf("u%07d", i),
			CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now.Add(12 * time.Hour), ExpiresAt: now.Add(7 * 24 * time.Hour),
			UserAgent: strings.Clone("Firefox on Linux"),
		}
	}
	return ss
}

// benchCacheSize is the size of the benchmarks' cache: the bound before it
// could be set, so that figures compare across versions.
const benchCacheSize = 100_000

// benchFullCache returns a full cache of benchCacheSize sessions, whose
// feed is always current.
func benchFullCache() (*cache, []Session) {
	c := newCache(benchCacheSize)
	c.current = func(time.Duration) bool { return true }
	ss := benchCacheSessions(benchCacheSize)
	for _, s := range ss {
		c.put(s, 0, s.LastSeenAt)
	}
	return c, ss
}

// BenchmarkCacheHit is a lookup that the cache answers, in a full cache:
// what every cached `me` pays besides the cookie's MAC.
func BenchmarkCacheHit(b *testing.B) {
	c, ss := benchFullCache()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := &ss[i%len(ss)]
		if !c.get(s.Tenant, s.Username, []byte(s.ID), s.LastSeenAt, time.Minute, new(Session)) {
			b.Fatal("a cached session missed")
		}
		i++
	}
}

// BenchmarkCachePutFull caches sessions of new users in a full cache: what
// a load that read the store pays to cache what it read, eviction
// included. It alternates between two sets of sessions, each of which
// fills the cache, so that every put is of a session not cached.
func BenchmarkCachePutFull(b *testing.B) {
	c, cached := benchFullCache()
	more := benchCacheSessions(benchCacheSize)
	for i := range more {
		more[i].Username = "v" + more[i].Username[1:]
	}
	sets := [2][]Session{more, cached}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := &sets[i/benchCacheSize%2][i%benchCacheSize]
		c.put(*s, 0, s.LastSeenAt)
		i++
	}
}

// BenchmarkCacheMemory reports the live heap that a full cache takes per
// session, the strings it keeps included: the figure that the cache's
// bound is chosen from.
func BenchmarkCacheMemory(b *testing.B) {
	var per float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, _ := benchFullCache() // the sessions slice itself is garbage
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(c.n)
		runtime.KeepAlive(c)
	}
	b.ReportMetric(per, "B/session")
}
