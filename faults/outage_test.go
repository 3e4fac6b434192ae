package faults

import (
	"crypto/rand"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// Bounds on answers while Redis is down or hung: an SPA must get its 503
// promptly, never hang until its own timeout. Latchkey's Redis client dials
// with a 2 s and reads with a 1 s timeout, and retries a few times.
//
// promptAnswer bounds the median of repeated requests, which stays
// meaningful on a loaded machine (other suites, fuzzers); hangCeiling
// bounds every single one: it is the server's own WriteTimeout, past which
// the client gets no answer at all.
const (
	promptAnswer = 5 * time.Second
	hangCeiling  = 15 * time.Second
)

// maxRecovery bounds how long Latchkey takes to serve again once Redis is
// back, without being restarted.
const maxRecovery = 15 * time.Second

// checkUnavailable reports a problem unless r is a 503 unavailable with a
// Retry-After, within hangCeiling.
func checkUnavailable(t testing.TB, what string, r result) {
	t.Helper()
	switch {
	case r.Err != nil:
		t.Errorf("%s with Redis down: %v, want a 503", what, r.Err)
	case r.Status != http.StatusServiceUnavailable:
		t.Errorf("%s with Redis down: status=%d, want 503 (body %s)", what, r.Status, r.Body)
	case r.Problem() != problemUnavailable:
		t.Errorf("%s with Redis down: problem type=%q, want %q", what, r.Problem(), problemUnavailable)
	case r.Header.Get("Retry-After") == "":
		t.Errorf("%s with Redis down: no Retry-After header", what)
	}
	if r.Dur > hangCeiling {
		t.Errorf("%s with Redis down took %v, want at most %v", what, r.Dur, hangCeiling)
	}
}

// checkPrompt reports a problem unless the median of durs is at most
// promptAnswer, and logs the median and the worst.
func checkPrompt(t testing.TB, what string, durs []time.Duration) {
	t.Helper()
	med := median(durs)
	t.Logf("%s: %d answers, median %v, slowest %v", what, len(durs), med.Round(time.Millisecond), durs[len(durs)-1].Round(time.Millisecond))
	if med > promptAnswer {
		t.Errorf("%s: median answer %v, want at most %v", what, med, promptAnswer)
	}
}

// TestRedisDownAndBack stops a persistent Redis under a running Latchkey:
// every request that needs the store answers a prompt 503 with Retry-After
// (never a 401 that would log the user out), readiness fails while
// liveness holds, and once Redis is back the same Latchkey process serves
// the old session again and new logins, without a restart.
func TestRedisDownAndBack(t *testing.T) {
	t.Parallel()
	rd := proctest.StartRedis(t, proctest.RedisConfig{AOF: true})
	alice := testUser{Name: "alice", Password: rand.Text()}
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{RedisURL: rd.URL(), TenantsFile: writeTenantsFile(t, []testUser{alice}, cheapParams)})
	api := newAPIClient("http://"+lk.Public, 15*time.Second)
	hc := &http.Client{Timeout: 15 * time.Second}

	in := api.Login(alice.Name, alice.Password)
	cookie, oldID := in.Cookie(), in.SessionID()
	if in.Status != http.StatusOK || cookie == "" || oldID == "" {
		t.Fatalf("login: %v, cookie set=%t, want 200 with a cookie (body %s)", in, cookie != "", in.Body)
	}
	if r := api.Me(cookie); r.Status != http.StatusOK {
		t.Fatalf("me before the outage: %v, want 200", r)
	}

	rd.Stop()
	// A replica serves a cached session while its invalidation feed was
	// proven current within 30 ms (session's cacheTrust): the last pong
	// before Redis stopped still vouches for that long. Past it, every
	// lookup must go to the store, and so answer 503.
	time.Sleep(100 * time.Millisecond)
	var durs []time.Duration
	for i := range 3 {
		for _, c := range []struct {
			name string
			call func() result
		}{
			{"me", func() result { return api.Me(cookie) }},
			{"login", func() result { return api.Login(alice.Name, alice.Password) }},
			{"login with a wrong password", func() result { return api.Login(alice.Name, "wrong-"+alice.Password) }},
			{"sessions", func() result { return api.Sessions(cookie) }},
		} {
			r := c.call()
			checkUnavailable(t, c.name, r)
			durs = append(durs, r.Dur)
			if i == 0 {
				t.Logf("Redis down: %s answered %v (Retry-After %q)", c.name, r, r.Header.Get("Retry-After"))
			}
		}
	}
	if r := get(hc, "http://"+lk.Admin+"/readyz"); r.Status != http.StatusServiceUnavailable || r.Dur > promptAnswer {
		t.Errorf("readyz with Redis down: %v, want 503 within %v", r, promptAnswer)
	}
	if r := get(hc, "http://"+lk.Admin+"/healthz"); r.Status != http.StatusOK {
		t.Errorf("healthz with Redis down: %v, want 200 (the process itself is fine)", r)
	}
	if !lk.Alive() {
		t.Fatalf("latchkey exited while Redis was down")
	}
	checkPrompt(t, "Redis down: me, login, sessions", durs)

	rd.Restart()
	var seen []string // me's answers while recovering, in order, deduplicated
	took, ok := pollUntil(maxRecovery, 100*time.Millisecond, func() bool {
		ready := get(hc, "http://"+lk.Admin+"/readyz").Status == http.StatusOK
		r := api.Me(cookie)
		if s := r.String(); len(seen) == 0 || !strings.HasPrefix(s, seen[len(seen)-1]) {
			seen = append(seen, strings.SplitN(s, " in ", 2)[0])
		}
		if r.Status == http.StatusUnauthorized || r.Status >= 500 && r.Status != http.StatusServiceUnavailable {
			t.Errorf("me while Redis recovers: %v, want 503 or 200: an outage must not log anyone out", r)
		}
		return ready && r.Status == http.StatusOK && r.SessionID() == oldID
	})
	t.Logf("after the restart of Redis, me answered %s", strings.Join(seen, " → "))
	if !ok {
		t.Fatalf("Latchkey did not recover within %v of Redis's restart: readyz 200 and me 200 with the old cookie", maxRecovery)
	}
	t.Logf("recovered %v after Redis answered PING again (readyz 200, old session served)", took.Round(time.Millisecond))

	again := api.Login(alice.Name, alice.Password)
	if again.Status != http.StatusOK || again.Cookie() == "" {
		t.Fatalf("login after recovery: %v, want 200 with a cookie", again)
	}
	if r := api.Me(again.Cookie()); r.Status != http.StatusOK {
		t.Errorf("me with the new cookie: %v, want 200", r)
	}
	if !lk.Alive() {
		t.Errorf("latchkey exited")
	}
}

