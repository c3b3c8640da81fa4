package power

import (
	"fmt"
	"math"
)

// EffectKind says how a factorial effect size is expressed. With effect
// coding (-1/+1) a main effect, the difference between the means at the two
// levels, is twice the regression coefficient b.
type EffectKind string

// Effect size measures, as MOST::FactorialPowerPlan names them.
const (
	// CohensD is the standardized mean difference of a main effect,
	// raw main effect / sd (d_main): b = d sd / 2.
	CohensD EffectKind = "d"
	// RawMain is the unstandardized mean difference of a main effect
	// (raw_main): b = RawMain / 2.
	RawMain EffectKind = "raw-main"
	// RawCoef is the unstandardized effect-coded regression coefficient b
	// (raw_coef).
	RawCoef EffectKind = "raw-coef"
	// StdCoef is the standardized coefficient b / sd (std_coef).
	StdCoef EffectKind = "std-coef"
	// EffectSizeRatio is Cohen's f^2 = b^2 / sd^2 (effect_size_ratio):
	// b = sqrt(f^2) (MOST then treats b as on the sd scale).
	EffectSizeRatio EffectKind = "f2"
)

// FactorialSpec describes a two-level factorial experiment with independent
// (unclustered) assignment for Factorial. Give exactly two of an effect size
// (EffectKind non-empty), N and Power; Factorial finds the third.
type FactorialSpec struct {
	// Factors is the number of two-level factors.
	Factors int `json:"factors"`
	// Order is the highest interaction order in the analysis model:
	// 1 main effects only, 2 up to two-way interactions, ... (default 1).
	Order int `json:"order"`
	// EffectKind and Effect give the effect size of the coefficient to be
	// tested (any main effect or interaction coefficient).
	EffectKind EffectKind `json:"effect_kind,omitempty"`
	Effect     float64    `json:"effect,omitempty"`
	// SD is the outcome's standard deviation within a condition. Required
	// for RawMain and RawCoef; otherwise 1 when not given, as in MOST.
	SD float64 `json:"sd,omitempty"`
	// Pretest adds a pretest covariate with correlation PretestCorr in
	// [0, 1) to the posttest: the error sd becomes sd sqrt(1 - r^2) and the
	// model gains one coefficient (MOST's pretest = "covariate").
	Pretest     bool    `json:"pretest,omitempty"`
	PretestCorr float64 `json:"pretest_corr,omitempty"`
	// Alpha is the two-sided significance level (default 0.05).
	Alpha float64 `json:"alpha"`
	// N is the total sample size and Power the power: give one or both.
	N     int     `json:"n,omitempty"`
	Power float64 `json:"power,omitempty"`
}

// FactorialSolve says which quantity Factorial computed.
type FactorialSolve string

// What Factorial solves for.
const (
	SolvePower  FactorialSolve = "power"
	SolveN      FactorialSolve = "n"
	SolveEffect FactorialSolve = "effect"
)

// FactorialResult is the outcome of Factorial. Standardized measures use
// the outcome sd (not the pretest-reduced one), as MOST reports them.
type FactorialResult struct {
	Solved FactorialSolve `json:"solved"`
	N      int            `json:"n"`
	// Power is the power at N for the coefficient (unrounded; MOST prints it
	// rounded to 4 decimals).
	Power       float64 `json:"power"`
	TargetPower float64 `json:"target_power,omitempty"`
	Alpha       float64 `json:"alpha"`
	// Coef is the effect-coded regression coefficient b; RawMain = 2b is the
	// main-effect mean difference, RawInteraction = 4b the two-way
	// difference in differences; StdCoef = b/sd, D = 2b/sd (Cohen's d of a
	// main effect), DInteraction = 4b/sd, F2 = b^2/sd^2.
	Coef           float64 `json:"coef"`
	RawMain        float64 `json:"raw_main"`
	RawInteraction float64 `json:"raw_interaction"`
	StdCoef        float64 `json:"std_coef"`
	D              float64 `json:"d"`
	DInteraction   float64 `json:"d_interaction"`
	F2             float64 `json:"f2"`
	SD             float64 `json:"sd"`
	// SigmaEffective is the error sd after the pretest adjustment.
	SigmaEffective float64 `json:"sigma_effective"`
	// RegressionCoefs counts the model's coefficients: intercept, all
	// effects up to Order, and the pretest.
	RegressionCoefs int `json:"regression_coefs"`
	// Lambda = N b^2 / sigma_effective^2 is the noncentrality of F(1, DF2).
	Lambda float64 `json:"noncentrality"`
	DF1    int     `json:"df1"`
	DF2    int     `json:"df2"`
	// Cells is 2^Factors, the number of conditions of the full factorial;
	// TooFewForCells is set when N is below it (MOST prints a warning).
	Cells          float64 `json:"cells"`
	TooFewForCells bool    `json:"too_few_for_cells,omitempty"`
}

