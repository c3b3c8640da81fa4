package power

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// BinarySpec describes a micro-randomized trial with a binary proximal
// outcome for MRTBinary, in the terms of Cohn, Qian and Murphy (2023) and R's
// MRTSampleSizeBinary. There are T decision points t = 1..T (the rows of the
// bases). Under the alternative
//
//	log P(Y_{t+1} = 1 | I_t = 1, A_t = 0) = g_t' alpha   (the success probability null curve)
//	log RR(t)                             = f_t' beta    (the marginal excursion effect, a log relative risk)
//
// and the test is of H0: beta = 0. BinaryCurves fills the bases and
// coefficients from success probabilities and relative risks.
type BinarySpec struct {
	// Availability is E[I_t], one value or one per decision point, each in (0, 1].
	Availability []float64 `json:"availability"`
	// RandProb is p_t, one value or one per decision point, each in (0, 1).
	RandProb []float64 `json:"rand_prob"`
	// EffectBasis holds f_t (T rows of p values) and EffectCoef beta (p values).
	EffectBasis [][]float64 `json:"effect_basis"`
	EffectCoef  []float64   `json:"effect_coef"`
	// NullBasis holds g_t (T rows of q values) and NullCoef alpha (q values).
	NullBasis [][]float64 `json:"null_basis"`
	NullCoef  []float64   `json:"null_coef"`
	// Alpha is the significance level (type I error; default 0.05).
	Alpha float64 `json:"alpha"`
	// Power is the wanted power when N is zero (default 0.8).
	Power float64 `json:"power,omitempty"`
	// N, when positive, asks for the power with N participants (Power is
	// then ignored).
	N int `json:"n,omitempty"`
}

// BinarySearchMax is the upper end of the sample-size search, as in
// MRTSampleSizeBinary (uniroot on [p + q + 1, 1e6]).
const BinarySearchMax = 1e6

// SetDefaults fills Alpha 0.05 and, in sample-size mode, Power 0.8.
func (s *BinarySpec) SetDefaults() {
	if s.Alpha == 0 {
		s.Alpha = 0.05
	}
	if s.N == 0 && s.Power == 0 {
		s.Power = 0.8
	}
}

// Validate checks dimensions and ranges. Errors are *FieldError.
func (s *BinarySpec) Validate() error {
	T := len(s.EffectBasis)
	if T == 0 {
		return fieldErr("EffectBasis", "is required (one row per decision point)")
	}
	if len(s.NullBasis) != T {
		return fieldErr("NullBasis", "has %d rows, the effect basis %d: all inputs must agree on the number of decision points", len(s.NullBasis), T)
	}
	p, q := len(s.EffectCoef), len(s.NullCoef)
	if p == 0 {
		return fieldErr("EffectCoef", "is required")
	}
	if q == 0 {
		return fieldErr("NullCoef", "is required")
	}
	for i := range T {
		if len(s.EffectBasis[i]) != p {
			return fieldErr("EffectBasis", "row %d has %d values; EffectCoef has %d", i+1, len(s.EffectBasis[i]), p)
		}
		if len(s.NullBasis[i]) != q {
			return fieldErr("NullBasis", "row %d has %d values; NullCoef has %d", i+1, len(s.NullBasis[i]), q)
		}
	}
	if err := checkPerPoint("Availability", s.Availability, T, func(v float64) bool { return v > 0 && v <= 1 }, "(0, 1]"); err != nil {
		return err
	}
	if err := checkPerPoint("RandProb", s.RandProb, T, func(v float64) bool { return v > 0 && v < 1 }, "(0, 1)"); err != nil {
		return err
	}
	if !(s.Alpha > 0 && s.Alpha < 1) {
		return fieldErr("Alpha", "must lie in (0, 1), got %v", s.Alpha)
	}
	if s.N != 0 {
		if s.N <= p+q {
			return fieldErr("N", "must exceed p + q = %d (the test has N - p - q denominator degrees of freedom), got %d", p+q, s.N)
		}
		return nil
	}
	if !(s.Power > 0 && s.Power < 1) {
		return fieldErr("Power", "must lie in (0, 1), got %v", s.Power)
	}
	return nil
}

func checkPerPoint(field string, v []float64, T int, ok func(float64) bool, rng string) error {
	if len(v) != 1 && len(v) != T {
		return fieldErr(field, "has %d values; give 1 or one per decision point (%d)", len(v), T)
	}
	for i, x := range v {
		if !ok(x) {
			return fieldErr(field, "value %d is %v, outside %s", i+1, x, rng)
		}
	}
	return nil
}

