package api

import (
	"net/http"
	"time"

	"go.uber.org/zap"

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

// observeRejected records a request refused before routing (rate limit,
// authentication, role): it is counted under the route it asked for, found
// without serving it, so refusals show up beside the route's other answers.
func (s *Server) observeRejected(r *http.Request, status int, start time.Time) {
	if s.metrics == nil {
		return
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "/" {
		pattern = ""
	}
	s.metrics.HTTPRequest(pattern, status, time.Since(start))
	s.log.Info("request refused",
		zap.String("method", r.Method),
		zap.String("route", pattern),
		zap.Int("status", status))
}
