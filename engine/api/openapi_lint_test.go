package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jitai/jitai/engine/api"
)

// TestOpenAPIStrictTools runs .ci/openapi-lint on openapi.json and on a
// study's own document: redocly lint (recommended rules) reports no error,
// and the client openapi-typescript generates types the intervention, the
// signposting, the action and the events (.ci/openapi/check.ts, checked by
// tsc). It needs Node.js and npm (.ci/run installs the tools): without them
// it fails when CI is set and skips otherwise.
func TestOpenAPIStrictTools(t *testing.T) {
	for _, tool := range []string{"bash", "node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (CI is set, so this fails instead of skipping; .ci/run installs Node.js and npm)", tool)
			}
			t.Skipf("%s is not installed; skipping (it fails when CI is set)", tool)
		}
	}
	doc, err := api.StudyOpenAPI(loadStudy(t, stressMRT).Config)
	if err != nil {
		t.Fatal(err)
	}
	studyDoc := filepath.Join(t.TempDir(), "stress-mrt.openapi.json")
	if err := os.WriteFile(studyDoc, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join("..", "..", ".ci", "openapi-lint"), "engine/api/openapi.json", studyDoc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf(".ci/openapi-lint: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
