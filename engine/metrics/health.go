package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jitai/jitai/engine"
)

// srmDesc is the sample-ratio p of each within-person factor.
var srmDesc = prometheus.NewDesc(Namespace+"_randomisation_srm_p",
	"Two-sided p value of the sample-ratio test of a within-person factor: treated against the sum of the logged probabilities over randomised decisions (GET /v1/studies/{study}/health). Alert below 0.001.",
	[]string{"study", "factor"}, nil)

// healthCollector reads the engine's health aggregates at each scrape.
type healthCollector struct{ eng *engine.Engine }

func (h healthCollector) Describe(ch chan<- *prometheus.Desc) { ch <- srmDesc }

func (h healthCollector) Collect(ch chan<- prometheus.Metric) {
	for study, factors := range h.eng.SampleRatios() {
		for factor, p := range factors {
			ch <- prometheus.MustNewConstMetric(srmDesc, prometheus.GaugeValue, p, study, factor)
		}
	}
}

// WatchHealth exports jitai_randomisation_srm_p{study,factor}, read from
// the engine's health aggregates at each scrape (studies whose aggregates
// are not loaded yet have no series). Labels are study ids and factor
// names from the studies' configuration: low cardinality.
func (m *Metrics) WatchHealth(eng *engine.Engine) {
	m.reg.MustRegister(healthCollector{eng: eng})
}
