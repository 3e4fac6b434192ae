package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/latchkeyhq/latchkey/api"
)

// requestLine is a preflight's line.
func requestLine(t time.Time) api.RequestLine {
	return api.RequestLine{Time: t, RequestID: "K7Q2ZJ5XWMA3B4CD", Listener: "public", Tenant: "example", Method: "OPTIONS",
		Route: "/v1/t/{tenant}/login", Status: 204, DurationMS: 0.012, ClientIP: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
}

// TestLogHandlerMatchesJSONHandler: whatever logHandler writes, whether
// handed a record or a request line, on itself or on a handler derived
// with WithAttrs or WithGroup, is what slog.JSONHandler writes for the
// same record, derived the same way.
func TestLogHandlerMatchesJSONHandler(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("CET", 3600))
	errLine := slog.NewRecord(now, slog.LevelError, "store unavailable", 0)
	errLine.AddAttrs(slog.String("request_id", "ID"), slog.Any("err", errors.New("redis: down")), slog.Group("g", slog.Int("n", 1)))
	nan, far := requestLine(now), requestLine(now.AddDate(8000, 0, 0))
	nan.DurationMS = math.NaN()
	withAttrs := func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.String("tenant", "acme")}) }
	withGroup := func(h slog.Handler) slog.Handler { return h.WithGroup("http") }
	empty := func(h slog.Handler) slog.Handler { return h.WithAttrs(nil).WithGroup("") }
	same := func(h slog.Handler) slog.Handler { return h }
	for _, tt := range []struct {
		name   string
		derive func(slog.Handler) slog.Handler
		record *slog.Record    // handed to Handle, or
		line   api.RequestLine // to HandleRequestLine
	}{
		{"a record with an error and a group", same, &errLine, api.RequestLine{}},
		{"a request line", same, nil, requestLine(now)},
		{"a request line without a time", same, nil, requestLine(time.Time{})},
		{"a request line with a NaN duration", same, nil, nan},
		{"a request line in the year 10026", same, nil, far},
		{"a request line, WithAttrs", withAttrs, nil, requestLine(now)},
		{"a request line, WithGroup", withGroup, nil, requestLine(now)},
		{"a request line, empty WithAttrs and WithGroup", empty, nil, requestLine(now)},
		{"a record, WithGroup", withGroup, &errLine, api.RequestLine{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := tt.record
			if r == nil {
				rec := tt.line.Record()
				r = &rec
			}
			var want bytes.Buffer
			tt.derive(slog.NewJSONHandler(&want, nil)).Handle(context.Background(), *r)

			var got bytes.Buffer
			w := newLogWriter(&got, logBuffering{interval: time.Hour, flushAt: 64 << 10, max: 1 << 20, closeWait: 5 * time.Second})
			h := tt.derive(newLogHandler(w, slog.LevelDebug))
			if tt.record != nil {
				h.Handle(context.Background(), *tt.record)
			} else {
				h.(api.RequestLineHandler).HandleRequestLine(context.Background(), tt.line)
			}
			w.Close()
			if got.String() != want.String() {
				t.Errorf("got  %q\nwant %q", &got, &want)
			}
		})
	}
}

// TestLogHandlerAllocs: a request line allocates nothing in the handler.
func TestLogHandlerAllocs(t *testing.T) {
	w := newLogWriter(io.Discard, defaultLogBuffering)
	defer w.Close()
	h := newLogHandler(w, slog.LevelInfo)
	l := requestLine(time.Now())
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { h.HandleRequestLine(ctx, l) }); n != 0 {
		t.Errorf("HandleRequestLine allocates %v times per line, want 0", n)
	}
}

// BenchmarkRequestLine is the request line alone, from its fields to
// /dev/null: as it was (InfoContext's pairs, JSONHandler, a write(2) per
// line); the Record through JSONHandler into the buffered writer (what the
// buffering alone buys); and the RequestLine through logHandler, what
// serve runs (what AppendJSON buys on top), also from parallel goroutines.
func BenchmarkRequestLine(b *testing.B) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { devNull.Close() })
	ctx := context.Background()
	b.Run("before: InfoContext, JSONHandler, a write per line", func(b *testing.B) {
		log := slog.New(slog.NewJSONHandler(devNull, nil))
		b.ReportAllocs()
		for b.Loop() {
			l := requestLine(time.Now())
			log.InfoContext(ctx, "request", "request_id", l.RequestID, "listener", l.Listener, "tenant", l.Tenant,
				"method", l.Method, "route", l.Route, "status", l.Status, "duration_ms", l.DurationMS, "client_ip", l.ClientIP.String())
		}
	})
	b.Run("Record, JSONHandler, buffered", func(b *testing.B) {
		w := newLogWriter(devNull, defaultLogBuffering)
		defer w.Close()
		h := slog.NewJSONHandler(w, nil)
		b.ReportAllocs()
		for b.Loop() {
			h.Handle(ctx, requestLine(time.Now()).Record())
		}
	})
	b.Run("RequestLine, logHandler, buffered", func(b *testing.B) {
		w := newLogWriter(devNull, defaultLogBuffering)
		defer w.Close()
		h := newLogHandler(w, slog.LevelInfo)
		b.ReportAllocs()
		for b.Loop() {
			h.HandleRequestLine(ctx, requestLine(time.Now()))
		}
	})
	b.Run("RequestLine, logHandler, buffered, parallel", func(b *testing.B) {
		w := newLogWriter(devNull, defaultLogBuffering)
		defer w.Close()
		h := newLogHandler(w, slog.LevelInfo)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				h.HandleRequestLine(ctx, requestLine(time.Now()))
			}
		})
	})
}
