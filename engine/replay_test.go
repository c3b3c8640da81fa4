package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// budgetPolicyWithGaps is budgetPolicy, unavailable when stress is low.
const budgetPolicyWithGaps = `package jitai.policy

level := "high" if input.context.stress >= 5
else := "low"

unavailable contains "calm" if input.context.stress < 3

decision := {
	"safety_reasons": [],
	"unavailable_reasons": unavailable,
	"candidates": [{"id": id, "weight": 1} | some id in data.jitai.by_target.stress],
	"tailoring": {"level": level},
}
`

// TestReplayBudgeted: decisions of a budgeted factor replay exactly (the
// budget probability, which depends on the day's earlier points in the
// participant's state, is taken from the record); replayed with a policy
// that makes unavailable points available, the budget probability the log
// does not hold is the study's, and a note says so.
func TestReplayBudgeted(t *testing.T) {
	ctx := context.Background()
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "budget"), budgetStudy, budgetPolicyWithGaps)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "b.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	clk := newTestClock(base) // each enrolment at base; each decision at its time
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		pid := fmt.Sprintf("p%d", i)
		clk.Set(base)
		if _, _, err := eng.Enroll(ctx, "budget", engine.EnrollRequest{ParticipantID: pid}); err != nil {
			t.Fatal(err)
		}
		for slot := 0; slot < 40; slot++ {
			at := base.Add(8*time.Hour + time.Duration(slot)*20*time.Minute)
			stress := float64((slot*7 + i*3) % 10)
			clk.Set(at)
			if _, err := eng.Decide(ctx, "budget", pid, engine.DecideRequest{DecisionPoint: "app", Time: at, Context: map[string]any{"stress": stress}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	recs, err := store.ListDecisions(ctx, trial.DecisionQuery{Study: "budget", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := eng.Study("budget")
	budgeted, unavailable := 0, 0
	for _, rec := range recs {
		res, err := decision.Replay(ctx, rt.Runtime, rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Differences) > 0 || len(res.Notes) > 0 {
			t.Fatalf("%s: differences %v, notes %v", rec.ID, res.Differences, res.Notes)
		}
		if rec.Available && rec.Factors[0].Budget != nil {
			budgeted++
		}
		if !rec.Available {
			unavailable++
		}
	}
	if budgeted < 50 || unavailable < 20 {
		t.Fatalf("%d budgeted and %d unavailable decisions: the test needs both", budgeted, unavailable)
	}

	// Replayed with the policy that is always available.
	rt2, err := decision.NewRuntime(policytest.WriteStudy(t, filepath.Join(t.TempDir(), "budget"), budgetStudy, budgetPolicy))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		res, err := decision.Replay(ctx, rt2, rec)
		if err != nil {
			t.Fatal(err)
		}
		fd := res.Replayed.Factors[0]
		if rec.Available {
			if len(res.Differences) > 0 {
				t.Fatalf("%s was available and is the same: %v", rec.ID, res.Differences)
			}
			continue
		}
		if !res.Replayed.Available || len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "factor prompt: its probability (source budget) depends on the participant's state") {
			t.Fatalf("%s: available %v, notes %v", rec.ID, res.Replayed.Available, res.Notes)
		}
		if *fd.Probability != 0.2 || fd.Source != "budget (not logged: study probability)" {
			t.Fatalf("%s: probability %v source %q", rec.ID, *fd.Probability, fd.Source)
		}
	}
}

// TestCompareNumbers: numbers compare by value whatever their Go type (a
// policy's json.Number, a log file's float64).
func TestCompareNumbers(t *testing.T) {
	p1, p2 := 0.6, 0.6
	a := &trial.Record{Action: "deliver", Tailoring: map[string]any{"stress": float64(7)}, Factors: []trial.FactorDraw{{Name: "f", Probability: &p1}}}
	b := &trial.Record{Action: "deliver", Tailoring: map[string]any{"stress": "7"}, Factors: []trial.FactorDraw{{Name: "f", Probability: &p2}}}
	if d := decision.Compare(a, b); len(d) != 1 || d[0].Field != "tailoring" {
		t.Errorf("string 7 vs number 7: %v", d)
	}
	b.Tailoring["stress"] = 7
	if d := decision.Compare(a, b); len(d) != 0 {
		t.Errorf("int 7 vs float 7: %v", d)
	}
	p2 = 0.7
	if d := decision.Compare(a, b); len(d) != 1 || d[0].String() != "factors.f.probability: 0.6 -> 0.7" {
		t.Errorf("probability: %v", d)
	}
}

// TestReplayAfterReencoding: a record that went through encoding/json (an
// API answer, a JSONL file), which escapes <, > and & in the input, still
// matches its input hash and replays; an altered input does not.
func TestReplayAfterReencoding(t *testing.T) {
	ctx := context.Background()
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "budget"), budgetStudy, budgetPolicy)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "b.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, "budget", engine.EnrollRequest{ParticipantID: "p"}); err != nil {
		t.Fatal(err)
	}
	ans, err := eng.Decide(ctx, "budget", "p", engine.DecideRequest{DecisionPoint: "app", Time: at, Context: map[string]any{"stress": 8.0, "place": "a<b&c>"}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ans.Record)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `\u003c`) {
		t.Fatalf("encoding/json did not escape the input: %s", raw)
	}
	var rec trial.Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	rt, _ := eng.Study("budget")
	res, err := decision.Replay(ctx, rt.Runtime, &rec)
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("replay after re-encoding: %v %v", err, res)
	}
	rec.Input = json.RawMessage(strings.Replace(string(rec.Input), `"stress":8`, `"stress":9`, 1))
	if _, err := decision.Replay(ctx, rt.Runtime, &rec); !errors.Is(err, decision.ErrInputHash) {
		t.Fatalf("altered input: %v, want ErrInputHash", err)
	}
}