func at(v []float64, t int) float64 {
	if len(v) == 1 {
		return v[0]
	}
	return v[t]
}

// BinaryResult is the outcome of MRTBinary.
type BinaryResult struct {
	// N is the sample size: the one asked about, or the smallest integer N
	// whose power reaches the target (MRTSampleSizeBinary's exact = FALSE).
	N int `json:"n"`
	// Power is the power with N participants.
	Power float64 `json:"power"`
	// NExact is the real n solving power(n) = target, with N - p - q real
	// degrees of freedom (MRTSampleSizeBinary's exact = TRUE); sample-size
	// mode only.
	NExact      float64 `json:"n_exact,omitempty"`
	TargetPower float64 `json:"target_power,omitempty"`
	// AtSearchStart is true when the target is already met at the smallest
	// admissible n = p + q + 1.
	AtSearchStart bool    `json:"at_search_start,omitempty"`
	Alpha         float64 `json:"alpha"`
	// Lambda is the noncentrality N beta' (M^-1 Sigma M^-1)^-1 beta at N.
	Lambda    float64 `json:"noncentrality"`
	DF1       int     `json:"df1"`
	DF2       int     `json:"df2"`
	CriticalF float64 `json:"critical_f"`
	// M and Sigma are the bread and meat of the sandwich variance per
	// participant (p x p, row-major).
	M     [][]float64 `json:"m"`
	Sigma [][]float64 `json:"sigma"`
	// Warnings repeats MRTSampleSizeBinary's warnings: p_t f_t should lie in
	// the linear span of g_t, otherwise the result can be inaccurate.
	Warnings []string `json:"warnings,omitempty"`
}

type binaryModel struct {
	p, q     int
	perN     float64 // beta' (M^-1 Sigma M^-1)^-1 beta
	m, sigma *mat.SymDense
	warnings []string
}

func buildBinary(s *BinarySpec) (*binaryModel, error) {
	T := len(s.EffectBasis)
	p, q := len(s.EffectCoef), len(s.NullCoef)
	M := mat.NewSymDense(p, nil)
	S := mat.NewSymDense(p, nil)
	for t := range T {
		f, g := s.EffectBasis[t], s.NullBasis[t]
		var fb, ga float64
		for i, x := range f {
			fb += x * s.EffectCoef[i]
		}
		for i, x := range g {
			ga += x * s.NullCoef[i]
		}
		mu0 := math.Exp(ga)
		if !(mu0 > 0 && mu0 < 1) {
			return nil, fieldErr("NullCoef", "the success probability without treatment at decision point %d is %.6g, outside (0, 1)", t+1, mu0)
		}
		mu1 := mu0 * math.Exp(fb)
		if !(mu1 > 0 && mu1 < 1) {
			return nil, fieldErr("EffectCoef", "the success probability with treatment at decision point %d is %.6g, outside (0, 1)", t+1, mu1)
		}
		tau, pt := at(s.Availability, t), at(s.RandProb, t)
		base := tau * mu0 * (1 - pt) * pt
		wm := base * math.Exp(pt*fb)
		ws := base * math.Exp(2*pt*fb) * ((1-pt)*math.Exp(-fb) + pt - mu0)
		for a := range p {
			for b := a; b < p; b++ {
				ff := f[a] * f[b]
				M.SetSym(a, b, M.At(a, b)+wm*ff)
				S.SetSym(a, b, S.At(a, b)+ws*ff)
			}
		}
	}
	// lambda/N = beta' (M^-1 S M^-1)^-1 beta = (M beta)' S^-1 (M beta).
	var cholM, cholS mat.Cholesky
	if !cholM.Factorize(M) {
		return nil, fieldErr("EffectBasis", "the matrix M is singular: the effect basis has linearly dependent columns or too few decision points")
	}
	if !cholS.Factorize(S) {
		return nil, fieldErr("EffectBasis", "the matrix Sigma is singular: the effect basis has linearly dependent columns or too few decision points")
	}
	beta := mat.NewVecDense(p, append([]float64(nil), s.EffectCoef...))
	var mb, x mat.VecDense
	mb.MulVec(M, beta)
	if err := cholS.SolveVecTo(&x, &mb); err != nil {
		return nil, fmt.Errorf("power: solving with Sigma: %w", err)
	}
	perN := mat.Dot(&mb, &x)
	return &binaryModel{p: p, q: q, perN: perN, m: M, sigma: S, warnings: spanWarnings(s)}, nil
}

