package engine_test

import (
	"testing"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/metrics"
)

// benchObserver is the Observer benchEngine gives its engine (none unless a
// benchmark sets it).
var benchObserver engine.Observer

// BenchmarkDecideWithMetrics is BenchmarkDecide with the Prometheus metrics
// recording every decision, policy evaluation and store operation.
func BenchmarkDecideWithMetrics(b *testing.B) {
	m := metrics.New()
	m.AddStudy("stress-mrt")
	benchObserver = m
	defer func() { benchObserver = nil }()
	BenchmarkDecide(b)
}
