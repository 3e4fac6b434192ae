package faults

import (
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// TestGracefulShutdownUnderLoad sends SIGTERM to a Latchkey serving a
// steady load and checks that no request fails. A load balancer is played
// by the test: it polls /readyz every 100 ms, as a Kubernetes readiness
// probe or an ingress would, and stops routing to the replica as soon as
// readiness fails; Latchkey's drain delay (1 s) is longer than that, and
// in-flight requests finish within the shutdown deadline.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	alice := testUser{Name: "alice", Password: "alice's password"}
	// bob logs in over and over; past 50 sessions his oldest end, so the
	// me workers use alice's session, which nothing ends.
	bob := testUser{Name: "bob", Password: "bob's password"}
	rd := proctest.StartRedis(t, proctest.RedisConfig{})
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{
		RedisURL:    rd.URL(),
		TenantsFile: writeTenantsFile(t, []testUser{alice, bob}, cheapParams),
		Env:         map[string]string{"LATCHKEY_DRAIN_DELAY": "1s"},
	})
	api := newAPIClient("http://"+lk.Public, 5*time.Second)
	login := api.Login(alice.Name, alice.Password)
	cookie := login.Cookie()
	if login.Status != http.StatusOK || cookie == "" {
		t.Fatalf("login: %v", login)
	}

	var inRotation atomic.Bool
	inRotation.Store(true)
	stop := make(chan struct{})
	var lbDone sync.WaitGroup
	lbDone.Go(func() { // the load balancer's readiness probe
		probe := &http.Client{Timeout: 500 * time.Millisecond}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			r, err := probe.Get("http://" + lk.Admin + "/readyz")
			ready := err == nil && r.StatusCode == http.StatusOK
			if r != nil {
				r.Body.Close()
			}
			if !ready {
				inRotation.Store(false)
				return
			}
		}
	})

	const workers = 8
	var (
		sent, ok atomic.Int64
		failures sync.Map // description -> count, for the report
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(20 * time.Second)
	for w := range workers {
		wg.Go(func() {
			for time.Now().Before(deadline) && inRotation.Load() {
				var r result
				if w%4 == 0 {
					r = api.Login(bob.Name, bob.Password) // the expensive path too
				} else {
					r = api.Me(cookie)
				}
				sent.Add(1)
				if r.Err == nil && r.Status == http.StatusOK {
					ok.Add(1)
					continue
				}
				v, _ := failures.LoadOrStore(r.String(), new(atomic.Int64))
				v.(*atomic.Int64).Add(1)
			}
		})
	}
	time.Sleep(1500 * time.Millisecond) // steady load first
	before := sent.Load()
	lk.Signal(syscall.SIGTERM)
	wg.Wait()
	close(stop)
	lbDone.Wait()

	t.Logf("%d requests, %d before SIGTERM, %d succeeded", sent.Load(), before, ok.Load())
	failures.Range(func(k, v any) bool {
		t.Errorf("%d requests failed during shutdown: %s", v.(*atomic.Int64).Load(), k)
		return true
	})
	if sent.Load() <= before {
		// On a loaded machine the balancer can notice before any worker
		// sends again; the requests in flight at SIGTERM still count.
		t.Log("no request was sent after SIGTERM; only those in flight were drained")
	}
	if inRotation.Load() {
		t.Error("readiness never failed after SIGTERM")
	}
	lk.Stop(t) // checks the exit code is 0 and no panic was logged
}
