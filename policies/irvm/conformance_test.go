package irvm_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/test/cases"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/jitai/jitai/policies/irvm"
)

// opaDir is the OPA module's directory in the module cache: its test-case
// suite is the one OPA runs against topdown and its Wasm compiler.
func opaDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/open-policy-agent/opa").Output()
	if err != nil {
		t.Fatalf("locating the OPA module: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// entrypoint turns a test case's query of the form `data.a.b = x` (or
// `x = data.a.b`) into the entrypoint "a/b" and the variable x; ok is false
// for other queries, which an entrypoint plan cannot express.
func entrypoint(query string) (path, variable string, ok bool) {
	body, err := ast.ParseBody(query)
	if err != nil || len(body) != 1 || !body[0].IsEquality() {
		return "", "", false
	}
	a, b := body[0].Operand(0), body[0].Operand(1)
	if _, isVar := a.Value.(ast.Var); isVar {
		a, b = b, a
	}
	ref, isRef := a.Value.(ast.Ref)
	v, isVar := b.Value.(ast.Var)
	if !isRef || !isVar || len(ref) < 2 || !ref[0].Equal(ast.DefaultRootDocument) {
		return "", "", false
	}
	parts := make([]string, 0, len(ref)-1)
	for _, t := range ref[1:] {
		s, isString := t.Value.(ast.String)
		if !isString || strings.Contains(string(s), "/") {
			return "", "", false
		}
		parts = append(parts, string(s))
	}
	return strings.Join(parts, "/"), string(v), true
}

// TestOPAConformance runs OPA's own evaluation test cases (Rego v1) through
// the interpreter: every case whose query asks for one document
// (`data.a.b = x`) is planned as an entrypoint with OPA's compile API, as
// policies are, and must give OPA's expected result or error. Cases the
// planner or the loader refuse are counted: a refused policy is evaluated by
// topdown in the engine.
func TestOPAConformance(t *testing.T) {
	dir := filepath.Join(opaDir(t), "v1", "test", "cases", "testdata", "v1")
	set, err := cases.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ran, passed, other, unplanned, refused int
	var deferred []string
	var failures []string
	for _, tc := range set.Sorted().Cases {
		if len(tc.Env) > 0 {
			continue
		}
		path, variable, ok := entrypoint(tc.Query)
		if !ok {
			other++
			continue
		}
		caps := ast.CapabilitiesForThisVersion(ast.CapabilitiesExperimentalKeywords(tc.ExperimentalKeywords))
		plan, err := planCase(ctx, tc, path, caps)
		if err != nil {
			unplanned++ // compile errors the case expects, or plans OPA cannot make
			continue
		}
		prog, err := irvm.Load(plan, nil)
		if err != nil {
			refused++
			continue
		}
		var input ast.Value
		if tc.InputTerm != nil {
			input = ast.MustParseTerm(*tc.InputTerm).Value
		} else if tc.Input != nil {
			input = ast.MustInterfaceToValue(*tc.Input)
		}
		var data ast.Value = ast.NewObject()
		if tc.Data != nil {
			data = ast.MustInterfaceToValue(*tc.Data)
		}
		ran++
		vals, err := prog.Eval(ctx, input, data, irvm.Options{NonStrict: !tc.StrictError})
		if errors.Is(err, irvm.ErrAmbiguousKey) {
			// A lookup whose answer depends on data-or-input: the engine
			// evaluates such an input with topdown.
			deferred = append(deferred, tc.Note)
			continue
		}
		// The entrypoint's value, bound to the query's variable.
		res := make([]ast.Object, len(vals))
		for i, v := range vals {
			res[i] = ast.NewObject(ast.Item(ast.StringTerm(variable), ast.NewTerm(v)))
		}
		if msg := check(tc, res, err); msg != "" {
			failures = append(failures, fmt.Sprintf("%s (%s): %s", tc.Note, filepath.Base(tc.Filename), msg))
			continue
		}
		passed++
	}
	t.Logf("OPA conformance: %d cases run, %d passed, %d deferred to topdown %v; %d not planned, %d refused by the loader; %d queries are not one document", ran, passed, len(deferred), deferred, unplanned, refused, other)
	if len(deferred) > 5 {
		t.Errorf("%d cases deferred to topdown: the ambiguity check is too broad", len(deferred))
	}
	for _, f := range failures {
		t.Error(f)
	}
	if ran < 1000 {
		t.Errorf("only %d cases ran: the suite was not found or the planner refused most of it", ran)
	}
}

// planCase parses a case's modules as Rego v1 and plans the entrypoint.
func planCase(ctx context.Context, tc cases.TestCase, path string, caps *ast.Capabilities) (*ir.Policy, error) {
	mods := make(map[string]*ast.Module, len(tc.Modules))
	for i, src := range tc.Modules {
		name := fmt.Sprintf("module-%d.rego", i)
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1, Capabilities: caps})
		if err != nil {
			return nil, err
		}
		mods[name] = m
	}
	return irvm.Plan(ctx, path, mods, caps)
}

