package faults

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/api"
	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/session"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// startInProcess wires Latchkey as cmd/latchkey does (redisstore,
// session.Manager, the tenants file, api.Server) but in the test process,
// so that -race watches the product code too. It returns the public base
// URL. The Redis client's timeouts are ten times cmd/latchkey's: the
// callers test concurrency, not timeouts, and a race-instrumented process
// on a busy machine can miss a 1 s read deadline.
func startInProcess(t testing.TB, redisAddr, tenantsFile string) string {
	t.Helper()
	client := redis.NewClient(&redis.Options{
		Addr: redisAddr, DialTimeout: 20 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, PoolTimeout: 20 * time.Second,
	})
	t.Cleanup(func() { client.Close() })
	st, err := redisstore.New(client, redisstore.Config{})
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	log := slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	key := make([]byte, 32)
	rand.Read(key)
	keys, err := session.ParseKeys(base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	m, err := session.NewManager(st, session.Config{Keys: keys, Logger: log, Password: cheapParams})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	f, err := os.Open(tenantsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	file, err := session.ParseTenantsFile(f)
	if err != nil {
		t.Fatalf("ParseTenantsFile: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := m.Apply(ctx, file); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	srv, err := api.NewServer(m, api.Config{Logger: log})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ts, err := m.ListTenants(ctx)
	if err != nil {
		t.Fatalf("ListTenants: %v", err)
	}
	srv.UpdateTenants(session.TenantsUpdate{Changed: ts})
	srv.MarkReady()
	pub := httptest.NewServer(srv.Public())
	t.Cleanup(pub.Close)
	return pub.URL
}

// tlogWriter sends the product's log lines to t.Log.
type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// TestConcurrentLoginLogout runs many logins, logouts and "log out
// everywhere" for one user at once, then checks that the user's session
// list is exactly the sessions that still authenticate: every cookie that
// still answers me 200 is listed, nothing else is (no session leaked past
// a revocation), and every cookie that was logged out, presented to a
// later login or used to log out everywhere stays dead.
func TestConcurrentLoginLogout(t *testing.T) {
	t.Parallel()
	const (
		workers     = 16
		opsPer      = 20
		maxDuration = 20 * time.Second
	)
	rd := proctest.StartRedis(t, proctest.RedisConfig{})
	alice := testUser{Name: "alice", Password: rand.Text()}
	pub := startInProcess(t, rd.Addr(), writeTenantsFile(t, []testUser{alice}, cheapParams))
	c := newAPIClient(pub, 15*time.Second)

	type issued struct{ cookie, id string }
	var (
		mu     sync.Mutex
		all    []issued              // every cookie a login answered 200 with
		dead   = map[string]string{} // cookie -> why it must be dead
		counts = map[string]int{}
	)
	record := func(op string, r result, want ...int) bool {
		mu.Lock()
		defer mu.Unlock()
		counts[fmt.Sprintf("%s %d", op, r.Status)]++
		if !slices.Contains(want, r.Status) {
			t.Errorf("%s: %v (body %s), want one of %v", op, r, r.Body, want)
			return false
		}
		return true
	}
	deadline := time.Now().Add(maxDuration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			var held []string
			take := func() string { // removes and returns a random held cookie
				i := rng.IntN(len(held))
				c := held[i]
				held = slices.Delete(held, i, i+1)
				return c
			}
			for range opsPer {
				if time.Now().After(deadline) {
					return
				}
				switch p := rng.IntN(100); {
				case len(held) == 0 || p < 45: // log in, sometimes presenting a cookie
					var old string
					if len(held) > 0 && p < 15 {
						old = take()
					}
					// 429: see TestSimultaneousLoginsOfOneAccount, which
					// pins that down; here it only costs a cookie.
					r := c.LoginWith(old, alice.Name, alice.Password)
					if record("login", r, http.StatusOK, http.StatusTooManyRequests) && r.Status == http.StatusOK {
						mu.Lock()
						all = append(all, issued{r.Cookie(), r.SessionID()})
						if old != "" {
							dead[old] = "presented to a successful login"
						}
						mu.Unlock()
						held = append(held, r.Cookie())
					}
				case p < 70: // log out one session
					old := take()
					if r := c.Logout(old); record("logout", r, http.StatusNoContent) {
						mu.Lock()
						dead[old] = "logged out"
						mu.Unlock()
					}
				case p < 80: // log out everywhere; 401 if that session is gone already
					old := take()
					if r := c.RevokeAll(old); record("revoke-all", r, http.StatusNoContent, http.StatusUnauthorized) && r.Status == http.StatusNoContent {
						mu.Lock()
						dead[old] = "used to log out everywhere"
						mu.Unlock()
					}
				case p < 90:
					record("sessions", c.Sessions(held[rng.IntN(len(held))]), http.StatusOK, http.StatusUnauthorized)
				default:
					record("me", c.Me(held[rng.IntN(len(held))]), http.StatusOK, http.StatusUnauthorized)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("operations by answer: %v", counts)

	// A fresh login first: it may end the oldest sessions over the per-user
	// cap, which must then show as dead below.
	fresh := c.Login(alice.Name, alice.Password)
	if fresh.Status != http.StatusOK {
		t.Fatalf("fresh login: %v", fresh)
	}
	live := map[string]bool{fresh.SessionID(): true}
	for _, is := range all {
		r := c.Me(is.cookie)
		switch r.Status {
		case http.StatusOK:
			if r.SessionID() != is.id {
				t.Errorf("me: session %q, want %q, the one its login issued", r.SessionID(), is.id)
			}
			if why, ok := dead[is.cookie]; ok {
				t.Errorf("a cookie %s still answers me 200: session %s was not ended", why, is.id)
			}
			live[is.id] = true
		case http.StatusUnauthorized:
		default:
			t.Errorf("me: %v, want 200 or 401", r)
		}
	}
	list := c.Sessions(fresh.Cookie())
	if list.Status != http.StatusOK {
		t.Fatalf("sessions: %v", list)
	}
	listed := list.SessionIDs(t)
	for _, id := range listed {
		if !live[id] {
			t.Errorf("sessions lists %s, which no cookie we hold can use: a session leaked past its revocation", id)
		}
	}
	for id := range live {
		if !slices.Contains(listed, id) {
			t.Errorf("session %s answers me 200 but is missing from the list", id)
		}
	}
	t.Logf("%d logins issued cookies; %d sessions alive at the end (with the fresh one), %d listed; %d cookies had to be dead", len(all), len(live), len(listed), len(dead))
}

// TestSimultaneousLoginsOfOneAccount sends 16 logins with the right
// password for one account at the same moment, as a burst of tabs or a
// shared account might, to the real binary with OWASP's default argon2id
// cost (so that hashing takes long enough for the logins to overlap). None
// failed, so none may be refused as rate-limited; a 503 with Retry-After
// is the documented answer when too many hashes are in progress.
func TestSimultaneousLoginsOfOneAccount(t *testing.T) {
	t.Parallel()
	const burst = 16
	rd := proctest.StartRedis(t, proctest.RedisConfig{})
	alice := testUser{Name: "alice", Password: rand.Text()}
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{RedisURL: rd.URL(), TenantsFile: writeTenantsFile(t, []testUser{alice}, session.DefaultPasswordParams)})
	c := newAPIClient("http://"+lk.Public, 15*time.Second)
	// One kept-alive connection per request, opened beforehand, so that the
	// logins arrive together rather than one TCP handshake apart.
	c.client.Transport = &http.Transport{MaxIdleConnsPerHost: burst}
	var wg sync.WaitGroup
	for range burst {
		wg.Go(func() { c.Me("") })
	}
	wg.Wait()

	start := make(chan struct{})
	results := make([]result, burst)
	for i := range burst {
		wg.Go(func() {
			<-start
			results[i] = c.Login(alice.Name, alice.Password)
		})
	}
	close(start)
	wg.Wait()
	counts := map[string]int{}
	for _, r := range results {
		counts[strings.SplitN(r.String(), " in ", 2)[0]]++
	}
	t.Logf("%d simultaneous logins with the right password: %v", burst, counts)
	for _, r := range results {
		switch {
		case r.Status == http.StatusOK:
		case r.Status == http.StatusServiceUnavailable && r.Problem() == problemUnavailable && r.Header.Get("Retry-After") != "":
		default:
			t.Errorf("a login with the right password, none ever wrong, answered %v (body %s), want 200 (or 503 when hashing is saturated)", r, r.Body)
		}
	}
	if counts["200"] == 0 {
		t.Errorf("no login of the burst succeeded")
	}
}
