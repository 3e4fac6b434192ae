// Package topology runs Latchkey's store and service against the Redis
// topologies that LATCHKEY_REDIS_URL reaches besides a single server: a
// Redis Cluster, a Sentinel set-up with a failover, and TLS with a client
// certificate.
//
// It is an ordinary package so that other test packages (api) can start
// the same set-ups, but only _test.go files may import it; product code
// never does. What it offers:
//
//   - StartCluster: three redis-server masters with cluster-enabled yes,
//     slots 0-16383 split between them, ready (cluster_state:ok on every
//     node) when it returns.
//   - StartSentinel: a master, one replica (replicaof) and three sentinels
//     (quorum 2, down-after-milliseconds 1000, failover-timeout 5000),
//     ready when every sentinel knows the replica and the other two.
//   - WriteTLSFiles: a CA, a server certificate for 127.0.0.1 and
//     localhost, a client certificate, and an unrelated CA, as PEM files.
//
// Its tests (the _test.go files) establish:
//
//   - The store conformance suite passes on a Redis Cluster through a
//     redis.ClusterClient, so every Lua script and multi-key command stays
//     within one hash slot (a CROSSSLOT error would fail it), and on a
//     Sentinel set-up through a redis.FailoverClient. (TestCluster,
//     TestSentinel)
//   - Latchkey, run as a process on a cluster URL (addr= seeds), logs in,
//     serves me and sessions and logs out, and two such processes share
//     sessions and see each other's tenant changes within a second through
//     pub/sub. (TestCluster)
//   - On a Sentinel URL (master_name=), killing the master under load costs only
//     503s (never a 401 or a 500), for a bounded time, until the sentinels
//     promote the replica; the same process then serves the sessions made
//     before the kill, without a restart. The test logs the error count
//     and the recovery time. (TestSentinel)
//   - On rediss:// with a client certificate, Latchkey works; with a wrong
//     CA, or no client certificate, it refuses to start with a clear
//     error. (TestTLS)
//
// # Invariants
//
// Every process listens on 127.0.0.1 only and is stopped by its PID when
// the test that started it ends (see internal/proctest). Every wait is
// bounded. A missing redis-server fails the tests under CI=true and skips
// them elsewhere. The set-ups hold only test data, and each test uses key
// prefixes of its own, so nothing is ever flushed.
package topology
