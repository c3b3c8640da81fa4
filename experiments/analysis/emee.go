package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// EMEEMaxIter bounds the Newton iterations of EMEE.
const EMEEMaxIter = 100

// EMEE estimates causal excursion effects of a binary proximal outcome on the
// log relative-risk scale (Qian et al. 2021), following MRTAnalysis::emee and
// its summary. With Z = (1, controls), S = (1, moderators), W = pt/p if A = 1
// else (1-pt)/(1-p) and I availability, each row contributes D r with
//
//	D = exp(-A S'b) W [Z ; (A - pt) S],  r = (Y - exp(Z'a + A S'b)) I,
//
// and sum D r = 0 is solved by Newton's method from 0 (with an analytic
// Jacobian; a step is halved while it does not reduce the estimating function,
// which leaves the root unchanged). The variance is M^-1 Sigma M^-T / n with
// the small-sample adjustment (I - H_ii)^-1 on each participant's residual
// vector, computed in the equivalent Woodbury form: the adjusted variance is
// sum_i v_i v_i' with v_i = (M - G_i)^-1 g_i, M = sum of the derivatives of D r,
// g_i = sum_t D r and G_i = sum_t D dr/dtheta' over participant i. Tests are t
// tests with n - p - q degrees of freedom, n every distinct participant;
// intervals are est +/- qt(0.975, n - p - q) se.
func EMEE(t *Table, s MRTSpec) (*MRTResult, error) {
	d, err := prepareMRT(t, s, true)
	if err != nil {
		return nil, fmt.Errorf("emee: %w", err)
	}
	return emeeFit(d, s)
}

// emeeEval returns sum D r and, when jac is not nil, fills jac (row-major)
// with its derivative M.
func (d *mrtData) emeeEval(theta, ef, jac []float64) {
	dim := d.dim()
	x := make([]float64, dim)
	e := make([]float64, dim)
	clear(ef)
	if jac != nil {
		clear(jac)
	}
	for i, w := range d.w {
		if w == 0 {
			continue
		}
		d.emeeRow(i, w, theta, x, e, ef, jac)
	}
}

// emeeRow adds row i's D r to ef and its derivative to jac (if not nil).
// x receives the design row [Z; (A - pt) S] and e the vector with
// jac += -pre x e'. It returns pre, mu and r.
func (d *mrtData) emeeRow(i int, w float64, theta, x, e, ef, jac []float64) (pre, mu, r float64) {
	dim := d.dim()
	d.designRow(i, x)
	a := d.a[i]
	za := theta[0]
	for k, col := range d.z {
		za += theta[1+k] * col[i]
	}
	sb := theta[d.q]
	for k, m := range d.modIdx {
		sb += theta[d.q+1+k] * d.z[m][i]
	}
	pre = math.Exp(-a*sb) * w
	mu = math.Exp(za + a*sb)
	r = d.y[i] - mu
	pr := pre * r
	for k, v := range x {
		ef[k] += pr * v
	}
	if jac == nil {
		return
	}
	// d(D r)/dtheta' = D dr/dtheta' + r dD/dtheta' = -pre x [mu Z ; A (mu + r) S]'.
	e[0] = mu
	for k, col := range d.z {
		e[1+k] = mu * col[i]
	}
	ay := a * d.y[i]
	e[d.q] = ay
	for k, m := range d.modIdx {
		e[d.q+1+k] = ay * d.z[m][i]
	}
	for j := 0; j < dim; j++ {
		f := -pre * x[j]
		row := jac[j*dim : (j+1)*dim]
		for c := 0; c < dim; c++ {
			row[c] += f * e[c]
		}
	}
	return pre, mu, r
}

