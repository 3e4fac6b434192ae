package mail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchkeyhq/latchkey/session"
)

// Sender delivers one mail, synchronously. Its error should be an *Error
// (whose Permanent field stops retries); any other error is taken for a
// transient one. Its error text must not hold the recipient, the subject
// or the body: the Outbox logs it.
type Sender interface {
	Deliver(ctx context.Context, m session.Mail) error
}

// Defaults of an OutboxConfig.
const (
	DefaultQueue      = 1000
	DefaultWorkers    = 2
	DefaultAttempts   = 6
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// OutboxConfig configures an Outbox. Zero values mean the defaults.
type OutboxConfig struct {
	// Logger receives a line per failed attempt and per mail given up,
	// with tenant, kind, attempt and error; nil discards them.
	Logger *slog.Logger
	// Registry, if set, gets latchkey_mail_sent_total and
	// latchkey_mail_failed_total (labels tenant, kind) and
	// latchkey_mail_queue_depth.
	Registry *prometheus.Registry
	// Queue is how many mails may wait, retries included (DefaultQueue).
	Queue int
	// Workers is how many mails are delivered at once (DefaultWorkers).
	Workers int
	// Attempts is how many times a mail is tried before it is given up
	// (DefaultAttempts).
	Attempts int
	// Backoff is the wait before the first retry, doubling at each one up
	// to MaxBackoff (DefaultBackoff, DefaultMaxBackoff); each wait is
	// jittered down by up to a quarter.
	Backoff    time.Duration
	MaxBackoff time.Duration
}

// Errors of Outbox.Send.
var (
	ErrQueueFull = errors.New("mail: outbox queue is full")
	ErrClosed    = errors.New("mail: outbox is closed")
)

// Outbox is a session.Mailer that queues mails and delivers them with
// retries in the background, through its Sender. It is safe for
// concurrent use.
type Outbox struct {
	sender  Sender
	log     *slog.Logger
	queue   chan session.Mail
	cfg     OutboxConfig
	pending atomic.Int64 // accepted and neither delivered nor given up
	dropped atomic.Int64 // given up at shutdown
	sent    *prometheus.CounterVec
	failed  *prometheus.CounterVec

	mu      sync.RWMutex // guards closed against Send's channel send
	closed  bool
	ctx     context.Context // ends when Close gives up draining
	abort   context.CancelFunc
	workers sync.WaitGroup
}

var _ session.Mailer = (*Outbox)(nil)

// NewOutbox starts an outbox delivering through s; Close stops it.
func NewOutbox(s Sender, cfg OutboxConfig) (*Outbox, error) {
	if s == nil {
		return nil, errors.New("mail: outbox: no sender")
	}
	if cfg.Queue < 0 || cfg.Workers < 0 || cfg.Attempts < 0 || cfg.Backoff < 0 || cfg.MaxBackoff < 0 {
		return nil, errors.New("mail: outbox: negative setting")
	}
	cfg.Queue = orDefault(cfg.Queue, DefaultQueue)
	cfg.Workers = orDefault(cfg.Workers, DefaultWorkers)
	cfg.Attempts = orDefault(cfg.Attempts, DefaultAttempts)
	cfg.Backoff = orDefault(cfg.Backoff, DefaultBackoff)
	cfg.MaxBackoff = max(orDefault(cfg.MaxBackoff, DefaultMaxBackoff), cfg.Backoff)
	o := &Outbox{sender: s, log: cfg.Logger, queue: make(chan session.Mail, cfg.Queue), cfg: cfg}
	if o.log == nil {
		o.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	o.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_mail_sent_total", Help: "Mails delivered, by tenant and kind.",
	}, []string{"tenant", "kind"})
	o.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_mail_failed_total", Help: "Mails given up: rejected, out of attempts, not queued (queue full) or dropped at shutdown; by tenant and kind.",
	}, []string{"tenant", "kind"})
	if cfg.Registry != nil {
		depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "latchkey_mail_queue_depth", Help: "Mails accepted and neither delivered nor given up yet, retries included.",
		}, func() float64 { return float64(o.pending.Load()) })
		for _, c := range []prometheus.Collector{o.sent, o.failed, depth} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, fmt.Errorf("mail: outbox metrics: %w", err)
			}
		}
	}
	o.ctx, o.abort = context.WithCancel(context.Background())
	for range cfg.Workers {
		o.workers.Go(o.work)
	}
	return o, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Send queues m and returns at once: ErrQueueFull when the queue is full,
