package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// inputGen makes random policy inputs shaped by the documented input schema:
// fields present or missing, mostly of their documented type but sometimes
// not, and strings and keys drawn from the policy's own string literals, so
// that the policy's branches are actually taken.
type inputGen struct {
	r     *rand.Rand
	words []string
}

func newInputGen(seed uint64, mods map[string]*ast.Module) *inputGen {
	seen := map[string]bool{}
	words := []string{"22:00", "08:00", "07:30", "23:59", "00:00", "24:00", "9:00", "", "home", "x"}
	for _, m := range mods {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if s, ok := t.Value.(ast.String); ok && len(s) < 40 && !seen[string(s)] {
				seen[string(s)] = true
				words = append(words, string(s))
			}
			return false
		})
	}
	sort.Strings(words)
	return &inputGen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), words: words}
}

func (g *inputGen) word() string { return g.words[g.r.IntN(len(g.words))] }

func (g *inputGen) number() any {
	switch g.r.IntN(4) {
	case 0:
		return []int{-1, 0, 1, 2, 3, 4, 7, 8, 10, 14, 15, 30, 31, 89, 90, 91, 359, 360, 1199, 1200, 1259, 1260, 1439, 1440, 1441}[g.r.IntN(25)]
	case 1:
		return g.r.IntN(11)
	case 2:
		return json.Number(fmt.Sprintf("%.2f", g.r.Float64()*12-1))
	}
	return g.r.IntN(1500)
}

func (g *inputGen) scalar() any {
	switch g.r.IntN(5) {
	case 0:
		return g.word()
	case 1:
		return g.r.IntN(2) == 0
	case 2:
		return nil
	}
	return g.number()
}

func (g *inputGen) value(f *policies.InputField, depth int) any {
	if g.r.IntN(12) == 0 { // the wrong type now and then
		return g.scalar()
	}
	switch f.Type {
	case policies.FieldString:
		return g.word()
	case policies.FieldNumber:
		return g.number()
	case policies.FieldBool:
		return g.r.IntN(3) > 0
	case policies.FieldArray:
		n := g.r.IntN(5)
		out := make([]any, n)
		for i := range out {
			if g.r.IntN(4) == 0 {
				out[i] = g.scalar()
			} else {
				out[i] = g.word()
			}
		}
		return out
	case policies.FieldObject:
		out := map[string]any{}
		for k, sub := range f.Fields {
			if g.r.IntN(5) > 0 {
				out[k] = g.value(sub, depth+1)
			}
		}
		if f.Each != nil {
			for range g.r.IntN(6) {
				out[g.word()] = g.value(f.Each, depth+1)
			}
		}
		return out
	}
	if depth > 3 {
		return g.scalar()
	}
	return g.scalar()
}

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

// evaluatorsAgree evaluates input with both evaluators and reports any
// difference in the decoded decision or in whether it failed.
func evaluatorsAgree(ctx context.Context, p *policies.Policy, input ast.Value) string {
	ir, irErr := p.Eval(ctx, input)
	td, tdErr := p.EvalTopdown(ctx, input)
	if (irErr == nil) != (tdErr == nil) {
		return fmt.Sprintf("ir error %v, topdown error %v", irErr, tdErr)
	}
	a, _ := json.Marshal(ir)
	b, _ := json.Marshal(td)
	if string(a) != string(b) {
		return fmt.Sprintf("ir %s\ntopdown %s", a, b)
	}
	return ""
}

// TestEvaluatorsAgreeOnExamples runs both example studies' policies on
// thousands of random inputs with the planned-IR evaluator and with topdown:
// the decoded decisions must be identical.
func TestEvaluatorsAgreeOnExamples(t *testing.T) {
	ctx := context.Background()
	schema := engine.InputSchema()
	for _, name := range []string{"stress-mrt", "mood-most"} {
		study := loadExample(t, name)
		g := newInputGen(uint64(len(name)), study.Policy.Modules())
		actions := map[string]int{}
		for i := range 3000 {
			doc := g.value(schema, 0)
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
		g := newInputGen(seed, study.Policy.Modules())
		input, err := ast.InterfaceToValue(g.value(schema, 0))
		if err != nil {
			t.Fatal(err)
		}
		if diff := evaluatorsAgree(context.Background(), study.Policy, input); diff != "" {
			t.Fatal(diff)
		}
	})
}
