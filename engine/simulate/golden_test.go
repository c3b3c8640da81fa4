package simulate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden pins, for a small seeded run of each example study, the text
// summary `jitai simulate` prints, report.html and report.json.
func TestGolden(t *testing.T) {
	for _, name := range []string{"stress-mrt", "mood-most"} {
		t.Run(name, func(t *testing.T) {
			st := loadExample(t, name)
			dir, r := simulateTo(t, Options{Study: st, Cohort: DefaultCohort(), Participants: 16, Days: 6, Seed: 11})
			var summary, page bytes.Buffer
			if err := Summary(&summary, r); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "summary-"+name+".golden", summary.Bytes())
			if err := writeHTML(&page, r); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "report-"+name+".html.golden", page.Bytes())
			// report.json holds every figure of the page and more.
			checkGolden(t, "report-"+name+".json.golden", read(t, filepath.Join(dir, "report.json")))
		})
	}
}

// checkGolden compares got with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (rerun with -update if the change is intended):\n--- got\n%s--- want\n%s", path, got, want)
	}
}