// ErrClosed after Close. ctx is not used for the delivery, which outlives
// the request.
func (o *Outbox) Send(_ context.Context, m session.Mail) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return ErrClosed
	}
	o.pending.Add(1)
	select {
	case o.queue <- m:
		return nil
	default:
		o.pending.Add(-1)
		o.failed.WithLabelValues(string(m.Tenant), string(m.Kind)).Inc()
		o.log.Warn("mail not queued: the outbox is full", "tenant", string(m.Tenant), "kind", string(m.Kind), "queue", o.cfg.Queue)
		return ErrQueueFull
	}
}

// Close stops taking mail and waits until the queued mails are delivered
// or given up, or until ctx ends: then it stops the retries and the
// deliveries in progress, counts every mail left as failed, and returns
// ctx's error. Close may be called more than once.
func (o *Outbox) Close(ctx context.Context) error {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.queue)
	}
	o.mu.Unlock()
	done := make(chan struct{})
	go func() { o.workers.Wait(); close(done) }()
	select {
	case <-done:
		o.abort()
		return nil
	case <-ctx.Done():
		o.abort()
		<-done // every wait of a worker ends with o.ctx
		return fmt.Errorf("mail: outbox: %d mails not delivered at shutdown: %w", o.dropped.Load(), ctx.Err())
	}
}

// work delivers queued mails until the queue is closed and empty.
func (o *Outbox) work() {
	for m := range o.queue {
		o.deliver(m)
		o.pending.Add(-1)
	}
}

// deliver tries m until it is delivered, rejected for good, out of
// attempts, or the outbox gives up draining.
func (o *Outbox) deliver(m session.Mail) {
	tenant, kind := string(m.Tenant), string(m.Kind)
	wait := o.cfg.Backoff
	for attempt := 1; ; attempt++ {
		if o.ctx.Err() != nil {
			o.drop(m)
			return
		}
		err := o.sender.Deliver(o.ctx, m)
		if err == nil {
			o.sent.WithLabelValues(tenant, kind).Inc()
			o.log.Info("mail sent", "tenant", tenant, "kind", kind, "attempt", attempt)
			return
		}
		if o.ctx.Err() != nil { // Close gave up draining
			o.drop(m)
			return
		}
		var e *Error
		permanent := errors.As(err, &e) && e.Permanent
		if permanent || attempt >= o.cfg.Attempts {
			o.failed.WithLabelValues(tenant, kind).Inc()
			o.log.Error("mail not delivered; giving up", "tenant", tenant, "kind", kind, "attempt", attempt, "permanent", permanent, "err", err)
			return
		}
		// Jitter spreads the retries of mails that failed together.
		d := wait - rand.N(wait/4+1)
		o.log.Warn("mail delivery failed; will retry", "tenant", tenant, "kind", kind, "attempt", attempt, "retry_in", d.String(), "err", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-o.ctx.Done():
			t.Stop()
			o.drop(m)
			return
		}
		wait = min(2*wait, o.cfg.MaxBackoff)
	}
}

// drop gives m up at shutdown.
func (o *Outbox) drop(m session.Mail) {
	o.dropped.Add(1)
	o.failed.WithLabelValues(string(m.Tenant), string(m.Kind)).Inc()
	o.log.Error("mail not delivered: shutting down", "tenant", string(m.Tenant), "kind", string(m.Kind))
}

// Pending returns how many mails are accepted and neither delivered nor
// given up.
func (o *Outbox) Pending() int { return int(o.pending.Load()) }