func norm2(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

func emeeFit(d *mrtData, s MRTSpec) (*MRTResult, error) {
	dim := d.dim()
	n := len(d.groups)
	df := n - dim
	if df <= 0 {
		return nil, fmt.Errorf("emee: %d participants are too few for %d coefficients (%d controls and %d effect terms, intercepts included)", n, dim, d.q, d.p)
	}
	if err := checkCrossProduct(d.crossProduct(), d.columnNames(s.Treatment)); err != nil {
		return nil, fmt.Errorf("emee: %w", err)
	}

	theta, jac, iter, err := d.emeeNewton(dim)
	if err != nil {
		return nil, err
	}
	vcov, err := d.emeeVcov(dim, theta, jac)
	if err != nil {
		return nil, err
	}

	res := &MRTResult{
		Estimator:     "emee",
		NParticipants: n,
		NEff:          d.nEff,
		SmallSample:   true,
		Test:          "t",
		Coef:          append([]float64(nil), theta...),
		Vcov:          vcov,
		Iterations:    iter,
	}
	crit := tQuantile(0.975, float64(df))
	test := func(term string, c []float64) (Estimate, error) {
		return tEstimate("emee", term, dot(c, theta), quadForm(vcov, c), df, crit)
	}
	rows, names := d.contrasts(s.Lincombs)
	for k, c := range rows {
		est, err := test(names[k], c)
		if err != nil {
			return nil, err
		}
		res.Effects = append(res.Effects, est)
	}
	for j := 0; j < d.q; j++ {
		c := make([]float64, dim)
		c[j] = 1
		est, err := test(d.ctlNames[j], c)
		if err != nil {
			return nil, err
		}
		res.Controls = append(res.Controls, est)
	}
	return res, nil
}

// emeeNewton solves the EMEE estimating equation by Newton's method with
// step halving: the estimate, the Jacobian there and the iterations taken.
func (d *mrtData) emeeNewton(dim int) (theta, jac []float64, iter int, err error) {
	return newtonSolve("emee", dim, d.emeeEval)
}

// emeeVcov is the small-sample adjusted variance of the EMEE estimate:
// sum_i v_i v_i', v_i = (M - G_i)^-1 g_i.
func (d *mrtData) emeeVcov(dim int, theta, jac []float64) (*mat.SymDense, error) {
	var lu mat.LU
	x := make([]float64, dim)
	e := make([]float64, dim)
	g := make([]float64, dim)
	gi := make([]float64, dim*dim)
	vAcc := make([]float64, dim*dim)
	mg := mat.NewDense(dim, dim, nil)
	v := mat.NewVecDense(dim, nil)
	for _, grp := range d.groups {
		clear(g)
		clear(gi)
		has := false
		for i := grp.start; i < grp.end; i++ {
			w := d.w[i]
			if w == 0 {
				continue
			}
			has = true
			pre, mu, _ := d.emeeRow(i, w, theta, x, e, g, nil)
			// G_i += D dr/dtheta' = -pre mu x [Z ; A S]'.
			e[0] = 1
			for k, col := range d.z {
				e[1+k] = col[i]
			}
			a := d.a[i]
			e[d.q] = a
			for k, m := range d.modIdx {
				e[d.q+1+k] = a * d.z[m][i]
			}
			f := -pre * mu
			for r := 0; r < dim; r++ {
				fr := f * x[r]
				row := gi[r*dim : (r+1)*dim]
				for c := 0; c < dim; c++ {
					row[c] += fr * e[c]
				}
			}
		}
		if !has {
			continue
		}
		for r := 0; r < dim; r++ {
			for c := 0; c < dim; c++ {
				mg.Set(r, c, jac[r*dim+c]-gi[r*dim+c])
			}
		}
		lu.Factorize(mg)
		if err := lu.SolveVecTo(v, false, mat.NewVecDense(dim, g)); err != nil {
			return nil, fmt.Errorf("emee: the small-sample adjustment is undefined: participant %q alone determines some coefficients (I - H_ii is singular): %w", grp.id, err)
		}
		addOuterUpper(vAcc, dim, 1, v.RawVector().Data)
	}
	return symFromUpper(vAcc, dim), nil
}
