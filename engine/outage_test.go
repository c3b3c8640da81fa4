package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The trial clock logs an unavailable store (a full disk refusing writes
// every tick) once until a round succeeds, and other failures each time.
func TestClockOutageLogsOncePerState(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	ctx := context.Background()
	var o outage
	full := &trial.UnavailableError{Reason: "disk nearly full"}
	for range 3600 {
		o.report(ctx, log, "firing due points", fmt.Errorf("claiming: %w", full))
	}
	if n := logs.Len(); n != 1 {
		t.Errorf("%d lines for an hour of ticks on an unavailable store, want 1", n)
	}
	o.back(log)
	o.back(log)
	if n := logs.FilterMessage("trial clock: the store is available again").Len(); n != 1 {
		t.Errorf("%d 'available again' lines, want 1", n)
	}
	o.report(ctx, log, "delivering", errors.New("boom"))
	o.report(ctx, log, "delivering", errors.New("boom"))
	if n := logs.FilterMessage("trial clock: delivering").Len(); n != 2 {
		t.Errorf("%d lines for two other failures, want 2", n)
	}
}
