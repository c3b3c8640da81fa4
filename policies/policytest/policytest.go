// Package policytest writes and loads throwaway study folders for tests.
package policytest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// WriteFiles writes dir/study.yaml (left as it is when studyYAML is empty)
// and dir/policy/p.rego, creating the folders and replacing what is there,
// without loading the study; for tests that change a served study's files
// and reload it. The policy is written to a temporary file and renamed, as
// a deploy would, so a watcher never reads half a file. It returns the
// revision the folder now loads as: that of study.yaml and every
// policy/*.rego but the _test.rego files.
func WriteFiles(t testing.TB, dir, studyYAML, rego string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if studyYAML != "" {
		if err := os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(studyYAML), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(dir, "policy", ".p.rego.tmp")
	if err := os.WriteFile(tmp, []byte(rego), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "policy", "p.rego")); err != nil {
		t.Fatal(err)
	}
	bundle := map[string][]byte{}
	yaml, err := os.ReadFile(filepath.Join(dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bundle["study.yaml"] = yaml
	policyFiles, err := filepath.Glob(filepath.Join(dir, "policy", "*.rego"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range policyFiles {
		if strings.HasSuffix(p, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bundle["policy/"+filepath.Base(p)] = b
	}
	return policies.Revision(bundle)
}

// WriteStudy writes dir/study.yaml and dir/policy/p.rego as WriteFiles does
// and loads the study with the built-in catalogue, failing t on any error.
func WriteStudy(t testing.TB, dir, studyYAML, rego string) *policies.Study {
	t.Helper()
	WriteFiles(t, dir, studyYAML, rego)
	return Load(t, dir)
}

// Load loads the study folder dir with the embedded intervention catalogue,
// failing the test if it does not load.
func Load(t testing.TB, dir string, opts ...policies.LoadOptions) *policies.Study {
	t.Helper()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := policies.LoadStudy(context.Background(), dir, cat, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// RunRegoTests runs a study's Rego tests, reporting each failure, and
// fails the test when fewer than min pass. It returns how many passed.
func RunRegoTests(t testing.TB, s *policies.Study, min int) int {
	t.Helper()
	results, err := s.RunTests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	passed := 0
	for _, r := range results {
		if r.Pass {
			passed++
			continue
		}
		t.Errorf("%s:%d %s: %s", r.File, r.Line, r.Name, r.Err)
	}
	if passed < min {
		t.Errorf("only %d Rego tests of study %s passed; want at least %d", passed, s.Config.ID, min)
	}
	return passed
}
