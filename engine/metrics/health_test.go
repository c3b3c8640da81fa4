package metrics_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/metrics"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// TestSampleRatioGauge: 700 of 1,000 treated at a logged 0.6 gives the
// gauge the health endpoint's p (z = 100/sqrt(240)).
func TestSampleRatioGauge(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range 1000 {
		p := 0.6
		rec := &trial.Record{ID: fmt.Sprint(i), Study: "stress-mrt", Participant: "p", DecisionPoint: "on_demand", Time: at.Add(time.Duration(i) * time.Minute),
			Action: trial.ActionNone, Available: true, Randomised: true, Factors: []trial.FactorDraw{{Name: "prompt", Type: "within", Level: min(1, i%10/3), Probability: &p}}}
		if err := st.CommitDecision(ctx, &trial.Commit{Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{policytest.Load(t, "../../policies/examples/stress-mrt")}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	m := metrics.New()
	m.WatchHealth(eng)
	gauge := func() (float64, bool) {
		fams, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if f.GetName() != "jitai_randomisation_srm_p" {
				continue
			}
			for _, s := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range s.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["study"] == "stress-mrt" && labels["factor"] == "prompt" {
					return s.GetGauge().GetValue(), true
				}
			}
		}
		return 0, false
	}
	if _, ok := gauge(); ok {
		t.Fatal("a gauge before the aggregates were loaded")
	}
	if err := eng.WarmHealth(ctx); err != nil {
		t.Fatal(err)
	}
	p, ok := gauge()
	want := math.Erfc(100 / math.Sqrt(240) / math.Sqrt2)
	if !ok || math.Abs(p-want) > 1e-15 || p >= 0.001 {
		t.Fatalf("gauge %v (present %v), want %v", p, ok, want)
	}
}
