package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// WCLS estimates causal excursion effects of a continuous proximal outcome by
// weighted and centred least squares (Boruvka et al. 2018), following the
// conventions of MRTAnalysis::wcls and its summary:
//
//   - weight W = I (pt/p)^A ((1-pt)/(1-p))^(1-A), pt the numerator
//     probability (default 0.5), I availability; unavailable rows stay in
//     their participant's cluster with weight 0;
//   - design row X = [Z, (A - pt) S], Z = (1, controls), S = (1, moderators);
//     the estimate is weighted least squares;
//   - variance B^-1 M B^-1 with B = sum X'WX and M = sum_i U_i U_i',
//     U_i = X_i' W_i r_i;
//   - when n_eff (participants with a non-zero weight) is at most
//     SmallSampleThreshold, r_i is replaced by (I - H_i)^-1 r_i with
//     H_i = X_i B^-1 X_i' W_i (Mancl and DeRouen 2001) and the tests are
//     Hotelling's: d1 = non-zero entries of the contrast, d2 = n_eff - q - p,
//     adj = d1 (d1 + d2 - 1) / d2, half-width sqrt(qf(0.95, d1, d2) / adj) se,
//     p = 1 - pf(stat adj, d1, d2), stat = est^2/se^2; otherwise Wald tests
//     with half-width sqrt(qf(0.95, d1, d2)) se and p = 1 - pf(stat, d1, d2).
//
// The computation streams over participants: it never forms the n x p design
// matrix. B is accumulated row by row; for each participant
// B^-1 U_i (corrected: B^-1 (I - H_i)^-1-corrected U_i = (B - G_i)^-1 g_i with
// G_i = X_i' W_i X_i and g_i = X_i' W_i r_i, the Woodbury form of the
// Mancl-DeRouen correction) is accumulated into the variance.
func WCLS(t *Table, s MRTSpec) (*MRTResult, error) {
	d, err := prepareMRT(t, s, false)
	if err != nil {
		return nil, fmt.Errorf("wcls: %w", err)
	}
	return wclsFit(d, s)
}

