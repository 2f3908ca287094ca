package server

import (
	"log/slog"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zaptest/observer"
)

func TestLazyAttrsKeepsFieldsAndGroups(t *testing.T) {
	t.Parallel()

	core, logs := observer.New(zap.InfoLevel)
	log := slog.New(&lazyAttrs{inner: zapslog.NewHandler(core)})

	a := log.With("clientId", 7)
	b := a.WithGroup("g").With("k", "v")
	a.Info("first", "x", 1)
	b.Info("second")
	log.Debug("filtered")

	entries := logs.All()
	if len(entries) != 2 {
		t.Fatalf("got %d entries", len(entries))
	}

	if got := entries[0].ContextMap(); got["clientId"] != int64(7) || got["x"] != int64(1) {
		t.Errorf("first: %v", got)
	}

	if got := entries[1].ContextMap(); got["clientId"] != int64(7) || got["g"] == nil {
		t.Errorf("second: %v", got)
	}
}
