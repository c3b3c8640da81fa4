package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// newStudyCmd is `jitai study`: check, test and format a study folder
// (docs/study.md).
func newStudyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "study",
		Short: "Check a study folder, run its policy tests, format its Rego",
		Long: `Work on one study folder (study.yaml, policy/*.rego, scenarios): check it
for every problem, run its Rego tests and scenario files, or format its Rego
as opa fmt does. See docs/study.md.`,
		Args: cobra.NoArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(newStudyCheckCmd(), newStudyTestCmd(), newStudyFmtCmd())
	return cmd
}

// checkStudiesFolder says what to pass when the studies folder is missing.
func checkStudiesFolder(dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("studies folder %s not found: pass --studies DIR (or set JITAI_STUDIES), the folder of study folders, e.g. policies/examples", dir)
	}
	return nil
}

// loadStudy loads the studies under dir, as serve does, and returns the one
// with the given id; the error lists the ids there are.
func loadStudy(ctx context.Context, dir, id string) (*policies.Study, error) {
	if err := checkStudiesFolder(dir); err != nil {
		return nil, err
	}
	cat, err := interventions.Embedded()
	if err != nil {
		return nil, fmt.Errorf("loading the intervention catalogue: %w", err)
	}
	all, err := policies.LoadStudies(ctx, dir, cat, loadOptions())
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