func wclsFit(d *mrtData, s MRTSpec) (*MRTResult, error) {
	dim := d.dim()
	df2 := d.nEff - dim
	if df2 <= 0 {
		return nil, fmt.Errorf("wcls: %d participants with a non-zero weight are too few for %d coefficients (%d controls and %d effect terms, intercepts included)", d.nEff, dim, d.q, d.p)
	}
	// Pass 1: B = sum w x x', c = sum w x y.
	x := make([]float64, dim)
	acc := make([]float64, dim*dim)
	cy := make([]float64, dim)
	for i, w := range d.w {
		if w == 0 {
			continue
		}
		d.designRow(i, x)
		addOuterUpper(acc, dim, w, x)
		wy := w * d.y[i]
		for k, v := range x {
			cy[k] += wy * v
		}
	}
	b := symFromUpper(acc, dim)
	if err := checkCrossProduct(b, d.columnNames(s.Treatment)); err != nil {
		return nil, fmt.Errorf("wcls: %w", err)
	}
	var chol mat.Cholesky
	if !chol.Factorize(b) {
		return nil, fmt.Errorf("wcls: singular design: the weighted cross-product matrix is not positive definite")
	}
	coef := mat.NewVecDense(dim, nil)
	if err := chol.SolveVecTo(coef, mat.NewVecDense(dim, cy)); err != nil {
		return nil, fmt.Errorf("wcls: singular design: %w", err)
	}
	beta := coef.RawVector().Data

	// Pass 2, per participant: g_i = X_i' W_i r_i (and G_i for the correction).
	small := d.nEff <= SmallSampleThreshold
	g := make([]float64, dim)
	gi := make([]float64, dim*dim)
	vAcc := make([]float64, dim*dim) // sum of v v' (small) or g g' (large)
	var ci mat.Cholesky
	bMinus := mat.NewSymDense(dim, nil)
	vv := mat.NewVecDense(dim, nil)
	for _, grp := range d.groups {
		clear(g)
		if small {
			clear(gi)
		}
		has := false
		for i := grp.start; i < grp.end; i++ {
			w := d.w[i]
			if w == 0 {
				continue
			}
			has = true
			d.designRow(i, x)
			wr := w * (d.y[i] - dot(x, beta))
			for k, v := range x {
				g[k] += wr * v
			}
			if small {
				addOuterUpper(gi, dim, w, x)
			}
		}
		if !has {
			continue
		}
		if !small {
			addOuterUpper(vAcc, dim, 1, g)
			continue
		}
		// v_i = (B - G_i)^-1 g_i, which equals B^-1 X_i' W_i (I - H_i)^-1 r_i.
		for r := 0; r < dim; r++ {
			for c := r; c < dim; c++ {
				bMinus.SetSym(r, c, b.At(r, c)-gi[r*dim+c])
			}
		}
		if !ci.Factorize(bMinus) {
			return nil, fmt.Errorf("wcls: the small-sample correction is undefined: participant %q alone determines some coefficients (I - H_i is singular); remove the participant or a control or moderator that only this participant varies", grp.id)
		}
		if err := ci.SolveVecTo(vv, mat.NewVecDense(dim, g)); err != nil {
			return nil, fmt.Errorf("wcls: small-sample correction for participant %q: %w", grp.id, err)
		}
		addOuterUpper(vAcc, dim, 1, vv.RawVector().Data)
	}
	var vcov *mat.SymDense
	if small {
		vcov = symFromUpper(vAcc, dim)
	} else {
		// B^-1 M B^-1.
		m := symFromUpper(vAcc, dim)
		var bm, bmb mat.Dense
		if err := chol.SolveTo(&bm, m); err != nil {
			return nil, fmt.Errorf("wcls: %w", err)
		}
		if err := chol.SolveTo(&bmb, bm.T()); err != nil {
			return nil, fmt.Errorf("wcls: %w", err)
		}
		vcov = mat.NewSymDense(dim, nil)
		for r := 0; r < dim; r++ {
			for c := r; c < dim; c++ {
				vcov.SetSym(r, c, (bmb.At(r, c)+bmb.At(c, r))/2)
			}
		}
	}

	res := &MRTResult{
		Estimator:     "wcls",
		NParticipants: len(d.groups),
		NEff:          d.nEff,
		SmallSample:   small,
		Test:          "wald",
		Coef:          append([]float64(nil), beta...),
		Vcov:          vcov,
	}
	if small {
		res.Test = "hotelling"
	}
	rows, names := d.contrasts(s.Lincombs)
	for k, c := range rows {
		e, err := wclsTest(names[k], c, beta, vcov, df2, small)
		if err != nil {
			return nil, err
		}
		res.Effects = append(res.Effects, e)
	}
	for j := 0; j < d.q; j++ {
		c := make([]float64, dim)
		c[j] = 1
		e, err := wclsTest(d.ctlNames[j], c, beta, vcov, df2, small)
		if err != nil {
			return nil, err
		}
		res.Controls = append(res.Controls, e)
	}
	return res, nil
}

// wclsTest estimates and tests c'beta as MRTAnalysis's summary.wcls_fit does.
func wclsTest(term string, c, beta []float64, vcov *mat.SymDense, df2 int, hotelling bool) (Estimate, error) {
	est := dot(c, beta)
	v := quadForm(vcov, c)
	if !(v > 0) || math.IsInf(v, 0) {
		return Estimate{}, fmt.Errorf("wcls: the variance of %q is not positive (%v): the design is singular or the outcome is fitted exactly", term, v)
	}
	se := math.Sqrt(v)
	d1 := 0
	for _, x := range c {
		if x != 0 {
			d1++
		}
	}
	fd1, fd2 := float64(d1), float64(df2)
	stat := est * est / v
	var crit, p float64
	if hotelling {
		adj := fd1 * (fd1 + fd2 - 1) / fd2
		crit = math.Sqrt(fQuantile(0.95, fd1, fd2) / adj)
		p = fUpper(stat*adj, fd1, fd2)
	} else {
		crit = math.Sqrt(fQuantile(0.95, fd1, fd2))
		p = fUpper(stat, fd1, fd2)
	}
	return Estimate{
		Term: term, Estimate: est, StdErr: se,
		CILow: est - crit*se, CIHigh: est + crit*se,
		Statistic: stat, DF1: d1, DF2: df2, PValue: p,
	}, nil
}
