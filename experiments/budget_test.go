package experiments

import (
	"math"
	"strconv"
	"testing"
)

// The worked example of the reference README (Liao, Dempsey et al. 2018).
func TestBudgetWorkedExample(t *testing.T) {
	b := Budget{PerDay: 1.5, Lambda: 0.3, Availability: 0.04, Times: 600, Blackout: 120, Min: 0, Max: 1}
	past := []BudgetPoint{{T: 50, Rho: 0.05}, {T: 120, Rho: 0.06, Treated: true}, {T: 180, Rho: 0.04}}
	rho, used, rem := b.Probability(201, past)
	if math.Abs(used-0.15) > 1e-12 {
		t.Errorf("used = %.15f, want 0.15", used)
	}
	if math.Abs(rem-11.16) > 1e-12 {
		t.Errorf("R = %.15f, want 11.16", rem)
	}
	if math.Abs(rho-0.11101973684214) > 1e-12 {
		t.Errorf("rho = %.15f, want 0.11101973684214", rho)
	}
}

func TestBudgetSmoothingAndClipping(t *testing.T) {
	b := Budget{PerDay: 2, Lambda: 0.5, Availability: 0.1, Times: 100, Blackout: 10, Min: 0.05, Max: 0.6}
	// A treatment one step ago counts almost fully as used: lambda^1 = 0.5.
	_, used, _ := b.Probability(11, []BudgetPoint{{T: 10, Rho: 0.2, Treated: true}})
	if want := 0.5*0.2 + 0.5*1; math.Abs(used-want) > 1e-12 {
		t.Errorf("used = %v, want %v", used, want)
	}
	// Budget spent: clipped to Min. Late in the day with budget left: Max.
	if rho, _, _ := b.Probability(50, []BudgetPoint{{T: 1, Rho: 1, Treated: true}, {T: 2, Rho: 1, Treated: true}, {T: 3, Rho: 1, Treated: true}}); rho != 0.05 {
		t.Errorf("spent budget gives %v, want the minimum 0.05", rho)
	}
	if rho, _, rem := b.Probability(95, nil); rho != 0.6 || rem != 0 {
		t.Errorf("end of day with budget left gives %v (R=%v), want the maximum 0.6", rho, rem)
	}
	// Later or same-time points are not "earlier".
	if _, used, _ := b.Probability(20, []BudgetPoint{{T: 20, Rho: 0.5, Treated: true}, {T: 30, Rho: 0.5}}); used != 0 {
		t.Errorf("used counted non-earlier points: %v", used)
	}
}

// Over many simulated days the expected number of treatments is close to
// the target when availability matches the forecast.
func TestBudgetMeetsTargetOnAverage(t *testing.T) {
	b := Budget{PerDay: 3, Lambda: 0.3, Availability: 0.1, Times: 300, Blackout: 0, Min: 0.01, Max: 0.99}
	d := NewDrawer("budget-sim-seed")
	const days = 400
	total := 0
	for day := 0; day < days; day++ {
		var past []BudgetPoint
		for tt := 0; tt < b.Times; tt++ {
			if d.Uniform("avail", strconv.Itoa(day), strconv.Itoa(tt)) >= b.Availability {
				continue
			}
			rho, _, _ := b.Probability(tt, past)
			treated := d.Uniform("treat", strconv.Itoa(day), strconv.Itoa(tt)) < rho
			if treated {
				total++
			}
			past = append(past, BudgetPoint{T: tt, Rho: rho, Treated: treated})
		}
	}
	if mean := float64(total) / days; math.Abs(mean-3) > 0.35 {
		t.Errorf("mean treatments a day %.2f, want about 3", mean)
	}
}
