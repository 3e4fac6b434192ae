package topology

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

const (
	// clusterNodes is how many masters StartCluster starts.
	clusterNodes = 3
	// readyTimeout bounds every wait for a set-up to settle.
	readyTimeout = 20 * time.Second
)

// Cluster is a Redis Cluster of three masters and no replicas that one
// test owns.
type Cluster struct {
	// Nodes are the masters; Nodes[i] serves the i-th third of the slots.
	Nodes []*proctest.Redis
}

// StartCluster starts three redis-server nodes with cluster-enabled yes
// (their nodes.conf in their own directory, cluster-node-timeout 2000),
// gives each a third of the 16384 slots, joins them with CLUSTER MEET and
// waits until every node reports cluster_state:ok and knows the other two.
// The nodes stop when tb ends.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c := &Cluster{}
	var buses []int
	for range clusterNodes {
		// The bus port is its own free port: the default, port+10000,
		// may be taken or out of range.
		bus := proctest.FreePort(tb)
		buses = append(buses, bus)
		c.Nodes = append(c.Nodes, proctest.StartRedis(tb, proctest.RedisConfig{Args: []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", // relative to --dir: the node's Dir
			"--cluster-node-timeout", "2000",
			"--cluster-port", strconv.Itoa(bus),
			"--cluster-announce-ip", "127.0.0.1",
		}}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	clients := make([]*redis.Client, len(c.Nodes))
	for i, n := range c.Nodes {
		clients[i] = n.Client()
		lo, hi := i*16384/clusterNodes, (i+1)*16384/clusterNodes-1
		// Distinct epochs before meeting, as redis-cli --cluster create
		// sets them, so that no epoch collision has to be resolved.
		if err := clients[i].Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			tb.Fatalf("cluster node %d: CLUSTER SET-CONFIG-EPOCH: %v", i, err)
		}
		if err := clients[i].Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			tb.Fatalf("cluster node %d: CLUSTER ADDSLOTSRANGE %d %d: %v", i, lo, hi, err)
		}
	}
	for i, n := range c.Nodes[1:] {
		// With its bus port, which is not the default.
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", n.Port(), buses[i+1]).Err(); err != nil {
			tb.Fatalf("CLUSTER MEET 127.0.0.1 %d %d: %v", n.Port(), buses[i+1], err)
		}
	}
	start := time.Now()
	for i, cl := range clients {
		for {
			info, err := cl.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(clusterNodes)) {
				break
			}
			if ctx.Err() != nil {
				tb.Fatalf("cluster node %d not ready within %v: %v\n%s", i, readyTimeout, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	tb.Logf("Redis Cluster of %d masters ready in %v: %s", clusterNodes, time.Since(start).Round(time.Millisecond), strings.Join(c.Addrs(), ","))
	return c
}

// Addrs returns the nodes' host:port.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// URL returns the LATCHKEY_REDIS_URL of the cluster, every node a seed, in
// go-redis's cluster form: redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=127.0.0.1:P3.
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	return "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
}

// Client returns a cluster client with 2 s timeouts, closed when tb ends.
func (c *Cluster) Client(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	cl := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: c.Addrs(), DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	tb.Cleanup(func() { cl.Close() })
	return cl
}
