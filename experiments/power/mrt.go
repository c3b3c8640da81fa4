package power

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Shape names how a quantity changes over a study.
type Shape string

// Shapes. Constant, Linear and Quadratic are per-day trends for MRT;
// Constant and LogLinear are the curves of BinaryCurves; Custom means the
// values are given one by one.
const (
	Constant  Shape = "constant"
	Linear    Shape = "linear"
	Quadratic Shape = "quadratic"
	LogLinear Shape = "loglinear"
	Custom    Shape = "custom"
)

// Trend is a per-day quantity of an MRT, the standardized proximal effect or
// the expected availability, parameterised as MRTSampleSize does. Within a
// day the value is the same at every decision point. Days are indexed
// k = 0, 1, ..., Days-1.
//
//   - Constant: Mean every day.
//   - Linear: a straight line from Initial on the first day to
//     2*Mean - Initial on the last, so that its average is Mean (one day:
//     Mean).
//   - Quadratic: Initial + b k + c k^2, the quadratic that starts at
//     Initial on day 1, turns on day ChangeDay (1-based, so at
//     k = ChangeDay - 1) and averages Mean over the days. For the effect
//     ChangeDay is MRTSampleSize's beta_quadratic_max (the day of the
//     maximal effect when Initial < Mean), for availability its
//     tau_quadratic_max (the day of maximal or minimal availability). It may
//     lie beyond the study, as in MRTSampleSize's own example; the curve is
//     then monotone over the study. MRTSampleSize builds the availability
//     curve by reflecting an effect-style curve about Mean; the three
//     conditions determine the quadratic, so the curve is the same.
//   - Custom: Values, one per day or one per decision point.
type Trend struct {
	Shape     Shape     `json:"shape"`
	Mean      float64   `json:"mean,omitempty"`
	Initial   float64   `json:"initial,omitempty"`
	ChangeDay float64   `json:"change_day,omitempty"`
	Values    []float64 `json:"values,omitempty"`
}

// MRTSpec describes a micro-randomized trial with a continuous proximal
// outcome for MRT. Zero fields take the defaults that SetDefaults documents.
type MRTSpec struct {
	// Days is the length of the study and DecisionsPerDay the number of
	// decision points a day.
	Days            int `json:"days"`
	DecisionsPerDay int `json:"decisions_per_day"`
	// RandProb is the randomisation probability: one value, one a day or one
	// per decision point. A single value must lie in (0, 1); vectors in
	// [0, 1], as MRTSampleSize accepts.
	RandProb []float64 `json:"rand_prob"`
	// Effect is the standardized proximal treatment effect (effect divided
	// by the outcome's standard deviation).
	Effect Trend `json:"effect"`
	// Availability is the expected availability E[I_t]; every value must lie
	// in (0, 1].
	Availability Trend `json:"availability"`
	// EffectParams is p, the number of parameters of the effect model
	// beta(t) = Z_t' d with Z_t = (1, k, k^2, ...)[:p] and k the day index.
	// Zero means MRTSampleSize's choice: 1 for a constant effect, 2 for a
	// linear one, 3 for a quadratic or custom one.
	EffectParams int `json:"effect_params,omitempty"`
	// ControlParams is q, the number of parameters of the control (baseline)
	// model, at least 1 (its intercept); it enters only the denominator
	// degrees of freedom N - p - q. Zero means 3, MRTSampleSize's fixed
	// choice.
	ControlParams int `json:"control_params,omitempty"`
	// Alpha is the significance level (default 0.05).
	Alpha float64 `json:"alpha"`
	// Power is the wanted power when N is zero (default 0.8).
	Power float64 `json:"power,omitempty"`
	// N, when positive, asks for the power with N participants instead of a
	// sample size (Power is then ignored).
	N int `json:"n,omitempty"`
	// MaxN bounds the sample-size search (default 1000, MRTSampleSize's
	// Nmax).
	MaxN int `json:"max_n,omitempty"`
}

// MRTSearchStart is where the sample-size search starts, as in
// MRTSampleSize: N = 10, 11, ... (or p + q + 1 if that is larger).
const MRTSearchStart = 10