func check(tc cases.TestCase, res []ast.Object, err error) string {
	wantErr := tc.WantErrorCode != nil || tc.WantError != nil
	if wantErr {
		if err == nil {
			return fmt.Sprintf("want error %v %v, got results %v", deref(tc.WantErrorCode), deref(tc.WantError), res)
		}
		if tc.WantErrorCode != nil {
			if code := errorCode(err); code != "" && code != *tc.WantErrorCode {
				return fmt.Sprintf("want error code %s, got %v", *tc.WantErrorCode, err)
			}
		}
		return ""
	}
	if err != nil {
		return fmt.Sprintf("unexpected error: %v", err)
	}
	if tc.WantDefined != nil {
		if *tc.WantDefined != (len(res) > 0) {
			return fmt.Sprintf("want defined=%v, got %d results", *tc.WantDefined, len(res))
		}
		return ""
	}
	if tc.WantResult == nil {
		return ""
	}
	var want []string
	for _, r := range *tc.WantResult {
		obj := ast.NewObject()
		for k, v := range r {
			obj.Insert(ast.StringTerm(k), ast.NewTerm(ast.MustInterfaceToValue(v)))
		}
		want = append(want, canon(obj, tc.SortBindings))
	}
	var got []string
	for _, r := range res {
		if tc.IgnoreGeneratedVars {
			kept := ast.NewObject()
			r.Foreach(func(k, v *ast.Term) {
				if s, ok := k.Value.(ast.String); ok && strings.HasPrefix(string(s), "__") {
					return
				}
				kept.Insert(k, v)
			})
			r = kept
		}
		// As JSON, like OPA's harness: sets become arrays.
		j, err := ast.JSON(r)
		if err != nil {
			return fmt.Sprintf("result %v: %v", r, err)
		}
		got = append(got, canon(ast.MustInterfaceToValue(j).(ast.Object), tc.SortBindings))
	}
	// Compared as values, so that 3.0 and 3 are the same number, and each
	// distinct binding once, as topdown reports them.
	if !sameValues(want, got) {
		return fmt.Sprintf("\n want %v\n got  %v", want, got)
	}
	return ""
}

func sameValues(want, got []string) bool {
	norm := func(xs []string) []ast.Value {
		vs := make([]ast.Value, 0, len(xs))
		for _, x := range xs {
			vs = append(vs, ast.MustParseTerm(x).Value)
		}
		sort.Slice(vs, func(i, j int) bool { return ast.Compare(vs[i], vs[j]) < 0 })
		out := vs[:0]
		for i, v := range vs {
			if i == 0 || ast.Compare(v, vs[i-1]) != 0 {
				out = append(out, v)
			}
		}
		return out
	}
	w, g := norm(want), norm(got)
	if len(w) != len(g) {
		return false
	}
	for i := range w {
		if ast.Compare(w[i], g[i]) != 0 {
			return false
		}
	}
	return true
}

func canon(obj ast.Object, sortBindings bool) string {
	if !sortBindings {
		return obj.String()
	}
	out := ast.NewObject()
	obj.Foreach(func(k, v *ast.Term) {
		if arr, ok := v.Value.(*ast.Array); ok {
			v = ast.NewTerm(arr.Sorted())
		}
		out.Insert(k, v)
	})
	return out.String()
}

func errorCode(err error) string {
	var te *topdown.Error
	if errors.As(err, &te) {
		return te.Code
	}
	var ie *irvm.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
