package analysis

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// FactorialSpec describes the analysis of a two-level factorial experiment
// (full or fractional, e.g. MOST screening) by effect-coded least squares.
type FactorialSpec struct {
	Outcome string
	// Factors are the factor columns (text or numbers), each with exactly
	// two levels.
	Factors []string
	// Levels gives a factor's low and high level; a factor not listed has
	// the first level in sorted order (numeric order when every level is a
	// number, else string order) as its low level.
	Levels map[string][2]string
	// Interactions lists the interaction terms, each by its factors. When
	// empty, Order decides.
	Interactions [][]string
	// Order includes every interaction of up to Order factors when
	// Interactions is empty; 0 and 1 mean main effects only.
	Order int
	// Covariates are numeric columns entered as they are (not centred),
	// before the factors.
	Covariates []string
}

// FactorLevels records the coding of one factor: Low is coded -1, High +1.
type FactorLevels struct {
	Factor string `json:"factor"`
	Low    string `json:"low"`
	High   string `json:"high"`
}

// Coefficient is one row of the coefficient table. Estimate is the
// regression coefficient on the -1/+1 codes; Effect is the classical
// factorial effect, 2 x Estimate (the difference between the mean outcome at
// the high and at the low level), for factor terms and null for the intercept
// and covariates. StdErr, T, PValue and the 95% interval refer to Estimate
// (the effect's standard error is 2 x StdErr; t and p are the same).
type Coefficient struct {
	Term     string  `json:"term"`
	Estimate float64 `json:"estimate"`
	Effect   Float   `json:"effect"`
	StdErr   Float   `json:"std_err"`
	T        Float   `json:"t"`
	PValue   Float   `json:"p_value"`
	CILow    Float   `json:"ci_low"`
	CIHigh   Float   `json:"ci_high"`
}

// ANOVARow is one row of the analysis of variance table; the last row is
// "Residuals".
type ANOVARow struct {
	Term   string  `json:"term"`
	DF     int     `json:"df"`
	SumSq  float64 `json:"sum_sq"`
	MeanSq Float   `json:"mean_sq"`
	F      Float   `json:"f"`
	PValue Float   `json:"p_value"`
}

// FactorialResult is the result of Factorial. In a saturated model (no
// residual degrees of freedom) standard errors, tests and sigma are NaN (null
// in JSON).
type FactorialResult struct {
	Coefficients []Coefficient `json:"coefficients"`
	ANOVA        []ANOVARow    `json:"anova"`
	ResidualDF   int           `json:"residual_df"`
	Sigma        Float         `json:"sigma"`
	RSquared     Float         `json:"r_squared"`

	// N is the number of runs (rows).
	N int `json:"-"`
	// Levels is the coding of each factor, in Factors order.
	Levels []FactorLevels `json:"-"`
}

// aliasTol is the relative size of a pivot of the QR decomposition below
// which a term counts as aliased with the terms before it (as R's lm).
const aliasTol = 1e-7

// Factorial fits the effect-coded linear model
//
//	Y = b0 + covariates + sum_j b_j x_j + interactions + e,  x_j = -1 (low) or +1 (high),
//
// by least squares (Householder QR), in the term order intercept,
// covariates, main effects (Factors order), then interactions by order
// (two-factor before three-factor, each in the order given). Interaction
// terms are named "a:b" with factors in Factors order and coded as the
// product of their factors' codes.
//
// The ANOVA table has sequential (type I) sums of squares in that term
// order, as R's anova(lm(...)); in a balanced full factorial, and in any
// orthogonal (regular fractional) design without covariates, they equal the
// type III sums of squares, because the effect-coded columns are orthogonal.
// A term aliased with earlier terms (a singular design) is an error.
func Factorial(t *Table, s FactorialSpec) (*FactorialResult, error) {
	factorIndex, terms, err := checkFactorialSpec(s)
	if err != nil {
		return nil, fmt.Errorf("factorial: %w", err)
	}
	y, covs, codes, levels, err := factorialColumns(t, s, factorIndex)
	if err != nil {
		return nil, fmt.Errorf("factorial: %w", err)
	}
	termNames, isFactorTerm, cols := factorialDesign(t.Len(), s, terms, covs, codes)
	fit, err := fitQR(cols, y, termNames)
	if err != nil {
		return nil, fmt.Errorf("factorial: %w", err)
	}
	return fit.result(y, termNames, isFactorTerm, levels), nil
}

