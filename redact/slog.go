package redact

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler is a slog.Handler that redacts a record's message and its
// string, error and fmt.Stringer attribute values before passing the record
// on, so a log line that quotes user text (an error carrying a pasted
// connection string, a report) never writes the secret.
type Handler struct {
	next slog.Handler
	r    *Redactor
}

// NewHandler wraps next. A nil r means Default, built on the first record.
func NewHandler(next slog.Handler, r *Redactor) *Handler {
	return &Handler{next: next, r: r}
}

func (h *Handler) redactor() *Redactor {
	if h.r != nil {
		return h.r
	}
	return Default()
}

// Enabled defers to the wrapped handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle redacts rec and passes it on.
func (h *Handler) Handle(ctx context.Context, rec slog.Record) error {
	r := h.redactor()
	out := slog.NewRecord(rec.Time, rec.Level, r.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(r, a))
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs redacts the attributes once, here.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	r := h.redactor()
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(r, a)
	}
	return &Handler{next: h.next.WithAttrs(red), r: h.r}
}

// WithGroup defers to the wrapped handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), r: h.r}
}

func redactAttr(r *Redactor, a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, r.Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = redactAttr(r, ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, r.Redact(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, r.Redact(x.String()))
		case []byte:
			return slog.String(a.Key, r.Redact(string(x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
