package experiments

import "math"

// Budget configures budgeted micro-randomisation after Liao, Dempsey et al.
// (2018), "Just-in-time but not too much": a target number of treatments a
// day in each stratum, spread over the day's available decision times.
type Budget struct {
	// PerDay is N_x, the target number of treatments a day in a stratum.
	PerDay float64
	// Lambda in [0, 1) smooths past probabilities towards past treatments.
	Lambda float64
	// Availability is pi_x, the forecast probability of being available (in
	// the stratum) at a decision time.
	Availability float64
	// Times is T, the number of decision times in a day (e.g. 600 one-minute
	// times).
	Times int
	// Blackout is the number of decision times blocked after a treatment,
	// removed from the remaining-availability forecast.
	Blackout int
	// Min and Max clip the probability.
	Min, Max float64
}

// BudgetPoint is an earlier available decision time of the same day and
// stratum: its time index, the probability used and whether it treated.
type BudgetPoint struct {
	T       int
	Rho     float64
	Treated bool
}

// Probability returns rho_x(t) for decision time t (0-based, t < Times)
// given the earlier available times of the day in the same stratum:
//
//	rho = clip((N - used(t)) / (1 + R(t)), Min, Max)
//	used(t) = sum_s (1 - lambda^(t-s)) rho_s + lambda^(t-s) A_s
//	R(t) = max(0, Times - t - Blackout) * Availability
//
// It also returns used(t) and R(t) for the record.
func (b Budget) Probability(t int, past []BudgetPoint) (rho, used, remaining float64) {
	for _, s := range past {
		if s.T >= t {
			continue
		}
		w := math.Pow(b.Lambda, float64(t-s.T))
		a := 0.0
		if s.Treated {
			a = 1
		}
		used += (1-w)*s.Rho + w*a
	}
	rem := b.Times - t - b.Blackout
	if rem < 0 {
		rem = 0
	}
	remaining = float64(rem) * b.Availability
	rho = Clip((b.PerDay-used)/(1+remaining), b.Min, b.Max)
	return rho, used, remaining
}