// TestRedisHangs freezes Redis (SIGSTOP) instead of stopping it: TCP still
// connects, but nothing answers, so only the client's timeouts stand
// between a request and a hang. Requests must still end in a prompt 503,
// and the old session must work again once Redis resumes.
func TestRedisHangs(t *testing.T) {
	t.Parallel()
	rd := proctest.StartRedis(t, proctest.RedisConfig{AOF: true})
	alice := testUser{Name: "alice", Password: rand.Text()}
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{RedisURL: rd.URL(), TenantsFile: writeTenantsFile(t, []testUser{alice}, cheapParams)})
	api := newAPIClient("http://"+lk.Public, 30*time.Second)
	hc := &http.Client{Timeout: 15 * time.Second}

	in := api.Login(alice.Name, alice.Password)
	cookie := in.Cookie()
	if in.Status != http.StatusOK || cookie == "" {
		t.Fatalf("login: %v, want 200 with a cookie", in)
	}

	rd.Pause()
	defer rd.Resume()
	var durs []time.Duration
	for range 2 {
		me, login := api.Me(cookie), api.Login(alice.Name, alice.Password)
		ready := get(hc, "http://"+lk.Admin+"/readyz")
		t.Logf("Redis hung: me %v, login %v, readyz %v", me, login, ready)
		checkUnavailable(t, "me", me)
		checkUnavailable(t, "login", login)
		if ready.Status != http.StatusServiceUnavailable || ready.Dur > promptAnswer {
			t.Errorf("readyz with Redis hung: %v, want 503 within %v", ready, promptAnswer)
		}
		durs = append(durs, me.Dur, login.Dur)
	}
	checkPrompt(t, "Redis hung: me, login", durs)
	rd.Resume()

	took, ok := pollUntil(maxRecovery, 100*time.Millisecond, func() bool {
		r := api.Me(cookie)
		if r.Status == http.StatusUnauthorized {
			t.Errorf("me after Redis resumed: %v: an outage must not log anyone out", r)
		}
		return r.Status == http.StatusOK
	})
	if !ok {
		t.Fatalf("me with the old cookie did not answer 200 within %v of Redis resuming", maxRecovery)
	}
	t.Logf("Redis resumed: me 200 again after %v", took.Round(time.Millisecond))
}

