package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// newtonSolve solves ef(theta) = 0 from theta = 0 by Newton's method with an
// analytic Jacobian: eval fills ef and jac (row-major, dim x dim) at theta. A
// step is halved while it does not reduce |ef|, which leaves the root
// unchanged. It returns the root, the Jacobian there and the iterations
// taken; who prefixes the errors.
func newtonSolve(who string, dim int, eval func(theta, ef, jac []float64)) (theta, jac []float64, iter int, err error) {
	theta = make([]float64, dim)
	trial := make([]float64, dim)
	ef := make([]float64, dim)
	efTrial := make([]float64, dim)
	jac = make([]float64, dim*dim)
	jacTrial := make([]float64, dim*dim)
	step := mat.NewVecDense(dim, nil)
	var lu mat.LU
	eval(theta, ef, jac)
	converged := false
	for iter < EMEEMaxIter {
		iter++
		lu.Factorize(mat.NewDense(dim, dim, jac))
		if err := lu.SolveVecTo(step, false, mat.NewVecDense(dim, ef)); err != nil {
			return nil, nil, iter, fmt.Errorf("%s: the estimating equation's Jacobian is singular at iteration %d: %w", who, iter, err)
		}
		// Newton: theta - M^-1 ef, halved while it does not reduce |ef|.
		cur := norm2(ef)
		lambda := 1.0
		var maxStep, maxTheta float64
		for half := 0; ; half++ {
			maxStep, maxTheta = 0, 0
			for k := range theta {
				dk := lambda * step.AtVec(k)
				trial[k] = theta[k] - dk
				maxStep = math.Max(maxStep, math.Abs(dk))
				maxTheta = math.Max(maxTheta, math.Abs(trial[k]))
			}
			eval(trial, efTrial, jacTrial)
			nt := norm2(efTrial)
			if !math.IsNaN(nt) && !math.IsInf(nt, 0) && (nt < cur || maxStep <= 1e-8*(1+maxTheta)) {
				break
			}
			if half == 50 {
				return nil, nil, iter, fmt.Errorf("%s: Newton's method cannot reduce the estimating equation at iteration %d; the model may be too rich for the data", who, iter)
			}
			lambda /= 2
		}
		copy(theta, trial)
		ef, efTrial = efTrial, ef
		jac, jacTrial = jacTrial, jac
		if maxStep <= 1e-10*(1+maxTheta) {
			converged = true
			break
		}
	}
	if !converged {
		return nil, nil, iter, fmt.Errorf("%s: Newton's method did not converge in %d iterations (estimating equation norm %g)", who, EMEEMaxIter, norm2(ef))
	}
	return theta, jac, iter, nil
}

// tEstimate is the summary row of an estimate with variance vv: a t test
// with df degrees of freedom and the interval est +/- crit se, as the
// summaries of MRTAnalysis's emee, emee2, dcee and mcee print them.
func tEstimate(who, term string, est, vv float64, df int, crit float64) (Estimate, error) {
	if !(vv > 0) || math.IsInf(vv, 0) {
		return Estimate{}, fmt.Errorf("%s: the variance of %q is not positive (%v)", who, term, vv)
	}
	se := math.Sqrt(vv)
	tv := est / se
	return Estimate{
		Term: term, Estimate: est, StdErr: se,
		CILow: est - crit*se, CIHigh: est + crit*se,
		Statistic: tv, DF1: 1, DF2: df, PValue: tTwoSided(tv, float64(df)),
	}, nil
}
