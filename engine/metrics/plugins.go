package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jitai/jitai/engine"
)

var _ engine.PluginObserver = (*Metrics)(nil)

// pluginMetrics are the plugin calls' series. Labels: study (a loaded
// study's id), plugin (a name from its study.yaml), kind and call (fixed
// enums), outcome (ok, timeout, unavailable, error, invalid).
type pluginMetrics struct {
	calls   *prometheus.CounterVec
	seconds *prometheus.HistogramVec

	callC cache[pluginKey, prometheus.Counter]
	secC  cache[pluginKey, prometheus.Observer]
}

type pluginKey struct{ study, plugin, kind, call, outcome string }

func (p *pluginMetrics) register(reg *prometheus.Registry) {
	p.calls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "plugin_calls_total",
		Help: "Calls to out-of-process plugins by study, plugin, kind (enricher, probability, notifier), call (enrich, probability, outcome, notify, restart, dead_letter) and outcome (ok, timeout, unavailable, error, invalid). A call that is not ok made the decision use the plugin's fallback (enrich, probability) or will be retried (notify)."},
		[]string{"study", "plugin", "kind", "call", "outcome"})
	p.seconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "plugin_call_duration_seconds",
		Help: "Time of one plugin call, including its deadline when it timed out, by study, plugin, kind and call.", Buckets: LatencyBuckets},
		[]string{"study", "plugin", "kind", "call"})
	reg.MustRegister(p.calls, p.seconds)
}

// PluginCall implements engine.PluginObserver.
func (m *Metrics) PluginCall(study, plugin, kind, call, outcome string, took time.Duration) {
	p := &m.plugins
	k := pluginKey{study, plugin, kind, call, outcome}
	p.callC.get(k, func() prometheus.Counter { return p.calls.WithLabelValues(study, plugin, kind, call, outcome) }).Inc()
	if call == "restart" || call == "dead_letter" {
		return // events, not timed calls
	}
	k.outcome = ""
	p.secC.get(k, func() prometheus.Observer { return p.seconds.WithLabelValues(study, plugin, kind, call) }).Observe(took.Seconds())
}
