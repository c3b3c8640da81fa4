package api

import (
	"net/http"
	"time"

	"github.com/jitai/jitai/engine/metrics"
)

// metricsHandler serves GET /metrics (Prometheus). Without Options.Metrics
// the server keeps its own registry (HTTP metrics and the Go runtime only).
func (s *Server) metricsHandler() http.Handler {
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	return s.metrics.Handler()
}

// observeRequest records a served request by route pattern (never the
// path: paths hold participant ids) and status.
func (s *Server) observeRequest(r *http.Request, status int, took time.Duration) {
	if s.metrics != nil {
		s.metrics.HTTPRequest(r.Pattern, status, took)
	}
}
