package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	loadgen "github.com/jitai/jitai/cmd/jitai-load/load"
)

// TestLoadGeneratorAgainstEmbedded drives `jitai serve` (embedded store)
// with the load generator of cmd/jitai-load: every request is answered
// 200, the answers mix deliveries, randomised non-deliveries, quiet hours
// and both burden caps, every request's key is recorded exactly once, and
// the result's counts agree with what was sent and recorded.
func TestLoadGeneratorAgainstEmbedded(t *testing.T) {
	srv := startServer(t, t.TempDir())
	var mu sync.Mutex
	sent := map[string]string{} // key -> participant
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		URLs: []string{srv.base}, Study: study, Participants: 30, ParticipantPrefix: "gen-", Concurrency: 8,
		Requests: 1200, Enrol: true, Days: 2, StartTomorrow: true, Seed: 7,
		Observe: func(s *loadgen.Sample) {
			mu.Lock()
			sent[s.Key] = s.Participant
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	res.Table(&table)
	t.Logf("\n%s", table.String())
	if res.Enrolled != 30 {
		t.Errorf("%d participants newly enrolled, want 30", res.Enrolled)
	}
	if res.Requests != 1200 || res.OK != 1200 || res.Status[http.StatusOK] != 1200 || len(res.Transport) != 0 {
		t.Errorf("requests %d, ok %d, statuses %v, transport errors %v; want 1200 answered 200", res.Requests, res.OK, res.Status, res.Transport)
	}
	for _, want := range []string{"deliver", "none"} {
		if res.Actions[want] == 0 {
			t.Errorf("no %s decision in %v", want, res.Actions)
		}
	}
	for _, want := range []string{"quiet_hours", "burden_daily_cap", "burden_min_gap", "randomised_no_prompt"} {
		if res.Reasons[want] == 0 {
			t.Errorf("no decision with reason %s: %v", want, res.Reasons)
		}
	}
	if l := res.Latency; l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max || res.DecisionsPerSecond <= 0 {
		t.Errorf("latency %+v, %.1f decisions/s", l, res.DecisionsPerSecond)
	}

	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	recs := listRecords(t, hc, srv.base, 500)
	if len(recs) != 1200 || len(sent) != 1200 {
		t.Errorf("%d records for %d distinct keys sent, want 1200", len(recs), len(sent))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if seen[r.IdempotencyKey] {
			t.Errorf("key %s recorded twice", r.IdempotencyKey)
		}
		seen[r.IdempotencyKey] = true
		if p, ok := sent[r.IdempotencyKey]; !ok || p != r.ParticipantID {
			t.Errorf("record %s: key %q participant %s was not sent so", r.DecisionID, r.IdempotencyKey, r.ParticipantID)
		}
	}
}
