package engine_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine/trial"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

func loadExample(t testing.TB, name string) *policies.Study {
	t.Helper()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	study, err := policies.LoadStudy(context.Background(), "../policies/examples/"+name, cat)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := study.Policy.Evaluator(); ev != policies.EvaluatorIR {
		t.Fatalf("%s runs on %s: %v", name, ev, err)
	}
	return study
}

func evaluatorsAgree(ctx context.Context, p *policies.Policy, input ast.Value) string {
	diff, _ := p.CompareEvaluators(ctx, input)
	return diff
}

// TestEvaluatorsAgreeOnExamples runs both example studies' policies on
// thousands of random inputs with the planned-IR evaluator and with topdown:
// the decoded decisions must be identical.
func TestEvaluatorsAgreeOnExamples(t *testing.T) {
	ctx := context.Background()
	schema := decision.InputSchema()
	for _, name := range []string{"stress-mrt", "mood-most"} {
		study := loadExample(t, name)
		g := decision.NewInputSampler(uint64(len(name)), study.Policy.Modules())
		actions := map[string]int{}
		for i := range 3000 {
			doc := g.Sample(schema)
			input, err := ast.InterfaceToValue(doc)
			if err != nil {
				t.Fatal(err)
			}
			if diff := evaluatorsAgree(ctx, study.Policy, input); diff != "" {
				js, _ := json.Marshal(doc)
				t.Fatalf("%s input %d differs:\n%s\ninput: %s", name, i, diff, js)
			}
			out, err := study.Policy.Eval(ctx, input)
			switch {
			case err != nil:
				actions["error"]++
			case len(out.SafetyReasons) > 0:
				actions["safety"]++
			case len(out.UnavailableReasons) > 0:
				actions["unavailable"]++
			case len(out.Candidates) > 0:
				actions["candidates"]++
			default:
				actions["none"]++
			}
		}
		t.Logf("%s: 3000 random inputs agree; outcomes %v", name, actions)
		// The inputs must exercise the policy, not just its error path.
		for _, k := range []string{"safety", "unavailable", "candidates"} {
			if actions[k] < 50 {
				t.Errorf("%s: only %d random inputs led to %s: the generator misses the policy", name, actions[k], k)
			}
		}
	}
}

// FuzzEvaluatorsAgree: whatever the input, the two evaluators agree.
func FuzzEvaluatorsAgree(f *testing.F) {
	for _, s := range []uint64{1, 2, 3, 42} {
		f.Add(s, false)
		f.Add(s, true)
	}
	schema := decision.InputSchema()
	studies := map[bool]*policies.Study{false: loadExample(f, "stress-mrt"), true: loadExample(f, "mood-most")}
	f.Fuzz(func(t *testing.T, seed uint64, mood bool) {
		study := studies[mood]
		g := decision.NewInputSampler(seed, study.Policy.Modules())
		input, err := ast.InterfaceToValue(g.Sample(schema))
		if err != nil {
			t.Fatal(err)
		}
		if diff := evaluatorsAgree(context.Background(), study.Policy, input); diff != "" {
			t.Fatal(diff)
		}
	})
}

// fallbackCounter is an Observer that counts IR fallbacks.
type fallbackCounter struct {
	mu        sync.Mutex
	fallbacks map[string]int
}

func (*fallbackCounter) Decision(string, string, string, time.Duration) {}
func (*fallbackCounter) PolicyEval(string, time.Duration, error)        {}
func (*fallbackCounter) StoreOp(string, time.Duration, error)           {}
func (f *fallbackCounter) PolicyFallback(study string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fallbacks[study]++
}

// TestDecisionFallsBackToTopdown: where the planned IR stops with an error
// that topdown's evaluation order avoids (here a built-in error in a rule
// body topdown never reaches once the other body succeeded), the decision is
// topdown's, and the observer is told.
func TestDecisionFallsBackToTopdown(t *testing.T) {
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "seam"), `id: seam
name: Seam
timezone: Europe/London
seed: "seam-seed-0123456789"
decision_points:
  - {id: app, kind: app}
delivery_factor: prompt
factors:
  - name: prompt
    type: within
    levels: [none, deliver]
    probability: 0.4
    bounds: [0.1, 0.9]
crisis:
  text: "Call 116 123."
`, `package jitai.policy

decision := {"safety_reasons": ["override" | override], "unavailable_reasons": [], "candidates": [{"id": "box-breathing"}]}

override if input.context.override == true

override if to_number(input.context.level) > 5
`)
	obs := &fallbackCounter{fallbacks: map[string]int{}}
	clk := newTestClock(pluginT0) // enrolment at pluginT0; each decision at its time
	eng, err := engine.New(engine.Components{Store: memstore.New(), Studies: []*policies.Study{study}, Observer: obs,
		Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := eng.Enroll(ctx, "seam", engine.EnrollRequest{ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}
	decide := func(c map[string]any, minute int) *trial.Record {
		t.Helper()
		at := pluginT0.Add(time.Duration(minute) * time.Minute)
		clk.Set(at)
		ans, err := eng.Decide(ctx, "seam", "p1", engine.DecideRequest{DecisionPoint: "app", Time: at, Context: c})
		if err != nil {
			t.Fatal(err)
		}
		return ans.Record
	}
	if rec := decide(map[string]any{"level": "7"}, 1); rec.Action != "safety" || obs.fallbacks["seam"] != 0 {
		t.Fatalf("a level of 7: action %s, %d fallbacks; want safety, none", rec.Action, obs.fallbacks["seam"])
	}
	if rec := decide(map[string]any{"override": true, "level": "high"}, 2); rec.Action != "safety" || obs.fallbacks["seam"] != 1 {
		t.Fatalf("override with a bad level: action %s, %d fallbacks; want topdown's safety decision and 1 fallback", rec.Action, obs.fallbacks["seam"])
	}
}
