package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/internal/proctest"
)

// lineBuffer records what a logWriter writes: the writes and their sizes.
type lineBuffer struct {
	mu       sync.Mutex
	b        bytes.Buffer
	writes   int
	maxWrite int
	// gate, if set, is received from before each write: a slow output.
	gate chan struct{}
	err  error
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	if l.gate != nil {
		<-l.gate
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	l.writes++
	l.maxWrite = max(l.maxWrite, len(p))
	return l.b.Write(p)
}

func (l *lineBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls until cond holds, for at most 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
	}
}

// TestLogWarnWrittenAtOnce: with an interval of an hour, an info line
// stays buffered, and a warn or error line is written at once, with the
// lines before it, in order.
func TestLogWarnWrittenAtOnce(t *testing.T) {
	t.Parallel()
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelError} {
		t.Run(level.String(), func(t *testing.T) {
			t.Parallel()
			var out lineBuffer
			w := newLogWriter(&out, logBuffering{interval: time.Hour, flushAt: 64 << 10, max: 1 << 20, closeWait: 5 * time.Second})
			defer w.Close()
			log := slog.New(newLogHandler(w, slog.LevelInfo))
			log.Info("request", "n", 1)
			time.Sleep(20 * time.Millisecond)
			if s := out.String(); s != "" {
				t.Fatalf("an info line was written before the interval: %q", s)
			}
			log.Log(context.Background(), level, "store unavailable", "n", 2)
			waitFor(t, level.String()+" line written", func() bool { return strings.Count(out.String(), "\n") == 2 })
			if s := out.String(); !strings.Contains(s, `"msg":"request","n":1}`+"\n") || !strings.HasSuffix(s, `"msg":"store unavailable","n":2}`+"\n") {
				t.Errorf("out = %q, want the info line, then the %s line", s, level)
			}
		})
	}
}

// TestLogFlushedByIntervalAndSize: a line waits at most the interval, and
// a buffer that reaches flushAt is written without waiting for it.
func TestLogFlushedByIntervalAndSize(t *testing.T) {
	t.Parallel()
	t.Run("interval", func(t *testing.T) {
		t.Parallel()
		var out lineBuffer
		w := newLogWriter(&out, logBuffering{interval: 10 * time.Millisecond, flushAt: 64 << 10, max: 1 << 20, closeWait: 5 * time.Second})
		defer w.Close()
		w.Write([]byte("one\n"))
		waitFor(t, "the line written by the interval", func() bool { return out.String() == "one\n" })
	})
	t.Run("size", func(t *testing.T) {
		t.Parallel()
		var out lineBuffer
		w := newLogWriter(&out, logBuffering{interval: time.Hour, flushAt: 100, max: 1 << 20, closeWait: 5 * time.Second})
		defer w.Close()
		line := strings.Repeat("x", 49) + "\n"
		w.Write([]byte(line))
		time.Sleep(20 * time.Millisecond)
		if s := out.String(); s != "" {
			t.Fatalf("written below flushAt: %q", s)
		}
		w.Write([]byte(line))
		waitFor(t, "the buffer written at flushAt", func() bool { return out.String() == line+line })
	})
}

// TestLogWriterConcurrent: many goroutines writing at once through an
// output slower than they are, with a small buffer, so that writers wait
// for room: every line arrives once, whole, each goroutine's in order, and
// no write is larger than the bound (memory stays bounded).
func TestLogWriterConcurrent(t *testing.T) {
	t.Parallel()
	const writers, lines, bound = 16, 500, 4 << 10
	out := &lineBuffer{gate: make(chan struct{})}
	go func() { // slow: a write at most every 50 µs
		for range time.Tick(50 * time.Microsecond) {
			select {
			case out.gate <- struct{}{}:
			case <-t.Context().Done():
				close(out.gate)
				return
			}
		}
	}()
	w := newLogWriter(out, logBuffering{interval: time.Millisecond, flushAt: 1 << 10, max: bound, closeWait: 10 * time.Second})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for n := range lines {
				fmt.Fprintf(w, "{\"g\":%d,\"n\":%d,\"pad\":%q}\n", g, n, strings.Repeat("p", n%50))
			}
		})
	}
	wg.Wait()
	w.Close()
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	for _, l := range got {
		var v struct{ G, N int }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("a torn line %q: %v", l, err)
		}
		if v.N != next[v.G] {
			t.Fatalf("goroutine %d: line %d after %d", v.G, v.N, next[v.G]-1)
		}
		next[v.G]++
	}
	if len(got) != writers*lines {
		t.Errorf("%d lines, want %d", len(got), writers*lines)
	}
	if out.maxWrite > bound {
		t.Errorf("a write of %d bytes, want at most the %d-byte bound", out.maxWrite, bound)
	}
	t.Logf("%d lines in %d writes", len(got), out.writes)
}

