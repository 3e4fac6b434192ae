package faults

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/session"
)

// TestLoginTimingIndistinguishable checks, statistically, that a failed
// login costs the same whatever the reason: an unknown user, an existing
// user with a wrong password, or a disabled user with the right one. It
// runs against the real binary with OWASP's default argon2id parameters,
// which the binary also uses for the dummy hash of unknown users, and
// compares medians of interleaved attempts, so that drift in machine load
// hits every kind alike. Every answer must be the same 401 body, byte for
// byte.
//
// It is deliberately not parallel: Go runs it before every parallel test,
// so no other test's processes compete for the CPU while it measures.
//
// Attempts are spread over several accounts and fresh unknown names, and
// stay under 100 per client address, so that the per-account and per-IP
// failed-login limits (10 and 100 per 15 minutes by default, where the
// build has them) never answer instead of the password check.
func TestLoginTimingIndistinguishable(t *testing.T) {
	const (
		rounds    = 25
		warmup    = 2
		accounts  = 4    // of each kind per attempt, so each takes few failures
		tolerance = 0.25 // relative to the wrong-password median
		// attempts: a measurement on a loaded machine (go test runs other
		// packages beside this one) can be skewed by a burst of load;
		// a real timing difference shows in every attempt.
		attempts = 3
	)
	rd := proctest.StartRedis(t, proctest.RedisConfig{})
	password := rand.Text()
	var users []testUser
	for i := range accounts * attempts {
		users = append(users,
			testUser{Name: fmt.Sprintf("alice%d", i), Password: password},
			testUser{Name: fmt.Sprintf("dora%d", i), Password: password, Disabled: true})
	}
	// carol's hash was made elsewhere with other (here: cheap) parameters,
	// which Latchkey accepts; she is only measured, see below.
	users = append(users, testUser{Name: "carol", Password: password, Params: &cheapParams})
	path := writeTenantsFile(t, users, session.DefaultPasswordParams)
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{RedisURL: rd.URL(), TenantsFile: path})
	c := newAPIClient("http://"+lk.Public, 15*time.Second)

	var body []byte
	measure := func(attempt int) (failures []string) {
		// Each attempt from its own loopback address and on its own
		// accounts, so that the failed-login limits never answer.
		ca := &apiClient{base: c.base, client: fromLoopback(fmt.Sprintf("127.0.1.%d", attempt+1), 15*time.Second)}
		acct := func(i int) int { return attempt*accounts + i%accounts }
		kinds := []struct {
			name string
			try  func(i int) result
		}{
			{"unknown user", func(int) result { return ca.Login("ghost-"+strings.ToLower(rand.Text()[:10]), password) }},
			{"wrong password", func(i int) result { return ca.Login(fmt.Sprintf("alice%d", acct(i)), "wrong-"+password) }},
			{"disabled user", func(i int) result { return ca.Login(fmt.Sprintf("dora%d", acct(i)), password) }},
		}
		durs := make([][]time.Duration, len(kinds))
		for i := range warmup + rounds {
			for _, k := range mrand.Perm(len(kinds)) {
				r := kinds[k].try(i)
				if r.Status != http.StatusUnauthorized || r.Problem() != problemInvalidCreds {
					t.Fatalf("%s: %v (body %s), want 401 %s", kinds[k].name, r, r.Body, problemInvalidCreds)
				}
				if body == nil {
					body = r.Body
				} else if !bytes.Equal(r.Body, body) {
					t.Errorf("%s: body %q differs from %q: the answer tells the cases apart", kinds[k].name, r.Body, body)
				}
				if i >= warmup {
					durs[k] = append(durs[k], r.Dur)
				}
			}
		}
		meds := make([]time.Duration, len(kinds))
		for k := range kinds {
			meds[k] = median(durs[k])
			t.Logf("attempt %d: %-15s median %s (min %s, max %s, n=%d)", attempt+1, kinds[k].name, ms(meds[k]), ms(durs[k][0]), ms(durs[k][len(durs[k])-1]), len(durs[k]))
		}
		ref := meds[1] // wrong password
		for k := range kinds {
			if ratio := float64(meds[k]) / float64(ref); ratio < 1-tolerance || ratio > 1+tolerance {
				failures = append(failures, fmt.Sprintf("%s: median %s is %.2f× the wrong-password median %s, want within ±%.0f%%",
					kinds[k].name, ms(meds[k]), ratio, ms(ref), tolerance*100))
			}
		}
		return failures
	}
	var failures []string
	for attempt := range attempts {
		if failures = measure(attempt); len(failures) == 0 {
			break
		}
		t.Logf("attempt %d told the cases apart, measuring again: %s", attempt+1, strings.Join(failures, "; "))
	}
	for _, f := range failures {
		t.Errorf("in every one of %d attempts the timing told the cases apart; last: %s", attempts, f)
	}

	// Measured, not asserted: the dummy hash has the Manager's parameters,
	// so a user whose stored hash has other parameters (imported, or made
	// before a change of defaults) is told apart from an unknown user by
	// timing alone. From another loopback address, so that the per-IP
	// limit of the first phase does not apply.
	c2 := &apiClient{base: c.base, client: fromLoopback("127.0.0.2", 15*time.Second)}
	var unknown, carol []time.Duration
	for i := range 8 {
		a := c2.Login("ghost-"+strings.ToLower(rand.Text()[:10]), password)
		b := c2.Login("carol", "wrong-"+password)
		if a.Status != http.StatusUnauthorized || b.Status != http.StatusUnauthorized {
			t.Logf("foreign-hash measurement skipped: unknown %v, carol %v", a, b)
			return
		}
		if i > 0 {
			unknown, carol = append(unknown, a.Dur), append(carol, b.Dur)
		}
	}
	mu, mc := median(unknown), median(carol)
	t.Logf("FINDING (not asserted): a user whose hash has other parameters (m=%d,t=%d) answers a wrong password in %s, an unknown user in %s (%.0f×)",
		cheapParams.Memory, cheapParams.Time, ms(mc), ms(mu), float64(mu)/float64(mc))
}

// fromLoopback returns an HTTP client whose connections come from ip, one
// of the 127/8 addresses, so that per-IP limits count it apart.
func fromLoopback(ip string, timeout time.Duration) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: timeout}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext}}
}
