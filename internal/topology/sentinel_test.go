package topology_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/internal/topology"
	"github.com/latchkeyhq/latchkey/store/storetest"
)

// Bounds of the failover test.
const (
	// loadWorkers send me and login requests, each at most one per
	// loadPause.
	loadWorkers = 4
	loadPause   = 20 * time.Millisecond
	// maxOutage is how long after the kill errors may go on.
	maxOutage = 30 * time.Second
	// stableFor is how long requests must succeed without an error, after
	// the failover, for the service to count as recovered.
	stableFor = 2 * time.Second
	// oldSessions is how many sessions are made, and replicated, before
	// the kill.
	oldSessions = 8
)

// TestSentinel runs the store conformance suite on a Sentinel set-up, then
// kills its master under a Latchkey process's load.
func TestSentinel(t *testing.T) {
	t.Parallel()
	proctest.PrebuildLatchkey() // overlaps the set-up's start
	s := topology.StartSentinel(t)

	// Not parallel: the failover below must wait for the suite.
	t.Run("Store", func(t *testing.T) {
		storetest.TestStore(t, func(t *testing.T) storetest.Harness {
			prefix := newPrefix()
			return storetest.Harness{Store: newStore(t, s.Client(t), prefix), Peer: newStore(t, s.Client(t), prefix)}
		})
	})
	if t.Failed() {
		return
	}
	t.Run("Failover", func(t *testing.T) { testFailover(t, s) })
}

// testFailover runs Latchkey on the Sentinel URL of s, makes
// sessions and waits until the replica has them, then puts a steady load
// of me and login requests on it and SIGKILLs the master. Until the
// sentinels have promoted the replica and Latchkey has followed, requests
// may fail, but only with 503 (never a 401 that logs a user out, nor a
// 500), and only for a bounded time; afterwards the same process serves
// the old sessions and new logins. It logs the error count and the
// recovery time.
func testFailover(t *testing.T, s *topology.Sentinel) {
	file, password := writeTenantsFile(t)
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{RedisURL: s.URL(), TenantsFile: file, CookieKeys: cookieKey, AdminToken: adminToken})
	c := newLKClient(lk.Public, lk.Admin)

	var cookies []string
	for range oldSessions {
		r := c.login(userName, password)
		if r.Status != http.StatusOK || r.Cookie() == "" {
			t.Fatalf("login before the kill: %v, want 200 with a cookie", r)
		}
		cookies = append(cookies, r.Cookie())
	}
	s.WaitReplicated(t) // the replica has every session above
	ctx := context.Background()
	oldMaster, err := s.MasterAddr(ctx)
	if err != nil || oldMaster != s.Master.Addr() {
		t.Fatalf("master before the kill = %s, %v; want %s", oldMaster, err, s.Master.Addr())
	}

	var (
		mu      sync.Mutex
		total   int
		bad     []answer // non-200 answers
		lastBad time.Time
		slowest time.Duration // of the requests that ended after the kill
		killed  time.Time
		// firstOK is when the first request sent after the kill succeeded.
		firstOK time.Time
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for w := range loadWorkers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(loadPause):
				}
				var r answer
				if i%5 == 4 {
					// Another user's new session: not used later, as it
					// may not reach the replica before the kill.
					r = c.login(loadUser, password)
				} else {
					r = c.me(cookies[(w+i)%len(cookies)])
				}
				mu.Lock()
				total++
				if !killed.IsZero() && r.At.After(killed) {
					slowest = max(slowest, r.Dur)
					if r.Status == http.StatusOK && firstOK.IsZero() && r.At.Add(-r.Dur).After(killed) {
						firstOK = r.At
					}
				}
				if r.Status != http.StatusOK {
					bad = append(bad, r)
					lastBad = r.At
				}
				mu.Unlock()
			}
		})
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	t.Cleanup(stopLoad)

	time.Sleep(time.Second) // steady load before the kill
	mu.Lock()
	before := slices.Clone(bad)
	mu.Unlock()
	if len(before) > 0 {
		t.Fatalf("%d requests failed before the kill, first %v; want none", len(before), before[0])
	}

	mu.Lock()
	killed = time.Now()
	mu.Unlock()
	s.Master.Kill()
	var promoted time.Duration
	recovered := false
	for time.Since(killed) < maxOutage+stableFor {
		time.Sleep(100 * time.Millisecond)
		if promoted == 0 {
			if addr, err := s.MasterAddr(ctx); err == nil && addr != oldMaster {
				promoted = time.Since(killed)
				if addr != s.Replica.Addr() {
					t.Errorf("the sentinels promoted %s, want the replica %s", addr, s.Replica.Addr())
				}
			}
			continue
		}
		mu.Lock()
		quiet := time.Since(lastBad) >= stableFor && time.Since(killed) >= promoted+stableFor
		mu.Unlock()
		if quiet {
			recovered = true
			break
		}
	}
	stopLoad()

	statuses := map[string]int{}
	for _, r := range bad {
		statuses[r.String()]++
	}
	var errorsFor time.Duration
	if len(bad) > 0 {
		errorsFor = lastBad.Sub(killed)
	}
	t.Logf("failover: %d of %d requests failed (%s); after the kill, the sentinels promoted the replica in %v, the first request sent after it succeeded %v after it, the last error ended %v after it, and the slowest request took %v",
		len(bad), total, summary(statuses), promoted.Round(time.Millisecond), firstOK.Sub(killed).Round(time.Millisecond),
		errorsFor.Round(time.Millisecond), slowest.Round(time.Millisecond))
	if promoted == 0 {
		t.Fatalf("the sentinels did not promote the replica within %v\n%s", maxOutage+stableFor, lk.Output())
	}
	for st := range statuses {
		if st != "503 unavailable" {
			t.Errorf("a request failed with %s during the failover, want only 503 unavailable: never a logout (401) nor a 500", st)
		}
	}
	if !recovered || errorsFor > maxOutage {
		t.Fatalf("errors went on for %v after the kill, want them to stop within %v\n%s", errorsFor, maxOutage, lk.Output())
	}

	// The same process, never restarted, on the promoted replica.
	if !lk.Alive() {
		t.Fatal("latchkey exited during the failover")
	}
	for i, cookie := range cookies {
		if r := c.me(cookie); r.Status != http.StatusOK {
			t.Errorf("me with session %d made before the kill: %v, want 200: a replicated session must survive", i, r)
		}
	}
	if r := c.login(userName, password); r.Status != http.StatusOK {
		t.Errorf("login after the failover: %v, want 200", r)
	} else if me := c.me(r.Cookie()); me.Status != http.StatusOK {
		t.Errorf("me with a session made after the failover: %v, want 200", me)
	}
	if r := c.do("GET", c.admin+"/readyz", "", "", nil, nil); r.Status != http.StatusOK {
		t.Errorf("readyz after the failover: %v, want 200", r)
	}
}

// summary formats a count per status, most frequent first.
func summary(counts map[string]int) string {
	if len(counts) == 0 {
		return "no errors"
	}
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b string) int { return counts[b] - counts[a] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d × %s", counts[k], k))
	}
	return strings.Join(parts, ", ")
}
