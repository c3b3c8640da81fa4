package policies

import (
	"context"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func compileFor(t *testing.T, src string) *Policy {
	t.Helper()
	mods, err := ParseModules(map[string]string{"s/policy/p.rego": src})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(context.Background(), mods, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const inspectPolicy = `package jitai.policy

limit := 3

busy if input.history.prompts_today >= limit

late if object.get(input, ["local", "hour"], 0) >= 21

unavailable contains "busy" if busy

unavailable contains "late" if late

mood := m if {
	some name, e in input.state.ema
	name == "mood"
	m := e.value
} else := 5

decision := {"unavailable_reasons": unavailable, "tailoring": {"mood": mood}}
`

// TestInspectorFiredAndReads: the rules whose bodies succeeded, with the
// input references and rules they read, and the values of every rule.
func TestInspectorFiredAndReads(t *testing.T) {
	ctx := context.Background()
	in, err := NewInspector(ctx, compileFor(t, inspectPolicy))
	if err != nil {
		t.Fatal(err)
	}
	input := ast.MustParseTerm(`{"history": {"prompts_today": 4}, "local": {"hour": 10}, "state": {"ema": {}}}`).Value
	fired, err := in.Fired(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]FiredRule{}
	for _, f := range fired {
		got[f.Head] = f
	}
	busy, ok := got["busy"]
	if !ok || !slices.Equal(busy.Reads, []string{"input.history.prompts_today"}) || !slices.Equal(busy.Uses, []string{"limit"}) || busy.Line != 5 {
		t.Errorf("busy: %+v", busy)
	}
	if u, ok := got[`unavailable contains "busy"`]; !ok || u.Key != "busy" || !slices.Equal(u.Uses, []string{"busy"}) {
		t.Errorf(`unavailable contains "busy": %+v`, u)
	}
	if _, ok := got["late"]; ok {
		t.Error("late fired at 10:00")
	}
	if m, ok := got["mood := 5"]; !ok || !m.Else {
		t.Errorf("the else branch of mood: %+v", fired)
	}
	if _, ok := got["limit := 3"]; !ok || !got["limit := 3"].Constant {
		t.Errorf("limit: %+v", got["limit := 3"])
	}
	values, err := in.Rules(ctx, input)
	if err != nil {
		t.Fatal(err)
	}
	if values["busy"] != true || values["late"] != nil || len(values["unavailable"].([]any)) != 1 {
		t.Errorf("values: %v", values)
	}
}

// TestInputReads: object.get paths count as reads; refs are cut before the
// first variable.
func TestInputReads(t *testing.T) {
	body := ast.MustParseBody(`x := object.get(input, ["local", "hour"], 0); y := input.state.ema[name].value; z := object.get(input.study, "id", "")`)
	want := []string{"input.local.hour", `input.state.ema`, "input.study.id"}
	if got := InputReads(body); !slices.Equal(got, want) {
		t.Errorf("reads %v, want %v", got, want)
	}
}

// TestChangedRules: added, removed and changed rules by name; comments and
// positions do not count.
func TestChangedRules(t *testing.T) {
	a := compileFor(t, "package jitai.policy\n\nx := 1\n\ny := 2\n\ndecision := {}\n")
	b := compileFor(t, "package jitai.policy\n\n# a comment\n\nx := 1\n\ny := 3\n\nz := 4\n\ndecision := {}\n")
	c := compileFor(t, "package jitai.policy\n\ny := 2\n\ndecision := {}\n")
	got := ChangedRules(a, b)
	if len(got) != 2 || got[0].Rule != "y" || got[0].Change != "changed" || got[1].Rule != "z" || got[1].Change != "added" || got[1].Line != 9 {
		t.Errorf("a -> b: %+v", got)
	}
	if got := ChangedRules(a, c); len(got) != 1 || got[0].Rule != "x" || got[0].Change != "removed" {
		t.Errorf("a -> c: %+v", got)
	}
	ctx := context.Background()
	ia, _ := NewInspector(ctx, a)
	ib, _ := NewInspector(ctx, b)
	changed, err := ChangedRuleValues(ctx, ia, ib, ast.NewObject())
	if err != nil || !slices.Equal(changed, []string{"y", "z"}) {
		t.Errorf("changed values %v (%v)", changed, err)
	}
}
