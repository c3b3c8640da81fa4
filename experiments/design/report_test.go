package design

import (
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// StudyYAML is the design section of study.yaml that FromGenerators reads
// back into the same design, proven or not.
func TestDesignStudyYAMLRoundTrip(t *testing.T) {
	for _, c := range [][3]int{{7, 16, 0}, {12, 64, 0}, {30, 128, 1000}, {55, 64, 0}, {3, 8, 0}} {
		d, err := MinimumAberration(c[0], c[1], int64(c[2]))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Design struct {
				Runs       int      `yaml:"runs"`
				Generators []string `yaml:"generators"`
			} `yaml:"design"`
		}
		if err := yaml.Unmarshal([]byte(d.StudyYAML()), &doc); err != nil {
			t.Fatalf("%s: %v\n%s", d, err, d.StudyYAML())
		}
		back, err := FromGenerators(c[0], doc.Design.Generators)
		if err != nil {
			t.Fatal(err)
		}
		if doc.Design.Runs != d.Runs() || back.Runs() != d.Runs() || !slices.Equal(back.Columns(), d.Columns()) {
			t.Errorf("%s: read back as %d runs, %s", d, doc.Design.Runs, back)
		}
	}
}
