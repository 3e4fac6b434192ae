package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// TestNoHalfWrittenSessions crashes Redis (SIGKILL) while logins are in
// flight, over and over, and restarts it from its AOF (appendfsync
// always). After each crash it checks, through redisstore's own methods,
// that nothing is half-written: the tenant and every user are intact, and
// every stored session reads back with a plausible expiry. Through
// Latchkey it checks
// that no acknowledged login was lost: every login answered 200 before the
// crash still authenticates (me 200, same session) afterwards, because
// Latchkey answers 200 only once Redis has acknowledged the write. Every
// login answers 200 or 503, never anything else, and none of the logins
// the crashes cut short may count as a failed login: no password here is
// ever wrong, so with the per-address limit at its strictest (one failure,
// set through the admin API) a login must still succeed afterwards.
func TestNoHalfWrittenSessions(t *testing.T) {
	t.Parallel()
	const (
		workers      = 8
		maxPerWorker = 20 // logins per worker and round; under the 50-session cap
		maxRounds    = 30
		maxDuration  = 15 * time.Second
	)
	rd := proctest.StartRedis(t, proctest.RedisConfig{AOF: true})
	password := rand.Text()
	users := make([]testUser, workers)
	for i := range users {
		users[i] = testUser{Name: fmt.Sprintf("user%d", i), Password: password}
	}
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{RedisURL: rd.URL(), TenantsFile: writeTenantsFile(t, users, cheapParams)})
	api := newAPIClient("http://"+lk.Public, 15*time.Second)
	hc := &http.Client{Timeout: 15 * time.Second}
	rc := rd.Client()
	st, err := redisstore.New(rc, redisstore.Config{}) // Latchkey's default prefix
	if err != nil {
		t.Fatal(err)
	}

	type login struct {
		user, cookie, id string
		sent             time.Time
		res              result
	}
	var (
		rounds, acked, refused  int
		straddled, straddled200 int // logins sent before a kill and answered after it
		fields                  int // session fields inspected in Redis
		limited                 []string
		start                   = time.Now()
	)
	// Stop at the first round with a failure (one is enough to diagnose)
	// or with a login refused as rate-limited: from then on logins are
	// refused and further rounds would prove nothing.
	for rounds < maxRounds && time.Since(start) < maxDuration && !t.Failed() && len(limited) == 0 {
		rounds++
		stop := make(chan struct{})
		var mu sync.Mutex
		var logins []login
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				u := users[w]
				for range maxPerWorker {
					select {
					case <-stop:
						return
					default:
					}
					sent := time.Now()
					r := api.Login(u.Name, u.Password)
					mu.Lock()
					logins = append(logins, login{user: u.Name, cookie: r.Cookie(), id: r.SessionID(), sent: sent, res: r})
					mu.Unlock()
				}
			})
		}
		// Kill at a random moment while the workers are logging in. Restart
		// at once in a third of the rounds (logins in flight then succeed
		// on a retry against the restarted Redis), else after up to 1.2 s
		// (they fail, or their retries reach the new Redis).
		time.Sleep(time.Duration(2+mrand.IntN(25)) * time.Millisecond)
		killedAt := time.Now()
		rd.Kill()
		if mrand.IntN(3) > 0 {
			time.Sleep(time.Duration(mrand.IntN(1200)) * time.Millisecond)
		}
		rd.Restart()
		close(stop)
		wg.Wait()

		fields += checkStoreConsistent(t, st, users, rounds)

		// Every acknowledged login survived the crash.
		for _, l := range logins {
			if l.sent.Before(killedAt) && l.sent.Add(l.res.Dur).After(killedAt) {
				straddled++
				if l.res.Status == http.StatusOK {
					straddled200++
				}
			}
			switch l.res.Status {
			case http.StatusOK:
				acked++
				if l.cookie == "" || l.id == "" {
					t.Errorf("round %d: login of %s answered 200 without a cookie or session id", rounds, l.user)
					continue
				}
				var me result
				pollUntil(5*time.Second, 50*time.Millisecond, func() bool {
					me = api.Me(l.cookie)
					return me.Status != http.StatusServiceUnavailable // the pool may still hold dead connections
				})
				if me.Status != http.StatusOK || me.SessionID() != l.id {
					t.Errorf("round %d: a login of %s answered 200 before the crash, but after it me answers %v (session %q, want %q): an acknowledged session was lost",
						rounds, l.user, me, me.SessionID(), l.id)
				}
			case http.StatusTooManyRequests:
				limited = append(limited, fmt.Sprintf("round %d, %s: %v", rounds, l.user, l.res))
			case http.StatusServiceUnavailable:
				refused++
				if l.res.Problem() != problemUnavailable || l.res.Header.Get("Retry-After") == "" {
					t.Errorf("round %d: login 503 without the unavailable problem or Retry-After: %s", rounds, l.res.Body)
				}
			default:
				t.Errorf("round %d: login of %s during the crash answered %v (body %s), want 200 or 503", rounds, l.user, l.res, l.res.Body)
			}
		}

		// Start the next round with no sessions, so that no user reaches
		// the per-user cap (whose eviction would look like a lost session).
		for _, u := range users {
			var in result
			pollUntil(5*time.Second, 50*time.Millisecond, func() bool {
				in = api.Login(u.Name, u.Password)
				return in.Status != http.StatusServiceUnavailable
			})
			if in.Status == http.StatusTooManyRequests {
				limited = append(limited, fmt.Sprintf("after round %d, %s: %v", rounds, u.Name, in))
				continue
			}
			if in.Status != http.StatusOK {
				t.Fatalf("round %d: login of %s after recovery: %v", rounds, u.Name, in)
			}
			if r := api.RevokeAll(in.Cookie()); r.Status != http.StatusNoContent {
				t.Fatalf("round %d: log %s out everywhere: %v", rounds, u.Name, r)
			}
		}
	}
	if r := get(hc, "http://"+lk.Admin+"/readyz"); r.Status != http.StatusOK {
		t.Errorf("readyz after the last crash: %v, want 200", r)
	}
	if !lk.Alive() {
		t.Errorf("latchkey exited during the crashes")
	}
	t.Logf("%d crashes in %v: %d logins answered 200 (each still valid after its crash), %d answered 503; %d were in flight when Redis was killed (%d of them answered 200); %d stored sessions inspected",
		rounds, time.Since(start).Round(time.Millisecond), acked, refused, straddled, straddled200, fields)
	if acked == 0 || straddled == 0 {
		t.Errorf("the crashes never landed among logins (200s: %d, in flight: %d): the test proved nothing", acked, straddled)
	}
	// No password in this test is ever wrong, so no login may be refused
	// as rate-limited: a login that failed only because Redis crashed is
	// not a failed login.
	if len(limited) > 0 {
		t.Errorf("%d logins with the right password were refused 429 rate-limited after %d Redis crashes, though no password was ever wrong; first: %s; failed-login counters in Redis: %s",
			len(limited), rounds, limited[0], counters(t, rc))
		return
	}
	t.Logf("failed-login counters in Redis after the crashes (no password was ever wrong): %s", counters(t, rc))
	checkNoPhantomFailures(t, lk, api, users[0])
}