// spanWarnings repeats MRTSampleSizeBinary's checks that p_t f_t lies in the
// span of g_t (a working assumption of the method), with its rank rule
// (Matrix::rankMatrix: singular values above max(rows, cols) * eps * largest).
func spanWarnings(s *BinarySpec) []string {
	T := len(s.EffectBasis)
	p, q := len(s.EffectCoef), len(s.NullCoef)
	var out []string
	if p > q {
		out = append(out, fmt.Sprintf("the effect basis has %d columns and the null basis %d: p_t f_t should lie in the span of g_t", p, q))
	}
	for c := range p {
		A := mat.NewDense(T, q+1, nil)
		for t := range T {
			A.Set(t, 0, at(s.RandProb, t)*s.EffectBasis[t][c])
			for j := range q {
				A.Set(t, j+1, s.NullBasis[t][j])
			}
		}
		if rank(A) == q+1 {
			out = append(out, fmt.Sprintf("p_t f_t column %d is not in the linear span of g_t, so the result can be inaccurate; consider revising the null basis", c+1))
		}
	}
	return out
}

func rank(A *mat.Dense) int {
	r, c := A.Dims()
	var svd mat.SVD
	if !svd.Factorize(A, mat.SVDNone) {
		return 0
	}
	sv := svd.Values(nil)
	if len(sv) == 0 {
		return 0
	}
	tol := float64(max(r, c)) * 2.220446049250313e-16 * sv[0]
	n := 0
	for _, v := range sv {
		if v > tol {
			n++
		}
	}
	return n
}

func (m *binaryModel) power(n, alpha float64) (pow, lambda, crit float64) {
	df1, df2 := float64(m.p), n-float64(m.p+m.q)
	lambda = n * m.perN
	crit = CriticalF(df1, df2, alpha)
	pow = NoncentralF{D1: df1, D2: df2, Lambda: lambda}.Survival(crit)
	return pow, lambda, crit
}

// MRTBinary computes the sample size (spec.N == 0) or power (spec.N > 0) of a
// micro-randomized trial with a binary proximal outcome and a log
// relative-risk effect, after Cohn, Qian and Murphy (2023) as implemented in
// R's MRTSampleSizeBinary:
//
//	M      = sum_t tau_t e^(g_t'alpha) e^(p_t f_t'beta) p_t (1-p_t) f_t f_t'
//	Sigma  = sum_t tau_t e^(g_t'alpha) e^(2 p_t f_t'beta) p_t (1-p_t)
//	               ((1-p_t) e^(-f_t'beta) + p_t - e^(g_t'alpha)) f_t f_t'
//	lambda = N beta' (M^-1 Sigma M^-1)^-1 beta
//	power  = 1 - F_{p, N-p-q; lambda}(F^-1_{p, N-p-q}(1 - alpha))
//
// The sample size solves power(n) = target over real n in [p + q + 1, 1e6]
// (NExact) and N is the smallest integer whose power reaches the target.
func MRTBinary(spec BinarySpec) (BinaryResult, error) {
	s := spec
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		return BinaryResult{}, err
	}
	m, err := buildBinary(&s)
	if err != nil {
		return BinaryResult{}, err
	}
	res := BinaryResult{Alpha: s.Alpha, DF1: m.p, M: symRows(m.m), Sigma: symRows(m.sigma), Warnings: m.warnings}
	fill := func(n int) {
		res.N = n
		res.Power, res.Lambda, res.CriticalF = m.power(float64(n), s.Alpha)
		res.DF2 = n - m.p - m.q
	}
	if s.N > 0 {
		fill(s.N)
		return res, nil
	}
	res.TargetPower = s.Power
	lo := float64(m.p + m.q + 1)
	if pw, _, _ := m.power(lo, s.Alpha); pw >= s.Power {
		res.NExact = lo
		res.AtSearchStart = true
		fill(int(lo))
		return res, nil
	}
	// Bracket the root by doubling (power is increasing in n), up to 1e6.
	hi := 2 * lo
	for {
		pw, _, _ := m.power(hi, s.Alpha)
		if pw >= s.Power {
			break
		}
		if hi == BinarySearchMax {
			return BinaryResult{}, fmt.Errorf("power: the wanted power %v is not reached with up to %g participants (power there %.4f): %w", s.Power, hi, pw, ErrUnattainable)
		}
		lo, hi = hi, math.Min(2*hi, BinarySearchMax)
	}
	// Bisection: power is increasing in n. Stop at a relative width of 1e-12.
	for hi-lo > 1e-12*hi {
		mid := lo + (hi-lo)/2
		if pw, _, _ := m.power(mid, s.Alpha); pw >= s.Power {
			hi = mid
		} else {
			lo = mid
		}
	}
	res.NExact = lo + (hi-lo)/2
	// The integer answer is decided by evaluating integers, not by rounding
	// the root, so a root that is an integer up to rounding gives the right N.
	n := max(int(math.Floor(lo)), m.p+m.q+1)
	for {
		if pw, _, _ := m.power(float64(n), s.Alpha); pw >= s.Power {
			break
		}
		n++
	}
	fill(n)
	return res, nil
}

