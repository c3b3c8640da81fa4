package analysis

import (
	"fmt"
	"strconv"
)

// ControlRegGLM is the nuisance learner of MCEE that is implemented:
// logistic regression for the treatment model q and least squares for eta,
// mu and nu (MRTAnalysis's control_reg_method = "glm", its default). The
// machine-learning learners ("gam", "rf", "ranger", "sl") are not.
const ControlRegGLM = "glm"

// MCEESpec describes a mediated causal excursion effect analysis of a distal
// outcome (MRTAnalysis::mcee).
type MCEESpec struct {
	ID, DP, Outcome, Treatment, Mediator string
	// RandProb is the randomisation probability P(A = 1 | H), a column or a
	// constant.
	RandProb Prob
	// Availability is the availability column (0/1); empty means every row
	// is available.
	Availability string
	// EffectForm are the columns of the time-varying effect basis f =
	// (1, EffectForm...) (time_varying_effect_form), the same for alpha and
	// beta.
	EffectForm []string
	// MediatorControls are the columns of control_formula_with_mediator: the
	// controls of the treatment model q and of the outcome model mu
	// (usually including the mediator).
	MediatorControls []string
	// Controls are the controls of the outcome models eta and nu, which must
	// not include the mediator; nil means MediatorControls without the
	// mediator, as mcee() derives them.
	Controls []string
	// ControlRegMethod is ControlRegGLM; empty means ControlRegGLM.
	ControlRegMethod string
	// LincombAlpha, LincombBeta and LincombJoint are linear combinations of
	// alpha, of beta (each of length 1 + len(EffectForm)) and of (alpha,
	// beta) (twice that).
	LincombAlpha, LincombBeta, LincombJoint [][]float64
}

// etaControls returns the controls of eta and nu.
func (s MCEESpec) etaControls() []string {
	if s.Controls != nil {
		return s.Controls
	}
	var out []string
	for _, c := range s.MediatorControls {
		if c != s.Mediator {
			out = append(out, c)
		}
	}
	return out
}

// Validate checks the spec without looking at data.
func (s MCEESpec) Validate() error {
	for _, f := range []struct{ what, v string }{{"id", s.ID}, {"decision point", s.DP}, {"outcome", s.Outcome}, {"treatment", s.Treatment}, {"mediator", s.Mediator}} {
		if f.v == "" {
			return fmt.Errorf("no %s column given", f.what)
		}
	}
	if s.RandProb.IsZero() {
		return fmt.Errorf("no randomisation probability given (a column or a number)")
	}
	if m := s.ControlRegMethod; m != "" && m != ControlRegGLM {
		return fmt.Errorf("control regression method %q is not implemented for mcee: use %q (the machine-learning learners of MRTAnalysis are not)", m, ControlRegGLM)
	}
	for _, c := range s.etaControls() {
		if c == s.Mediator {
			return fmt.Errorf("the controls of eta and nu must not include the mediator %q", c)
		}
	}
	for _, set := range []struct {
		what string
		cols []string
	}{{"effect form", s.EffectForm}, {"mediator control", s.MediatorControls}, {"control", s.Controls}} {
		seen := map[string]bool{}
		for _, c := range set.cols {
			if c == "" || seen[c] {
				return fmt.Errorf("%s %q is empty or listed twice", set.what, c)
			}
			seen[c] = true
		}
	}
	k := 1 + len(s.EffectForm)
	for _, l := range []struct {
		what string
		ls   [][]float64
		n    int
	}{{"alpha", s.LincombAlpha, k}, {"beta", s.LincombBeta, k}, {"joint", s.LincombJoint, 2 * k}} {
		for j, v := range l.ls {
			if len(v) != l.n {
				return fmt.Errorf("%s linear combination %d has %d coefficients, want %d", l.what, j+1, len(v), l.n)
			}
		}
	}
	return nil
}

