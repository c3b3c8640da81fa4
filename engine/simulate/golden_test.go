package simulate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSummaryGolden pins the text summary `jitai simulate` prints for a
// small seeded run of each example study.
func TestSummaryGolden(t *testing.T) {
	for _, name := range []string{"stress-mrt", "mood-most"} {
		t.Run(name, func(t *testing.T) {
			st := loadExample(t, name)
			_, r := simulateTo(t, Options{Study: st, Cohort: DefaultCohort(), Participants: 16, Days: 6, Seed: 11})
			var got bytes.Buffer
			if err := Summary(&got, r); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "summary-"+name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("summary differs from %s (rerun with -update if the change is intended):\n--- got\n%s--- want\n%s", path, got.Bytes(), want)
			}
		})
	}
}