func symRows(s *mat.SymDense) [][]float64 {
	n := s.SymmetricDim()
	out := make([][]float64, n)
	for i := range n {
		out[i] = make([]float64, n)
		for j := range n {
			out[i][j] = s.At(i, j)
		}
	}
	return out
}

// PolyBasis returns the rows (1, t, t^2, ...)[:params] for t = 1..points,
// the bases MRTSampleSizeBinary's examples and calculator use for f_t and g_t
// (constant: 1 parameter, linear: 2, quadratic: 3).
func PolyBasis(points, params int) [][]float64 {
	out := make([][]float64, points)
	for t := range points {
		row := make([]float64, params)
		x := 1.0
		for j := range row {
			row[j] = x
			x *= float64(t + 1)
		}
		out[t] = row
	}
	return out
}

// BinaryCurves describes the alternative as the MRTSampleSizeBinary
// calculator asks for it: the success probability without treatment and the
// relative risk of treatment at the first and the last decision point, each
// constant or log-linear in the decision point t = 1..DecisionPoints.
type BinaryCurves struct {
	DecisionPoints int `json:"decision_points"`
	// NullShape is Constant (P0Initial throughout) or LogLinear (from
	// P0Initial at t = 1 to P0Final at t = T, linear in log).
	NullShape Shape   `json:"null_shape"`
	P0Initial float64 `json:"p0_initial"`
	P0Final   float64 `json:"p0_final,omitempty"`
	// EffectShape is Constant (RRInitial throughout) or LogLinear (from
	// RRInitial to RRFinal, linear in log).
	EffectShape Shape   `json:"effect_shape"`
	RRInitial   float64 `json:"rr_initial"`
	RRFinal     float64 `json:"rr_final,omitempty"`
}

// Apply sets spec's bases and coefficients: g_t = (1) or (1, t) with
// log P0(t) = alpha_0 + alpha_1 t, and f_t = (1) or (1, t) with
// log RR(t) = beta_0 + beta_1 t, matching the calculator's
// compute_alpha_beta_from_prob.
func (c BinaryCurves) Apply(spec *BinarySpec) error {
	T := c.DecisionPoints
	if T < 1 {
		return fieldErr("DecisionPoints", "must be at least 1, got %d", T)
	}
	curve := func(field, shapeField string, shape Shape, initial, final float64, upper float64) ([]float64, int, error) {
		if !(initial > 0 && initial < upper) {
			return nil, 0, fieldErr(field+"Initial", "must lie in (0, %g), got %v", upper, initial)
		}
		switch shape {
		case Constant:
			return []float64{math.Log(initial)}, 1, nil
		case LogLinear:
			if !(final > 0 && final < upper) {
				return nil, 0, fieldErr(field+"Final", "must lie in (0, %g), got %v", upper, final)
			}
			if T < 2 {
				return nil, 0, fieldErr("DecisionPoints", "a log-linear curve needs at least 2 decision points")
			}
			slope := math.Log(final/initial) / float64(T-1)
			return []float64{math.Log(initial) - slope, slope}, 2, nil
		default:
			return nil, 0, fieldErr(shapeField, "unknown shape %q (want constant or loglinear)", shape)
		}
	}
	alpha, q, err := curve("P0", "NullShape", c.NullShape, c.P0Initial, c.P0Final, 1)
	if err != nil {
		return err
	}
	beta, p, err := curve("RR", "EffectShape", c.EffectShape, c.RRInitial, c.RRFinal, math.Inf(1))
	if err != nil {
		return err
	}
	spec.NullBasis, spec.NullCoef = PolyBasis(T, q), alpha
	spec.EffectBasis, spec.EffectCoef = PolyBasis(T, p), beta
	return nil
}
