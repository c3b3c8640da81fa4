package engine_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

const budgetStudy = `id: budget
name: Budgeted MRT
timezone: Europe/London
seed: "budget-seed-0123456789"
decision_points:
  - {id: app, kind: app}
delivery_factor: prompt
factors:
  - name: prompt
    type: within
    levels: [none, deliver]
    probability: 0.2
    bounds: [0.01, 0.9]
    probability_source: budget
    budget: {per_day: 2, lambda: 0.3, availability: 0.5, day_start: "08:00", day_end: "22:00", interval: 10m, blackout: 0m, stratum: level}
crisis:
  text: "Call 116 123."
`

const budgetPolicy = `package jitai.policy

level := "high" if input.context.stress >= 5
else := "low"

decision := {
	"safety_reasons": [],
	"unavailable_reasons": [],
	"candidates": [{"id": id, "weight": 1} | some id in data.jitai.by_target.stress],
	"tailoring": {"level": level},
}
`

func TestBudgetedRandomisation(t *testing.T) {
	ctx := context.Background()
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "budget"), budgetStudy, budgetPolicy)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "b.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // London is UTC in November
	clk := newTestClock(base)                            // enrolments at base; each decision at its time
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	const participants, days = 30, 6
	coin := experiments.NewDrawer("test-availability")
	treated := map[string]int{} // participant|day|stratum -> treatments
	strataDays := map[string]bool{}
	b := experiments.Budget{PerDay: 2, Lambda: 0.3, Availability: 0.5, Times: 84, Blackout: 0, Min: 0.01, Max: 0.9}
	for i := 0; i < participants; i++ {
		pid := fmt.Sprintf("p%02d", i)
		clk.Set(base)
		if _, _, err := eng.Enroll(ctx, "budget", engine.EnrollRequest{ParticipantID: pid}); err != nil {
			t.Fatal(err)
		}
		for d := 0; d < days; d++ {
			past := map[string][]experiments.BudgetPoint{}
			for slot := 0; slot < 84; slot++ {
				key := fmt.Sprintf("%d/%d", d, slot)
				if coin.Uniform(pid, key, "available") >= 0.5 {
					continue
				}
				stress := 8.0
				if coin.Uniform(pid, key, "stress") < 0.5 {
					stress = 2
				}
				at := base.AddDate(0, 0, d).Add(8*time.Hour + time.Duration(slot)*10*time.Minute)
				clk.Set(at)
				ans, err := eng.Decide(ctx, "budget", pid, engine.DecideRequest{DecisionPoint: "app", Time: at, Context: map[string]any{"stress": stress}})
				if err != nil {
					t.Fatal(err)
				}
				fd := ans.Record.Factors[0]
				if fd.Budget == nil || fd.Probability == nil || fd.Draw == nil {
					t.Fatalf("budget draw not recorded: %+v", fd)
				}
				stratum := fd.Budget.Stratum
				if want := map[bool]string{true: "high", false: "low"}[stress >= 5]; stratum != want {
					t.Fatalf("stratum %q, want %q", stratum, want)
				}
				// Recompute from this day's earlier records in the same stratum.
				rho, used, _ := b.Probability(slot, past[stratum])
				if math.Abs(rho-*fd.Probability) > 1e-12 || math.Abs(used-fd.Budget.Used) > 1e-12 || fd.Budget.T != slot {
					t.Fatalf("%s day %d slot %d: recorded p=%v used=%v t=%d, recomputed p=%v used=%v", pid, d, slot, *fd.Probability, fd.Budget.Used, fd.Budget.T, rho, used)
				}
				past[stratum] = append(past[stratum], experiments.BudgetPoint{T: slot, Rho: rho, Treated: fd.Level == 1})
				k := fmt.Sprintf("%s|%d|%s", pid, d, stratum)
				strataDays[k] = true
				if fd.Level == 1 {
					treated[k]++
				}
			}
		}
	}
	total := 0
	for _, n := range treated {
		total += n
	}
	// Each stratum has its own budget of 2 a day; availability in a stratum
	// is about 0.25 per time while the forecast says 0.5, so expect a little
	// under 2 on average.
	mean := float64(total) / float64(len(strataDays))
	if mean < 1.3 || mean > 2.4 {
		t.Errorf("mean treatments per stratum-day %.2f, want near the budget of 2", mean)
	}
	t.Logf("mean treatments per stratum-day: %.2f over %d stratum-days", mean, len(strataDays))
}
