package main

import (
	"context"
	"log/slog"

	"github.com/latchkeyhq/latchkey/api"
)

// logHandler is the process's slog.Handler: slog.JSONHandler's output,
// written to a logWriter, which it has flush at once after every line at
// warn and above. It takes api's request lines as their fields
// (api.RequestLineHandler), which api.RequestLine.AppendJSON writes as
// JSONHandler would, with no slog.Record to build.
type logHandler struct {
	json  slog.Handler
	level slog.Leveler
	w     *logWriter
	// plain reports whether the handler has no attributes or groups of
	// its own, so that AppendJSON's output is JSONHandler's.
	plain bool
}

var _ api.RequestLineHandler = (*logHandler)(nil)

// newLogHandler returns a handler of the lines from level up (nil: info,
// as for JSONHandler) that writes to w.
func newLogHandler(w *logWriter, level slog.Leveler) *logHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &logHandler{json: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), level: level, w: w, plain: true}
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

// HandleRequestLine writes l, an info line: built on the stack and copied
// into the buffer, so that a request allocates nothing for it.
func (h *logHandler) HandleRequestLine(ctx context.Context, l api.RequestLine) error {
	if h.plain {
		var stack [512]byte
		if b, ok := l.AppendJSON(stack[:0]); ok {
			_, err := h.w.Write(b)
			return err
		}
	}
	return h.Handle(ctx, l.Record())
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHandler{json: h.json.WithAttrs(as), level: h.level, w: h.w}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{json: h.json.WithGroup(name), level: h.level, w: h.w}
}