// MCEE estimates the natural direct and indirect excursion effects (alpha:
// NDEE, beta: NIEE) of a micro-randomised treatment on a distal outcome
// through a time-varying mediator, following MRTAnalysis::mcee with
// parametric nuisance models (control_reg_method = "glm") and its summary.
//
// Stage 1, predictions on every row (I availability): p1 = p and p0 = 1 - p,
// both 1 where I = 0; q1 = logistic regression of A on (1,
// MediatorControls) over the rows with I = 1 (fitted as R's glm), q0 = 1 -
// q1, both 1 where I = 0; eta1 and mu1 = least squares of Y on (1,
// Controls), resp. (1, MediatorControls), over the rows with A = 1 or I =
// 0; eta0 over the rows with A = 0; nu1 = least squares of the prediction
// mu1 on (1, Controls) over the rows with A = 0.
//
// Stage 2, with d1 = 1{A = 1 or I = 0} and d0 = 1{A = 0}:
//
//	phi11 = d1 Y/p1 - (d1 - p1) eta1/p1,  phi00 = d0 Y/p0 - (d0 - p0) eta0/p0,
//	phi10 = d1 q0 (Y - mu1)/(p0 q1) + d0 (mu1 - nu1)/p0 + nu1;
//
// alpha and beta are the least-squares projections of phi10 - phi00 and
// phi11 - phi10 on f = (1, EffectForm) over every row, with the sandwich
// variance of DCEE's stage 2 (no small-sample correction, no term for stage
// 1). Tests are t tests with n - 2 dim(f) degrees of freedom. Terms are named
// "alpha:(Intercept)", "beta:dp", ..., linear combinations "L x alpha", "L x
// beta" and "L x theta" (numbered when there are several), as MRTAnalysis
// names them. The data must be complete on every row; the treatment and the
// availability are 0/1 on every row, the outcome constant within a
// participant and the decision point strictly increasing.
func MCEE(t *Table, s MCEESpec) (*MRTResult, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("mcee: %w", err)
	}
	eta := s.etaControls()
	cols := append(append(append([]string{s.DP, s.Mediator}, s.EffectForm...), s.MediatorControls...), eta...)
	d, err := prepareFull(t, fullSpec{who: "mcee", id: s.ID, outcome: s.Outcome, treatment: s.Treatment,
		availability: s.Availability, randProb: s.RandProb, columns: cols})
	if err != nil {
		return nil, fmt.Errorf("mcee: %w", err)
	}
	if err := d.checkMCEERows(t, s); err != nil {
		return nil, fmt.Errorf("mcee: %w", err)
	}
	alphaR, betaR, err := d.mceePseudoOutcomes(s.MediatorControls, eta)
	if err != nil {
		return nil, err
	}
	k := 1 + len(s.EffectForm)
	basis := append([]string{"(Intercept)"}, s.EffectForm...)
	coef, vcov, err := d.projectionFit("mcee", s.EffectForm, basis, [][]float64{alphaR, betaR})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, part := range []string{"alpha:", "beta:"} {
		for _, b := range basis {
			names = append(names, part+b)
		}
	}
	var lincombs [][]float64
	var lincombNames []string
	for _, l := range []struct {
		name   string
		ls     [][]float64
		offset int
	}{{"L x alpha", s.LincombAlpha, 0}, {"L x beta", s.LincombBeta, k}, {"L x theta", s.LincombJoint, 0}} {
		for j, v := range l.ls {
			full := make([]float64, 2*k)
			copy(full[l.offset:], v)
			lincombs = append(lincombs, full)
			name := l.name
			if len(l.ls) > 1 {
				name += strconv.Itoa(j + 1)
			}
			lincombNames = append(lincombNames, name)
		}
	}
	n := len(d.groups)
	res := &MRTResult{Estimator: "mcee", NParticipants: n, NEff: d.nEff(), Test: "t", Controls: []Estimate{}, Coef: coef, Vcov: vcov}
	res.Effects, err = tRows("mcee", coef, vcov, n-2*k, names, lincombs, lincombNames)
	return res, err
}

