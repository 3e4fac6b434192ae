package topology_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/proctest"
	"github.com/latchkeyhq/latchkey/internal/topology"
	"github.com/latchkeyhq/latchkey/store/storetest"
)

// TestCluster runs the store conformance suite and two Latchkey processes
// on one Redis Cluster of three masters.
func TestCluster(t *testing.T) {
	t.Parallel()
	proctest.PrebuildLatchkey() // overlaps the cluster's start
	c := topology.StartCluster(t)

	t.Run("CrossSlotIsRefused", func(t *testing.T) {
		t.Parallel()
		// The proof that the suite below would catch a multi-key command
		// across slots: this cluster refuses one.
		cl := c.Client(t)
		err := redis.NewScript(`return 1`).Run(t.Context(), cl, []string{"lktest:{a}", "lktest:{b}"}).Err()
		if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Errorf("a script over keys of two slots: err=%v, want CROSSSLOT", err)
		}
	})

	t.Run("Store", func(t *testing.T) {
		t.Parallel()
		storetest.TestStore(t, func(t *testing.T) storetest.Harness {
			prefix := newPrefix()
			// The peer has its own client, as another replica would.
			return storetest.Harness{Store: newStore(t, c.Client(t), prefix), Peer: newStore(t, c.Client(t), prefix)}
		})
	})

	t.Run("Latchkey", func(t *testing.T) {
		t.Parallel()
		testTwoReplicas(t, c.URL())
	})

	t.Cleanup(func() {
		// The suite's users are spread over the masters, not piled onto
		// one: a hash tag per user, never per tenant.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for i, n := range c.Nodes {
			if k, err := n.Client().DBSize(ctx).Result(); err != nil || k == 0 {
				t.Errorf("cluster node %d holds %d keys (%v) after the tests, want some on every master", i, k, err)
			}
		}
	})
}

// testTwoReplicas runs two Latchkey processes on the Redis at url with one
// tenants file and one cookie key: a session made on one works on the
// other, the public API works end to end, and a tenant change through one
// replica's admin API reaches the other within a second through pub/sub.
func testTwoReplicas(t *testing.T, url string) {
	file, password := writeTenantsFile(t)
	cfg := proctest.LatchkeyConfig{RedisURL: url, TenantsFile: file, CookieKeys: cookieKey, AdminToken: adminToken}
	pa := proctest.StartLatchkey(t, cfg)
	pb := proctest.StartLatchkey(t, cfg)
	a, b := newLKClient(pa.Public, pa.Admin), newLKClient(pb.Public, pb.Admin)

	in := a.login(userName, password)
	cookie := in.Cookie()
	if in.Status != http.StatusOK || cookie == "" {
		t.Fatalf("login on A: %v, cookie set=%t; want 200 with a cookie (body %s)", in, cookie != "", in.Body)
	}
	second := b.login(userName, password).Cookie()
	for name, c := range map[string]*lkClient{"A": a, "B": b} {
		if r := c.me(cookie); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"username":"`+userName+`"`) {
			t.Errorf("me on %s with A's cookie: %v, want 200 for %s (body %s)", name, r, userName, r.Body)
		}
	}
	if r := b.sessions(cookie); r.Status != http.StatusOK || sessionCount(r) != 2 {
		t.Errorf("sessions on B: %v with %d sessions, want 200 with 2", r, sessionCount(r))
	}
	if r := b.logout(cookie); r.Status != http.StatusNoContent {
		t.Errorf("logout on B: %v, want 204", r)
	}
	// A's cache may still serve the session until the revocation reaches
	// it: within 50 ms (session's cacheTrust and the feed's delivery), a
	// few milliseconds more in a Cluster, where a message published on
	// one node reaches the subscriber's node over the cluster bus.
	revoked := time.Now()
	r := a.me(cookie)
	for r.Status == http.StatusOK && time.Since(revoked) < time.Second {
		time.Sleep(5 * time.Millisecond)
		r = a.me(cookie)
	}
	if r.Status != http.StatusUnauthorized || r.Problem() != "unauthenticated" {
		t.Errorf("me on A after logout on B, for 1 s: %v, want 401 unauthenticated", r)
	} else {
		t.Logf("the logout on B reached A's cache in %v", time.Since(revoked).Round(time.Millisecond))
	}
	if r := a.me(second); r.Status != http.StatusOK {
		t.Errorf("me on A with the session B made: %v, want 200", r)
	}

	const newOrigin = "https://new.acme.test"
	start := time.Now()
	if r := a.putTenant([]string{appOrigin, newOrigin}); r.Status != http.StatusOK {
		t.Fatalf("PUT tenant on A: %v, want 200 (body %s)", r, r.Body)
	}
	acao := func() string {
		return b.do("GET", b.public+"/v1/t/"+tenantID+"/me", newOrigin, "", nil, nil).Header.Get("Access-Control-Allow-Origin")
	}
	for acao() != newOrigin && time.Since(start) < time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	if got := acao(); got != newOrigin {
		t.Fatalf("B's Access-Control-Allow-Origin for the new origin 1 s after the change on A = %q, want %q", got, newOrigin)
	}
	t.Logf("the tenant change on A reached B in %v", took.Round(time.Millisecond))

	// The metrics hook sees the cluster's commands and its nodes' dials.
	m := a.do("GET", a.admin+"/metrics", "", "", nil, nil)
	// A script runs as EVALSHA, or as EVAL when the node does not have it
	// yet: which one A's node answered ok depends on whether the other
	// replica (the one that applied the tenants file) loaded it there first.
	for _, want := range [][]string{
		{`latchkey_redis_dials_total{result="ok"}`},
		{`latchkey_redis_commands_total{command="evalsha",result="ok"}`, `latchkey_redis_commands_total{command="eval",result="ok"}`},
		{`latchkey_redis_commands_total{command="hget",result="ok"}`},
	} {
		if !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(string(m.Body), w) }) {
			t.Errorf("/metrics of A lacks %s; its Redis commands:\n%s", strings.Join(want, " or "), redisCommandLines(m.Body))
		}
	}
}

// redisCommandLines returns the latchkey_redis_commands_total samples of a
// /metrics body, for a failure message.
func redisCommandLines(body []byte) string {
	var out []string
	for l := range strings.SplitSeq(string(body), "\n") {
		if strings.HasPrefix(l, "latchkey_redis_commands_total{") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
