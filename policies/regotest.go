package policies

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
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

// TestStudyData is where the study's Rego tests find the study's settings:
// exactly the block live decisions put at input.study (Config.StudyInput),
// so that a test builds its input from study.yaml instead of a copy of it
// ("study": data.jitai.study). Only the tests get it: a live policy file
// that reads it is refused at load (see ParseModules).
const TestStudyData = "data.jitai.study"

// RunTests runs the study's Rego tests (policy/*_test.rego) with OPA's test
// runner, against the policy and the catalogue data the engine uses, plus
// the study's settings at TestStudyData.
func (s *Study) RunTests(ctx context.Context) ([]TestResult, error) {
	res, _, err := s.RunTestsWithCoverage(ctx)
	return res, err
}

// Coverage is how much of the policy (not the tests) the Rego tests
// evaluated, as OPA's coverage report counts it.
type Coverage struct {
	// Percent of the policy's lines covered.
	Percent float64
	// Files maps each policy file to its percentage.
	Files map[string]float64
	// NotCovered lists the first lines of uncovered ranges by file.
	NotCovered map[string][]int
}

// RunTestsWithCoverage is RunTests that also measures the tests' coverage
// of the policy files.
func (s *Study) RunTestsWithCoverage(ctx context.Context) ([]TestResult, *Coverage, error) {
	srcs := make(map[string]string, len(s.PolicyFiles)+len(s.TestFiles))
	for p, src := range s.PolicyFiles {
		srcs[p] = src
	}
	for p, src := range s.TestFiles {
		srcs[p] = src
	}
	mods, err := ParseModules(srcs)
	if err != nil {
		return nil, nil, err
	}
	comp := ast.NewCompiler().WithCapabilities(pureCapabilities()).WithDefaultRegoVersion(ast.RegoV1)
	store := s.testStore()
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("opening policy data: %w", err)
	}
	cov := cover.New()
	defer store.Abort(ctx, txn)
	ch, err := tester.NewRunner().
		SetCompiler(comp).
		SetStore(store).
		SetModules(mods).
		SetTimeout(30*time.Second).
		SetCoverageQueryTracer(cov).
		SetCoverageRuns([]cover.Kind{}).
		RaiseBuiltinErrors(true).
		RunTests(ctx, txn)
	if err != nil {
		return nil, nil, fmt.Errorf("running rego tests: %w", err)
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
	policyMods := map[string]*ast.Module{}
	for p := range s.PolicyFiles {
		policyMods[p] = mods[p]
	}
	rep := cov.Report(policyMods)
	c := &Coverage{Percent: rep.Coverage, Files: map[string]float64{}, NotCovered: map[string][]int{}}
	for f, fr := range rep.Files {
		if _, ok := s.PolicyFiles[f]; !ok {
			continue
		}
		c.Files[f] = fr.Coverage
		for _, r := range fr.NotCovered {
			c.NotCovered[f] = append(c.NotCovered[f], r.Start.Row)
		}
	}
	return out, c, nil
}

// testStore is the data the Rego tests run against: the policy's own
// (PolicyData of the study's catalogue, as Compile got it) and the study's
// settings at TestStudyData.
func (s *Study) testStore() storage.Store {
	data := PolicyData(s.Catalogue)
	data[strings.TrimPrefix(TestStudyData, "data.jitai.")] = s.Config.StudyInput()
	return inmem.NewFromObjectWithOpts(map[string]any{"jitai": data}, inmem.OptRoundTripOnWrite(true))
}
