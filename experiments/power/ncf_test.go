package power

import (
	"encoding/csv"
	"math"
	"os"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/stat/distuv"
)

func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

// TestNoncentralFValues compares both tails with values computed to 40
// digits by mpmath (testdata/gen_ncf_values.py), including tails far below
// 1e-15 that a one-minus formula could not give.
func TestNoncentralFValues(t *testing.T) {
	f, err := os.Open("testdata/ncf_values.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 20 {
		t.Fatalf("only %d rows in ncf_values.csv", len(rows))
	}
	for _, r := range rows[1:] {
		v := make([]float64, len(r))
		for i, s := range r {
			if v[i], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("row %v: %v", r, err)
			}
		}
		d := NoncentralF{D1: v[0], D2: v[1], Lambda: v[2]}
		cdf, sf := d.CDF(v[3]), d.Survival(v[3])
		// Relative accuracy for each tail; the complement of a tail near 1
		// is checked absolutely.
		const tol = 1e-12
		if e := relErr(cdf, v[4]); e > tol && math.Abs(cdf-v[4]) > 1e-15 {
			t.Errorf("%+v CDF(%v) = %.17g, want %.17g (rel err %.2g)", d, v[3], cdf, v[4], e)
		}
		if e := relErr(sf, v[5]); e > tol && math.Abs(sf-v[5]) > 1e-15 {
			t.Errorf("%+v Survival(%v) = %.17g, want %.17g (rel err %.2g)", d, v[3], sf, v[5], e)
		}
	}
}

// ncfCDFByIntegration computes P(F <= x) without the beta series: with
// X1 = (Z + sqrt(lambda))^2 + C (C central chi-squared with d1-1 degrees of
// freedom, d1 = 1 or 3) and X2 central chi-squared with d2 degrees of
// freedom, F <= x iff X1 <= c(X2) = x d1 X2 / d2, so
//
//	P = int p_X2(v) P(X1 <= c(v)) dv,
//	P((Z + s)^2 <= c) = Phi(sqrt(c) - s) - Phi(-sqrt(c) - s),
//
// and for d1 = 3, C is exponential with mean 2 and, with u = sqrt(c - y),
// P(X1 <= c) = int_0^sqrt(c) [Phi(u - s) - Phi(-u - s)] e^(-(c-u^2)/2) u du.
// Gauss-Legendre quadrature on smooth integrands.
func ncfCDFByIntegration(d1, d2, lambda, x float64) float64 {
	s := math.Sqrt(lambda)
	norm := distuv.UnitNormal
	sq := func(c float64) float64 { // P((Z+s)^2 <= c)
		r := math.Sqrt(c)
		return norm.CDF(r-s) - norm.CDF(-r-s)
	}
	x1 := func(c float64) float64 {
		if c <= 0 {
			return 0
		}
		if d1 == 1 {
			return sq(c)
		}
		inner := func(u float64) float64 { return sq(u*u) * math.Exp(-(c-u*u)/2) * u }
		return quad.Fixed(inner, 0, math.Sqrt(c), 100, nil, 0)
	}
	chi := distuv.ChiSquared{K: d2}
	hi := d2 + 15*math.Sqrt(2*d2) + 40
	outer := func(v float64) float64 { return chi.Prob(v) * x1(x*d1*v/d2) }
	return quad.Fixed(outer, 0, hi, 500, nil, 0)
}

func TestNoncentralFAgainstIntegration(t *testing.T) {
	cases := []struct{ d1, d2, lambda, x float64 }{
		{1, 284, 6.75, 3.8744102193014035},
		{1, 20, 0.5, 1}, {1, 20, 9, 4}, {1, 12, 30, 20}, {1, 5, 2, 0.3},
		{3, 40, 12.116357604398448, 2.8387453980206427},
		{3, 39, 11.852958526041961, 2.8450678052793498},
		{3, 50, 10, 1}, {3, 8, 4, 5}, {3, 100, 60, 15},
	}
	for _, c := range cases {
		want := ncfCDFByIntegration(c.d1, c.d2, c.lambda, c.x)
		got := NoncentralF{D1: c.d1, D2: c.d2, Lambda: c.lambda}.CDF(c.x)
		if math.Abs(got-want) > 1e-11 {
			t.Errorf("F(%v, %v; %v) CDF(%v) = %.15g, by integration %.15g", c.d1, c.d2, c.lambda, c.x, got, want)
		}
	}
}

