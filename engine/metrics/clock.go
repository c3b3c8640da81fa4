package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jitai/jitai/engine"
)

var _ engine.ClockObserver = (*Metrics)(nil)

// clockMetrics are the trial clock's series: the delivery funnel. Labels:
// study (a loaded study's id), trigger (scheduled, event), outcome (decided,
// missed, open_failed), status (queued, sent, failed, expired, answered).
type clockMetrics struct {
	points     *prometheus.CounterVec
	deliveries *prometheus.CounterVec

	pointC    cache[[3]string, prometheus.Counter]
	deliveryC cache[[2]string, prometheus.Counter]
}

func (c *clockMetrics) register(reg *prometheus.Registry) {
	c.points = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "points_total",
		Help: "Scheduled and event points resolved to a new record by the trial clock, by study, trigger (scheduled, event) and outcome (decided; missed: recorded engine_unavailable after its window; open_failed: the open rule failed on an event)."},
		[]string{"study", "trigger", "outcome"})
	c.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "deliveries_total",
		Help: "Delivery attempts' outcomes by study and status: queued (to be retried), sent (accepted by a channel), failed (refused for good), expired (the decision expired first). With points_total, the delivery funnel; delivered, opened and completed come from engagement events (decisions' outcomes)."},
		[]string{"study", "status"})
	reg.MustRegister(c.points, c.deliveries)
}

// PointRecorded implements engine.ClockObserver.
func (m *Metrics) PointRecorded(study, trigger, outcome string) {
	c := &m.clock
	c.pointC.get([3]string{study, trigger, outcome}, func() prometheus.Counter { return c.points.WithLabelValues(study, trigger, outcome) }).Inc()
}

// DeliveryStatus implements engine.ClockObserver.
func (m *Metrics) DeliveryStatus(study, status string) {
	c := &m.clock
	c.deliveryC.get([2]string{study, status}, func() prometheus.Counter { return c.deliveries.WithLabelValues(study, status) }).Inc()
}
