package server

import (
	"context"
	"log/slog"
	"slices"
)

// lazyAttrs is a slog.Handler that keeps the attributes of WithAttrs and
// WithGroup to itself until a record is actually handled. The engine makes
// a logger per session (With("clientId", id)); on zap's handler that clones
// an encoder with its own buffer, about a KiB held by every idle session for
// the few lines a session ever logs.
type lazyAttrs struct {
	inner slog.Handler
	steps []step // WithAttrs and WithGroup calls, in order
}

type step struct {
	attrs []slog.Attr
	group string
}

func (h *lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	inner := h.inner
	for _, s := range h.steps {
		if s.group != "" {
			inner = inner.WithGroup(s.group)
		} else {
			inner = inner.WithAttrs(s.attrs)
		}
	}

	return inner.Handle(ctx, r) //nolint:wrapcheck // a handler passes its inner handler's error on
}

func (h *lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &lazyAttrs{inner: h.inner, steps: append(slices.Clip(h.steps), step{attrs: attrs})}
}

func (h *lazyAttrs) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}

	return &lazyAttrs{inner: h.inner, steps: append(slices.Clip(h.steps), step{group: name})}
}
