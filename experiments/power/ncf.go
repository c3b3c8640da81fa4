package power

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// NoncentralF is the noncentral F distribution with D1 numerator and D2
// denominator degrees of freedom and noncentrality Lambda, parameterised as
// R's pf(q, df1, df2, ncp = Lambda): if X1 is noncentral chi-squared with D1
// degrees of freedom and noncentrality Lambda (the sum of the squared means),
// and X2 is an independent central chi-squared with D2 degrees of freedom,
// then (X1/D1)/(X2/D2) is NoncentralF{D1, D2, Lambda}. Lambda = 0 is the
// central F distribution. Degrees of freedom need not be integers.
//
// gonum has no noncentral F, so CDF and Survival are evaluated from the
// Poisson mixture of regularized incomplete beta functions
//
//	P(F <= x) = sum_j w_j I_y(D1/2 + j, D2/2),   w_j = e^(-L/2) (L/2)^j / j!,
//	P(F >  x) = sum_j w_j I_z(D2/2, D1/2 + j),
//
// with y = D1 x/(D1 x + D2), z = D2/(D1 x + D2) = 1 - y (computed without
// cancellation) and I the regularized incomplete beta function
// (mathext.RegIncBeta). Each tail is summed directly, never as one minus the
// other, so small tail probabilities keep their relative accuracy.
//
// Convergence criterion. The sum starts at the Poisson mode k = floor(L/2) and
// runs upward, then downward from k-1. Every beta term lies in [0, 1], and in
// j the CDF terms decrease while the survival terms increase, so the part of
// the series not yet summed is bounded by (Poisson mass not yet visited) x
// (the last term, or 1, whichever bounds the remaining terms). The Poisson
// mass beyond an index is bounded by a geometric series, because the ratio of
// successive weights, L/2/(j+1) upward and j/(L/2) downward, is below one
// there and shrinks further away from the mode:
//
//	sum_{i>j} w_i <= w_j r/(1-r'),  r = (L/2)/(j+1), r' = (L/2)/(j+2)   (j >= k)
//	sum_{i<j} w_i <= w_j s/(1-s'),  s = j/(L/2),     s' = (j-1)/(L/2)   (j <= k)
//
// A direction stops when its bound falls below 1e-16 times the sum so far
// (or below 1e-300), so the truncation error is below about 2e-16 relative to
// the result. The weights come from the mode weight by the recurrence and are
// then normalised to total mass one (see poissonMass), so the rounding of
// lgamma at large L does not carry into the result; what remains is the
// rounding of RegIncBeta itself (1e-15 to 1e-13 relative). If more than a million terms would be
// needed (noncentrality beyond about 1e10) the result is NaN rather than a
// silently truncated sum.
type NoncentralF struct {
	D1, D2, Lambda float64
}

const (
	ncfRelTol   = 1e-16
	ncfAbsTol   = 1e-300
	ncfMaxTerms = 1_000_000
)

// CDF returns P(F <= x).
func (f NoncentralF) CDF(x float64) float64 {
	if !f.valid() || math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 0 {
		return 0
	}
	if math.IsInf(x, 1) {
		return 1
	}
	return f.series(x, false)
}

