package session

// Micro-benchmarks of the session hot path, run by `make bench` (and by
// any `go test -bench`): the cookie codec and Manager.Load over memstore.
// The process-level benchmark is in bench/.

import (
	"bytes"
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
	v, err := c.encode(benchCookieName, DefaultAbsoluteLifetime, payload)
	if err != nil {
		b.Fatal(err)
	}
	return c, payload, v
}

func BenchmarkCodecEncode(b *testing.B) {
	c, payload, _ := benchCodecValue(b, benchCodecKey)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.encode(benchCookieName, DefaultAbsoluteLifetime, payload); err != nil {
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
		m.EnableCache(ctx)
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
