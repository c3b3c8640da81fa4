package engine_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
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
	return p.CompareEvaluators(ctx, input)
}

// TestEvaluatorsAgreeOnExamples runs both example studies' policies on
// thousands of random inputs with the planned-IR evaluator and with topdown:
// the decoded decisions must be identical.
func TestEvaluatorsAgreeOnExamples(t *testing.T) {
	ctx := context.Background()
	schema := engine.InputSchema()
	for _, name := range []string{"stress-mrt", "mood-most"} {
		study := loadExample(t, name)
		g := engine.NewInputSampler(uint64(len(name)), study.Policy.Modules())
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
	schema := engine.InputSchema()
	studies := map[bool]*policies.Study{false: loadExample(f, "stress-mrt"), true: loadExample(f, "mood-most")}
	f.Fuzz(func(t *testing.T, seed uint64, mood bool) {
		study := studies[mood]
		g := engine.NewInputSampler(seed, study.Policy.Modules())
		input, err := ast.InterfaceToValue(g.Sample(schema))
		if err != nil {
			t.Fatal(err)
		}
		if diff := evaluatorsAgree(context.Background(), study.Policy, input); diff != "" {
			t.Fatal(diff)
		}
	})
}