// Survival returns P(F > x), the upper tail; for an F test with critical
// value x this is its power.
func (f NoncentralF) Survival(x float64) float64 {
	if !f.valid() || math.IsNaN(x) {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	if math.IsInf(x, 1) {
		return 0
	}
	return f.series(x, true)
}

func (f NoncentralF) valid() bool {
	return f.D1 > 0 && f.D2 > 0 && f.Lambda >= 0 &&
		!math.IsInf(f.D1, 0) && !math.IsInf(f.D2, 0) && !math.IsInf(f.Lambda, 0)
}

// series sums the Poisson mixture for the lower (upper=false) or upper tail.
func (f NoncentralF) series(x float64, upper bool) float64 {
	a, b := f.D1/2, f.D2/2
	den := f.D1*x + f.D2
	y, z := f.D1*x/den, f.D2/den
	term := func(j int) float64 {
		if upper {
			return mathext.RegIncBeta(b, a+float64(j), z)
		}
		return mathext.RegIncBeta(a+float64(j), b, y)
	}
	mu := f.Lambda / 2
	if mu == 0 {
		return term(0)
	}
	k := int(math.Floor(mu))
	lw := -mu + float64(k)*math.Log(mu) - lgamma(float64(k)+1)
	wk := math.Exp(lw)

	// Upward from the mode. For the CDF the remaining terms are at most the
	// current one; for the survival function they are at most 1.
	sum := 0.0
	w := wk
	n := 0
	for j := k; ; j++ {
		t := term(j)
		sum += w * t
		n++
		r := mu / float64(j+1)
		r2 := mu / float64(j+2)
		tail := w * r / (1 - r2)
		if !upper {
			tail *= t
		}
		if tail <= ncfRelTol*sum || tail <= ncfAbsTol {
			break
		}
		if n > ncfMaxTerms {
			return math.NaN()
		}
		w *= r
	}
	// Downward from the mode. For the CDF the remaining terms are at most 1;
	// for the survival function at most the current one.
	w = wk
	for j := k; j > 0; j-- {
		w *= float64(j) / mu // now w_{j-1}
		t := term(j - 1)
		sum += w * t
		n++
		if j-1 == 0 {
			break
		}
		s := float64(j-1) / mu
		s2 := float64(j-2) / mu
		tail := w * s / (1 - s2)
		if upper {
			tail *= t
		}
		if tail <= ncfRelTol*sum || tail <= ncfAbsTol {
			break
		}
		if n > ncfMaxTerms {
			return math.NaN()
		}
	}
	// The mode weight carries the rounding of lgamma (relative error about
	// 1e-16 x (L/2) log(L/2), so 1e-14 at L = 100), and every weight shares
	// it through the recurrence. Dividing by the sum of the same recurrence's
	// weights over all the Poisson mass removes that common factor.
	sum /= poissonMass(mu, k, wk)
	if sum > 1 {
		sum = 1
	}
	return sum
}

// poissonMass returns sum_j w_j with w_j generated from w_k by the same
// recurrence as the series, to a relative 1e-17: 1 up to the rounding of w_k.
func poissonMass(mu float64, k int, wk float64) float64 {
	total := 0.0
	w := wk
	for j := k; ; j++ {
		total += w
		r := mu / float64(j+1)
		if w*r/(1-mu/float64(j+2)) <= 1e-17*total {
			break
		}
		w *= r
	}
	w = wk
	for j := k; j > 0; j-- {
		w *= float64(j) / mu
		total += w
		if j-1 == 0 || w*(float64(j-1)/mu)/(1-float64(j-2)/mu) <= 1e-17*total {
			break
		}
	}
	return total
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

// CriticalF returns the upper-alpha critical value of the central F
// distribution with d1 and d2 degrees of freedom, R's qf(1 - alpha, d1, d2).
// It inverts the upper tail directly (mathext.InvRegIncBeta on
// I_z(d2/2, d1/2) = alpha), which keeps full accuracy for small alpha where
// 1 - alpha would lose digits.
func CriticalF(d1, d2, alpha float64) float64 {
	if !(d1 > 0 && d2 > 0 && alpha > 0 && alpha < 1) {
		return math.NaN()
	}
	z := mathext.InvRegIncBeta(d2/2, d1/2, alpha)
	return d2 * (1 - z) / (d1 * z)
}

// FTestPower returns the power of the level-alpha F test with d1 and d2
// degrees of freedom when the statistic is noncentral F with noncentrality
// lambda: 1 - pf(qf(1 - alpha, d1, d2), d1, d2, ncp = lambda) in R.
func FTestPower(d1, d2, lambda, alpha float64) float64 {
	return NoncentralF{D1: d1, D2: d2, Lambda: lambda}.Survival(CriticalF(d1, d2, alpha))
}
