package irvm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"

	"github.com/jitai/jitai/policies/irvm"
)

// plan plans an entrypoint (e.g. "p/v") of one module, p.rego.
func plan(t *testing.T, entrypoint, module string) *ir.Policy {
	t.Helper()
	m, err := ast.ParseModuleWithOpts("p.rego", module, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := irvm.Plan(context.Background(), entrypoint, map[string]*ast.Module{"p.rego": m}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, entrypoint, module string) *irvm.Program {
	t.Helper()
	pl := plan(t, entrypoint, module)
	prog, err := irvm.Load(pl, nil)
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

// TestEvalIsCutOffByItsContext: a policy that runs long stops with an error
// when its context ends, as under topdown.
func TestEvalIsCutOffByItsContext(t *testing.T) {
	prog := load(t, "p/n", `package p
n := count([y | some a in numbers.range(1, 3000); some b in numbers.range(1, 3000); y := a * b])
`)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := prog.Eval(ctx, nil, ast.NewObject(), irvm.Options{})
	if err == nil {
		t.Fatal("a 9-million-element comprehension finished inside 50 ms, or was not cut off")
	}
	if !strings.Contains(err.Error(), "cancel") {
		t.Errorf("error %q does not say the evaluation was cancelled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cut off after %s, long after its 50 ms deadline", d)
	}
}

// TestBuiltinErrors: a built-in's error stops a strict evaluation with the
// policy location and is an undefined value in a non-strict one.
func TestBuiltinErrors(t *testing.T) {
	prog := load(t, "p/v", `package p
v := to_number(input.s)
`)
	in := ast.MustParseTerm(`{"s": "not a number"}`).Value
	_, err := prog.Eval(context.Background(), in, ast.NewObject(), irvm.Options{})
	if err == nil || !strings.Contains(err.Error(), "p.rego:2") || !strings.Contains(err.Error(), "to_number") {
		t.Errorf("strict: error %v, want to_number's error at p.rego:2", err)
	}
	vals, err := prog.Eval(context.Background(), in, ast.NewObject(), irvm.Options{NonStrict: true})
	if err != nil || len(vals) != 0 {
		t.Errorf("non-strict: %v, %v; want undefined", vals, err)
	}
}

// TestConflictsAreErrors: a complete rule with two values is an error.
func TestConflictsAreErrors(t *testing.T) {
	prog := load(t, "p/v", `package p
v := 1 if input.a
v := 2 if input.b
`)
	_, err := prog.Eval(context.Background(), ast.MustParseTerm(`{"a": true, "b": true}`).Value, ast.NewObject(), irvm.Options{})
	var ie *irvm.Error
	if !errors.As(err, &ie) || ie.Code != "eval_conflict_error" {
		t.Errorf("error %v, want an eval_conflict_error", err)
	}
}

// TestWithIsRefused: plans using `with` are refused, so the caller keeps
// topdown for them.
func TestWithIsRefused(t *testing.T) {
	pl := plan(t, "p/v", `package p
v if {
	w with input.a as 1
}

w if input.a == 1
`)
	if _, err := irvm.Load(pl, nil); err == nil || !strings.Contains(err.Error(), "`with`") {
		t.Errorf("Load: %v, want a refusal naming with", err)
	}
}

// TestCapabilitiesLimitBuiltins: a built-in outside the capabilities makes
// Load refuse the plan.
func TestCapabilitiesLimitBuiltins(t *testing.T) {
	pl := plan(t, "p/v", `package p
v := upper(input.s)
`)
	caps := &ast.Capabilities{Builtins: []*ast.Builtin{ast.Lower}}
	if _, err := irvm.Load(pl, caps); err == nil || !strings.Contains(err.Error(), "upper") {
		t.Errorf("Load: %v, want a refusal naming upper", err)
	}
}
