package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/metrics"
	"github.com/jitai/jitai/engine/ratelimit"
)

// Over the per-client limit: 429 problem+json with Retry-After and
// RateLimit-* headers; health checks stay exempt.
func TestRateLimit(t *testing.T) {
	eng := rateLimitEngine(t)
	met := metrics.New()
	srv := httptest.NewServer(api.New(eng, zap.NewNop(), api.Options{Metrics: met, RateLimit: ratelimit.Limit{Rate: 1, Burst: 3, Period: time.Minute}}))
	defer srv.Close()
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := 0; i < 3; i++ {
		resp := get("/v1/studies")
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
		if got := resp.Header.Get("RateLimit-Remaining"); got != strconv.Itoa(2-i) {
			t.Fatalf("request %d: RateLimit-Remaining %q", i, got)
		}
		if resp.Header.Get("RateLimit-Limit") != "3" || resp.Header.Get("RateLimit-Reset") == "" {
			t.Fatalf("headers %v", resp.Header)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/studies")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p api.Problem
	_ = json.NewDecoder(resp.Body).Decode(&p)
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Content-Type") != "application/problem+json" ||
		p.Type != "urn:jitai:problem:rate-limited" || retry < 1 || retry > 60 {
		t.Fatalf("over the limit: %d %v %+v", resp.StatusCode, resp.Header, p)
	}
	if r := get("/healthz"); r.StatusCode != 200 {
		t.Fatalf("healthz limited: %d", r.StatusCode)
	}
	if r := get("/readyz"); r.StatusCode != 200 {
		t.Fatalf("readyz limited: %d", r.StatusCode)
	}
	// The refusal is counted under the route it asked for.
	rec := httptest.NewRecorder()
	met.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`jitai_http_requests_total{code="429",route="GET /v1/studies"} 1`,
		`jitai_http_requests_total{code="200",route="GET /v1/studies"} 3`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func rateLimitEngine(t *testing.T) *engine.Engine {
	t.Helper()
	return newEnv(t, quietLogs).eng
}
