package policies

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test.
type TestResult struct {
	Package  string
	Name     string
	File     string
	Line     int
	Pass     bool
	Skip     bool
	Err      string
	Duration time.Duration
}

// RunTests runs the study's Rego tests (policy/*_test.rego) with OPA's test
// runner, against the policy and the catalogue data the engine uses.
func (s *Study) RunTests(ctx context.Context) ([]TestResult, error) {
	srcs := make(map[string]string, len(s.PolicyFiles)+len(s.TestFiles))
	for p, src := range s.PolicyFiles {
		srcs[p] = src
	}
	for p, src := range s.TestFiles {
		srcs[p] = src
	}
	mods, err := ParseModules(srcs)
	if err != nil {
		return nil, err
	}
	comp := ast.NewCompiler().WithCapabilities(pureCapabilities()).WithDefaultRegoVersion(ast.RegoV1)
	store := s.Policy.Store()
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening policy data: %w", err)
	}
	defer store.Abort(ctx, txn)
	ch, err := tester.NewRunner().
		SetCompiler(comp).
		SetStore(store).
		SetModules(mods).
		SetTimeout(30*time.Second).
		RaiseBuiltinErrors(true).
		RunTests(ctx, txn)
	if err != nil {
		return nil, fmt.Errorf("running rego tests: %w", err)
	}
	var out []TestResult
	for r := range ch {
		tr := TestResult{Package: r.Package, Name: r.Name, Pass: r.Pass(), Skip: r.Skip, Duration: r.Duration}
		if r.Location != nil {
			tr.File, tr.Line = r.Location.File, r.Location.Row
		}
		if r.Error != nil {
			tr.Err = r.Error.Error()
			tr.Pass = false
		} else if r.Fail {
			tr.Err = "test rule was false or undefined"
		}
		out = append(out, tr)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out, nil
}
