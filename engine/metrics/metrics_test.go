package metrics_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/metrics"
)

// TestNoAllocs: once a series exists, recording into it allocates nothing.
func TestNoAllocs(t *testing.T) {
	m := metrics.New()
	m.AddStudy("s")
	run := func() {
		m.Decision("s", trial.ActionDeliver, engine.OutcomeOK, time.Millisecond)
		m.PolicyEval("s", time.Millisecond, nil)
		m.StoreOp(engine.StoreOpSnapshot, time.Millisecond, nil)
		m.StoreOp(engine.StoreOpCommit, time.Millisecond, trial.ErrConflict)
		m.HTTPRequest("POST /v1/studies/{study}/participants/{participant}/decisions", 200, time.Millisecond)
	}
	run()
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Errorf("%v allocations per measurement set, want 0", n)
	}
}

func TestStoreErrorKind(t *testing.T) {
	for err, want := range map[error]string{
		nil: "", trial.ErrNotFound: "", trial.ErrConflict: "conflict",
		trial.ErrUnavailable: "unavailable", errors.New("disk on fire"): "other",
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

func TestPluginCalls(t *testing.T) {
	m := metrics.New()
	m.PluginCall("s", "bandit", "probability", "probability", trial.PluginOK, 2*time.Millisecond)
	m.PluginCall("s", "bandit", "probability", "probability", trial.PluginTimeout, 100*time.Millisecond)
	m.PluginCall("s", "bandit", "probability", "probability", trial.PluginTimeout, 100*time.Millisecond)
	m.PluginCall("s", "alerts", "notifier", "dead_letter", trial.PluginError, 0)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	histograms := 0
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "jitai_plugin_calls_total":
				counts[labels["plugin"]+"/"+labels["call"]+"/"+labels["outcome"]] = mt.GetCounter().GetValue()
			case "jitai_plugin_call_duration_seconds":
				histograms++
				if mt.GetHistogram().GetSampleCount() != 3 {
					t.Errorf("latency samples %d, want 3", mt.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	want := map[string]float64{"bandit/probability/ok": 1, "bandit/probability/timeout": 2, "alerts/dead_letter/error": 1}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
	if histograms != 1 {
		t.Errorf("%d latency series, want 1 (dead letters are not timed)", histograms)
	}
}
