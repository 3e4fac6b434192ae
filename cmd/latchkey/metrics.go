package main

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
)

// newRegistry returns the process's metrics registry with the Go runtime
// and process collectors; the API and the Redis hook add theirs.
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
