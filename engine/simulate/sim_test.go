package simulate

import (
	"context"
	"testing"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

func loadExample(t testing.TB, name string) *policies.Study {
	t.Helper()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := policies.LoadStudy(context.Background(), "../../policies/examples/"+name, cat)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSmoke(t *testing.T) {
	st := loadExample(t, "stress-mrt")
	run, err := Simulate(context.Background(), Options{Study: st, Cohort: DefaultCohort(), Participants: 100, Days: 20, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	n, del := 0, 0
	reasons := map[string]int{}
	for _, p := range run.People {
		for _, pt := range p.Points {
			n++
			if pt.Action == "deliver" {
				del++
			}
			for _, r := range pt.Reasons {
				reasons[r]++
			}
			for _, r := range pt.Safety {
				reasons["S:"+r]++
			}
		}
	}
	t.Logf("%d points, %d deliveries, %v, wall %s", n, del, reasons, run.Wall)
}
