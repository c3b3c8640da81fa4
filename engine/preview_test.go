package engine_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/policies"
)

// TestPreviewIsTheLiveDecision: for the same participant state, Preview
// builds the same policy input (same hash) and reaches the same
// availability, reasons, candidates and tailoring as Decide, and writes
// nothing.
func TestPreviewIsTheLiveDecision(t *testing.T) {
	ctx := context.Background()
	study, err := policies.LoadStudy(ctx, "../policies/examples/stress-mrt", mustCatalogue(t))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "p.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 18, 14, 30, 0, 0, time.UTC)
	enrolled := now.AddDate(0, 0, -2).Truncate(time.Microsecond)
	clock := enrolled
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: "p1", Timezone: "Europe/London"})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(id, typ string, ago time.Duration, data string) trial.Event {
		return trial.Event{ID: id, Type: typ, Time: now.Add(-ago), Data: json.RawMessage(data)}
	}
	cases := []struct {
		name   string
		events []trial.Event
		ctx    map[string]any
	}{
		{"high stress", []trial.Event{ev("e1", "ema", 20*time.Minute, `{"stress": 9, "energy": 2}`)}, nil},
		{"driving", []trial.Event{ev("e2", "context", 5*time.Minute, `{"driving": true}`)}, map[string]any{"location": "work"}},
		{"risk", []trial.Event{ev("e3", "ema", time.Hour, `{"risk": 1}`)}, nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pid := p.ID
			if i > 0 {
				pid = c.name
				if _, _, err := eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: pid, Timezone: "Europe/London"}); err != nil {
					t.Fatal(err)
				}
			}
			clock = now
			defer func() { clock = enrolled }()
			if _, _, err := eng.Ingest(ctx, "stress-mrt", pid, c.events); err != nil {
				t.Fatal(err)
			}
			rt, _ := eng.Study("stress-mrt")
			snap, err := decision.PreviewSnapshot(rt.Runtime, decision.PreviewParticipant{ID: pid, Timezone: "Europe/London", EnrolledAt: enrolled}, c.events, nil, now)
			if err != nil {
				t.Fatal(err)
			}
			req := engine.DecideRequest{DecisionPoint: "afternoon", Time: now, Context: c.ctx}
			before, _ := st.ListDecisions(ctx, trial.DecisionQuery{Study: "stress-mrt", Limit: 100})
			prev, err := eng.Preview(ctx, "stress-mrt", snap, req)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := eng.Preview(ctx, "stress-mrt", snap, req)
			after, _ := st.ListDecisions(ctx, trial.DecisionQuery{Study: "stress-mrt", Limit: 100})
			if len(after) != len(before) {
				t.Fatal("Preview recorded a decision")
			}
			if again.ID != prev.ID || again.Action != prev.Action {
				t.Error("Preview is not reproducible")
			}
			ans, err := eng.Decide(ctx, "stress-mrt", pid, req)
			if err != nil {
				t.Fatal(err)
			}
			live := ans.Record
			if prev.InputHash != live.InputHash {
				t.Errorf("policy input differs:\npreview %s\nlive    %s", prev.Input, live.Input)
			}
			if prev.Available != live.Available || !slices.Equal(prev.UnavailableReasons, live.UnavailableReasons) ||
				!slices.Equal(prev.SafetyReasons, live.SafetyReasons) || !slices.Equal(prev.Candidates, live.Candidates) ||
				prev.PolicyRevision != live.PolicyRevision {
				t.Errorf("preview %+v\nlive %+v", prev, live)
			}
			if prev.Action == trial.ActionSafety || !prev.Available {
				if prev.Action != live.Action || !slices.Equal(prev.Reasons, live.Reasons) {
					t.Errorf("action %s %v, live %s %v", prev.Action, prev.Reasons, live.Action, live.Reasons)
				}
			}
		})
	}
}
