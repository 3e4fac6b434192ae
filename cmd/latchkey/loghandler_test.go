package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// jsonHandlerLine is what slog.JSONHandler writes for r.
func jsonHandlerLine(tb testing.TB, h func(io.Writer) slog.Handler, r slog.Record) string {
	tb.Helper()
	var b bytes.Buffer
	if err := h(&b).Handle(context.Background(), r); err != nil {
		tb.Fatalf("JSONHandler: %v", err)
	}
	return b.String()
}

// logHandlerLine is what logHandler writes for r, all the way through its
// logWriter.
func logHandlerLine(tb testing.TB, h func(slog.Handler) slog.Handler, r slog.Record) string {
	tb.Helper()
	var b bytes.Buffer
	w := newLogWriter(&b, logBuffering{interval: time.Hour, flushAt: 64 << 10, max: 1 << 20, closeWait: 5 * time.Second})
	if err := h(newLogHandler(w, slog.LevelDebug)).Handle(context.Background(), r); err != nil {
		tb.Fatalf("logHandler: %v", err)
	}
	w.Close()
	return b.String()
}

func plainJSON(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }
func same(h slog.Handler) slog.Handler   { return h }

// requestRecord is the record of a request line, as api's instrument makes
// it.
func requestRecord(t time.Time) slog.Record {
	r := slog.NewRecord(t, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("request_id", "K7Q2ZJ5XWMA3B4CD"),
		slog.String("listener", "public"),
		slog.String("tenant", "example"),
		slog.String("method", "OPTIONS"),
		slog.String("route", "/v1/t/{tenant}/login"),
		slog.Int("status", 204),
		slog.Float64("duration_ms", 0.012),
		slog.String("client_ip", "127.0.0.1"),
	)
	return r
}

// TestLogHandlerDerived: handlers derived with WithAttrs and WithGroup, and
// records of values the encoder leaves to JSONHandler, come out as
// JSONHandler writes them; the request line as it does too.
func TestLogHandlerDerived(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	errLine := slog.NewRecord(now, slog.LevelError, "store unavailable", 0)
	errLine.AddAttrs(slog.String("request_id", "ID"), slog.Any("err", errors.New("redis: down")), slog.Group("g", slog.Int("n", 1)))
	for _, tt := range []struct {
		name   string
		derive func(slog.Handler) slog.Handler
		r      slog.Record
	}{
		{"request line", same, requestRecord(now)},
		{"an error and a group", same, errLine},
		{"WithAttrs", func(h slog.Handler) slog.Handler { return h.WithAttrs([]slog.Attr{slog.String("tenant", "acme")}) }, requestRecord(now)},
		{"WithGroup", func(h slog.Handler) slog.Handler { return h.WithGroup("http") }, requestRecord(now)},
		{"empty WithAttrs and WithGroup", func(h slog.Handler) slog.Handler { return h.WithAttrs(nil).WithGroup("") }, requestRecord(now)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := jsonHandlerLine(t, func(w io.Writer) slog.Handler { return tt.derive(slog.NewJSONHandler(w, nil)) }, tt.r)
			if got := logHandlerLine(t, tt.derive, tt.r); got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}
