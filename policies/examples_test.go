package policies

import (
	"context"
	"testing"

	"github.com/jitai/jitai/interventions"
)

// TestExampleStudies loads every example study as `jitai serve` does and
// runs its Rego tests through OPA's test runner.
func TestExampleStudies(t *testing.T) {
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	studies, err := LoadStudies(context.Background(), "examples", cat)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, s := range studies {
		ids[s.Config.ID] = true
		t.Run(s.Config.ID, func(t *testing.T) {
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
			if passed < 20 {
				t.Errorf("only %d Rego tests passed; the example policies need real coverage", passed)
			}
			t.Logf("%d Rego tests passed", passed)
		})
	}
	for _, want := range []string{"stress-mrt", "mood-most"} {
		if !ids[want] {
			t.Errorf("example study %s missing", want)
		}
	}
}
