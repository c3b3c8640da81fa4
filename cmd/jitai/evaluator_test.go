package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// TestEvaluatorFromEnvironment: JITAI_EVALUATOR chooses the evaluator of
// the studies a command loads whose study.yaml does not choose one.
func TestEvaluatorFromEnvironment(t *testing.T) {
	t.Setenv("JITAI_EVALUATOR", "topdown")
	ctx := context.Background()
	s, err := loadStudyFolder(ctx, "--study", filepath.Join(examples, "stress-mrt"))
	if err != nil {
		t.Fatal(err)
	}
	if ev, why := s.Policy.Evaluator(); ev != policies.EvaluatorTopdown || why != nil {
		t.Errorf("loadStudyFolder: %s (%v), want topdown", ev, why)
	}
	s, err = loadStudy(ctx, examples, "stress-mrt")
	if err != nil {
		t.Fatal(err)
	}
	if ev, why := s.Policy.Evaluator(); ev != policies.EvaluatorTopdown || why != nil {
		t.Errorf("loadStudy: %s (%v), want topdown", ev, why)
	}
	out, errs, code := runCmd(t, "study", "check", filepath.Join(examples, "stress-mrt"))
	if code != 0 || !strings.Contains(out, "evaluator topdown (chosen by") {
		t.Errorf("study check: exit %d, want it to say topdown was chosen\n%s%s", code, out, errs)
	}

	// A study that chooses the IR keeps it.
	yml, err := os.ReadFile(filepath.Join(examples, "stress-mrt", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(examples, "stress-mrt", "policy", "policy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "ir")
	policytest.WriteStudy(t, dir, string(yml)+"evaluator: ir\n", string(rego))
	out, errs, code = runCmd(t, "study", "check", dir)
	if code != 0 || !strings.Contains(out, "evaluator ir (OPA's planned IR; agrees with topdown") {
		t.Errorf("study check of a study choosing ir: exit %d\n%s%s", code, out, errs)
	}

	t.Setenv("JITAI_EVALUATOR", "wasm")
	out, errs, code = runCmd(t, "study", "check", dir)
	if code != 2 || !strings.Contains(errs, "JITAI_EVALUATOR") || !strings.Contains(errs, "want ir") {
		t.Errorf("JITAI_EVALUATOR=wasm: exit %d, want 2 and the choices\n%s%s", code, out, errs)
	}
}