// SetDefaults fills zero fields: Alpha 0.05, Power 0.8 (sample-size mode
// only), ControlParams 3, EffectParams by effect shape, MaxN 1000.
func (s *MRTSpec) SetDefaults() {
	if s.Alpha == 0 {
		s.Alpha = 0.05
	}
	if s.N == 0 && s.Power == 0 {
		s.Power = 0.8
	}
	if s.ControlParams == 0 {
		s.ControlParams = 3
	}
	if s.EffectParams == 0 {
		switch s.Effect.Shape {
		case Constant:
			s.EffectParams = 1
		case Linear:
			s.EffectParams = 2
		default:
			s.EffectParams = 3
		}
	}
	if s.MaxN == 0 {
		s.MaxN = 1000
	}
}

// Validate checks the spec after SetDefaults. Errors are *FieldError.
func (s *MRTSpec) Validate() error {
	if s.Days < 1 {
		return fieldErr("Days", "must be at least 1, got %d", s.Days)
	}
	if s.DecisionsPerDay < 1 {
		return fieldErr("DecisionsPerDay", "must be at least 1, got %d", s.DecisionsPerDay)
	}
	total := s.Days * s.DecisionsPerDay
	switch len(s.RandProb) {
	case 0:
		return fieldErr("RandProb", "is required")
	case 1:
		if p := s.RandProb[0]; !(p > 0 && p < 1) {
			return fieldErr("RandProb", "must lie in (0, 1), got %v", p)
		}
	case s.Days, total:
		for i, p := range s.RandProb {
			if !(p >= 0 && p <= 1) {
				return fieldErr("RandProb", "value %d is %v, outside [0, 1]", i+1, p)
			}
		}
	default:
		return fieldErr("RandProb", "has %d values; give 1, one a day (%d) or one per decision point (%d)", len(s.RandProb), s.Days, total)
	}
	if err := s.Effect.validate("Effect", s.Days, total); err != nil {
		return err
	}
	if err := s.Availability.validate("Availability", s.Days, total); err != nil {
		return err
	}
	if s.EffectParams < 1 || s.EffectParams > s.Days {
		return fieldErr("EffectParams", "must lie in [1, days = %d], got %d", s.Days, s.EffectParams)
	}
	if s.ControlParams < 1 {
		return fieldErr("ControlParams", "must be at least 1 (the control model has an intercept), got %d", s.ControlParams)
	}
	if !(s.Alpha > 0 && s.Alpha < 1) {
		return fieldErr("Alpha", "must lie in (0, 1), got %v", s.Alpha)
	}
	pq := s.EffectParams + s.ControlParams
	if s.N != 0 {
		if s.N <= pq {
			return fieldErr("N", "must exceed p + q = %d (the test has N - p - q denominator degrees of freedom), got %d", pq, s.N)
		}
		return nil
	}
	if !(s.Power > 0 && s.Power < 1) {
		return fieldErr("Power", "must lie in (0, 1), got %v", s.Power)
	}
	if s.MaxN < max(MRTSearchStart, pq+1) {
		return fieldErr("MaxN", "must be at least %d, got %d", max(MRTSearchStart, pq+1), s.MaxN)
	}
	return nil
}

func (t *Trend) validate(field string, days, total int) error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	switch t.Shape {
	case Constant, Linear, Quadratic:
		if bad(t.Mean) || bad(t.Initial) || bad(t.ChangeDay) {
			return fieldErr(field, "values must be finite")
		}
	case Custom:
		if len(t.Values) != days && len(t.Values) != total {
			return fieldErr(field+".Values", "has %d values; give one a day (%d) or one per decision point (%d)", len(t.Values), days, total)
		}
		for i, v := range t.Values {
			if bad(v) {
				return fieldErr(field+".Values", "value %d is not finite", i+1)
			}
		}
	case "":
		return fieldErr(field+".Shape", "is required (constant, linear, quadratic or custom)")
	default:
		return fieldErr(field+".Shape", "unknown shape %q (want constant, linear, quadratic or custom)", t.Shape)
	}
	return nil
}

