package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/policies"
	"github.com/open-policy-agent/opa/v1/ast"
)

// runStudy implements `jitai study check|test|fmt DIR` (docs/study.md).
func runStudy(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprintln(stderr, studyUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return runStudyCheck(args[1:], stdout, stderr)
	case "test":
		return runStudyTest(args[1:], stdout, stderr)
	case "fmt":
		return runStudyFmt(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, studyUsage)
	return 2
}

const studyUsage = "usage: jitai study check DIR | jitai study test [-v] DIR | jitai study fmt [-w] [--check] DIR"

// studyArgs parses a study subcommand's flags and its one DIR (flags may
// come before or after it).
func studyArgs(fs *flag.FlagSet, args []string, stderr io.Writer) (string, bool) {
	fs.SetOutput(stderr)
	var dir string
	for {
		if err := fs.Parse(args); err != nil {
			return "", false
		}
		if fs.NArg() == 0 {
			break
		}
		if dir != "" {
			fmt.Fprintln(stderr, studyUsage)
			return "", false
		}
		dir, args = fs.Arg(0), fs.Args()[1:]
	}
	if dir == "" {
		fmt.Fprintln(stderr, studyUsage)
		return "", false
	}
	return filepath.Clean(dir), true
}

// runStudyCheck reports every problem of a study folder with file:line.
func runStudyCheck(args []string, stdout, stderr io.Writer) int {
	dir, ok := studyArgs(flag.NewFlagSet("study check", flag.ContinueOnError), args, stderr)
	if !ok {
		return 2
	}
	cat, err := interventions.Embedded()
	if err != nil {
		fmt.Fprintf(stderr, "catalogue: %v\n", err)
		return 1
	}
	s, errs := policies.CheckStudy(context.Background(), dir, cat, decision.InputSchema())
	if s != nil {
		// Plugin executables must exist and match their pinned checksums.
		if err := host.Verify(s); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errs = append(errs, &policies.ConfigError{File: filepath.Join(dir, "study.yaml"), Msg: line})
			}
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stdout, e)
		}
		fmt.Fprintf(stdout, "%s: %d problem(s)\n", filepath.Base(dir), len(errs))
		return 1
	}
	paths := map[string]bool{}
	mods, _ := policies.ParseModules(s.PolicyFiles)
	for _, r := range policies.InputRefs(mods) {
		paths[strings.Join(r.Path, ".")] = true
	}
	evaluator, err := checkEvaluators(s)
	if err != nil {
		fmt.Fprintln(stdout, &policies.ConfigError{File: filepath.Join(dir, "policy"), Msg: err.Error()})
		fmt.Fprintf(stdout, "%s: 1 problem(s)\n", filepath.Base(dir))
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (study %s, policy revision %s, %d interventions, reads %d documented input paths)\n",
		filepath.Base(dir), s.Config.ID, s.Revision[:12], s.Catalogue.Len(), len(paths))
	fmt.Fprintf(stdout, "%s: evaluator %s\n", filepath.Base(dir), evaluator)
	return 0
}

// evaluatorSamples is how many generated inputs study check runs through
// both evaluators.
const evaluatorSamples = 1000

// checkEvaluators describes which evaluator the server will use for the
// study's policy and, for the planned IR, checks that it decides as topdown
// does on generated inputs shaped by the documented input schema.
func checkEvaluators(s *policies.Study) (string, error) {
	ev, why := s.Policy.Evaluator()
	if ev != policies.EvaluatorIR {
		return fmt.Sprintf("topdown (the planned IR cannot run this policy: %v)", why), nil
	}
	ctx := context.Background()
	schema := decision.InputSchema()
	g := decision.NewInputSampler(1, s.Policy.Modules())
	handed := 0
	for i := range evaluatorSamples {
		doc := g.Sample(schema)
		input, err := ast.InterfaceToValue(doc)
		if err != nil {
			return "", err
		}
		// Counted: inputs only the IR failed on. Where topdown fails too,
		// the policy itself errs on that input.
		diff, fellBack := s.Policy.CompareEvaluators(ctx, input)
		if fellBack {
			handed++
		}
		if diff != "" {
			js, _ := json.Marshal(doc)
			return "", fmt.Errorf("the planned-IR evaluator and topdown decide differently on generated input %d (%s) for input %s; serve with --evaluator topdown and report this", i, diff, js)
		}
	}
	if handed > 0 {
		return fmt.Sprintf("ir (OPA's planned IR; agrees with topdown on %d generated inputs; %d of them failed on the IR and were handed to topdown, which doubles their cost: see docs/policy.md)", evaluatorSamples, handed), nil
	}
	return fmt.Sprintf("ir (OPA's planned IR; agrees with topdown on %d generated inputs)", evaluatorSamples), nil
}

