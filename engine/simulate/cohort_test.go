package simulate

import (
	"strings"
	"testing"
	"time"
)

func TestParseCohortDefaults(t *testing.T) {
	c, err := ParseCohort("cohort.yaml", []byte("# nothing changed\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Stress != DefaultCohort().Stress || c.Engagement.ReportDelay.Duration != time.Hour {
		t.Errorf("an empty cohort file is not the default: %+v", c)
	}
	c, err = ParseCohort("cohort.yaml", []byte("engagement:\n  open: 0.9\neffects:\n  stress: -2\n  window: 90m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Engagement.Open != 0.9 || c.Engagement.Respond != DefaultCohort().Engagement.Respond || c.Effects.Stress != -2 || c.Effects.Window.Duration != 90*time.Minute {
		t.Errorf("overrides not applied over the defaults: %+v", c)
	}
}

// TestParseCohortErrors: every problem names the file, line and key.
func TestParseCohortErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"probability", "stress:\n  mean: 5\nengagement:\n  open: 1.4\n", []string{"cohort.yaml:4: engagement.open: 1.4 is not a probability"}},
		{"two problems", "sleep:\n  wake: \"7am\"\nphone:\n  in_use: -0.1\n", []string{"cohort.yaml:2: sleep.wake: \"7am\" must be HH:MM", "cohort.yaml:4: phone.in_use: -0.1 is not a probability"}},
		{"unknown key", "engagement:\n  opne: 0.5\n", []string{"cohort.yaml:2: field opne not found"}},
		{"wrong type", "days: 3\nmood:\n  mean: high\n", []string{"cohort.yaml:1: field days not found", "cohort.yaml:3: cannot unmarshal"}},
		{"duration", "effects:\n  window: soon\n", []string{"cohort.yaml:2:"}},
		{"scale", "mood:\n  mean: 12\n", []string{"cohort.yaml:2: mood.mean: 12 is outside the 0-10 scale"}},
		{"zone", "timezone: Mars/Olympus\n", []string{"cohort.yaml:1: timezone: \"Mars/Olympus\" is not an IANA time zone"}},
		{"syntax", "stress: [1,\n", []string{"cohort.yaml:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseCohort("cohort.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestCohortAgainstStudy: strata and component effects must exist in the
// study.
func TestCohortAgainstStudy(t *testing.T) {
	st := loadExample(t, "stress-mrt")
	c := DefaultCohort()
	c.Strata = map[string][]string{"site": {"a"}}
	c.Effects.Components = map[string]Effect{"dose": {Mood: 1}}
	err := c.checkAgainst(st.Config)
	if err == nil || !strings.Contains(err.Error(), "strata.site") || !strings.Contains(err.Error(), "effects.components.dose") {
		t.Fatalf("error %v", err)
	}
}