// TestReplayBetweenPerson: decisions of the factorial mood-most study
// (between-person factors that change the rendered content) replay
// exactly, rendering included.
func TestReplayBetweenPerson(t *testing.T) {
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	study, err := policies.LoadStudy(ctx, "../policies/examples/mood-most", cat)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "m.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16; i++ {
		pid := fmt.Sprintf("m%02d", i)
		now = time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC) // enrolled before the first decision (09:00)
		if _, _, err := eng.Enroll(ctx, "mood-most", engine.EnrollRequest{ParticipantID: pid, Strata: map[string]string{"site": []string{"a", "b"}[i%2]}}); err != nil {
			t.Fatal(err)
		}
		for d := 0; d < 3; d++ {
			for _, dp := range study.Config.DecisionPoints {
				if dp.Kind != "scheduled" {
					continue // the app point on_demand: the scheduled points suffice
				}
				minute, _ := trial.ParseClock(dp.Time)
				now = time.Date(2026, 11, 2+d, 0, minute, 0, 0, time.UTC)
				ema := json.RawMessage(fmt.Sprintf(`{"mood":%d,"energy":%d}`, (i+d)%10, (i*3+d)%10))
				if _, _, err := eng.Ingest(ctx, "mood-most", pid, []trial.Event{{ID: fmt.Sprintf("e%d%s", d, dp.ID), Type: trial.EventEMA, Time: now.Add(-time.Minute), Data: ema}}); err != nil {
					t.Fatal(err)
				}
				if _, err := eng.Decide(ctx, "mood-most", pid, engine.DecideRequest{DecisionPoint: dp.ID, Time: now}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	recs, err := store.ListDecisions(ctx, trial.DecisionQuery{Study: "mood-most", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := eng.Study("mood-most")
	delivered := 0
	for _, rec := range recs {
		res, err := decision.Replay(ctx, rt.Runtime, rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Differences) > 0 {
			t.Errorf("%s: %v", rec.ID, res.Differences)
		}
		if rec.Intervention != nil {
			delivered++
		}
	}
	if len(recs) != 16*3*3 || delivered < 20 {
		t.Fatalf("%d decisions, %d delivered: the test needs deliveries", len(recs), delivered)
	}
}

// FuzzReplay: a logged input of any shape is replayed or refused with an
// error, never a panic (logs are read from files and other servers).
func FuzzReplay(f *testing.F) {
	ctx := context.Background()
	study := policytest.WriteStudy(f, filepath.Join(f.TempDir(), "budget"), budgetStudy, budgetPolicyWithGaps)
	store, err := sqlite.Open(filepath.Join(f.TempDir(), "f.db"), sqlite.Options{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	defer store.Close()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: func() time.Time { return at }})
	if err != nil {
		f.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, "budget", engine.EnrollRequest{ParticipantID: "p"}); err != nil {
		f.Fatal(err)
	}
	ans, err := eng.Decide(ctx, "budget", "p", engine.DecideRequest{DecisionPoint: "app", Time: at, Context: map[string]any{"stress": 8.0}})
	if err != nil {
		f.Fatal(err)
	}
	rt, _ := eng.Study("budget")
	f.Add([]byte(ans.Record.Input))
	f.Add([]byte(`{"local":{"timezone":"Europe/London"},"participant":{"assignment":{"x":1}},"context":{"stress":1}}`))
	f.Add([]byte(`{"local":{"timezone":"../../etc/passwd"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, input []byte) {
		rec := *ans.Record
		rec.Input, rec.InputHash = input, ""
		res, err := decision.Replay(ctx, rt.Runtime, &rec)
		if err == nil && res.Replayed == nil {
			t.Fatal("no error and no replayed record")
		}
	})
}
