package metrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/metrics"
)

// TestNoAllocs: once a series exists, recording into it allocates nothing.
func TestNoAllocs(t *testing.T) {
	m := metrics.New()
	m.AddStudy("s")
	run := func() {
		m.Decision("s", engine.ActionDeliver, engine.OutcomeOK, time.Millisecond)
		m.PolicyEval("s", time.Millisecond, nil)
		m.StoreOp(engine.StoreOpSnapshot, time.Millisecond, nil)
		m.StoreOp(engine.StoreOpCommit, time.Millisecond, engine.ErrConflict)
		m.HTTPRequest("POST /v1/studies/{study}/participants/{participant}/decisions", 200, time.Millisecond)
	}
	run()
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Errorf("%v allocations per measurement set, want 0", n)
	}
}

func TestStoreErrorKind(t *testing.T) {
	for err, want := range map[error]string{
		nil: "", engine.ErrNotFound: "", engine.ErrConflict: "conflict",
		engine.ErrUnavailable: "unavailable", errors.New("disk on fire"): "other",
	} {
		if got := metrics.StoreErrorKind(err); got != want {
			t.Errorf("StoreErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestDecisionPathNoAllocs: classifying a successful decision allocates
// nothing.
func TestDecisionPathNoAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(1000, func() { _ = engine.DecisionOutcome(nil) }); n != 0 {
		t.Errorf("DecisionOutcome(nil): %v allocations, want 0", n)
	}
}
