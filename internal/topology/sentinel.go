package topology

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// MasterName is the master name the sentinels of StartSentinel monitor.
const MasterName = "mymaster"

// sentinels is how many sentinels StartSentinel starts; quorum is how
// many must agree that the master is down.
const (
	sentinels = 3
	quorum    = 2
)

// Sentinel is a Sentinel set-up that one test owns: a master, its
// replica, and three sentinels monitoring the master as MasterName.
type Sentinel struct {
	// Master and Replica are the data nodes as started; after a failover
	// the sentinels have swapped their roles.
	Master, Replica *proctest.Redis
	// Sentinels are the redis-server --sentinel processes.
	Sentinels []*proctest.Redis

	clients []*redis.SentinelClient // one per sentinel
}

// StartSentinel starts a master, a replica of it (replicaof) and, once
// the replica is in sync, three sentinels, each with its own configuration
// file in its Dir (sentinels rewrite theirs): monitor MasterName with
// quorum 2, down-after-milliseconds 1000, failover-timeout 5000,
// resolve-hostnames no. It returns once every sentinel knows the replica
// and the two other sentinels, so that a failover can start at once. Every
// process stops when tb ends.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	start := time.Now()
	s := &Sentinel{}
	// Configuration files, so that the sentinels' CONFIG REWRITE on a
	// promotion or a reconfiguration succeeds. A full sync starts at once
	// instead of after the default 5 s wait for more replicas.
	const dataConf = "repl-diskless-sync-delay 0\n"
	s.Master = proctest.StartRedis(tb, proctest.RedisConfig{Conf: dataConf})
	s.Replica = proctest.StartRedis(tb, proctest.RedisConfig{Conf: dataConf + fmt.Sprintf("replicaof 127.0.0.1 %d\n", s.Master.Port())})
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	replica := s.Replica.Client()
	waitFor(ctx, tb, "the replica's sync with the master", func() (bool, string) {
		info, err := replica.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up"), info
	})

	conf := fmt.Sprintf(`sentinel monitor %[1]s 127.0.0.1 %[2]d %[3]d
sentinel down-after-milliseconds %[1]s 1000
sentinel failover-timeout %[1]s 5000
sentinel resolve-hostnames no
`, MasterName, s.Master.Port(), quorum)
	for range sentinels {
		s.Sentinels = append(s.Sentinels, proctest.StartRedis(tb, proctest.RedisConfig{Conf: conf, Args: []string{"--sentinel"}}))
	}
	for _, sn := range s.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1})
		tb.Cleanup(func() { sc.Close() })
		s.clients = append(s.clients, sc)
	}
	for i, sc := range s.clients {
		waitFor(ctx, tb, fmt.Sprintf("sentinel %d to know the replica and the other sentinels", i), func() (bool, string) {
			replicas, err := sc.Replicas(ctx, MasterName).Result()
			if err != nil || len(replicas) != 1 || strings.Contains(replicas[0]["flags"], "down") || strings.Contains(replicas[0]["flags"], "disconnected") {
				return false, fmt.Sprintf("replicas %v, %v", replicas, err)
			}
			others, err := sc.Sentinels(ctx, MasterName).Result()
			return err == nil && len(others) == sentinels-1, fmt.Sprintf("sentinels %v, %v", others, err)
		})
	}
	tb.Logf("Sentinel set-up ready in %v: master %s, replica %s, sentinels %s", time.Since(start).Round(time.Millisecond),
		s.Master.Addr(), s.Replica.Addr(), strings.Join(s.SentinelAddrs(), ","))
	return s
}

// waitFor polls cond every 50 ms until it holds, or fails tb when ctx is
// done, with cond's last description of the state.
func waitFor(ctx context.Context, tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("waiting for %s: %v; last state: %s", what, ctx.Err(), state)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SentinelAddrs returns the sentinels' host:port.
func (s *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.Sentinels))
	for i, sn := range s.Sentinels {
		addrs[i] = sn.Addr()
	}
	return addrs
}

// URL returns the LATCHKEY_REDIS_URL of the set-up, database 0, in
// go-redis's failover form:
// redis://127.0.0.1:S1/0?master_name=mymaster&addr=127.0.0.1:S2&addr=127.0.0.1:S3.
func (s *Sentinel) URL() string {
	addrs := s.SentinelAddrs()
	return "redis://" + addrs[0] + "/0?master_name=" + MasterName + "&addr=" + strings.Join(addrs[1:], "&addr=")
}

// Client returns a failover client of the set-up with 2 s timeouts,
// closed when tb ends.
func (s *Sentinel) Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName: MasterName, SentinelAddrs: s.SentinelAddrs(),
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
	})
	tb.Cleanup(func() { c.Close() })
	return c
}

// MasterAddr returns the master's host:port as the first sentinel that
// answers reports it (SENTINEL GET-MASTER-ADDR-BY-NAME).
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, sc := range s.clients {
		hp, err := sc.GetMasterAddrByName(ctx, MasterName).Result()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1]), nil
		}
		last = err
	}
	return "", fmt.Errorf("no sentinel reports the master of %s: %v", MasterName, last)
}

// WaitReplicated waits until the replica has acknowledged every write the
// master took so far: it writes a marker on the master and runs WAIT 1
// there, whose acknowledgement covers all earlier writes of any client
// (replicas acknowledge offsets in one stream). It fails tb if that takes
// over 5 s.
func (s *Sentinel) WaitReplicated(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := s.Master.Client()
	if err := m.Set(ctx, "topology:replication-marker", time.Now().String(), time.Minute).Err(); err != nil {
		tb.Fatalf("SET on the master: %v", err)
	}
	n, err := m.Wait(ctx, 1, 5*time.Second).Result()
	if err != nil || n < 1 {
		tb.Fatalf("WAIT 1 5000 on the master = %d, %v; want 1 replica to acknowledge", n, err)
	}
}