func TestNoncentralFProperties(t *testing.T) {
	for _, d := range []struct{ d1, d2 float64 }{{1, 5}, {2, 7.5}, {3, 40}, {8, 200}} {
		central := distuv.F{D1: d.d1, D2: d.d2}
		for _, x := range []float64{0.01, 0.5, 1, 2.5, 10, 100} {
			got := NoncentralF{D1: d.d1, D2: d.d2}.CDF(x)
			if want := central.CDF(x); math.Abs(got-want) > 1e-14 {
				t.Errorf("lambda 0: CDF(%v) = %v, distuv.F %v", x, got, want)
			}
			prev := 2.0
			for _, lam := range []float64{0, 0.1, 1, 5, 20, 100, 1000} {
				nf := NoncentralF{D1: d.d1, D2: d.d2, Lambda: lam}
				c, s := nf.CDF(x), nf.Survival(x)
				if math.Abs(c+s-1) > 2e-13 {
					t.Errorf("%+v at %v: CDF + Survival = %.17g", nf, x, c+s)
				}
				if c > prev+1e-15 {
					t.Errorf("%+v: CDF(%v) = %v rises with lambda (was %v)", nf, x, c, prev)
				}
				prev = c
			}
		}
	}
	nf := NoncentralF{D1: 3, D2: 10, Lambda: 4}
	if nf.CDF(0) != 0 || nf.CDF(-1) != 0 || nf.Survival(0) != 1 || nf.CDF(math.Inf(1)) != 1 || nf.Survival(math.Inf(1)) != 0 {
		t.Error("wrong values at the ends of the support")
	}
	for _, bad := range []NoncentralF{{0, 1, 0}, {1, 0, 0}, {1, 1, -1}, {1, 1, math.Inf(1)}, {math.NaN(), 1, 0}} {
		if !math.IsNaN(bad.CDF(1)) || !math.IsNaN(bad.Survival(1)) {
			t.Errorf("%+v: want NaN", bad)
		}
	}
	if !math.IsNaN(nf.CDF(math.NaN())) {
		t.Error("CDF(NaN) should be NaN")
	}
}

func TestCriticalF(t *testing.T) {
	// Values from testdata/ncf_values.csv's generator (mpmath inversion).
	for _, c := range []struct{ d1, d2, alpha, want float64 }{
		{1, 284, 0.05, 3.8744102193014035454},
		{3, 40, 0.05, 2.8387453980206427056},
		{3, 39, 0.05, 2.8450678052793498311},
	} {
		if got := CriticalF(c.d1, c.d2, c.alpha); relErr(got, c.want) > 1e-13 {
			t.Errorf("CriticalF(%v, %v, %v) = %.17g, want %.17g", c.d1, c.d2, c.alpha, got, c.want)
		}
	}
	for _, alpha := range []float64{0.2, 0.05, 0.01, 1e-4} {
		for _, d := range []struct{ d1, d2 float64 }{{1, 10}, {2, 33.5}, {5, 300}} {
			x := CriticalF(d.d1, d.d2, alpha)
			if got := (distuv.F{D1: d.d1, D2: d.d2}).Survival(x); relErr(got, alpha) > 1e-10 {
				t.Errorf("upper tail at CriticalF(%v, %v, %v) = %v", d.d1, d.d2, alpha, got)
			}
			if got := FTestPower(d.d1, d.d2, 0, alpha); relErr(got, alpha) > 1e-10 {
				t.Errorf("FTestPower with lambda 0 = %v, want alpha %v", got, alpha)
			}
		}
	}
	if !math.IsNaN(CriticalF(1, 10, 0)) || !math.IsNaN(CriticalF(1, 10, 1)) || !math.IsNaN(CriticalF(0, 10, 0.05)) {
		t.Error("CriticalF should be NaN outside its domain")
	}
}