// daily returns the trend's value for every day (or every decision point for
// Custom values given per decision point), following MRTSampleSize's
// generateBeta and generateTau.
func (t *Trend) daily(field string, days int) ([]float64, error) {
	out := make([]float64, days)
	switch t.Shape {
	case Constant:
		for k := range out {
			out[k] = t.Mean
		}
	case Linear:
		if days == 1 {
			out[0] = t.Mean
			break
		}
		step := 2 * (t.Mean - t.Initial) / float64(days-1)
		for k := range out {
			out[k] = t.Initial + step*float64(k)
		}
	case Quadratic:
		// Find b, c with b + 2c(ChangeDay-1) = 0 (turning point) and
		// sum_k (b k + c k^2) = days*(Mean - start) (average Mean), k = 0..days-1.
		start := t.Initial
		var s1, s2 float64
		for k := 1; k < days; k++ {
			s1 += float64(k)
			s2 += float64(k) * float64(k)
		}
		h := 2 * (t.ChangeDay - 1)
		det := s2 - h*s1
		if math.Abs(det) <= 1e-12*math.Max(s2, 1) {
			return nil, fieldErr(field+".ChangeDay", "day %v makes the quadratic undetermined for %d days (no quadratic with that turning point has the wanted mean)", t.ChangeDay, days)
		}
		rhs := (t.Mean - start) * float64(days)
		c := rhs / det
		b := -h * c
		for k := range out {
			x := float64(k)
			out[k] = start + b*x + c*x*x
		}
	case Custom:
		return append([]float64(nil), t.Values...), nil
	}
	return out, nil
}

// perDecision expands one-a-day values to one per decision point.
func perDecision(v []float64, days, perDay int) []float64 {
	if len(v) == days*perDay {
		return v
	}
	out := make([]float64, 0, days*perDay)
	for _, x := range v {
		for range perDay {
			out = append(out, x)
		}
	}
	return out
}

// MRTResult is the outcome of MRT.
type MRTResult struct {
	// N is the sample size: the one asked about, or the smallest N from the
	// search start with power >= the target.
	N int `json:"n"`
	// Power is the power with N participants.
	Power float64 `json:"power"`
	// TargetPower is the wanted power (sample-size mode only).
	TargetPower float64 `json:"target_power,omitempty"`
	// PowerBelow is the power with N - 1 participants (sample-size mode,
	// when N - 1 was searched).
	PowerBelow *float64 `json:"power_at_n_minus_1,omitempty"`
	// AtSearchStart is true when the target is already reached at the first
	// N searched: the needed sample size is at most N (MRTSampleSize says
	// "less than or equal to 10").
	AtSearchStart bool    `json:"at_search_start,omitempty"`
	Alpha         float64 `json:"alpha"`
	// Lambda is the noncentrality N d' Q d at N.
	Lambda float64 `json:"noncentrality"`
	// DF1 = p and DF2 = N - p - q are the F test's degrees of freedom and
	// CriticalF its critical value.
	DF1       int     `json:"df1"`
	DF2       int     `json:"df2"`
	CriticalF float64 `json:"critical_f"`
	// EffectParams (p) and ControlParams (q) as used.
	EffectParams  int `json:"effect_params"`
	ControlParams int `json:"control_params"`
	// EffectCoef is d, the effect on the basis Z_t = (1, k, k^2, ...):
	// the availability-weighted least-squares projection of the effect
	// trend on the basis.
	EffectCoef []float64 `json:"effect_coef"`
	// Effect and Availability are the values used at each decision point.
	Effect       []float64 `json:"-"`
	Availability []float64 `json:"-"`
}

// mrtModel holds what the power depends on besides N.
type mrtModel struct {
	p, q int
	dQd  float64 // d' Q d: noncentrality per participant
	d    []float64
	eff  []float64
	tau  []float64
}

