package analysis

import (
	"fmt"
	"strconv"

	"gonum.org/v1/gonum/mat"
)

// Control regression methods of DCEE (MRTAnalysis's control_reg_method).
// The machine-learning ones of MRTAnalysis ("gam", its default, "rf",
// "ranger", "sl", "sl.user-specified-library") and cross-fitting are not
// implemented.
const (
	ControlRegLM        = "lm"
	ControlRegSetToZero = "set_to_zero"
)

// DCEESpec describes a distal causal excursion effect analysis: the MRTSpec
// columns (its NumeratorProb must be unset; moderators need not be controls)
// and the stage-1 method.
type DCEESpec struct {
	MRTSpec
	// ControlRegMethod is ControlRegLM or ControlRegSetToZero.
	ControlRegMethod string
}

// Validate checks the spec without looking at data.
func (s DCEESpec) Validate() error {
	if err := s.validate(false); err != nil {
		return err
	}
	if !s.NumeratorProb.IsZero() {
		return fmt.Errorf("dcee has no numerator probability")
	}
	if s.RandProb.Column == "" {
		return fmt.Errorf("dcee needs the randomisation probability as a column, not a number (as MRTAnalysis::dcee)")
	}
	switch s.ControlRegMethod {
	case ControlRegLM, ControlRegSetToZero:
		return nil
	case "":
		return fmt.Errorf("no control regression method given (%q or %q)", ControlRegLM, ControlRegSetToZero)
	}
	return fmt.Errorf("control regression method %q is not implemented: use %q or %q (the machine-learning learners of MRTAnalysis are not)", s.ControlRegMethod, ControlRegLM, ControlRegSetToZero)
}

// DCEE estimates the distal causal excursion effect of a micro-randomised
// treatment on a distal outcome (repeated on every row of its participant),
// following MRTAnalysis::dcee with cross_fit = FALSE and its summary.
//
// Stage 1: with ControlRegLM, mu0 and mu1 are the least-squares fits of the
// outcome on (1, controls) over all rows with A = 0 and over all rows with
// A = 1, regardless of availability, predicted on every row; with
// ControlRegSetToZero both are 0 and the controls are ignored.
//
// Stage 2: with S = (1, moderators), I availability and p(A) = p if A = 1
// else 1 - p, r = I (-1)^(1-A) / p(A) (Y - (1 - p) mu1 - p mu0) and beta =
// (sum S S')^-1 sum r S over all rows (unavailable rows count with r = 0).
// The variance is B^-1 (sum_i u_i u_i') B^-1 with B = sum S S' and u_i =
// sum_t (r - S'beta) S over participant i's rows; no small-sample correction
// and no term for stage 1. (MRTAnalysis's row weight 1/T-bar cancels.) Tests
// are t tests with n - p degrees of freedom, n every distinct participant
// (n <= p is an error, where MRTAnalysis falls back to normal quantiles).
// Effect terms are named "Intercept" and the moderators, linear combinations
// "L1", "L2", ..., as MRTAnalysis's summary.dcee names them. The data must be
// complete on every row; the treatment is 0 or 1 on every row.
func DCEE(t *Table, s DCEESpec) (*MRTResult, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("dcee: %w", err)
	}
	cols := append([]string(nil), s.Moderators...)
	if s.ControlRegMethod == ControlRegLM {
		cols = append(cols, s.Controls...)
	}
	d, err := prepareFull(t, fullSpec{who: "dcee", id: s.ID, outcome: s.Outcome, treatment: s.Treatment,
		availability: s.Availability, randProb: s.RandProb, columns: cols})
	if err != nil {
		return nil, fmt.Errorf("dcee: %w", err)
	}
	mu0, mu1 := make([]float64, d.n), make([]float64, d.n)
	if s.ControlRegMethod == ControlRegLM {
		if mu0, err = d.olsPredict("dcee: outcome regression on rows with A = 0", s.Controls, d.y, func(i int) bool { return d.a[i] == 0 }); err != nil {
			return nil, err
		}
		if mu1, err = d.olsPredict("dcee: outcome regression on rows with A = 1", s.Controls, d.y, func(i int) bool { return d.a[i] == 1 }); err != nil {
			return nil, err
		}
	}
	r := make([]float64, d.n)
	for i := range r {
		if d.avail[i] == 0 {
			continue
		}
		p := d.p[i]
		pa, sign := p, 1.0
		if d.a[i] == 0 {
			pa, sign = 1-p, -1
		}
		r[i] = sign / pa * (d.y[i] - (1-p)*mu1[i] - p*mu0[i])
	}
	names := append([]string{"Intercept"}, s.Moderators...)
	beta, vcov, err := d.projectionFit("dcee", s.Moderators, names, [][]float64{r})
	if err != nil {
		return nil, err
	}
	n := len(d.groups)
	res := &MRTResult{Estimator: "dcee", NParticipants: n, NEff: d.nEff(), Test: "t", Controls: []Estimate{}, Coef: beta, Vcov: vcov}
	var lincombNames []string
	for k := range s.Lincombs {
		lincombNames = append(lincombNames, "L"+strconv.Itoa(k+1))
	}
	res.Effects, err = tRows("dcee", beta, vcov, n-len(beta), names, s.Lincombs, lincombNames)
	return res, err
}