// checkNoPhantomFailures makes the per-IP failed-login limit as strict as
// it goes (one failure per window), through the admin API, and checks that
// a login with the right password is still accepted: no wrong password was
// ever sent from this address, so the crashes must not have counted as
// failures. It does nothing on a build without login limits.
func checkNoPhantomFailures(t testing.TB, lk *proctest.Latchkey, api *apiClient, u testUser) {
	t.Helper()
	hc := &http.Client{Timeout: 15 * time.Second}
	r := admin(hc, lk, http.MethodGet, "/tenants/"+tenantID, nil)
	var tenant map[string]any
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &tenant) != nil {
		t.Fatalf("admin GET tenant: %v (body %s)", r, r.Body)
	}
	limits, ok := tenant["login_limits"].(map[string]any)
	if !ok {
		t.Logf("this build has no login limits; no phantom failures to check")
		return
	}
	limits["per_ip"] = 1
	limits["per_account"] = 1000
	if r := admin(hc, lk, http.MethodPut, "/tenants/"+tenantID, tenant); r.Status != http.StatusOK {
		t.Fatalf("admin PUT tenant with per_ip 1: %v (body %s)", r, r.Body)
	}
	// The new limit reaches the in-memory tenant within a reload; log in
	// for a while so that it has surely applied.
	var last result
	pollUntil(2*time.Second, 100*time.Millisecond, func() bool {
		last = api.Login(u.Name, u.Password)
		return last.Status != http.StatusOK
	})
	if last.Status != http.StatusOK {
		t.Errorf("with login_limits.per_ip 1, a login with the right password from an address that never sent a wrong one answers %v (body %s): logins interrupted by the Redis crashes were counted as failed logins (see the counters above; Latchkey logged %d times that it could not give back a login attempt)",
			last, last.Body, strings.Count(lk.Output(), "could not give back a login attempt"))
	}
}

