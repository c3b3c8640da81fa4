package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/policies"
)

// newStudyCheckCmd is `jitai study check DIR`.
func newStudyCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check DIR",
		Short: "Report every problem of a study folder, each as file:line: reason",
		Long: `Check a study folder as the server would load it, and report every problem
with file:line. Also checks plugin checksums and, for the planned-IR
evaluator, that it decides as OPA's topdown does on generated inputs (drawn
from the study's data dictionary where it declares variables). A policy
reading a variable the data dictionary does not declare gets a warning
(a problem under unknown_variables: refuse). Warns (file:line) where a Rego
test repeats a study.yaml value instead of reading it from data.jitai.study.

Exit status: 0 no problem (warnings may be listed); 1 problems (listed on
stdout); 2 usage error.`,
		Example: "  jitai study check policies/examples/stress-mrt",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStudyCheck(cmd.Context(), filepath.Clean(args[0]), cmd.OutOrStdout())
		},
	}
}

// runStudyCheck reports every problem of a study folder with file:line.
func runStudyCheck(ctx context.Context, dir string, stdout io.Writer) error {
	cat, err := interventions.Embedded()
	if err != nil {
		return fmt.Errorf("catalogue: %w", err)
	}
	s, errs := policies.CheckStudy(ctx, dir, cat, decision.InputSchema(), loadOptions())
	if s != nil {
		// Plugin executables must exist and match their pinned checksums.
		if err := host.Verify(s); err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				errs = append(errs, &policies.ConfigError{File: filepath.Join(dir, "study.yaml"), Msg: line})
			}
		}
	}
	if s != nil {
		// Warnings (file:line: warning: ...) first, so that they are seen
		// whatever else is found.
		errs = append(s.TestFixtureWarnings(), errs...)
	}
	problems := 0
	for _, e := range errs {
		fmt.Fprintln(stdout, e)
		if !e.Warning {
			problems++
		}
	}
	if problems > 0 {
		fmt.Fprintf(stdout, "%s: %d problem(s)\n", filepath.Base(dir), problems)
		return exitWith(exitFailure)
	}
	paths := map[string]bool{}
	mods, _ := policies.ParseModules(s.PolicyFiles)
	for _, r := range policies.InputRefs(mods) {
		paths[strings.Join(r.Path, ".")] = true
	}
	if ce := checkConflicts(ctx, s); ce != nil {
		fmt.Fprintln(stdout, ce)
		fmt.Fprintf(stdout, "%s: 1 problem(s)\n", filepath.Base(dir))
		return exitWith(exitFailure)
	}
	evaluator, err := checkEvaluators(s)
	if err != nil {
		fmt.Fprintln(stdout, &policies.ConfigError{File: filepath.Join(dir, "policy"), Msg: err.Error()})
		fmt.Fprintf(stdout, "%s: 1 problem(s)\n", filepath.Base(dir))
		return exitWith(exitFailure)
	}
	fmt.Fprintf(stdout, "%s: ok (study %s, policy revision %s, %d interventions, reads %d documented input paths)\n",
		filepath.Base(dir), s.Config.ID, s.Revision[:12], s.Catalogue.Len(), len(paths))
	fmt.Fprintf(stdout, "%s: evaluator %s\n", filepath.Base(dir), evaluator)
	return nil
}

// conflictSamples is how many dense generated inputs study check runs to
// find rules that produce conflicting values.
const conflictSamples = 1000

// checkConflicts evaluates the policy (topdown) on dense generated inputs,
// where every named variable is present so that rules reading several at
// once fire together, and reports the first input on which a rule produces
// conflicting values (OPA's eval_conflict_error): such a policy would fail
// every decision on inputs like it (the study's fail-safe would answer). The
// problem names the rule's file:line and the input.
//
// The failing input is reported as a scenario to paste into the study's
// scenario files when one reproduces it (the sampler's values may be of
// types no app sends, which no scenario can set); else as the raw input.
func checkConflicts(ctx context.Context, s *policies.Study) *policies.ConfigError {
	schema := decision.InputSchema()
	g := decision.NewInputSampler(2, s.Policy.Modules()).Declare(s.Config.Variables)
	var first *policies.ConfigError
	var eng *engine.Engine // built at the first failure, for its scenarios
	var rt *engine.StudyRuntime
	for range conflictSamples {
		doc := g.SampleDense(schema)
		input, err := ast.InterfaceToValue(doc)
		if err != nil {
			continue
		}
		_, err = s.Policy.EvalTopdown(ctx, input)
		var te *topdown.Error
		if err == nil || !errors.As(err, &te) || te.Code != topdown.ConflictErr {
			continue
		}
		ce := &policies.ConfigError{File: filepath.Join(s.Dir, "policy")}
		if te.Location != nil {
			ce.File, ce.Line = te.Location.File, te.Location.Row
		}
		found := fmt.Sprintf("%s: %s (every decision on such an input would fail and get the study's fail-safe)", te.Code, strings.Join(strings.Fields(te.Message), " "))
		if eng == nil {
			if eng, rt, err = previewEngine(s); err != nil {
				return nil
			}
		}
		if sc := failureScenario(ctx, eng, rt, doc, te.Code); sc != "" {
			ce.Msg = found + "; a scenario on which it happens, to paste into scenarios/*.yaml (it fails until the policy is fixed):\n" + indentBlock(sc, "    ")
			return ce
		}
		if first == nil {
			js, _ := json.Marshal(doc)
			ce.Msg = found + fmt.Sprintf("; a generated input on which it happens: %s", js)
			first = ce
		}
	}
	return first
}

// evaluatorSamples is how many generated inputs study check runs through
// both evaluators.
const evaluatorSamples = 1000

// checkEvaluators describes which evaluator the server will use for the
// study's policy and, for the planned IR, checks that it decides as topdown
// does on generated inputs shaped by the documented input schema.
func checkEvaluators(s *policies.Study) (string, error) {
	ev, why := s.Policy.Evaluator()
	if ev != policies.EvaluatorIR && why == nil {
		return "topdown (chosen by study.yaml's evaluator key or JITAI_EVALUATOR)", nil
	}
	if ev != policies.EvaluatorIR {
		return fmt.Sprintf("topdown (the planned IR cannot run this policy: %v)", why), nil
	}
	ctx := context.Background()
	schema := decision.InputSchema()
	g := decision.NewInputSampler(1, s.Policy.Modules()).Declare(s.Config.Variables)
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