// checkFactorialSpec checks the factor names and levels of a spec and
// returns each factor's index and the interaction terms.
func checkFactorialSpec(s FactorialSpec) (map[string]int, [][]int, error) {
	if s.Outcome == "" {
		return nil, nil, fmt.Errorf("no outcome column given")
	}
	if len(s.Factors) == 0 {
		return nil, nil, fmt.Errorf("no factors given")
	}
	factorIndex := map[string]int{}
	for i, f := range s.Factors {
		if strings.Contains(f, ":") {
			return nil, nil, fmt.Errorf("factor name %q contains ':'", f)
		}
		if _, dup := factorIndex[f]; dup {
			return nil, nil, fmt.Errorf("factor %q is listed twice", f)
		}
		factorIndex[f] = i
	}
	for f := range s.Levels {
		if _, ok := factorIndex[f]; !ok {
			return nil, nil, fmt.Errorf("levels given for %q, which is not a factor (factors: %s)", f, strings.Join(s.Factors, ", "))
		}
	}
	for _, c := range s.Covariates {
		if _, clash := factorIndex[c]; clash {
			return nil, nil, fmt.Errorf("%q is both a factor and a covariate", c)
		}
	}
	terms, err := interactionTerms(s, factorIndex)
	return factorIndex, terms, err
}

// factorialColumns reads the outcome, the covariates and the factors'
// effect codes from the table.
func factorialColumns(t *Table, s FactorialSpec, factorIndex map[string]int) (y []float64, covs, codes [][]float64, levels []FactorLevels, err error) {
	name := t.Name()
	if y, err = t.Numeric(s.Outcome); err != nil {
		return nil, nil, nil, nil, err
	}
	for i, v := range y {
		if math.IsNaN(v) {
			return nil, nil, nil, nil, fmt.Errorf("%s:%d: column %q: outcome is missing", name, t.Line(i), s.Outcome)
		}
	}
	covs = make([][]float64, len(s.Covariates))
	for k, c := range s.Covariates {
		if covs[k], err = t.Numeric(c); err != nil {
			return nil, nil, nil, nil, err
		}
		for i, v := range covs[k] {
			if math.IsNaN(v) {
				return nil, nil, nil, nil, fmt.Errorf("%s:%d: column %q: covariate is missing", name, t.Line(i), c)
			}
		}
	}
	codes = make([][]float64, len(s.Factors))
	levels = make([]FactorLevels, len(s.Factors))
	for j, f := range s.Factors {
		vals, err := t.Text(f)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		lv, given := s.Levels[f]
		if codes[j], levels[j], err = effectCodes(t, f, vals, lv, given); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	return y, covs, codes, levels, nil
}

// factorialDesign lays out the model's columns: intercept (nil),
// covariates, main effects, interactions (products of effect codes).
func factorialDesign(n int, s FactorialSpec, terms [][]int, covs, codes [][]float64) (termNames []string, isFactorTerm []bool, cols [][]float64) {
	termNames = []string{"(Intercept)"}
	isFactorTerm = []bool{false}
	cols = [][]float64{nil} // nil: intercept
	for k, c := range s.Covariates {
		termNames = append(termNames, c)
		isFactorTerm = append(isFactorTerm, false)
		cols = append(cols, covs[k])
	}
	for j, f := range s.Factors {
		termNames = append(termNames, f)
		isFactorTerm = append(isFactorTerm, true)
		cols = append(cols, codes[j])
	}
	for _, term := range terms {
		parts := make([]string, len(term))
		prod := make([]float64, n)
		for i := range prod {
			prod[i] = 1
		}
		for k, j := range term {
			parts[k] = s.Factors[j]
			for i := range prod {
				prod[i] *= codes[j][i]
			}
		}
		termNames = append(termNames, strings.Join(parts, ":"))
		isFactorTerm = append(isFactorTerm, true)
		cols = append(cols, prod)
	}
	return termNames, isFactorTerm, cols
}

// qrFit is a least-squares fit by QR: the coefficients, Q'y (whose squares
// are the sequential sums of squares), the residual sum of squares and
// R^-1 (for the standard errors).
type qrFit struct {
	n, k    int
	coef    mat.VecDense
	effects []float64
	rss     float64
	rinv    mat.TriDense
}

// fitQR fits y on cols (nil: the intercept) by QR, refusing a term aliased
// with the terms before it.
func fitQR(cols [][]float64, y []float64, termNames []string) (*qrFit, error) {
	n, k := len(y), len(cols)
	if n < k {
		return nil, fmt.Errorf("singular design: %d runs cannot estimate %d coefficients; use fewer terms", n, k)
	}
	aug := 0
	if n > k {
		aug = 1 // QR of [X | y] gives Q'y and the residual norm in R's last column
	}
	a := mat.NewDense(n, k+aug, nil)
	colNorm := make([]float64, k)
	for j, c := range cols {
		ss := 0.0
		for i := 0; i < n; i++ {
			v := 1.0
			if c != nil {
				v = c[i]
			}
			a.Set(i, j, v)
			ss += v * v
		}
		colNorm[j] = math.Sqrt(ss)
	}
	if aug == 1 {
		for i := 0; i < n; i++ {
			a.Set(i, k, y[i])
		}
	}
	var qr mat.QR
	qr.Factorize(a)
	var rfull mat.Dense
	qr.RTo(&rfull)
	for j := 0; j < k; j++ {
		if colNorm[j] == 0 || math.Abs(rfull.At(j, j)) <= aliasTol*colNorm[j] {
			return nil, fmt.Errorf("singular design: term %q is aliased with (a linear combination of) the terms before it; in a fractional design it is confounded with another effect: drop it from the model", termNames[j])
		}
	}
	fit := &qrFit{n: n, k: k, effects: make([]float64, k)}
	// effects = Q1'y (k values); rss = residual sum of squares.
	if aug == 1 {
		for j := 0; j < k; j++ {
			fit.effects[j] = rfull.At(j, k)
		}
		fit.rss = rfull.At(k, k) * rfull.At(k, k)
	} else {
		var q mat.Dense
		qr.QTo(&q)
		var qty mat.VecDense
		qty.MulVec(q.T(), mat.NewVecDense(n, append([]float64(nil), y...)))
		copy(fit.effects, qty.RawVector().Data[:k])
	}
	r := mat.NewTriDense(k, mat.Upper, nil)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			r.SetTri(i, j, rfull.At(i, j))
		}
	}
	if err := fit.coef.SolveVec(r, mat.NewVecDense(k, fit.effects)); err != nil {
		return nil, fmt.Errorf("singular design: %w", err)
	}
	if err := fit.rinv.InverseTri(r); err != nil {
		return nil, fmt.Errorf("singular design: %w", err)
	}
	return fit, nil
}