// TestLogWriteErrors: an output that fails never makes a writer wait or
// fail; the lost lines are counted.
func TestLogWriteErrors(t *testing.T) {
	t.Parallel()
	out := &lineBuffer{err: errors.New("broken pipe")}
	w := newLogWriter(out, logBuffering{interval: time.Millisecond, flushAt: 256, max: 1 << 10, closeWait: 5 * time.Second})
	const lines = 10000
	for range lines {
		if n, err := w.Write([]byte("{\"msg\":\"request\"}\n")); n != 18 || err != nil {
			t.Fatalf("Write = %d, %v; want 18, nil", n, err)
		}
	}
	w.Close()
	if n := w.lost.Load(); n != lines {
		t.Errorf("lost = %d, want %d", n, lines)
	}
}

// TestLogCloseBounded: Close returns within closeWait even when the
// output takes nothing, and a line written after Close goes straight out.
func TestLogCloseBounded(t *testing.T) {
	t.Parallel()
	stuck := &lineBuffer{gate: make(chan struct{})}
	t.Cleanup(func() { close(stuck.gate) })
	w := newLogWriter(stuck, logBuffering{interval: time.Millisecond, flushAt: 64 << 10, max: 1 << 20, closeWait: 50 * time.Millisecond})
	w.Write([]byte("never\n"))
	start := time.Now()
	w.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a stuck output, want about 50 ms", d)
	}

	var out lineBuffer
	w = newLogWriter(&out, defaultLogBuffering)
	w.Write([]byte("before\n"))
	w.Close()
	w.Write([]byte("after\n"))
	w.Flush() // returns at once: there is nothing left to write
	if s := out.String(); s != "before\nafter\n" {
		t.Errorf("out = %q, want both lines in order", s)
	}
}

// TestShutdownLosesNoLogLine runs the real binary, sends it preflights
// from several clients at once, SIGTERMs it right after the last answer,
// within the flush interval, and finds every request's line: one per
// request ID answered, none torn.
func TestShutdownLosesNoLogLine(t *testing.T) {
	t.Parallel()
	lk := proctest.StartLatchkey(t, proctest.LatchkeyConfig{})
	const clients, each = 8, 250
	ids := make(chan string, clients*each)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			c := &http.Client{Timeout: 5 * time.Second}
			for range each {
				req, _ := http.NewRequest(http.MethodOptions, "http://"+lk.Public+"/v1/t/example/login", nil)
				req.Header.Set("Origin", defaultDemoOrigin)
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "content-type")
				res, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				if res.StatusCode != http.StatusNoContent {
					t.Errorf("preflight: %s, want 204", res.Status)
					return
				}
				ids <- res.Header.Get("X-Request-Id")
			}
		})
	}
	wg.Wait()
	close(ids)
	lk.Stop(t) // SIGTERM, and a check that it exits 0
	want := map[string]bool{}
	for id := range ids {
		want[id] = true
	}
	seen := map[string]int{}
	for l := range strings.SplitSeq(lk.Output(), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue // the demo's banner
		}
		var v struct {
			Msg, Route, Listener string
			Status               int
			RequestID            string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Errorf("not a JSON line: %q", l)
			continue
		}
		if v.Msg == "request" && v.Listener == "public" {
			seen[v.RequestID]++
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("request %s: %d lines, want 1", id, seen[id])
		}
	}
	if len(want) != clients*each || len(seen) != len(want) {
		t.Errorf("%d requests answered, %d logged; want %d of each", len(want), len(seen), clients*each)
	}
}
