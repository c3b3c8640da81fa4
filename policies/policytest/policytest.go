// Package policytest writes and loads throwaway study folders for tests.
package policytest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// WriteStudy writes dir/study.yaml and dir/policy/p.rego (creating the
// folders; files already there are replaced) and loads the study with the
// built-in catalogue, failing t on any error.
func WriteStudy(t testing.TB, dir, studyYAML, rego string) *policies.Study {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(studyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "p.rego"), []byte(rego), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := policies.LoadStudy(context.Background(), dir, cat)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