// TestRedisRestartWithoutPersistence restarts a Redis that keeps nothing
// (no AOF, no RDB): every session, user and tenant is gone. The old cookie
// must end cleanly (401 or, once the tenant is gone, 404; never a 500 and
// not a 503 for ever), the process must stay up, and an operator must be
// able to bring the tenant back through the admin API without restarting
// Latchkey, after which the old cookie is 401 and login works.
//
// It records what Latchkey does with the tenant: the tenants file is
// applied at start-up only, so after the wipe the tenant disappears on the
// next reload (a subscription reconnect or the 5 s poll) and its public
// API answers 404 until someone re-creates it.
func TestRedisRestartWithoutPersistence(t *testing.T) {
	t.Parallel()
	rd := proctest.StartRedis(t, proctest.RedisConfig{AOF: false})
	alice := testUser{Name: "alice", Password: rand.Text()}
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{RedisURL: rd.URL(), TenantsFile: writeTenantsFile(t, []testUser{alice}, cheapParams)})
	api := newAPIClient("http://"+lk.Public, 15*time.Second)
	hc := &http.Client{Timeout: 15 * time.Second}

	in := api.Login(alice.Name, alice.Password)
	cookie := in.Cookie()
	if in.Status != http.StatusOK || cookie == "" {
		t.Fatalf("login: %v, want 200 with a cookie", in)
	}

	// A marker of our own shows that the restart really lost the data
	// (Latchkey may write again at once, so DBSIZE would not).
	rc := rd.Client()
	if err := rc.Set(t.Context(), "faults:marker", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	rd.Stop()
	checkUnavailable(t, "me", api.Me(cookie))
	rd.Restart()
	restarted := time.Now()
	if n, err := rc.Exists(t.Context(), "faults:marker").Result(); err != nil || n != 0 {
		t.Fatalf("Redis after a restart without persistence: marker EXISTS=%d (%v), want 0", n, err)
	}

	// Watch for longer than one tenant reload period (5 s), until the
	// outcome has held for a second: the tenant gone (me and login 404) or
	// back (login 200, the old cookie 401). Allowed at every step: 401 of
	// the right kind, 404 once the tenant is gone, 503 while the client
	// reconnects, and 200 for a login; never a 500, and never 200 for the
	// wiped session.
	type step struct {
		at              time.Duration
		me, login, redy string
	}
	var steps []step
	check := func(what string, r result, want ...string) string {
		t.Helper()
		if r.Err != nil || !slices.Contains(append(want, problemUnavailable, problemNotFound), r.Problem()) && !(r.Status == http.StatusOK && slices.Contains(want, "200")) {
			t.Errorf("%s after the wipe: %v (body %s), want 503, 404 or %v", what, r, r.Body, want)
		}
		return strings.SplitN(r.String(), " in ", 2)[0]
	}
	var outcome string // "gone" or "back"
	var since time.Duration
	deadline := restarted.Add(8 * time.Second)
	for time.Now().Before(deadline) {
		s := step{at: time.Since(restarted)}
		s.me = check("me with the old cookie", api.Me(cookie), problemUnauthenticated)
		s.login = check("login", api.Login(alice.Name, alice.Password), problemInvalidCreds, "200")
		ready := get(hc, "http://"+lk.Admin+"/readyz")
		if ready.Status != http.StatusOK && ready.Status != http.StatusServiceUnavailable {
			t.Errorf("readyz after the wipe: %v, want 200 or 503", ready)
		}
		s.redy = strings.SplitN(ready.String(), " in ", 2)[0]
		if n := len(steps); n == 0 || steps[n-1].me != s.me || steps[n-1].login != s.login || steps[n-1].redy != s.redy {
			steps = append(steps, s)
		}
		now := ""
		switch {
		case strings.HasPrefix(s.me, "404") && strings.HasPrefix(s.login, "404"):
			now = "gone"
		case strings.HasPrefix(s.me, "401") && strings.HasPrefix(s.login, "200"):
			now = "back"
		}
		if now != outcome {
			outcome, since = now, s.at
		}
		if outcome != "" && s.at > since+time.Second {
			break // settled
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, s := range steps {
		t.Logf("+%v after the wipe: me(old cookie) %s, login %s, readyz %s", s.at.Round(time.Millisecond), s.me, s.login, s.redy)
	}
	if !lk.Alive() {
		t.Fatalf("latchkey exited after the wipe")
	}
	switch outcome {
	case "back":
		t.Logf("%v after Redis came back empty, tenant %q serves again: the tenants file was re-applied", since.Round(time.Millisecond), tenantID)
	case "gone":
		t.Logf("FINDING: %v after Redis came back empty, tenant %q answers 404 on the public API and stays so: the tenants file is applied only at start-up; /readyz still says %s",
			since.Round(time.Millisecond), tenantID, steps[len(steps)-1].redy)
		// The operator's way back without a restart: re-create the tenant
		// and its user through the admin API.
		tenant := map[string]any{"name": "Acme (re-created)", "origins": []string{appOrigin}, "cookie": map[string]any{"same_site": "lax"}}
		if r := admin(hc, lk, http.MethodPut, "/tenants/"+tenantID, tenant); r.Status != http.StatusCreated && r.Status != http.StatusOK {
			t.Fatalf("admin PUT tenant: %v (body %s)", r, r.Body)
		}
		user := map[string]any{"username": alice.Name, "password": alice.Password}
		if r := admin(hc, lk, http.MethodPost, "/tenants/"+tenantID+"/users", user); r.Status != http.StatusCreated {
			t.Fatalf("admin POST user: %v (body %s)", r, r.Body)
		}
	default:
		t.Fatalf("8s after Redis came back empty, the tenant neither settled as gone (404) nor as back (login 200, old cookie 401): a 503 for ever?")
	}

	var login result
	took, ok := pollUntil(5*time.Second, 50*time.Millisecond, func() bool {
		login = api.Login(alice.Name, alice.Password)
		return login.Status == http.StatusOK
	})
	if !ok {
		t.Fatalf("login after the tenant is back: %v, want 200 within 5s", login)
	}
	t.Logf("login 200 again after %v", took.Round(time.Millisecond))
	if r := api.Me(cookie); r.Status != http.StatusUnauthorized || r.Problem() != problemUnauthenticated {
		t.Errorf("me with the wiped session's cookie: %v, want 401 %s", r, problemUnauthenticated)
	}
	if r := api.Me(login.Cookie()); r.Status != http.StatusOK {
		t.Errorf("me with the new cookie: %v, want 200", r)
	}
	if r := get(hc, "http://"+lk.Admin+"/readyz"); r.Status != http.StatusOK {
		t.Errorf("readyz at the end: %v, want 200", r)
	}
}
