package engine_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/metrics"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// conflictingNeed is the change a designer made: a second definition of
// need, which clashes with the example's for a stressed, low-mood person.
const conflictingNeed = `
need := "low_mood" if input.state.ema.mood.value <= 4
`

// TestFailSafeOnConflictingRule forces the conflicting rule into a running
// engine (as a test hook: a reload would refuse it): every decision for a
// stressed, low-mood participant is answered 200 with the fail-safe (none,
// reason policy_error, never randomised), recorded with the problem (kind
// conflict and the rule's file:line), and the policy error metric rises;
// nothing internal reaches the phone. A participant at risk still gets the
// crisis signposting: the safety rule, asked alone, still works.
func TestFailSafeOnConflictingRule(t *testing.T) {
	ctx := context.Background()
	src := "../policies/examples/stress-mrt"
	yaml, err := os.ReadFile(filepath.Join(src, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(src, "policy", "policy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	study := policytest.WriteStudy(t, t.TempDir(), string(yaml), string(rego)+conflictingNeed)
	clk := &fakeClock{now: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
	met := metrics.New()
	store := memstore.New()
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now, Observer: met})
	if err != nil {
		t.Fatal(err)
	}
	report := func(p, id, data string) {
		t.Helper()
		if _, _, err := eng.Ingest(ctx, study.Config.ID, p, []trial.Event{{ID: id, Type: trial.EventEMA, Time: clk.now.Add(-time.Minute), Data: json.RawMessage(data)}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"low", "risk"} {
		if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: p}); err != nil {
			t.Fatal(err)
		}
	}
	clk.now = time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)
	report("low", "e1", `{"stress":8,"mood":2}`)
	report("risk", "e1", `{"stress":8,"mood":2,"risk":1}`)
	ans, err := eng.Decide(ctx, study.Config.ID, "low", engine.DecideRequest{DecisionPoint: "morning", Time: clk.now})
	if err != nil {
		t.Fatalf("a conflicting rule reached the phone as an error: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal(ans.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body["action"] != "none" || strings.Join(toStrings(body["reasons"]), ",") != trial.ReasonPolicyError {
		t.Fatalf("answer %s, want action none with reason policy_error", ans.Body)
	}
	if strings.Contains(string(ans.Body), "conflict") || strings.Contains(string(ans.Body), ".rego") {
		t.Fatalf("the phone's answer carries internals: %s", ans.Body)
	}
	rec := ans.Record
	if rec.PolicyError == nil || rec.PolicyError.Kind != "conflict" || !strings.Contains(rec.PolicyError.Location, ".rego:") || rec.Randomised || rec.Available {
		t.Fatalf("record: policy_error %+v randomised %v available %v; want a conflict with its file:line, not randomised", rec.PolicyError, rec.Randomised, rec.Available)
	}
	got, err := store.Decision(ctx, study.Config.ID, rec.ID)
	if err != nil || got.PolicyError == nil {
		t.Fatalf("the fail-safe decision was not recorded with its problem: %v %+v", err, got)
	}
	// Replaying the fail-safe decision with the same policy reproduces it.
	rt, _ := eng.Study(study.Config.ID)
	res, err := decision.Replay(ctx, rt.Runtime, got)
	if err != nil || len(res.Differences) != 0 || len(res.Notes) == 0 {
		t.Fatalf("replay of a fail-safe decision: %v %+v", err, res)
	}
	if n := policyErrors(t, met, study.Config.ID); n < 1 {
		t.Fatalf("policy_errors_total = %v after a failed evaluation", n)
	}
	// At risk: the safety rule alone still decides.
	ans, err = eng.Decide(ctx, study.Config.ID, "risk", engine.DecideRequest{DecisionPoint: "morning", Time: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Record.Action != trial.ActionSafety || ans.Record.PolicyError == nil || ans.Record.PolicyError.Safety != "evaluated" {
		t.Fatalf("participant at risk under a failing policy: action %s, problem %+v; want the signposting from the safety rule", ans.Record.Action, ans.Record.PolicyError)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// policyErrors reads jitai_policy_errors_total{study} from the registry.
func policyErrors(t *testing.T, met *metrics.Metrics, study string) float64 {
	t.Helper()
	mfs, err := met.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "jitai_policy_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "study" && l.GetValue() == study {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
