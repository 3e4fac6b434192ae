package api

import (
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/topology"
	"github.com/latchkeyhq/latchkey/store"
	"github.com/latchkeyhq/latchkey/store/redisstore"
)

// TestRedisCluster runs the API's Redis suite on a Redis Cluster of three
// masters, each store over a redis.ClusterClient: a user's keys share a
// slot, so nothing the API does may fail with CROSSSLOT.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	c := topology.StartCluster(t)
	testRedisTopology(t, func(t *testing.T) redis.UniversalClient { return c.Client(t) })
}

// TestRedisSentinel runs the API's Redis suite on a Sentinel set-up, each
// store over a redis.FailoverClient.
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	s := topology.StartSentinel(t)
	testRedisTopology(t, func(t *testing.T) redis.UniversalClient { return s.Client(t) })
}

// testRedisTopology runs the public and admin API over stores that
// newClient's clients reach, each subtest under a key prefix of its own.
func testRedisTopology(t *testing.T, newClient func(t *testing.T) redis.UniversalClient) {
	newStore := func(t *testing.T, prefix string, now func() time.Time) store.Store {
		t.Helper()
		st, err := redisstore.New(newClient(t), redisstore.Config{Prefix: prefix, Now: now})
		if err != nil {
			t.Fatalf("redisstore.New: %v", err)
		}
		return st
	}
	topologyEnv := func(t *testing.T, token string) (*env, string) {
		t.Helper()
		// The set-up is the test's own and goes with it: nothing to clean.
		prefix := "lktest:" + strings.ToLower(rand.Text()[:16]) + ":"
		return newEnv(t, envOptions{token: token, newStore: func(now func() time.Time) store.Store { return newStore(t, prefix, now) }}), prefix
	}

	t.Run("LoginMeSessionsLogout", func(t *testing.T) {
		t.Parallel()
		e, _ := topologyEnv(t, "")
		testLoginMeSessionsLogout(t, e, "/v1", acmeHost, acmeApp, "alice", alicePassword)
		testLoginMeSessionsLogout(t, e, "/v1/t/beta", "", betaDev, "bob", bobPassword)
	})

	t.Run("AdminUsersAndTenants", func(t *testing.T) {
		t.Parallel()
		e, _ := topologyEnv(t, adminToken)
		base := "/admin/v1/tenants/acme/users"
		if r := e.do(adminReq("POST", base, map[string]any{"username": "dave", "password": "dave's password"})); r.StatusCode != http.StatusCreated {
			t.Fatalf("create dave: status %d, want 201; body %s", r.StatusCode, r.body)
		}
		login := func(pw string) *http.Cookie { return e.loginAcme("dave", pw) }
		alive := e.aliveAcme
		c := login("dave's password")
		if c == nil || !alive(c) {
			t.Fatal("dave cannot log in")
		}
		// A password change ends the sessions in the same step as it
		// writes the record: one MULTI/EXEC over one slot.
		if r := e.do(adminReq("PATCH", base+"/dave", map[string]any{"password": "a new password"})); r.StatusCode != http.StatusOK {
			t.Fatalf("set password: status %d, want 200; body %s", r.StatusCode, r.body)
		}
		if alive(c) || login("dave's password") != nil {
			t.Error("after a password change, the old session or the old password still works")
		}
		c = login("a new password")
		if r := e.do(adminReq("DELETE", base+"/dave", nil)); r.StatusCode != http.StatusNoContent || alive(c) {
			t.Errorf("delete dave: status %d, alive %v; want 204 and ended", r.StatusCode, alive(c))
		}
		// Deleting a tenant deletes users spread over the slots.
		bob := e.loginBob()
		if r := e.do(adminReq("DELETE", "/admin/v1/tenants/beta", nil)); r.StatusCode != http.StatusNoContent {
			t.Fatalf("delete beta: status %d, want 204; body %s", r.StatusCode, r.body)
		}
		e.reload()
		if r := e.do(req{method: "GET", path: "/v1/t/beta/me", origin: betaDev, cookies: []*http.Cookie{bob}}); r.StatusCode != http.StatusNotFound {
			t.Errorf("me on the deleted tenant: status %d, want 404", r.StatusCode)
		}
		if !alive(e.loginAlice()) {
			t.Error("alice lost access")
		}
	})

	t.Run("Replicas", func(t *testing.T) {
		t.Parallel()
		a, prefix := topologyEnv(t, adminToken)
		testReplicas(t, a, replicaOf(t, a, newStore(t, prefix, time.Now)))
	})
}
