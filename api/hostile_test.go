package api

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/memstore"
)

// countingStore counts the session reads that reach the store.
type countingStore struct {
	store.Store
	gets atomic.Int64
}

func (c *countingStore) GetSession(ctx context.Context, tenant, user, id string) (store.Session, error) {
	c.gets.Add(1)
	return c.Store.GetSession(ctx, tenant, user, id)
}

// TestBadCookiesCostNoStoreRead checks that a cookie failing its signature
// never reaches the store, and one that verifies but names no session
// reaches it once: an attacker's junk costs a MAC check, not a round trip.
func TestBadCookiesCostNoStoreRead(t *testing.T) {
	t.Parallel()
	cs := &countingStore{}
	e := newEnv(t, envOptions{newStore: func(now func() time.Time) store.Store {
		cs.Store = memstore.New(memstore.Config{Now: now})
		return cs
	}})
	good := e.loginAlice()
	other := e.loginBob()
	// A session that verifies but no longer exists: logged out.
	gone := e.loginAlice()
	e.do(req{method: "POST", path: "/v1/logout", host: acmeHost, origin: acmeApp, ct: "application/json", cookies: []*http.Cookie{gone}})

	for _, tt := range []struct {
		name    string
		cookies []*http.Cookie
		reads   int64
	}{
		{"tampered", []*http.Cookie{{Name: good.Name, Value: good.Value[:len(good.Value)-4] + "AAAA"}}, 0},
		{"truncated", []*http.Cookie{{Name: good.Name, Value: good.Value[:30]}}, 0},
		{"oversized", []*http.Cookie{{Name: good.Name, Value: strings.Repeat("x", 4000)}}, 0},
		{"re-encoded", []*http.Cookie{{Name: good.Name, Value: reencoded(good.Value)}}, 0},
		{"another tenant's", []*http.Cookie{{Name: good.Name, Value: other.Value}}, 0},
		{"duplicated", []*http.Cookie{good, good}, 0},
		{"signed by a rotated-out key", []*http.Cookie{{Name: good.Name, Value: rotatedOut(t, e)}}, 0},
		{"never issued or ended", []*http.Cookie{gone}, 1},
	} {
		before := cs.gets.Load()
		r := e.do(req{method: "GET", path: "/v1/me", host: acmeHost, origin: acmeApp, cookies: tt.cookies})
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", tt.name, r.StatusCode)
		}
		if got := cs.gets.Load() - before; got != tt.reads {
			t.Errorf("%s: %d store reads, want %d", tt.name, got, tt.reads)
		}
	}
}

// reencoded returns value with the same bytes encoded differently: base64
// that securecookie's lenient decoder maps to the same bytes (a non-zero
// spare bit before the padding), or without padding, or in the standard
// alphabet. Each must be refused before any store read.
func reencoded(value string) string {
	if strings.HasSuffix(value, "=") {
		// Flip the lowest bit of the last data character: its spare bits
		// are padding, so lenient decoders yield the same bytes.
		i := len(strings.TrimRight(value, "=")) - 1
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		j := strings.IndexByte(alphabet, value[i])
		return value[:i] + string(alphabet[j^1]) + value[i+1:]
	}
	if std := strings.NewReplacer("-", "+", "_", "/").Replace(value); std != value {
		return std
	}
	return value + "==" // padding where none belongs
}

// rotatedOut returns a cookie for alice signed by a key the env does not
// have (any more).
func rotatedOut(t *testing.T, e *env) string {
	t.Helper()
	old := newEnv(t, envOptions{keys: [][]byte{[]byte(strings.Repeat("o", 32))}})
	return old.loginAlice().Value
}

// TestHeaderAbuse sends malformed or oversized headers and methods: each
// gets a correct, cheap answer, never a 5xx.
func TestHeaderAbuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	giant := strings.Repeat("x-a,", 2000) + "content-type"
	for _, tt := range []struct {
		name   string
		q      req
		status int
	}{
		{"giant ACRH", req{method: "OPTIONS", path: "/v1/login", host: acmeHost, origin: acmeApp,
			header: map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": giant}}, 403},
		{"unknown method", req{method: "PURGE", path: "/v1/me", host: acmeHost, origin: acmeApp}, 405},
		{"host with port and dots", req{method: "GET", path: "/v1/me", host: "AUTH.acme.com.:8443", origin: acmeApp}, 401},
		{"host that is an IP", req{method: "GET", path: "/v1/me", host: "127.0.0.1:8080", origin: acmeApp}, 404},
		{"empty origin", req{method: "GET", path: "/v1/me", host: acmeHost, header: map[string]string{"Origin": ""}}, 401},
	} {
		r := e.do(tt.q)
		if r.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, r.StatusCode, tt.status)
		}
		if strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "x-a") {
			t.Errorf("%s: unchecked request headers were echoed", tt.name)
		}
	}

	// Headers past MaxHeaderBytes are refused by net/http itself (431),
	// before any handler; that limit is set in cmd (newHTTPServer).
}