// FactorialMaxN is the upper end of the sample-size search (MOST's 1e7).
const FactorialMaxN = 10_000_000

// SetDefaults fills Order 1, Alpha 0.05 and SD 1 when no raw effect needs it.
func (s *FactorialSpec) SetDefaults() {
	if s.Order == 0 {
		s.Order = 1
	}
	if s.Alpha == 0 {
		s.Alpha = 0.05
	}
	if s.SD == 0 && s.EffectKind != RawMain && s.EffectKind != RawCoef {
		s.SD = 1
	}
}

// Validate checks the spec after SetDefaults. Errors are *FieldError.
func (s *FactorialSpec) Validate() error {
	if s.Factors < 1 || s.Factors > 99 {
		return fieldErr("Factors", "must lie in [1, 99], got %d", s.Factors)
	}
	if s.Order < 1 || s.Order > s.Factors {
		return fieldErr("Order", "must lie in [1, factors = %d], got %d", s.Factors, s.Order)
	}
	given := 0
	switch s.EffectKind {
	case "":
	case CohensD, RawMain, RawCoef, StdCoef, EffectSizeRatio:
		given++
		if math.IsNaN(s.Effect) || math.IsInf(s.Effect, 0) {
			return fieldErr("Effect", "must be finite")
		}
		if s.EffectKind == EffectSizeRatio && s.Effect < 0 {
			return fieldErr("Effect", "an effect size ratio f^2 cannot be negative, got %v", s.Effect)
		}
	default:
		return fieldErr("EffectKind", "unknown effect measure %q (want d, raw-main, raw-coef, std-coef or f2)", s.EffectKind)
	}
	if s.N != 0 {
		given++
	}
	if s.Power != 0 {
		given++
		if !(s.Power > 0 && s.Power < 1) {
			return fieldErr("Power", "must lie in (0, 1), got %v", s.Power)
		}
	}
	if given != 2 {
		return fieldErr("EffectKind", "give exactly two of an effect size, N and power; the third is computed")
	}
	if !(s.SD > 0) || math.IsInf(s.SD, 0) {
		if s.SD == 0 {
			return fieldErr("SD", "is required for a raw (unstandardized) effect")
		}
		return fieldErr("SD", "must be positive, got %v", s.SD)
	}
	if s.Pretest && !(s.PretestCorr >= 0 && s.PretestCorr < 1) {
		return fieldErr("PretestCorr", "must lie in [0, 1), got %v", s.PretestCorr)
	}
	if !s.Pretest && s.PretestCorr != 0 {
		return fieldErr("PretestCorr", "is given without a pretest covariate")
	}
	if !(s.Alpha > 0 && s.Alpha < 1) {
		return fieldErr("Alpha", "must lie in (0, 1), got %v", s.Alpha)
	}
	if s.N != 0 && s.N-s.regressionCoefs() < 1 {
		return fieldErr("N", "must exceed the %d regression coefficients of the model, got %d", s.regressionCoefs(), s.N)
	}
	return nil
}

// regressionCoefs is 1 + sum_{k=1}^{Order} C(Factors, k), plus 1 for a pretest.
func (s *FactorialSpec) regressionCoefs() int {
	n := 1
	c := 1.0
	for k := 1; k <= s.Order; k++ {
		c = c * float64(s.Factors-k+1) / float64(k)
		n += int(math.Round(c))
	}
	if s.Pretest {
		n++
	}
	return n
}

// coef converts the given effect size to the regression coefficient b >= 0
// (MOST takes the absolute value: the test is two-sided).
func (s *FactorialSpec) coef() float64 {
	var b float64
	switch s.EffectKind {
	case CohensD:
		b = s.Effect * s.SD / 2
	case RawMain:
		b = s.Effect / 2
	case RawCoef:
		b = s.Effect
	case StdCoef:
		b = s.Effect * s.SD
	case EffectSizeRatio:
		b = math.Sqrt(s.Effect)
	}
	return math.Abs(b)
}

func factorialPower(n, k int, b, sigma, alpha float64) (pow, lambda float64) {
	lambda = float64(n) * b * b / (sigma * sigma)
	return FTestPower(1, float64(n-k), lambda, alpha), lambda
}