// counters describes the failed-login counters with their values, for a
// failure message: the hashes under latchkey:l: (failures in n, places of
// checks in flight in r:…). The store has no method that lists them.
func counters(t testing.TB, rc *redis.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	iter := rc.Scan(ctx, 0, redisstore.DefaultPrefix+"l:*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		out = append(out, fmt.Sprintf("%s=%v", k, rc.HGetAll(ctx, k).Val()))
	}
	if len(out) == 0 {
		return "none"
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// checkStoreConsistent reads everything the crashes could have
// half-written through the store's own methods, as Latchkey does: the
// tenant's configuration and every user's record must be intact JSON, the
// user index must list every user exactly once, and every user's sessions
// must list without error, each with an expiry in a plausible range, and
// read back one by one as listed. It returns how many sessions it checked.
func checkStoreConsistent(t testing.TB, st *redisstore.Store, users []testUser, round int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cfg, err := st.GetTenant(ctx, tenantID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("round %d: GetTenant: %v", round, err)
	}
	if err != nil || !json.Valid(cfg) {
		t.Errorf("round %d: tenant %s is missing (%v) or not intact JSON: %q", round, tenantID, err, cfg)
	}

	listed, err := st.ListUsers(ctx, tenantID)
	if err != nil {
		t.Fatalf("round %d: ListUsers: %v", round, err)
	}
	seen := map[string]int{}
	for _, u := range listed {
		seen[u.Name]++
		if !json.Valid(u.Data) {
			t.Errorf("round %d: user record %s is not intact JSON: %q", round, u.Name, u.Data)
		}
	}
	if len(listed) == 0 {
		t.Errorf("round %d: no users in the store after the restart: was the AOF replayed?", round)
	}

	now := time.Now()
	// A session's expiry is at most its absolute lifetime (default 168h)
	// ahead, and not in the past: the store lists only live sessions.
	hi := now.Add(169 * time.Hour)
	var sessions int
	for _, u := range users {
		if n := seen[u.Name]; n != 1 {
			t.Errorf("round %d: ListUsers lists %s %d times, want once", round, u.Name, n)
		}
		if _, err := st.GetUser(ctx, tenantID, u.Name); err != nil {
			t.Errorf("round %d: GetUser(%s): %v, want the user", round, u.Name, err)
		}
		list, err := st.ListSessions(ctx, tenantID, u.Name)
		if err != nil {
			t.Errorf("round %d: ListSessions(%s): %v, want the sessions", round, u.Name, err)
			continue
		}
		for _, s := range list {
			sessions++
			if len(s.Data) == 0 || s.Expires.Before(now.Add(-time.Minute)) || s.Expires.After(hi) {
				t.Errorf("round %d: session %s of %s: %d bytes of data, expiry %v: implausible", round, s.ID, u.Name, len(s.Data), s.Expires)
			}
			got, err := st.GetSession(ctx, tenantID, u.Name, s.ID)
			if err != nil || !bytes.Equal(got.Data, s.Data) || !got.Expires.Equal(s.Expires) {
				t.Errorf("round %d: GetSession(%s, %s)=%+v, %v, want it as listed (%+v)", round, u.Name, s.ID, got, err, s)
			}
		}
	}
	return sessions
}