func buildMRT(s *MRTSpec) (*mrtModel, error) {
	total := s.Days * s.DecisionsPerDay
	effDays, err := s.Effect.daily("Effect", s.Days)
	if err != nil {
		return nil, err
	}
	tauDays, err := s.Availability.daily("Availability", s.Days)
	if err != nil {
		return nil, err
	}
	eff := perDecision(effDays, s.Days, s.DecisionsPerDay)
	tau := perDecision(tauDays, s.Days, s.DecisionsPerDay)
	for i, v := range tau {
		if !(v > 0 && v <= 1) {
			day := i/s.DecisionsPerDay + 1
			if len(tauDays) == s.Days {
				return nil, fieldErr("Availability", "expected availability on day %d is %.6g, outside (0, 1]; change the mean, initial value or change day", day, v)
			}
			return nil, fieldErr("Availability", "expected availability at decision point %d is %.6g, outside (0, 1]", i+1, v)
		}
	}
	var delta []float64
	if len(s.RandProb) == 1 {
		delta = make([]float64, total)
		for i := range delta {
			delta[i] = s.RandProb[0]
		}
	} else {
		delta = perDecision(s.RandProb, s.Days, s.DecisionsPerDay)
	}

	p := s.EffectParams
	// Z_t = (1, k, k^2, ...) with k the day index 0..Days-1 (MRTSampleSize's para()).
	zt := make([]float64, p)
	W := mat.NewSymDense(p, nil) // sum tau Z Z'
	Q := mat.NewSymDense(p, nil) // sum tau delta (1-delta) Z Z'
	zb := make([]float64, p)     // sum tau Z beta
	for i := range total {
		k := float64(i / s.DecisionsPerDay)
		x := 1.0
		for j := range zt {
			zt[j] = x
			x *= k
		}
		wt := tau[i]
		qt := tau[i] * delta[i] * (1 - delta[i])
		for a := range p {
			zb[a] += wt * zt[a] * eff[i]
			for b := a; b < p; b++ {
				W.SetSym(a, b, W.At(a, b)+wt*zt[a]*zt[b])
				Q.SetSym(a, b, Q.At(a, b)+qt*zt[a]*zt[b])
			}
		}
	}
	var chol mat.Cholesky
	if ok := chol.Factorize(W); !ok {
		return nil, fieldErr("EffectParams", "the effect basis with %d parameters is singular for %d days; use fewer effect parameters", p, s.Days)
	}
	d := mat.NewVecDense(p, nil)
	if err := chol.SolveVecTo(d, mat.NewVecDense(p, zb)); err != nil {
		return nil, fmt.Errorf("power: projecting the effect on its basis: %w", err)
	}
	dQd := mat.Inner(d, Q, d)
	return &mrtModel{p: p, q: s.ControlParams, dQd: dQd, d: d.RawVector().Data, eff: eff, tau: tau}, nil
}

func (m *mrtModel) power(n int, alpha float64) (pow, lambda, crit float64) {
	df1, df2 := float64(m.p), float64(n-m.p-m.q)
	lambda = float64(n) * m.dQd
	crit = CriticalF(df1, df2, alpha)
	pow = NoncentralF{D1: df1, D2: df2, Lambda: lambda}.Survival(crit)
	return pow, lambda, crit
}

// MRT computes the sample size (spec.N == 0) or the power (spec.N > 0) of a
// micro-randomized trial with a continuous proximal outcome, after Liao et
// al. (2016) with the conventions of R's MRTSampleSize:
//
//	power(N) = 1 - F_{p, N-p-q; lambda}(F^-1_{p, N-p-q}(1 - alpha)),
//	lambda   = N d' Q d,   Q = sum_t tau_t delta_t (1 - delta_t) Z_t Z_t',
//	d        = (sum_t tau_t Z_t Z_t')^-1 sum_t tau_t Z_t beta_t,
//
// with beta_t the standardized effect, tau_t the expected availability and
// delta_t the randomisation probability at decision point t, and
// Z_t = (1, k, k^2)[:p] with k = 0, 1, ... the day of t. The sample size is
// the first N = 10, 11, ..., MaxN whose power reaches spec.Power.
func MRT(spec MRTSpec) (MRTResult, error) {
	s := spec
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		return MRTResult{}, err
	}
	m, err := buildMRT(&s)
	if err != nil {
		return MRTResult{}, err
	}
	res := MRTResult{
		Alpha: s.Alpha, DF1: m.p, EffectParams: m.p, ControlParams: m.q,
		EffectCoef: m.d, Effect: m.eff, Availability: m.tau,
	}
	fill := func(n int) {
		res.N = n
		res.Power, res.Lambda, res.CriticalF = m.power(n, s.Alpha)
		res.DF2 = n - m.p - m.q
	}
	if s.N > 0 {
		fill(s.N)
		return res, nil
	}
	res.TargetPower = s.Power
	start := max(MRTSearchStart, m.p+m.q+1)
	prev := math.NaN()
	for n := start; n <= s.MaxN; n++ {
		pw, _, _ := m.power(n, s.Alpha)
		if pw >= s.Power {
			fill(n)
			if n == start {
				res.AtSearchStart = true
			} else {
				res.PowerBelow = &prev
			}
			return res, nil
		}
		prev = pw
	}
	return MRTResult{}, fmt.Errorf("power: the wanted power %v is not reached with up to %d participants (power at %d is %.4f): %w",
		s.Power, s.MaxN, s.MaxN, prev, ErrUnattainable)
}
