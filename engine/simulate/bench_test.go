package simulate

import (
	"context"
	"testing"
)

// BenchmarkSimulate runs 20 participants x 5 days of stress-mrt per
// iteration and reports decisions/s (the full 500 x 90 x 5 run is
// `make simulate-bench`).
func BenchmarkSimulate(b *testing.B) {
	st := loadExample(b, "stress-mrt")
	b.ReportAllocs()
	decisions := 0
	for b.Loop() {
		run, err := Simulate(context.Background(), Options{Study: st, Cohort: DefaultCohort(), Participants: 20, Days: 5, Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range run.People {
			decisions += len(p.Points)
		}
	}
	b.ReportMetric(float64(decisions)/b.Elapsed().Seconds(), "decisions/s")
}