// result is the coefficients table and the sequential ANOVA of the fit.
func (fit *qrFit) result(y []float64, termNames []string, isFactorTerm []bool, levels []FactorLevels) *FactorialResult {
	n, k, rss := fit.n, fit.k, fit.rss
	dfRes := n - k
	sigma2 := math.NaN()
	if dfRes > 0 {
		sigma2 = rss / float64(dfRes)
	}
	mean := 0.0
	for _, v := range y {
		mean += v
	}
	mean /= float64(n)
	tss := 0.0
	for _, v := range y {
		tss += (v - mean) * (v - mean)
	}
	res := &FactorialResult{
		ResidualDF: dfRes,
		Sigma:      Float(math.Sqrt(sigma2)),
		RSquared:   Float(1 - rss/tss),
		N:          n,
		Levels:     levels,
	}
	crit := tQuantile(0.975, float64(dfRes))
	for j := 0; j < k; j++ {
		// (X'X)^-1_jj = |row j of R^-1|^2.
		u := 0.0
		for c := j; c < k; c++ {
			u += fit.rinv.At(j, c) * fit.rinv.At(j, c)
		}
		est := fit.coef.AtVec(j)
		se := math.Sqrt(sigma2 * u)
		tv := est / se
		c := Coefficient{
			Term: termNames[j], Estimate: est, Effect: Float(math.NaN()),
			StdErr: Float(se), T: Float(tv), PValue: Float(tTwoSided(tv, float64(dfRes))),
			CILow: Float(est - crit*se), CIHigh: Float(est + crit*se),
		}
		if isFactorTerm[j] {
			c.Effect = Float(2 * est)
		}
		res.Coefficients = append(res.Coefficients, c)
	}
	for j := 1; j < k; j++ {
		ss := fit.effects[j] * fit.effects[j]
		f := ss / sigma2
		res.ANOVA = append(res.ANOVA, ANOVARow{
			Term: termNames[j], DF: 1, SumSq: ss, MeanSq: Float(ss),
			F: Float(f), PValue: Float(fUpper(f, 1, float64(dfRes))),
		})
	}
	res.ANOVA = append(res.ANOVA, ANOVARow{
		Term: "Residuals", DF: dfRes, SumSq: rss, MeanSq: Float(sigma2),
		F: Float(math.NaN()), PValue: Float(math.NaN()),
	})
	return res
}

