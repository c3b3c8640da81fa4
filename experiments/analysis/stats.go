package analysis

import (
	"fmt"
	"math"
	"strconv"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// Float is a float64 that marshals to JSON null when it is not finite (for
// instance a standard error in a saturated model, which has no residual
// degrees of freedom).
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler; null becomes NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// fUpper returns P(F > x) for F ~ F(d1, d2). It evaluates the upper tail
// directly (gonum's regularized incomplete beta) instead of 1 - CDF, so small
// p-values keep their precision.
func fUpper(x, d1, d2 float64) float64 {
	if math.IsNaN(x) || d2 <= 0 {
		return math.NaN()
	}
	if x <= 0 {
		return 1
	}
	return mathext.RegIncBeta(d2/2, d1/2, d2/(d2+d1*x))
}

// fQuantile returns the p quantile of F(d1, d2).
func fQuantile(p, d1, d2 float64) float64 {
	if d2 <= 0 {
		return math.NaN()
	}
	return distuv.F{D1: d1, D2: d2}.Quantile(p)
}

// tTwoSided returns P(|T| > |t|) for T ~ t(df).
func tTwoSided(t, df float64) float64 {
	if math.IsNaN(t) || df <= 0 {
		return math.NaN()
	}
	return 2 * distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Survival(math.Abs(t))
}

// tQuantile returns the p quantile of t(df).
func tQuantile(p, df float64) float64 {
	if df <= 0 {
		return math.NaN()
	}
	return distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(p)
}

// singularCond is the largest condition number of a correlation-scaled
// cross-product matrix that is still treated as non-singular.
const singularCond = 1e12

// checkCrossProduct reports whether the symmetric cross-product matrix b is
// numerically singular and, if it is, names the first column (in order) that
// is zero or a linear combination of the columns before it. The check is
// scale free: b is scaled to unit diagonal before its leading blocks are
// factorized.
func checkCrossProduct(b *mat.SymDense, names []string) error {
	d := b.SymmetricDim()
	scale := make([]float64, d)
	for j := 0; j < d; j++ {
		v := b.At(j, j)
		if !(v > 0) || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("singular design: %s is zero on every row that counts (weight > 0)", names[j])
		}
		scale[j] = 1 / math.Sqrt(v)
	}
	s := mat.NewSymDense(d, nil)
	for i := 0; i < d; i++ {
		for j := i; j < d; j++ {
			s.SetSym(i, j, b.At(i, j)*scale[i]*scale[j])
		}
	}
	var chol mat.Cholesky
	for k := 2; k <= d; k++ {
		sub := s.SliceSym(0, k)
		if ok := chol.Factorize(sub); !ok || chol.Cond() > singularCond {
			return fmt.Errorf("singular design: %s is a linear combination of the design columns before it (remove a duplicated or constant control or moderator)", names[k-1])
		}
	}
	return nil
}
