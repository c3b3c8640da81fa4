package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// studyTestParams are the flags of `jitai study test`.
type studyTestParams struct {
	verbose bool
}

// newStudyTestCmd is `jitai study test DIR`.
func newStudyTestCmd() *cobra.Command {
	var p studyTestParams
	cmd := &cobra.Command{
		Use:   "test DIR",
		Short: "Run a study's Rego tests (with coverage) and its scenario files",
		Long: `Run the study's Rego tests (policy/*_test.rego, with coverage) and its
scenario files through the real engine.

Exit status: 0 every test and scenario passed; 1 a failure, or nothing to
run; 2 usage error.`,
		Example: "  jitai study test -v policies/examples/stress-mrt",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStudyTest(cmd.Context(), filepath.Clean(args[0]), p, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVarP(&p.verbose, "verbose", "v", false, "list every test and scenario, not only failures")
	return cmd
}

// runStudyTest runs the study's Rego tests (with coverage) and its
// scenario files.
func runStudyTest(ctx context.Context, dir string, p studyTestParams, stdout io.Writer) error {
	cat, err := interventions.Embedded()
	if err != nil {
		return fmt.Errorf("catalogue: %w", err)
	}
	s, err := policies.LoadStudy(ctx, dir, cat, loadOptions())
	if err != nil {
		return err
	}
	name := filepath.Base(dir)
	results, cov, err := s.RunTestsWithCoverage(ctx)
	if err != nil {
		return err
	}
	passed, failed := 0, 0
	for _, r := range results {
		switch {
		case r.Skip:
		case r.Pass:
			passed++
			if p.verbose {
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
			return err
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
			if p.verbose {
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
		return exitWith(exitFailure)
	}
	return nil
}
