package faults

import (
	"context"
	"crypto/rand"
	"encoding/json"
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
)

// Key layout of redisstore with its default prefix (store/redisstore/doc.go).
const (
	keyPrefix      = "latchkey:"
	userKeyPrefix  = keyPrefix + "u:{"
	sessKeyPrefix  = keyPrefix + "s:{"
	usersIndexKey  = keyPrefix + "users:" + tenantID
	tenantsHashKey = keyPrefix + "tenants"
	// A session value starts with 0x01 and its expiry in unix ms as 6
	// bytes, big-endian.
	expiryMark = 0x01
	expiryLen  = 1 + 6
)

// TestNoHalfWrittenSessions crashes Redis (SIGKILL) while logins are in
// flight, over and over, and restarts it from its AOF (appendfsync
// always). After each crash it checks, directly in Redis, that nothing is
// half-written: every sessions hash belongs to an existing user, and every
// field is an expiry followed by data. Through Latchkey it checks
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

		fields += checkRedisConsistent(t, rc, rounds)

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
	t.Logf("%d crashes in %v: %d logins answered 200 (each still valid after its crash), %d answered 503; %d were in flight when Redis was killed (%d of them answered 200); %d stored session fields inspected",
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

// counters describes the failed-login counters, where the build has
// them, with their values: the hashes under latchkey:l: (failures in n,
// places of checks in flight in r:…), or the strings under latchkey:n: of
// earlier builds.
func counters(t testing.TB, rc *redis.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for _, pattern := range []string{keyPrefix + "l:*", keyPrefix + "n:*"} {
		iter := rc.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			if rc.Type(ctx, k).Val() == "hash" {
				out = append(out, fmt.Sprintf("%s=%v", k, rc.HGetAll(ctx, k).Val()))
				continue
			}
			out = append(out, k+"="+rc.Get(ctx, k).Val())
		}
	}
	if len(out) == 0 {
		return "none"
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// checkRedisConsistent inspects every Latchkey key in Redis: sessions
// hashes must belong to an existing user record, and every stored session
// must start with a 13-digit expiry in a plausible range; user records and
// tenants must be intact JSON. Keys of other kinds (counters, admin keys,
// audit logs) are not this test's subject and are left alone. It returns
// how many session fields it checked.
func checkRedisConsistent(t testing.TB, rc *redis.Client, round int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	iter := rc.Scan(ctx, 0, keyPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("round %d: SCAN: %v", round, err)
	}
	now := time.Now()
	// A session's expiry is at most its absolute lifetime (default 168h)
	// ahead, and not long past (the store keeps expired fields until a
	// listing prunes them, but none of ours is old).
	lo, hi := now.Add(-time.Hour).UnixMilli(), now.Add(169*time.Hour).UnixMilli()
	var users, fields int
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, sessKeyPrefix):
			if typ := rc.Type(ctx, k).Val(); typ != "hash" {
				t.Errorf("round %d: %s is a %s, want a hash", round, k, typ)
				continue
			}
			owner := userKeyPrefix + strings.TrimPrefix(k, sessKeyPrefix)
			if n, err := rc.Exists(ctx, owner).Result(); err != nil || n != 1 {
				t.Errorf("round %d: sessions hash %s has no user record %s (EXISTS=%d, %v)", round, k, owner, n, err)
			}
			all, err := rc.HGetAll(ctx, k).Result()
			if err != nil {
				t.Fatalf("round %d: HGETALL %s: %v", round, k, err)
			}
			for id, v := range all {
				fields++
				var at int64
				for i := 1; i < min(len(v), expiryLen); i++ {
					at = at<<8 | int64(v[i])
				}
				switch {
				case len(v) <= expiryLen || v[0] != expiryMark:
					t.Errorf("round %d: %s field %s: value %q does not start with an expiry followed by data", round, k, id, v)
				case at < lo || at > hi:
					t.Errorf("round %d: %s field %s: expiry %v is implausible", round, k, id, time.UnixMilli(at))
				}
			}
		case strings.HasPrefix(k, userKeyPrefix):
			users++
			v, err := rc.Get(ctx, k).Bytes()
			if err != nil || !json.Valid(v) {
				t.Errorf("round %d: user record %s is not intact JSON (%v): %q", round, k, err, v)
			}
		case k == usersIndexKey:
			n, err := rc.SCard(ctx, k).Result()
			if err != nil || n != int64(len(keysWithPrefix(keys, userKeyPrefix))) {
				t.Errorf("round %d: %s has %d names (%v), want one per user record", round, k, n, err)
			}
		case k == tenantsHashKey:
			v, err := rc.HGet(ctx, k, tenantID).Bytes()
			if err != nil || !json.Valid(v) {
				t.Errorf("round %d: tenant %s in %s is not intact JSON (%v)", round, tenantID, k, err)
			}
		}
	}
	if users == 0 {
		t.Errorf("round %d: no user records in Redis after the restart: was the AOF replayed?", round)
	}
	return fields
}

func keysWithPrefix(keys []string, prefix string) []string {
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}
