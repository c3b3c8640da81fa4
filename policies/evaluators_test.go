package policies_test

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/policies"
)

func compileWithData(t *testing.T, src string, data map[string]any) *policies.Policy {
	t.Helper()
	mods, err := policies.ParseModules(map[string]string{"p.rego": src})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policies.Compile(context.Background(), mods, data)
	if err != nil {
		t.Fatal(err)
	}
	if ev, why := p.Evaluator(); ev != policies.EvaluatorIR {
		t.Fatalf("evaluated by %s: %v", ev, why)
	}
	return p
}

// TestEvaluatorsAgreeOnTrickyPolicies holds the planned-IR evaluator to
// topdown on the shapes a review found them to disagree on: nested
// documents whose keys share a hash (composite keys hash to the sum of
// their parts), built-in errors that topdown's early exit or indexing never
// reaches, and rules that define one document as two kinds of value.
func TestEvaluatorsAgreeOnTrickyPolicies(t *testing.T) {
	const head = "package jitai.policy\n\n"
	for _, c := range []struct {
		name, rego, input string
		wantErr           bool
	}{
		{name: "a number key into data", rego: `decision := {"candidates": [{"id": "c7"} | data.jitai.catalogue[input.n]], "tailoring": {"x": data.jitai.list["0"]}}
`, input: `{"n": 7}`},
		{name: "a number key into input", rego: `decision := {"candidates": [{"id": "c7"} | input.m[input.n]]}
`, input: `{"n": 7, "m": {"7": true}}`},
		{name: "composite keys sharing a hash", rego: `slots[[day, hour]] contains id if {
	some id in ["a", "b"]
	some [day, hour] in [[1, 4], [2, 3]]
}

decision := {"candidates": [{"id": id} | some id in slots[[2, 3]]], "tailoring": {"n": count(slots)}}
`, input: `{}`},
		{name: "number keys sharing a hash", rego: `a[k] contains v if {
	some v in [10, 20]
	some k in [1, 1.5]
}

b[k][j] := v if {
	some j, v in ["p", "q"]
	some k in [1, 1.5]
}

decision := {"tailoring": {"a": count(a), "a15": sort(a[1.5]), "b": count(b), "b1": b[1]}}
`, input: `{}`},
		{name: "an error topdown's early exit skips", rego: `override if input.context.override == true

override if to_number(input.context.level) > 5

decision := {"safety_reasons": ["override" | override]}
`, input: `{"context": {"override": true, "level": "high"}}`},
		{name: "an error topdown's indexing skips", rego: `s contains "a" if input.a == 1

s contains "b" if to_number(input.s) > 0

decision := {"unavailable_reasons": ["q" | s["a"]]}
`, input: `{"a": 1, "s": "x"}`},
		{name: "one document as an object and a set", rego: `a.b[x] := input.obj if x := "c"

a[y].c contains 1 if y := "b"

decision := {"tailoring": a}
`, input: `{"obj": {"z": 1}}`, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := compileWithData(t, head+c.rego, map[string]any{"catalogue": map[string]any{"7": map[string]any{"title": "seven"}}, "list": []any{"zero"}})
			input := ast.MustParseTerm(c.input).Value
			if diff, _ := p.CompareEvaluators(context.Background(), input); diff != "" {
				t.Fatal(diff)
			}
			out, err := p.Eval(context.Background(), input)
			if (err != nil) != c.wantErr {
				t.Fatalf("Eval: %+v, %v; want error %v", out, err, c.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "conflict") {
				t.Errorf("error %v does not name the conflict", err)
			}
		})
	}
}
