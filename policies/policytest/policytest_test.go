package policytest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/jitai/jitai/policies/policytest"
)

// WriteFiles returns the revision the folder loads as, also when it keeps
// the study.yaml already there, and WriteStudy loads what it wrote.
func TestWriteFilesRevision(t *testing.T) {
	files := map[string]string{}
	for _, name := range []string{"study.yaml", "policy/policy.rego"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "stress-mrt", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	yaml, rego := files["study.yaml"], files["policy/policy.rego"]
	dir := filepath.Join(t.TempDir(), "copy")
	revA := policytest.WriteFiles(t, dir, yaml, rego)
	if s := policytest.WriteStudy(t, dir, yaml, rego); s.Revision != revA || s.Config.ID != "stress-mrt" {
		t.Fatalf("loaded %s revision %s, WriteFiles said %s", s.Config.ID, s.Revision, revA)
	}
	changed := rego + "\n# changed\n"
	revB := policytest.WriteFiles(t, dir, "", changed)
	if revB == revA {
		t.Fatal("a changed policy kept its revision")
	}
	if s := policytest.WriteStudy(t, dir, yaml, changed); s.Revision != revB {
		t.Fatalf("loaded revision %s, WriteFiles said %s", s.Revision, revB)
	}
}
