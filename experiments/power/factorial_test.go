package power

import (
	"errors"
	"math"
	"testing"
)

type factorialCase struct {
	Name   string        `json:"name"`
	Source string        `json:"source"`
	Spec   FactorialSpec `json:"spec"`
	Want   struct {
		N               int      `json:"n"`
		Power           *float64 `json:"power"`
		Coef            *float64 `json:"coef"`
		Lambda          *float64 `json:"noncentrality"`
		DF2             int      `json:"df2"`
		RegressionCoefs int      `json:"regression_coefs"`
	} `json:"want"`
	Tol     float64 `json:"tol"`
	TolCoef float64 `json:"tol_coef"`
}

// TestFactorialReference reproduces the reference figure (README: power
// 0.7354) and MOST::FactorialPowerPlan's conventions
// (testdata/factorial_cases.json).
func TestFactorialReference(t *testing.T) {
	for _, c := range loadCases[factorialCase](t, "factorial_cases.json") {
		t.Run(c.Name, func(t *testing.T) {
			res, err := Factorial(c.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if c.Want.N != 0 && res.N != c.Want.N {
				t.Errorf("N = %d, want %d", res.N, c.Want.N)
			}
			if c.Want.Power != nil && !near(res.Power, *c.Want.Power, c.Tol) {
				t.Errorf("power = %.15g, want %.15g (tol %g)", res.Power, *c.Want.Power, c.Tol)
			}
			tolCoef := c.TolCoef
			if tolCoef == 0 {
				tolCoef = max(c.Tol, 1e-14)
			}
			if c.Want.Coef != nil && !near(res.Coef, *c.Want.Coef, tolCoef) {
				t.Errorf("coefficient = %.15g, want %.15g", res.Coef, *c.Want.Coef)
			}
			if c.Want.Lambda != nil && !near(res.Lambda, *c.Want.Lambda, 1e-12) {
				t.Errorf("lambda = %.15g, want %.15g", res.Lambda, *c.Want.Lambda)
			}
			if c.Want.DF2 != 0 && res.DF2 != c.Want.DF2 {
				t.Errorf("df2 = %d, want %d", res.DF2, c.Want.DF2)
			}
			if c.Want.RegressionCoefs != 0 && res.RegressionCoefs != c.Want.RegressionCoefs {
				t.Errorf("regression coefficients = %d, want %d", res.RegressionCoefs, c.Want.RegressionCoefs)
			}
		})
	}
}

func TestFactorialRoundTrip(t *testing.T) {
	base := FactorialSpec{Factors: 4, Order: 2, EffectKind: CohensD, Effect: 0.4, Pretest: true, PretestCorr: 0.5}
	r, err := Factorial(FactorialSpec{Factors: 4, Order: 2, EffectKind: CohensD, Effect: 0.4, Pretest: true, PretestCorr: 0.5, Power: 0.85})
	if err != nil {
		t.Fatal(err)
	}
	// N is the smallest with power (rounded to 4 decimals, as MOST) >= 0.85.
	at := func(n int) float64 {
		s := base
		s.N = n
		r, err := Factorial(s)
		if err != nil {
			t.Fatal(err)
		}
		return r.Power
	}
	if round4(at(r.N)) < 0.85 || round4(at(r.N-1)) >= 0.85 {
		t.Errorf("N = %d: power %v there, %v at N-1", r.N, at(r.N), at(r.N-1))
	}
	// The detectable effect at that N for the power there (to 4 decimals)
	// is d = 0.4 up to MOST's search: its rounded power matches.
	target := round4(r.Power)
	e, err := Factorial(FactorialSpec{Factors: 4, Order: 2, Pretest: true, PretestCorr: 0.5, N: r.N, Power: target})
	if err != nil {
		t.Fatal(err)
	}
	if !near(e.D, 0.4, 1e-3) || !near(e.Power, target, 1e-4) {
		t.Errorf("detectable d at N %d, power %v = %.12g (power %v), want 0.4", r.N, target, e.D, e.Power)
	}
	if !near(e.RawMain, 2*e.Coef, 1e-15) || !near(e.DInteraction, 4*e.Coef, 1e-15) || !near(e.F2, e.Coef*e.Coef, 1e-15) {
		t.Errorf("inconsistent effect measures %+v", e)
	}
	// The pretest shrinks the error sd by sqrt(1 - r^2) and adds a coefficient.
	if !near(e.SigmaEffective, math.Sqrt(0.75), 1e-15) || e.RegressionCoefs != 1+4+6+1 {
		t.Errorf("sigma %v, coefficients %d", e.SigmaEffective, e.RegressionCoefs)
	}
	few, err := Factorial(FactorialSpec{Factors: 6, EffectKind: CohensD, Effect: 0.5, N: 40})
	if err != nil {
		t.Fatal(err)
	}
	if !few.TooFewForCells || few.Cells != 64 {
		t.Errorf("40 participants for 64 cells: %+v", few)
	}
}

func TestFactorialErrors(t *testing.T) {
	cases := []struct {
		field string
		spec  FactorialSpec
	}{
		{"Factors", FactorialSpec{Factors: 0, N: 100, Power: 0.8}},
		{"Order", FactorialSpec{Factors: 3, Order: 4, N: 100, Power: 0.8}},
		{"EffectKind", FactorialSpec{Factors: 3, N: 100}},
		{"EffectKind", FactorialSpec{Factors: 3, N: 100, Power: 0.8, EffectKind: CohensD, Effect: 0.3}},
		{"EffectKind", FactorialSpec{Factors: 3, N: 100, EffectKind: "eta2", Effect: 0.3}},
		{"Effect", FactorialSpec{Factors: 3, N: 100, EffectKind: EffectSizeRatio, Effect: -1}},
		{"SD", FactorialSpec{Factors: 3, N: 100, EffectKind: RawMain, Effect: 3}},
		{"SD", FactorialSpec{Factors: 3, N: 100, EffectKind: RawMain, Effect: 3, SD: -1}},
		{"PretestCorr", FactorialSpec{Factors: 3, N: 100, EffectKind: CohensD, Effect: 0.3, Pretest: true, PretestCorr: 1}},
		{"PretestCorr", FactorialSpec{Factors: 3, N: 100, EffectKind: CohensD, Effect: 0.3, PretestCorr: 0.5}},
		{"Alpha", FactorialSpec{Factors: 3, N: 100, EffectKind: CohensD, Effect: 0.3, Alpha: 2}},
		{"Power", FactorialSpec{Factors: 3, Power: 1.5, EffectKind: CohensD, Effect: 0.3}},
		{"N", FactorialSpec{Factors: 5, Order: 2, N: 16, EffectKind: CohensD, Effect: 0.3}},
	}
	for _, c := range cases {
		_, err := Factorial(c.spec)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: want a FieldError on %s, got %v", c.spec, c.field, err)
		}
	}
	if _, err := Factorial(FactorialSpec{Factors: 3, EffectKind: CohensD, Effect: 1e-6, Power: 0.99}); !errors.Is(err, ErrUnattainable) {
		t.Errorf("tiny effect: want ErrUnattainable, got %v", err)
	}
}
