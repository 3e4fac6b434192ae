package main

import (
	"context"
	"log/slog"
)

// logHandler is the process's slog.Handler: slog.JSONHandler's output,
// written to a logWriter, which it has flush at once after every line at
// warn and above.
type logHandler struct {
	json  slog.Handler
	level slog.Leveler
	w     *logWriter
}

// newLogHandler returns a handler of the lines from level up (nil: info,
// as for JSONHandler) that writes to w.
func newLogHandler(w *logWriter, level slog.Leveler) *logHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &logHandler{json: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), level: level, w: w}
}

// Enabled is JSONHandler's, without its two calls through interfaces.
func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.json.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.w.flushSoon()
	}
	return err
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{json: h.json.WithAttrs(as), level: h.level, w: h.w}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{json: h.json.WithGroup(name), level: h.level, w: h.w}
}
