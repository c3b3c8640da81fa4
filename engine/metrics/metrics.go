// Package metrics exposes the engine's Prometheus metrics: decisions by
// study, action and outcome; latency histograms of whole decisions, policy
// evaluations, store operations and plugin calls; store and policy errors;
// HTTP requests by route pattern and status.
//
// Label values are only ever study ids of loaded studies, route patterns
// and fixed enums: never participant ids, paths or other client-chosen
// text. Series are cached after their first use, so recording a
// measurement takes a read lock and a map lookup, without allocating.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jitai/jitai/engine"
)

// Namespace prefixes every metric name.
const Namespace = "jitai"

// LatencyBuckets (seconds) of the decision, policy and store histograms:
// 50 µs to 10 s.
var LatencyBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Metrics records the engine's and the API's measurements in a Prometheus
// registry. It implements engine.Observer. It is safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	decisions       *prometheus.CounterVec
	decisionSeconds *prometheus.HistogramVec
	policySeconds   *prometheus.HistogramVec
	policyErrors    *prometheus.CounterVec
	storeSeconds    *prometheus.HistogramVec
	storeErrors     *prometheus.CounterVec
	httpRequests    *prometheus.CounterVec
	httpSeconds     *prometheus.HistogramVec

	decisionC  cache[decisionKey, prometheus.Counter]
	studyC     cache[string, *studySeries]
	storeC     cache[string, prometheus.Observer]
	storeErrC  cache[[2]string, prometheus.Counter]
	httpC      cache[httpKey, prometheus.Counter]
	httpRouteC cache[string, prometheus.Observer]

	plugins pluginMetrics
	clock   clockMetrics
	reloads reloadMetrics
}

var _ engine.Observer = (*Metrics)(nil)

type decisionKey struct{ study, action, outcome string }

type httpKey struct {
	route string
	code  int
}

type studySeries struct {
	decision    prometheus.Observer
	policy      prometheus.Observer
	policyError prometheus.Counter
}

// New returns metrics registered in a new registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return NewWithRegistry(reg)
}

// NewWithRegistry returns metrics registered in reg.
func NewWithRegistry(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		reg: reg,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "decisions_total",
			Help: "Decision requests by study, action (deliver, none, safety; empty unless the outcome is ok) and outcome (ok, replayed or an error kind)."},
			[]string{"study", "action", "outcome"}),
		decisionSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "decision_duration_seconds",
			Help: "Time of a whole decision in the engine (validation, state read, policy, randomisation, durable record), by study.", Buckets: LatencyBuckets},
			[]string{"study"}),
		policySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "policy_evaluation_duration_seconds",
			Help: "Time of one evaluation of a study's Rego policy, by study.", Buckets: LatencyBuckets},
			[]string{"study"}),
		policyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "policy_errors_total",
			Help: "Policy evaluations that failed, by study."},
			[]string{"study"}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "store_operation_duration_seconds",
			Help: "Time of the store operations of the decision path (snapshot, commit).", Buckets: LatencyBuckets},
			[]string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "store_errors_total",
			Help: "Store operations of the decision path that failed, by operation and kind (conflict, idempotency_replay, unavailable, timeout, canceled, other)."},
			[]string{"op", "kind"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests by route pattern (method and path pattern, never the path) and status code."},
			[]string{"route", "code"}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
			Help: "Time to serve an HTTP request, by route pattern.", Buckets: LatencyBuckets},
			[]string{"route"}),
	}
	reg.MustRegister(m.decisions, m.decisionSeconds, m.policySeconds, m.policyErrors, m.storeSeconds, m.storeErrors, m.httpRequests, m.httpSeconds)
	m.plugins.register(reg)
	m.clock.register(reg)
	m.reloads.register(reg)
	for _, op := range []string{engine.StoreOpSnapshot, engine.StoreOpCommit} {
		m.storeSeries(op)
	}
	return m
}

// Registry is the registry the metrics are in.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// AddStudy creates a study's series at zero, so that they exist before its
// first decision. Call it only with ids of loaded studies.
func (m *Metrics) AddStudy(study string) { m.study(study) }

func (m *Metrics) study(study string) *studySeries {
	return m.studyC.get(study, func() *studySeries {
		return &studySeries{
			decision:    m.decisionSeconds.WithLabelValues(study),
			policy:      m.policySeconds.WithLabelValues(study),
			policyError: m.policyErrors.WithLabelValues(study),
		}
	})
}

func (m *Metrics) storeSeries(op string) prometheus.Observer {
	return m.storeC.get(op, func() prometheus.Observer { return m.storeSeconds.WithLabelValues(op) })
}

// Decision implements engine.Observer. study is "" for an unknown study.
func (m *Metrics) Decision(study, action, outcome string, took time.Duration) {
	k := decisionKey{study, action, outcome}
	m.decisionC.get(k, func() prometheus.Counter { return m.decisions.WithLabelValues(k.study, k.action, k.outcome) }).Inc()
	if study != "" {
		m.study(study).decision.Observe(took.Seconds())
	}
}

// PolicyEval implements engine.Observer.
func (m *Metrics) PolicyEval(study string, took time.Duration, err error) {
	s := m.study(study)
	s.policy.Observe(took.Seconds())
	if err != nil {
		s.policyError.Inc()
	}
}

// StoreOp implements engine.Observer.
func (m *Metrics) StoreOp(op string, took time.Duration, err error) {
	m.storeSeries(op).Observe(took.Seconds())
	if kind := StoreErrorKind(err); kind != "" {
		k := [2]string{op, kind}
		m.storeErrC.get(k, func() prometheus.Counter { return m.storeErrors.WithLabelValues(k[0], k[1]) }).Inc()
	}
}

// StoreErrorKind classifies a store error ("" for none: nil, or a
// participant not found, which is an answer rather than a failure).
func StoreErrorKind(err error) string {
	switch {
	case err == nil, errors.Is(err, trial.ErrNotFound):
		return ""
	case errors.Is(err, trial.ErrConflict):
		return "conflict"
	case errors.Is(err, trial.ErrIdempotencyReplay):
		return "idempotency_replay"
	case errors.Is(err, trial.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

// HTTPRequest records one served request. route must be the matched route
// pattern (http.Request.Pattern), never the path; "" (nothing matched, e.g.
// a request refused before routing) is recorded as "unmatched".
func (m *Metrics) HTTPRequest(route string, code int, took time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	k := httpKey{route, code}
	m.httpC.get(k, func() prometheus.Counter { return m.httpRequests.WithLabelValues(k.route, strconv.Itoa(k.code)) }).Inc()
	m.httpRouteC.get(route, func() prometheus.Observer { return m.httpSeconds.WithLabelValues(route) }).Observe(took.Seconds())
}

// cache maps label values to their series: WithLabelValues hashes and
// allocates on every call; a map lookup under a read lock does not.
type cache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (c *cache[K, V]) get(k K, create func() V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.m[k]; ok {
		return v
	}
	if c.m == nil {
		c.m = map[K]V{}
	}
	v = create()
	c.m[k] = v
	return v
}