// runStudyTest runs the study's Rego tests (with coverage) and its
// scenario files.
func runStudyTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("study test", flag.ContinueOnError)
	verbose := fs.Bool("v", false, "list every test and scenario, not only failures")
	dir, ok := studyArgs(fs, args, stderr)
	if !ok {
		return 2
	}
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		fmt.Fprintf(stderr, "catalogue: %v\n", err)
		return 1
	}
	s, err := policies.LoadStudy(ctx, dir, cat)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	name := filepath.Base(dir)
	results, cov, err := s.RunTestsWithCoverage(ctx)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	passed, failed := 0, 0
	for _, r := range results {
		switch {
		case r.Skip:
		case r.Pass:
			passed++
			if *verbose {
				fmt.Fprintf(stdout, "PASS %s:%d %s\n", r.File, r.Line, r.Name)
			}
		default:
			failed++
			fmt.Fprintf(stdout, "FAIL %s:%d %s: %s\n", r.File, r.Line, r.Name, r.Err)
		}
	}
	if passed+failed == 0 {
		fmt.Fprintf(stdout, "%s: rego tests: none (put them in policy/*_test.rego)\n", name)
	} else {
		fmt.Fprintf(stdout, "%s: rego tests: %d passed, %d failed, coverage %.1f%%\n", name, passed, failed, cov.Percent)
	}
	scen, err := runScenarios(ctx, s, name)
	if err != nil {
		var ce policies.ConfigErrors
		if !errors.As(err, &ce) {
			fmt.Fprintln(stderr, err)
			return 1
		}
		for _, e := range ce {
			fmt.Fprintf(stdout, "ERROR %s\n", e)
		}
		failed += len(ce)
	}
	sp, sf := 0, 0
	for _, r := range scen {
		if r.pass() {
			sp++
			if *verbose {
				fmt.Fprintf(stdout, "PASS %s:%d %s\n", r.File, r.Line, r.Name)
			}
			continue
		}
		sf++
		fmt.Fprintf(stdout, "FAIL %s:%d %s\n", r.File, r.Line, r.Name)
		for _, f := range r.Failures {
			fmt.Fprintf(stdout, "    %s:%d: %s\n", r.File, f.Line, f.Msg)
		}
	}
	fmt.Fprintf(stdout, "%s: scenarios: %d passed, %d failed\n", name, sp, sf)
	if failed > 0 || sf > 0 || passed+sp == 0 {
		return 1
	}
	return 0
}

// runStudyFmt formats the study's Rego files with OPA's formatter.
// study.yaml and scenario files are left alone: a YAML round trip can move
// or drop comments, and a study file's comments are part of its protocol.
func runStudyFmt(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("study fmt", flag.ContinueOnError)
	write := fs.Bool("w", false, "rewrite the files that are not formatted")
	check := fs.Bool("check", false, "list the files that are not formatted and exit 1 if there are any")
	dir, ok := studyArgs(fs, args, stderr)
	if !ok {
		return 2
	}
	changed, err := formatRego(dir, *write)
	for _, f := range changed {
		fmt.Fprintln(stdout, f)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *check && len(changed) > 0 {
		fmt.Fprintf(stderr, "%d file(s) not formatted: run jitai study fmt -w %s\n", len(changed), dir)
		return 1
	}
	return 0
}

// loadStudy loads the studies under dir, as serve does, and returns the one
// with the given id; the error lists the ids there are.
func loadStudy(ctx context.Context, dir, id string) (*policies.Study, error) {
	cat, err := interventions.Embedded()
	if err != nil {
		return nil, fmt.Errorf("loading the intervention catalogue: %w", err)
	}
	all, err := policies.LoadStudies(ctx, dir, cat)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range all {
		if s.Config.ID == id {
			return s, nil
		}
		ids = append(ids, s.Config.ID)
	}
	return nil, fmt.Errorf("no study %q in %s (studies: %s)", id, dir, strings.Join(ids, ", "))
}
