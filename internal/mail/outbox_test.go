package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/latchkeyhq/latchkey/internal/mail"
	"github.com/latchkeyhq/latchkey/internal/smtptest"
	"github.com/latchkeyhq/latchkey/session"
)

// syncBuffer is a log output safe for the outbox's workers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	srv *smtptest.Server
	box *mail.Outbox
	reg *prometheus.Registry
	log *syncBuffer
}

// newOutbox returns an outbox delivering to a fresh smtptest server with
// fast retries, closed when the test ends; the log is checked then never
// to hold a recipient, subject or body.
func newOutbox(t *testing.T, cfg mail.OutboxConfig) *harness {
	t.Helper()
	h := &harness{srv: smtptest.Start(t, smtptest.Config{}), reg: prometheus.NewRegistry(), log: &syncBuffer{}}
	s := newSMTP(t, mail.SMTPConfig{URL: h.srv.URL(), SendTimeout: 2 * time.Second})
	cfg.Logger = slog.New(slog.NewJSONHandler(h.log, nil))
	cfg.Registry = h.reg
	if cfg.Backoff == 0 {
		cfg.Backoff = 20 * time.Millisecond
	}
	var err error
	if h.box, err = mail.NewOutbox(s, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.box.Close(ctx)
		noSecretsLogged(t, h.log.String())
	})
	return h
}

// noSecretsLogged checks that a log holds nothing of the mails: they are
// all made by sample, to addresses at example.test.
func noSecretsLogged(t *testing.T, log string) {
	t.Helper()
	for _, s := range []string{"example.test", "SECRET-TOKEN", "Verify your", "Hello"} {
		if strings.Contains(strings.ToLower(log), strings.ToLower(s)) {
			t.Errorf("the log holds %q:\n%s", s, log)
		}
	}
}

func (h *harness) counter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func send(t *testing.T, box *mail.Outbox, to string) {
	t.Helper()
	if err := box.Send(context.Background(), sample(to)); err != nil {
		t.Fatal(err)
	}
}

// eventually waits, at most 5 s, for cond.
func eventually(t *testing.T, what string, cond func() bool, log ...*syncBuffer) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			for _, l := range log {
				t.Log(l.String())
			}
			t.Fatalf("not within 5s: %s", what)
		}
	}
}

func TestOutboxDelivers(t *testing.T) {
	t.Parallel()
	h := newOutbox(t, mail.OutboxConfig{})
	send(t, h.box, "one@example.test")
	m := h.srv.WaitMessage(t, "one@example.test", 5*time.Second)
	if m.Link != "https://app.acme.test/verify#token=SECRET-TOKEN" {
		t.Errorf("Link = %q", m.Link)
	}
	eventually(t, "sent counted", func() bool { return h.counter(t, "latchkey_mail_sent_total") == 1 })
	want := `
# HELP latchkey_mail_sent_total Mails delivered, by tenant and kind.
# TYPE latchkey_mail_sent_total counter
latchkey_mail_sent_total{kind="verify",tenant="acme"} 1
# HELP latchkey_mail_queue_depth Mails accepted and neither delivered nor given up yet, retries included.
# TYPE latchkey_mail_queue_depth gauge
latchkey_mail_queue_depth 0
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "latchkey_mail_sent_total", "latchkey_mail_queue_depth"); err != nil {
		t.Error(err)
	}
	if !strings.Contains(h.log.String(), `"msg":"mail sent","tenant":"acme","kind":"verify","attempt":1`) {
		t.Errorf("no line for the mail sent:\n%s", h.log)
	}
}

func TestOutboxRetriesWhileServerDown(t *testing.T) {
	t.Parallel()
	h := newOutbox(t, mail.OutboxConfig{Attempts: 100, Backoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	h.srv.Stop()
	send(t, h.box, "down@example.test")
	eventually(t, "a failed attempt logged", func() bool { return strings.Contains(h.log.String(), "will retry") }, h.log)
	if n := h.box.Pending(); n != 1 {
		t.Errorf("Pending() = %d while the server is down, want 1", n)
	}
	h.srv.Restart(t)
	h.srv.WaitMessage(t, "down@example.test", 5*time.Second)
	eventually(t, "sent counted", func() bool { return h.counter(t, "latchkey_mail_sent_total") == 1 })
	if f := h.counter(t, "latchkey_mail_failed_total"); f != 0 {
		t.Errorf("failed = %v, want 0", f)
	}
	log := h.log.String()
	for _, want := range []string{`"tenant":"acme"`, `"kind":"verify"`, `"attempt":1`, `"err":"mail: `, "connection refused"} {
		if !strings.Contains(log, want) {
			t.Errorf("the retry lines lack %s:\n%s", want, log)
		}
	}
}

func TestOutbox451Retried(t *testing.T) {
	t.Parallel()
	h := newOutbox(t, mail.OutboxConfig{})
	h.srv.FailNext(451, "greylisted <greylisted@example.test>, try again")
	h.srv.FailNext(451, "greylisted <greylisted@example.test>, try again")
	send(t, h.box, "greylisted@example.test")
	h.srv.WaitMessage(t, "greylisted@example.test", 5*time.Second)
	if n := h.srv.Attempts(); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
	if !strings.Contains(h.log.String(), `"attempt":2`) || !strings.Contains(h.log.String(), "451") {
		t.Errorf("the log lacks the second attempt's 451:\n%s", h.log)
	}
}