// round4 is MOST's round(power, digits = 4).
func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// Factorial computes power, total sample size or detectable effect for one
// effect-coded coefficient b of a two-level factorial experiment, as
// MOST::FactorialPowerPlan does for independent assignment (with no pretest
// or a pretest covariate): the coefficient is tested with F(1, N - k) where k
// is the number of regression coefficients, and
//
//	lambda = N b^2 / sigma^2,   sigma = sd sqrt(1 - r^2) with a pretest.
//
// The sample size and the detectable effect follow MOST's searches step by
// step, so that they agree with FactorialPowerPlan to the last digit: both
// bisect the power rounded to 4 decimals with lambda capped at 100 (N on
// (k+1, 1e7]; b on [0, 5 sd] to a bracket of 1e-5). The N found is
// therefore one whose rounded power reaches the target (its unrounded power
// can be up to 0.00005 below), and the detectable b is within about 1e-5 of
// the coefficient whose rounded power first reaches the target. Power is
// always reported unrounded and uncapped.
func Factorial(spec FactorialSpec) (FactorialResult, error) {
	s := spec
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		return FactorialResult{}, err
	}
	k := s.regressionCoefs()
	sigma := s.SD
	if s.Pretest {
		sigma = s.SD * math.Sqrt(1-s.PretestCorr*s.PretestCorr)
	}
	res := FactorialResult{Alpha: s.Alpha, SD: s.SD, SigmaEffective: sigma, RegressionCoefs: k, DF1: 1, Cells: math.Pow(2, float64(s.Factors))}
	var b float64
	switch {
	case s.EffectKind != "" && s.N != 0:
		res.Solved = SolvePower
		b = s.coef()
		res.N = s.N
	case s.EffectKind != "":
		res.Solved = SolveN
		res.TargetPower = s.Power
		b = s.coef()
		n, err := factorialN(k, b, sigma, s.Alpha, s.Power)
		if err != nil {
			return FactorialResult{}, err
		}
		res.N = n
	default:
		res.Solved = SolveEffect
		res.TargetPower = s.Power
		res.N = s.N
		var err error
		if b, err = factorialDetectable(s.N, k, s.SD, sigma, s.Alpha, s.Power); err != nil {
			return FactorialResult{}, err
		}
	}
	res.Power, res.Lambda = factorialPower(res.N, k, b, sigma, s.Alpha)
	res.DF2 = res.N - k
	res.Coef = b
	res.RawMain, res.RawInteraction = 2*b, 4*b
	res.StdCoef, res.D, res.DInteraction = b/s.SD, 2*b/s.SD, 4*b/s.SD
	res.F2 = b * b / (s.SD * s.SD)
	res.TooFewForCells = float64(res.N) < res.Cells
	return res, nil
}

// mostPower is MOST's CalculatePowerUnclustered as its searches see it:
// lambda capped at 100 and the power rounded to 4 decimals.
func mostPower(n, k int, b, sigma, alpha float64) float64 {
	lambda := min(100, float64(n)*b*b/(sigma*sigma))
	return round4(FTestPower(1, float64(n-k), lambda, alpha))
}

// factorialN is MOST's CalculateNUnclustered: bisection on (k+1, 1e7] of
// the rounded, capped power, taking an N whose rounded power equals the
// target as soon as it is met.
func factorialN(k int, b, sigma, alpha, target float64) (int, error) {
	bottom, top := k+1, FactorialMaxN
	for {
		middle := int(math.Ceil(float64(bottom) + 0.5*float64(top-bottom)))
		f := mostPower(middle, k, b, sigma, alpha)
		if middle == top {
			if f < target {
				pw, _ := factorialPower(middle, k, b, sigma, alpha)
				return 0, fmt.Errorf("power: the wanted power %v is not reached with up to %d participants (power there %.4f): %w", target, middle, pw, ErrUnattainable)
			}
			return middle, nil
		}
		switch {
		case f < target:
			bottom = middle
		case f == target:
			bottom, top = middle, middle
		default:
			top = middle
		}
	}
}

// factorialDetectable is MOST's CalculateDetectableUnclustered: bisection
// of the coefficient on [0, 5 sd] on the rounded, capped power until the
// bracket is narrower than 1e-5.
func factorialDetectable(n, k int, sd, sigma, alpha, target float64) (float64, error) {
	bottom, top := 0.0, 5*sd
	var middle, f float64
	for {
		middle = bottom + 0.5*(top-bottom)
		f = mostPower(n, k, middle, sigma, alpha)
		if math.Abs(middle-top) < 1e-5 {
			break
		}
		switch {
		case f < target:
			bottom = middle
		case f == target:
			bottom, top = middle, middle
		default:
			top = middle
		}
	}
	if f < target-0.01 {
		return 0, fmt.Errorf("power: no coefficient up to 5 sd reaches power %v with %d participants (MOST's search range): %w", target, n, ErrUnattainable)
	}
	return middle, nil
}
