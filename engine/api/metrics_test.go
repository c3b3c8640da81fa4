package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/metrics"
	"github.com/jitai/jitai/engine/store/sqlite"
)

// TestMetrics makes decisions (and failed ones), scrapes /metrics and checks
// the series, and that no participant id or client-chosen text appears.
func TestMetrics(t *testing.T) {
	studies := loadStudies(t)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "jitai.db"), sqlite.Options{Durability: "process"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	met := metrics.New()
	for _, s := range studies {
		met.AddStudy(s.Config.ID)
	}
	clk := &clock{t: at(0, 8, 0)}
	eng, err := engine.New(engine.Components{Store: st, Studies: studies, Now: clk.Now, Observer: met})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(eng, zap.NewNop(), api.Options{Metrics: met}))
	t.Cleanup(srv.Close)

	post := func(path string, body any) int {
		t.Helper()
		b, _ := json.Marshal(body)
		res, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	study := "stress-mrt"
	dp := appPoint(studies[0])
	for _, s := range studies {
		if s.Config.ID == study {
			dp = appPoint(s)
		}
	}
	secret := []string{"pid-secret-4711", "pid-secret-4712"}
	for _, p := range secret {
		clk.Set(at(0, 8, 0)) // enrolled before the decisions
		if code := post(participantsPath(study), map[string]any{"participant_id": p, "timezone": "Europe/London"}); code != http.StatusCreated {
			t.Fatalf("enrol %s: %d", p, code)
		}
		for h := 8; h < 12; h++ {
			clk.Set(at(0, h, 0))
			if code := post(decisionsPath(study, p), map[string]any{"decision_point": dp, "time": rfc(at(0, h, 0))}); code != http.StatusOK {
				t.Fatalf("decision for %s: %d", p, code)
			}
		}
	}
	clk.Set(at(0, 9, 0))
	if code := post(decisionsPath(study, "pid-unknown-9999"), map[string]any{"decision_point": dp, "time": rfc(at(0, 9, 0))}); code != http.StatusNotFound {
		t.Fatalf("unknown participant: %d", code)
	}
	if code := post(decisionsPath("evil-study-xyz", "pid-secret-4711"), map[string]any{"decision_point": dp, "time": rfc(at(0, 9, 0))}); code != http.StatusNotFound {
		t.Fatalf("unknown study: %d", code)
	}
	// The API refuses an unknown study before the engine; straight to the
	// engine, the label must not carry it either.
	if _, err := eng.Decide(t.Context(), "evil-study-abc", "pid-secret-4711", engine.DecideRequest{DecisionPoint: dp, Time: at(0, 9, 0)}); err == nil {
		t.Fatal("decision for an unknown study succeeded")
	}
	if code := post(decisionsPath(study, "pid-secret-4711"), map[string]any{"decision_point": "no-such-point-free-text", "time": rfc(at(0, 9, 0))}); code != http.StatusBadRequest && code != http.StatusUnprocessableEntity {
		t.Fatalf("bad decision point: %d", code)
	}
	if res, err := http.Get(srv.URL + "/v1/studies/" + study + "/participants/pid-secret-4712"); err == nil {
		res.Body.Close()
	}
	if res, err := http.Get(srv.URL + "/no/such/route/pid-secret-4711"); err == nil {
		res.Body.Close()
	}

	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
	out := string(body)
	for _, want := range []string{
		`jitai_decisions_total{action="`,
		`outcome="ok",study="stress-mrt"}`,
		`jitai_decisions_total{action="",outcome="unknown_participant",study="stress-mrt"} 1`,
		`jitai_decisions_total{action="",outcome="unknown_study",study=""} 1`,
		`jitai_decisions_total{action="",outcome="invalid_input",study="stress-mrt"} 1`,
		`jitai_decision_duration_seconds_count{study="stress-mrt"}`,
		`jitai_decision_duration_seconds_bucket{study="stress-mrt",le="0.005"}`,
		`jitai_policy_evaluation_duration_seconds_count{study="stress-mrt"} 8`,
		`jitai_policy_errors_total{study="stress-mrt"} 0`,
		`jitai_store_operation_duration_seconds_count{op="snapshot"} 9`,
		`jitai_store_operation_duration_seconds_count{op="commit"} 8`,
		`jitai_http_requests_total{code="200",route="POST /v1/studies/{study}/participants/{participant}/decisions"} 8`,
		`jitai_http_requests_total{code="201",route="POST /v1/studies/{study}/participants"} 2`,
		`jitai_http_requests_total{code="404",route="POST /v1/studies/{study}/participants/{participant}/decisions"} 2`,
		`jitai_http_requests_total{code="200",route="GET /v1/studies/{study}/participants/{participant}"} 1`,
		`jitai_http_requests_total{code="404",route="/"} 1`,
		`jitai_http_request_duration_seconds_count{route="POST /v1/studies/{study}/participants/{participant}/decisions"} 11`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, bad := range []string{"pid-", "secret", "evil", "no-such-point", "/no/such/route"} {
		if strings.Contains(out, bad) {
			t.Errorf("/metrics holds %q (client-chosen text in a label)", bad)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", grepJitai(out))
	}
}

func grepJitai(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "jitai_") && !strings.Contains(l, "_bucket") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