func TestOutbox550NotRetried(t *testing.T) {
	t.Parallel()
	h := newOutbox(t, mail.OutboxConfig{})
	h.srv.FailNext(550, "no such user <nobody@example.test>")
	send(t, h.box, "nobody@example.test")
	eventually(t, "failure counted", func() bool { return h.counter(t, "latchkey_mail_failed_total") == 1 })
	time.Sleep(100 * time.Millisecond) // several backoffs: no retry comes
	if n := h.srv.Attempts(); n != 1 {
		t.Errorf("attempts = %d, want 1", n)
	}
	if len(h.srv.Messages()) != 0 {
		t.Error("the rejected mail was delivered")
	}
	if !strings.Contains(h.log.String(), `"permanent":true`) {
		t.Errorf("no give-up line:\n%s", h.log)
	}
}

func TestOutboxGivesUpAfterAttempts(t *testing.T) {
	t.Parallel()
	h := newOutbox(t, mail.OutboxConfig{Attempts: 3})
	for range 3 {
		h.srv.FailNext(421, "closing")
	}
	send(t, h.box, "tired@example.test")
	eventually(t, "failure counted", func() bool { return h.counter(t, "latchkey_mail_failed_total") == 1 })
	if n := h.srv.Attempts(); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
}

// blockingSender delivers nothing until released.
type blockingSender struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingSender) Deliver(ctx context.Context, _ session.Mail) error {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestOutboxQueueFull(t *testing.T) {
	t.Parallel()
	b := &blockingSender{started: make(chan struct{}, 10), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	log := &syncBuffer{}
	box, err := mail.NewOutbox(b, mail.OutboxConfig{Queue: 2, Workers: 1, Registry: reg, Logger: slog.New(slog.NewJSONHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	send(t, box, "q1@example.test")
	<-b.started // the worker holds the first; two more fill the queue
	send(t, box, "q2@example.test")
	send(t, box, "q3@example.test")
	start := time.Now()
	if err := box.Send(context.Background(), sample("q4@example.test")); !errors.Is(err, mail.ErrQueueFull) {
		t.Fatalf("Send to a full queue = %v, want ErrQueueFull", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Send to a full queue took %v: it must not wait", d)
	}
	if n := box.Pending(); n != 3 {
		t.Errorf("Pending() = %d, want 3", n)
	}
	close(b.release)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := box.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP latchkey_mail_failed_total Mails given up: rejected, out of attempts, not queued (queue full) or dropped at shutdown; by tenant and kind.
# TYPE latchkey_mail_failed_total counter
latchkey_mail_failed_total{kind="verify",tenant="acme"} 1
# HELP latchkey_mail_sent_total Mails delivered, by tenant and kind.
# TYPE latchkey_mail_sent_total counter
latchkey_mail_sent_total{kind="verify",tenant="acme"} 3
`), "latchkey_mail_failed_total", "latchkey_mail_sent_total"); err != nil {
		t.Error(err)
	}
	if err := box.Send(context.Background(), sample("late@example.test")); !errors.Is(err, mail.ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	noSecretsLogged(t, log.String())
}

func TestOutboxCloseDrains(t *testing.T) {
	t.Parallel()
	h := newOutbox(t, mail.OutboxConfig{Workers: 1})
	h.srv.FailNext(451, "later")
	for i := range 5 {
		send(t, h.box, fmt.Sprintf("drain%d@example.test", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.box.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Close returned: everything is delivered already, the retried one too.
	if n := len(h.srv.Messages()); n != 5 {
		t.Errorf("%d mails delivered by Close, want 5", n)
	}
	if n := h.box.Pending(); n != 0 {
		t.Errorf("Pending() = %d after Close, want 0", n)
	}
}

func TestOutboxCloseGivesUpAtDeadline(t *testing.T) {
	t.Parallel()
	h := newOutbox(t, mail.OutboxConfig{Workers: 1, Attempts: 1000, Backoff: time.Hour})
	h.srv.Stop()
	send(t, h.box, "never1@example.test")
	send(t, h.box, "never2@example.test")
	eventually(t, "a failed attempt logged", func() bool { return strings.Contains(h.log.String(), "will retry") }, h.log)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := h.box.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "2 mails not delivered") {
		t.Fatalf("Close = %v, want 2 mails not delivered and the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v past its deadline", d)
	}
	if f := h.counter(t, "latchkey_mail_failed_total"); f != 2 {
		t.Errorf("failed = %v, want 2", f)
	}
}

func TestLogSink(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := mail.LogSink(slog.New(slog.NewJSONHandler(&buf, nil)))
	if err := s.Deliver(context.Background(), sample("demo@example.test")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"to":"demo@example.test"`, `"subject":"Verify your address for Acme ✓"`,
		`"link":"https://app.acme.test/verify#token=SECRET-TOKEN"`, `"text":"Hello,\n\nopen https://`, `"tenant":"acme"`, `"kind":"verify"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, buf.String())
		}
	}
}

// listenSilent returns the address of a listener that accepts connections
// and never says a word, closed when the test ends.
func listenSilent(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
