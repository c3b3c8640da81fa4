package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
)

// checkHealthAgainstLog compares GET /v1/studies/{study}/health with a
// recomputation from the decision log the API lists.
func checkHealthAgainstLog(t *testing.T, hc *http.Client, base string, wantTotal int) {
	t.Helper()
	recs := listRecords(t, hc, base, 250)
	if len(recs) != wantTotal {
		t.Fatalf("%d records listed, %d decisions answered", len(recs), wantTotal)
	}
	r, err := do(hc, "GET", base+"/v1/studies/"+study+"/health", nil, "")
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("health: %v %d %s", err, r.status, r.body)
	}
	var h engine.StudyHealth
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatal(err)
	}
	actions, reasons := map[string]int64{}, map[string]int64{}
	randomised, treated, expected := map[string]int64{}, map[string]int64{}, map[string]float64{}
	for _, rec := range recs {
		actions[rec.Action]++
		for _, why := range rec.UnavailableReasons {
			reasons[why]++
		}
		for _, f := range rec.Factors {
			if rec.Randomised && f.Type == "within" && f.Probability != nil {
				randomised[f.Name]++
				treated[f.Name] += int64(f.Level)
				expected[f.Name] += *f.Probability
			}
		}
	}
	if h.Decisions.Total != int64(len(recs)) || fmt.Sprint(h.Decisions.ByAction) != fmt.Sprint(actions) || fmt.Sprint(h.Availability.ByReason) != fmt.Sprint(reasons) {
		t.Fatalf("health %+v %+v; the log: %d decisions, actions %v, reasons %v", h.Decisions, h.Availability, len(recs), actions, reasons)
	}
	for _, f := range h.Factors {
		if f.Randomised != randomised[f.Name] || f.Treated != treated[f.Name] || math.Abs(f.Expected-expected[f.Name]) > 1e-6 || f.Randomised == 0 {
			t.Fatalf("factor %+v; the log: randomised %d treated %d expected %.6f", f, randomised[f.Name], treated[f.Name], expected[f.Name])
		}
	}
}

// TestHealthSurvivesKill: the health of a study served by `jitai serve`
// equals a recomputation from its decision log, and again after the
// server is killed with SIGKILL and restarted over the same data (the
// aggregates are rebuilt from the log). The console is served beside it.
func TestHealthSurvivesKill(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	ids := participantIDs(8)
	enrolAll(t, hc, srv.base, ids)
	start := laterDay(time.UTC).Add(7 * time.Hour)
	const n = 240
	for i := range n {
		ctx := ""
		if i%5 == 0 {
			ctx = `,"context":{"driving":true}`
		}
		body := fmt.Sprintf(`{"decision_point":%q,"time":%q%s}`, onDemand, start.Add(time.Duration(i)*11*time.Minute).Format(time.RFC3339), ctx)
		r, err := do(hc, "POST", srv.base+"/v1/studies/"+study+"/participants/"+ids[i%len(ids)]+"/decisions", []byte(body), fmt.Sprintf("h-%d", i))
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("decision %d: %v %d %s", i, err, r.status, r.body)
		}
	}
	checkHealthAgainstLog(t, hc, srv.base, n)
	r, err := do(hc, "GET", srv.base+"/console/", nil, "")
	if err != nil || r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(string(r.body), `data-study="`+study+`"`) {
		t.Fatalf("GET /console/: %v %d %.300s", err, r.status, r.body)
	}

	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if !srv.wait(10 * time.Second) {
		t.Fatal("the killed server did not exit")
	}
	srv2 := startServer(t, data)
	hc2 := newHTTPClient()
	defer hc2.CloseIdleConnections()
	checkHealthAgainstLog(t, hc2, srv2.base, n)
}
