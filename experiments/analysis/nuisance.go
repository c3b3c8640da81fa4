package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Stage-1 (nuisance) regressions of dcee and mcee, fitted as R's lm and glm
// fit them: ordinary least squares by QR, and logistic regression by R's
// IRLS (glm.fit) with its stopping rule.

// GLMMaxIter and GLMEpsilon are glm.control's maxit and epsilon.
const (
	GLMMaxIter = 25
	GLMEpsilon = 1e-8
)

// design returns the matrix (1, cols) of the rows where keep is true (every
// row when keep is nil) and the matrix of every row.
func (d *fullData) design(cols []string, keep func(i int) bool) (sub, all *mat.Dense, rows []int) {
	k := 1 + len(cols)
	all = mat.NewDense(d.n, k, nil)
	x := make([]float64, k)
	colv := d.columns(cols)
	for i := 0; i < d.n; i++ {
		designRow(i, colv, x)
		all.SetRow(i, x)
		if keep == nil || keep(i) {
			rows = append(rows, i)
		}
	}
	sub = mat.NewDense(max(len(rows), 1), k, nil)
	for j, i := range rows {
		sub.SetRow(j, all.RawRowView(i))
	}
	return sub, all, rows
}

// checkFullRank reports a design whose columns are collinear on its rows,
// naming the column (R's lm would drop it and predict anyway; we ask the
// user to drop it).
func checkFullRank(what string, x *mat.Dense, nrows int, cols []string) error {
	k := len(cols) + 1
	if nrows < k {
		return fmt.Errorf("%s: %d rows are too few for %d coefficients", what, nrows, k)
	}
	var xtx mat.SymDense
	xtx.SymOuterK(1, x.T())
	names := []string{"the intercept"}
	for _, c := range cols {
		names = append(names, fmt.Sprintf("column %q", c))
	}
	if err := checkCrossProduct(&xtx, names); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// olsPredict fits resp ~ (1, cols) by least squares on the rows where keep
// is true and returns the predictions on every row.
func (d *fullData) olsPredict(what string, cols []string, resp []float64, keep func(i int) bool) ([]float64, error) {
	sub, all, rows := d.design(cols, keep)
	if err := checkFullRank(what, sub, len(rows), cols); err != nil {
		return nil, err
	}
	y := mat.NewVecDense(len(rows), nil)
	for j, i := range rows {
		y.SetVec(j, resp[i])
	}
	var qr mat.QR
	qr.Factorize(sub)
	var b mat.VecDense
	if err := qr.SolveVecTo(&b, false, y); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var pred mat.VecDense
	pred.MulVec(all, &b)
	return pred.RawVector().Data, nil
}

// logitPredict fits a logistic regression of the 0/1 resp on (1, cols) over
// the rows where keep is true, as R's glm(family = binomial) does (IRLS from
// mu = (y + 0.5)/2, stopping when |dev - dev_old|/(|dev| + 0.1) <
// GLMEpsilon, at most GLMMaxIter iterations), and returns the fitted
// probabilities on every row.
func (d *fullData) logitPredict(what string, cols []string, resp []float64, keep func(i int) bool) ([]float64, error) {
	sub, all, rows := d.design(cols, keep)
	if err := checkFullRank(what, sub, len(rows), cols); err != nil {
		return nil, err
	}
	m, k := len(rows), len(cols)+1
	y := make([]float64, m)
	mu := make([]float64, m)
	eta := make([]float64, m)
	for j, i := range rows {
		y[j] = resp[i]
		mu[j] = (y[j] + 0.5) / 2
		eta[j] = math.Log(mu[j] / (1 - mu[j]))
	}
	devOld := binomialDeviance(y, mu)
	xw := mat.NewDense(m, k, nil)
	zw := mat.NewVecDense(m, nil)
	var b mat.VecDense
	var qr mat.QR
	converged := false
	for iter := 0; iter < GLMMaxIter; iter++ {
		for j := 0; j < m; j++ {
			v := mu[j] * (1 - mu[j])
			w := math.Sqrt(v)
			for c := 0; c < k; c++ {
				xw.Set(j, c, sub.At(j, c)*w)
			}
			zw.SetVec(j, (eta[j]+(y[j]-mu[j])/v)*w)
		}
		qr.Factorize(xw)
		if err := qr.SolveVecTo(&b, false, zw); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		for j := 0; j < m; j++ {
			eta[j] = dot(sub.RawRowView(j), b.RawVector().Data)
			mu[j] = 1 / (1 + math.Exp(-eta[j]))
		}
		dev := binomialDeviance(y, mu)
		if math.IsNaN(dev) || math.IsInf(dev, 0) {
			return nil, fmt.Errorf("%s: the logistic regression diverged (the treatment may be perfectly predicted)", what)
		}
		if math.Abs(dev-devOld)/(math.Abs(dev)+0.1) < GLMEpsilon {
			converged = true
			break
		}
		devOld = dev
	}
	if !converged {
		return nil, fmt.Errorf("%s: the logistic regression did not converge in %d iterations", what, GLMMaxIter)
	}
	var pred mat.VecDense
	pred.MulVec(all, &b)
	out := pred.RawVector().Data
	for i, e := range out {
		out[i] = 1 / (1 + math.Exp(-e))
	}
	return out, nil
}

// binomialDeviance is -2 sum (y log mu + (1 - y) log(1 - mu)) for 0/1 y.
func binomialDeviance(y, mu []float64) float64 {
	s := 0.0
	for j, v := range y {
		if v == 1 {
			s += math.Log(mu[j])
		} else {
			s += math.Log(1 - mu[j])
		}
	}
	return -2 * s
}