// projectionFit regresses each pseudo-outcome in rs on f = (1, cols) over
// every row: coefficient block k is (sum f f')^-1 sum rs[k] f. Its variance
// is the sandwich blockdiag(S^-1) (sum_i U_i U_i') blockdiag(S^-1), S = sum
// f f', U_i the stacked sum_t (rs[k] - f'coef_k) f over participant i. names
// name the columns of f, for the singular-design message.
func (d *fullData) projectionFit(who string, cols, names []string, rs [][]float64) ([]float64, *mat.SymDense, error) {
	k := 1 + len(cols)
	colv := d.columns(cols)
	nb := len(rs)
	dim := k * nb
	f := make([]float64, k)
	sAcc := make([]float64, k*k)
	rhs := make([]float64, dim)
	for i := 0; i < d.n; i++ {
		designRow(i, colv, f)
		addOuterUpper(sAcc, k, 1, f)
		for b, r := range rs {
			for j, v := range f {
				rhs[b*k+j] += r[i] * v
			}
		}
	}
	s := symFromUpper(sAcc, k)
	if err := checkCrossProduct(s, names); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", who, err)
	}
	var chol mat.Cholesky
	if !chol.Factorize(s) {
		return nil, nil, fmt.Errorf("%s: singular design: the cross-product of the effect terms is not positive definite", who)
	}
	coef := make([]float64, dim)
	v := mat.NewVecDense(k, nil)
	for b := 0; b < nb; b++ {
		if err := chol.SolveVecTo(v, mat.NewVecDense(k, rhs[b*k:(b+1)*k])); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", who, err)
		}
		copy(coef[b*k:], v.RawVector().Data)
	}
	// Meat: sum_i U_i U_i', bread: blockdiag(S^-1).
	u := make([]float64, dim)
	meat := make([]float64, dim*dim)
	for _, g := range d.groups {
		clear(u)
		for i := g.start; i < g.end; i++ {
			designRow(i, colv, f)
			for b, r := range rs {
				e := r[i] - dot(f, coef[b*k:(b+1)*k])
				for j, x := range f {
					u[b*k+j] += e * x
				}
			}
		}
		addOuterUpper(meat, dim, 1, u)
	}
	var sInv mat.SymDense
	if err := chol.InverseTo(&sInv); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", who, err)
	}
	bread := mat.NewDense(dim, dim, nil)
	for b := 0; b < nb; b++ {
		bread.Slice(b*k, (b+1)*k, b*k, (b+1)*k).(*mat.Dense).Copy(&sInv)
	}
	var bm, bmb mat.Dense
	bm.Mul(bread, symFromUpper(meat, dim))
	bmb.Mul(&bm, bread)
	vcov := mat.NewSymDense(dim, nil)
	for r := 0; r < dim; r++ {
		for c := r; c < dim; c++ {
			vcov.SetSym(r, c, (bmb.At(r, c)+bmb.At(c, r))/2)
		}
	}
	return coef, vcov, nil
}

// tRows builds the summary rows of coef with variance vcov: one per
// coefficient (named names) and one per linear combination of coef (named
// lincombNames), t tests with df degrees of freedom.
func tRows(who string, coef []float64, vcov *mat.SymDense, df int, names []string, lincombs [][]float64, lincombNames []string) ([]Estimate, error) {
	if df <= 0 {
		return nil, fmt.Errorf("%s: %d coefficients leave no degrees of freedom (too few participants)", who, len(coef))
	}
	crit := tQuantile(0.975, float64(df))
	var out []Estimate
	for j, name := range names {
		e, err := tEstimate(who, name, coef[j], vcov.At(j, j), df, crit)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	for k, l := range lincombs {
		e, err := tEstimate(who, lincombNames[k], dot(l, coef), quadForm(vcov, l), df, crit)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
