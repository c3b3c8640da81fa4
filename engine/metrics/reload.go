package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jitai/jitai/engine"
)

var (
	_ engine.ReloadObserver    = (*Metrics)(nil)
	_ engine.EvaluatorObserver = (*Metrics)(nil)
)

// reloadMetrics count study reload attempts. Labels: study (a study id
// from a studies folder) and outcome (loaded, added, unchanged, failed).
type reloadMetrics struct {
	attempts  *prometheus.CounterVec
	seconds   *prometheus.HistogramVec
	fallbacks *prometheus.CounterVec
}

func (r *reloadMetrics) register(reg *prometheus.Registry) {
	r.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "study_reloads_total",
		Help: "Study reload attempts (folder watcher, SIGHUP or POST .../reload) by study and outcome (loaded, added, unchanged, failed). After a failed one the last good version keeps serving; GET /v1/studies/{study} says why."},
		[]string{"study", "outcome"})
	r.seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "study_reload_duration_seconds",
		Help: "Time to load, compile, check and swap a study version, by study.", Buckets: LatencyBuckets},
		[]string{"study"})
	r.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "policy_ir_fallbacks_total",
		Help: "Policy evaluations the planned IR could not make (a built-in error, a conflict, a key whose meaning depends on data or input) and OPA's topdown made instead, by study (docs/policy.md). Each costs a second evaluation."},
		[]string{"study"})
	reg.MustRegister(r.attempts, r.seconds, r.fallbacks)
}

// PolicyFallback implements engine.EvaluatorObserver.
func (m *Metrics) PolicyFallback(study string) {
	m.reloads.fallbacks.WithLabelValues(study).Inc()
}

// StudyReload implements engine.ReloadObserver. Reloads are rare: no
// series cache.
func (m *Metrics) StudyReload(study, outcome string, took time.Duration) {
	m.reloads.attempts.WithLabelValues(study, outcome).Inc()
	if outcome != engine.ReloadUnchanged {
		m.reloads.seconds.WithLabelValues(study).Observe(took.Seconds())
	}
}