// checkMCEERows checks what mcee requires beyond complete data: the outcome
// constant within a participant and the decision point strictly increasing.
func (d *fullData) checkMCEERows(t *Table, s MCEESpec) error {
	ids, err := t.Text(s.ID)
	if err != nil {
		return err
	}
	dp := d.cols[s.DP]
	for _, g := range d.groups {
		for i := g.start + 1; i < g.end; i++ {
			if d.y[i] != d.y[g.start] {
				return rowError(t, ids, i, s.Outcome, "the distal outcome must be the same on every row of a participant (%v here, %v on its first row)", d.y[i], d.y[g.start])
			}
			if !(dp[i] > dp[i-1]) {
				return rowError(t, ids, i, s.DP, "decision points must increase strictly within a participant (%v after %v)", dp[i], dp[i-1])
			}
		}
	}
	return nil
}

// mceePseudoOutcomes fits the nuisance models and returns phi10 - phi00
// (for alpha) and phi11 - phi10 (for beta) on every row.
func (d *fullData) mceePseudoOutcomes(medControls, controls []string) (alphaR, betaR []float64, err error) {
	available := func(i int) bool { return d.avail[i] == 1 }
	g1 := func(i int) bool { return d.a[i] == 1 || d.avail[i] == 0 }
	g0 := func(i int) bool { return d.a[i] == 0 }
	q1, err := d.logitPredict("mcee: treatment model q (logistic, available rows)", medControls, d.a, available)
	if err != nil {
		return nil, nil, err
	}
	// eta1, eta0, mu1, then nu1, which regresses the prediction mu1.
	var eta1, eta0, mu1, nu1 []float64
	for _, f := range []struct {
		what string
		cols []string
		resp *[]float64
		keep func(int) bool
		to   *[]float64
	}{
		{"outcome model eta1 (rows with A = 1 or unavailable)", controls, &d.y, g1, &eta1},
		{"outcome model eta0 (rows with A = 0)", controls, &d.y, g0, &eta0},
		{"outcome model mu1 (rows with A = 1 or unavailable)", medControls, &d.y, g1, &mu1},
		{"model nu1 of mu1 (rows with A = 0)", controls, &mu1, g0, &nu1},
	} {
		if *f.to, err = d.olsPredict("mcee: "+f.what, f.cols, *f.resp, f.keep); err != nil {
			return nil, nil, err
		}
	}
	alphaR, betaR = make([]float64, d.n), make([]float64, d.n)
	for i := 0; i < d.n; i++ {
		p1, p0, qa, qb := d.p[i], 1-d.p[i], q1[i], 1-q1[i]
		if d.avail[i] == 0 {
			p1, p0, qa, qb = 1, 1, 1, 1
		}
		var d1, d0 float64
		if g1(i) {
			d1 = 1
		}
		if g0(i) {
			d0 = 1
		}
		y := d.y[i]
		phi11 := d1*y/p1 - (d1-p1)*eta1[i]/p1
		phi00 := d0*y/p0 - (d0-p0)*eta0[i]/p0
		phi10 := d1*qb*(y-mu1[i])/(p0*qa) + d0*(mu1[i]-nu1[i])/p0 + nu1[i]
		alphaR[i] = phi10 - phi00
		betaR[i] = phi11 - phi10
	}
	return alphaR, betaR, nil
}

// Columns returns the columns the analysis reads: the id column (text) and
// the numeric ones.
func (s MCEESpec) Columns() (id string, numeric []string) {
	numeric = []string{s.DP, s.Outcome, s.Treatment, s.Mediator}
	if s.Availability != "" {
		numeric = append(numeric, s.Availability)
	}
	if s.RandProb.Column != "" {
		numeric = append(numeric, s.RandProb.Column)
	}
	numeric = append(numeric, s.EffectForm...)
	numeric = append(numeric, s.MediatorControls...)
	numeric = append(numeric, s.Controls...)
	return s.ID, numeric
}
