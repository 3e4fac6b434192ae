package main

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/latchkeyhq/latchkey/session"
)

// newRegistry returns the process's metrics registry with the Go runtime
// and process collectors; the API, the Redis hook and the session cache add
// theirs.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// redisMetrics is a go-redis hook that counts commands and their errors
// and times them: the store's health as the service sees it.
type redisMetrics struct {
	commands *prometheus.CounterVec
	duration *prometheus.HistogramVec
	dials    *prometheus.CounterVec
}

func newRedisMetrics(reg prometheus.Registerer) *redisMetrics {
	m := &redisMetrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_redis_commands_total",
			Help: "Redis commands (a pipeline counts as one), by command and result: ok or error. A missing key is ok.",
		}, []string{"command", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latchkey_redis_command_duration_seconds",
			Help:    "Redis round-trip time, by command.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"command"}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_redis_dials_total",
			Help: "Connections opened to Redis, by result: ok or error.",
		}, []string{"result"}),
	}
	reg.MustRegister(m.commands, m.duration, m.dials)
	return m
}

func result(err error) string {
	if err != nil && !errors.Is(err, redis.Nil) {
		return "error"
	}
	return "ok"
}

func (m *redisMetrics) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		m.dials.WithLabelValues(result(err)).Inc()
		return c, err
	}
}

func (m *redisMetrics) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		name := cmd.Name() // a Redis command name: a small, fixed set
		m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
		m.commands.WithLabelValues(name, result(err)).Inc()
		return err
	}
}

func (m *redisMetrics) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		m.duration.WithLabelValues("pipeline").Observe(time.Since(start).Seconds())
		m.commands.WithLabelValues("pipeline", result(err)).Inc()
		return err
	}
}

// cacheMetrics exports the session cache's counters, read from the manager
// at each scrape so that a hit costs no more than it did.
type cacheMetrics struct {
	m                                   *session.Manager
	lookups, evictions, entries, maxEnt *prometheus.Desc
}

func newCacheMetrics(reg prometheus.Registerer, m *session.Manager) {
	reg.MustRegister(&cacheMetrics{
		m: m,
		lookups: prometheus.NewDesc("latchkey_session_cache_lookups_total",
			"Session loads by how the per-replica cache took them: hit (answered from memory), miss (read from the store: not cached, ended, or due for its idle expiry's write-back), lagging (read from the store because the invalidation feed was not proven current).",
			[]string{"result"}, nil),
		evictions: prometheus.NewDesc("latchkey_session_cache_evictions_total",
			"Sessions dropped from the cache, by reason: lru (least recently used, to make room) or expired (could no longer be served). Invalidations are not counted.",
			[]string{"reason"}, nil),
		entries: prometheus.NewDesc("latchkey_session_cache_entries",
			"Sessions in the cache.", nil, nil),
		maxEnt: prometheus.NewDesc("latchkey_session_cache_max_entries",
			"The most sessions the cache keeps (LATCHKEY_SESSION_CACHE_SIZE); 0 when it is off.", nil, nil),
	})
}

func (c *cacheMetrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *cacheMetrics) Collect(ch chan<- prometheus.Metric) {
	s := c.m.CacheStats()
	for _, l := range []struct {
		result string
		n      uint64
	}{{"hit", s.Hits}, {"miss", s.Misses}, {"lagging", s.Lagging}} {
		ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(l.n), l.result)
	}
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.Evicted), "lru")
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.Expired), "expired")
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries))
	ch <- prometheus.MustNewConstMetric(c.maxEnt, prometheus.GaugeValue, float64(s.Size))
}

// newLogMetrics exports the lines the log could not write. Lines are
// never dropped for lack of room (a full buffer makes its writer wait), so
// only a failing stdout loses any.
func newLogMetrics(reg prometheus.Registerer, w *logWriter) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "latchkey_log_lines_lost_total",
		Help: "Log lines lost to a write error on stdout.",
	}, func() float64 { return float64(w.lost.Load()) }))
}