// interactionTerms returns the interaction terms as sorted factor indices,
// ordered by order (stable).
func interactionTerms(s FactorialSpec, factorIndex map[string]int) ([][]int, error) {
	var terms [][]int
	if len(s.Interactions) > 0 {
		seen := map[string]bool{}
		for _, parts := range s.Interactions {
			if len(parts) < 2 {
				return nil, fmt.Errorf("interaction %q needs at least two factors (as a:b)", strings.Join(parts, ":"))
			}
			var idx []int
			used := map[int]bool{}
			for _, p := range parts {
				j, ok := factorIndex[p]
				if !ok {
					return nil, fmt.Errorf("interaction %q: %q is not a factor (factors: %s)", strings.Join(parts, ":"), p, strings.Join(s.Factors, ", "))
				}
				if used[j] {
					return nil, fmt.Errorf("interaction %q names %q twice", strings.Join(parts, ":"), p)
				}
				used[j] = true
				idx = append(idx, j)
			}
			sort.Ints(idx)
			key := fmt.Sprint(idx)
			if seen[key] {
				return nil, fmt.Errorf("interaction %q is listed twice", strings.Join(parts, ":"))
			}
			seen[key] = true
			terms = append(terms, idx)
		}
		sort.SliceStable(terms, func(a, b int) bool { return len(terms[a]) < len(terms[b]) })
		return terms, nil
	}
	if s.Order < 0 {
		return nil, fmt.Errorf("order %d must be at least 1", s.Order)
	}
	if s.Order > len(s.Factors) {
		return nil, fmt.Errorf("order %d is larger than the number of factors (%d)", s.Order, len(s.Factors))
	}
	for order := 2; order <= s.Order; order++ {
		terms = append(terms, combinations(len(s.Factors), order)...)
	}
	return terms, nil
}

// combinations returns the k-subsets of 0..n-1 in lexicographic order.
func combinations(n, k int) [][]int {
	var out [][]int
	cur := make([]int, 0, k)
	var rec func(start int)
	rec = func(start int) {
		if len(cur) == k {
			out = append(out, append([]int(nil), cur...))
			return
		}
		for i := start; i < n; i++ {
			cur = append(cur, i)
			rec(i + 1)
			cur = cur[:len(cur)-1]
		}
	}
	rec(0)
	return out
}

// levelKey identifies a level: numbers by value (so 1 and 1.0 are the same
// level), anything else by its text.
func levelKey(s string) string {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return "n:" + strconv.FormatFloat(f, 'g', -1, 64)
	}
	return "s:" + s
}

// effectCodes codes a factor column -1 (low) / +1 (high).
func effectCodes(t *Table, factor string, vals []string, lv [2]string, given bool) ([]float64, FactorLevels, error) {
	name := t.Name()
	first := map[string]string{} // key -> first spelling
	var order []string
	for i, v := range vals {
		if v == "" {
			return nil, FactorLevels{}, fmt.Errorf("%s:%d: column %q: factor level is missing", name, t.Line(i), factor)
		}
		k := levelKey(v)
		if _, ok := first[k]; !ok {
			first[k] = strings.TrimSpace(v)
			order = append(order, k)
		}
	}
	var lowKey, highKey string
	out := FactorLevels{Factor: factor}
	if given {
		lowKey, highKey = levelKey(lv[0]), levelKey(lv[1])
		if lowKey == highKey {
			return nil, out, fmt.Errorf("factor %q: the low and high levels are both %q", factor, lv[0])
		}
		out.Low, out.High = strings.TrimSpace(lv[0]), strings.TrimSpace(lv[1])
		for i, v := range vals {
			if k := levelKey(v); k != lowKey && k != highKey {
				return nil, out, fmt.Errorf("%s:%d: column %q: level %q is neither the low level %q nor the high level %q", name, t.Line(i), factor, v, out.Low, out.High)
			}
		}
	} else {
		if len(order) != 2 {
			return nil, out, fmt.Errorf("factor %q has %d levels (%s); a two-level factor needs exactly 2", factor, len(order), strings.Join(spellings(order, first), ", "))
		}
		keys := append([]string(nil), order...)
		numeric := strings.HasPrefix(keys[0], "n:") && strings.HasPrefix(keys[1], "n:")
		sort.Slice(keys, func(a, b int) bool {
			if numeric {
				x, _ := strconv.ParseFloat(keys[a][2:], 64)
				y, _ := strconv.ParseFloat(keys[b][2:], 64)
				return x < y
			}
			return first[keys[a]] < first[keys[b]]
		})
		lowKey, highKey = keys[0], keys[1]
		out.Low, out.High = first[lowKey], first[highKey]
	}
	codes := make([]float64, len(vals))
	for i, v := range vals {
		if levelKey(v) == lowKey {
			codes[i] = -1
		} else {
			codes[i] = 1
		}
	}
	return codes, out, nil
}

func spellings(keys []string, first map[string]string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = first[k]
	}
	return out
}
