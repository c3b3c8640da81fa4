package export_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/experiments/export"
)

// TestCodebookInputPathsInSchema: every input.<path> a codebook entry of the
// decisions table names resolves in decision.InputSchema.
func TestCodebookInputPathsInSchema(t *testing.T) {
	f := newFixture(t)
	schema := decision.InputSchema()
	ref := regexp.MustCompile(`input\.([a-z_0-9]+(?:\.[a-z_0-9%s]+)*)`)
	seen := 0
	for _, st := range f.studies {
		ts, err := export.Build(t.Context(), f.store, st, export.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ts.Decisions.Columns {
			for _, m := range ref.FindAllStringSubmatch(c.Description, -1) {
				seen++
				if msg := schema.Lookup(strings.Split(strings.TrimSuffix(m[1], "."), ".")); msg != "" {
					t.Errorf("column %s names input.%s: %s", c.Name, m[1], msg)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no codebook entry names an input path; the test reads nothing")
	}
}
