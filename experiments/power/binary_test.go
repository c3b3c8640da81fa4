package power

import (
	"errors"
	"math"
	"strings"
	"testing"
)

type binaryCase struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Case   struct {
		Points       int           `json:"points"`
		NullCoef     []float64     `json:"null_coef"`
		EffectCoef   []float64     `json:"effect_coef"`
		Curves       *BinaryCurves `json:"curves"`
		Availability []float64     `json:"availability"`
		AvailLinear  []float64     `json:"availability_linear"`
		RandProb     []float64     `json:"rand_prob"`
		Alpha        float64       `json:"alpha"`
		Power        float64       `json:"power"`
		N            int           `json:"n"`
	} `json:"case"`
	Want struct {
		N          int       `json:"n"`
		NExact     float64   `json:"n_exact"`
		Power      float64   `json:"power"`
		NullCoef   []float64 `json:"null_coef"`
		EffectCoef []float64 `json:"effect_coef"`
	} `json:"want"`
	Tol       float64 `json:"tol"`
	TolNExact float64 `json:"tol_n_exact"`
}

func (c *binaryCase) spec(t *testing.T) BinarySpec {
	in := c.Case
	s := BinarySpec{Availability: in.Availability, RandProb: in.RandProb, Alpha: in.Alpha, Power: in.Power, N: in.N}
	if in.Curves != nil {
		if err := in.Curves.Apply(&s); err != nil {
			t.Fatal(err)
		}
		if len(in.AvailLinear) == 2 {
			s.Availability = linspace(in.AvailLinear[0], in.AvailLinear[1], in.Curves.DecisionPoints)
		}
		return s
	}
	s.NullBasis, s.NullCoef = PolyBasis(in.Points, len(in.NullCoef)), in.NullCoef
	s.EffectBasis, s.EffectCoef = PolyBasis(in.Points, len(in.EffectCoef)), in.EffectCoef
	return s
}

// TestMRTBinaryReference reproduces MRTSampleSizeBinary's test figures and
// further values computed with its formulas in R (testdata/binary_cases.json).
func TestMRTBinaryReference(t *testing.T) {
	for _, c := range loadCases[binaryCase](t, "binary_cases.json") {
		t.Run(c.Name, func(t *testing.T) {
			s := c.spec(t)
			res, err := MRTBinary(s)
			if err != nil {
				t.Fatal(err)
			}
			if res.N != c.Want.N {
				t.Errorf("N = %d, want %d", res.N, c.Want.N)
			}
			if c.Want.NExact != 0 && !near(res.NExact, c.Want.NExact, c.TolNExact) {
				t.Errorf("exact n = %.12g, want %.12g (tol %g)", res.NExact, c.Want.NExact, c.TolNExact)
			}
			if c.Want.Power != 0 && !near(res.Power, c.Want.Power, c.Tol) {
				t.Errorf("power = %.15g, want %.15g (tol %g)", res.Power, c.Want.Power, c.Tol)
			}
			for i, w := range c.Want.NullCoef {
				if !near(s.NullCoef[i], w, 1e-14) {
					t.Errorf("null coefficient %d = %.17g, want %.17g", i, s.NullCoef[i], w)
				}
			}
			for i, w := range c.Want.EffectCoef {
				if !near(s.EffectCoef[i], w, 1e-14) {
					t.Errorf("effect coefficient %d = %.17g, want %.17g", i, s.EffectCoef[i], w)
				}
			}
			if s.N == 0 {
				// N is the smallest integer reaching the target.
				below := s
				below.N = res.N - 1
				if below.N > len(s.NullCoef)+len(s.EffectCoef) {
					rb, err := MRTBinary(below)
					if err != nil {
						t.Fatal(err)
					}
					if rb.Power >= s.Power || res.Power < s.Power {
						t.Errorf("power %v at N-1 and %v at N do not bracket %v", rb.Power, res.Power, s.Power)
					}
				}
			}
		})
	}
}

func linearExample(power float64, n int) BinarySpec {
	return BinarySpec{
		Availability: []float64{0.8}, RandProb: []float64{0.4},
		EffectBasis: PolyBasis(10, 2), EffectCoef: []float64{0.15, -0.01},
		NullBasis: PolyBasis(10, 2), NullCoef: []float64{-0.2, -0.1},
		Power: power, N: n,
	}
}

// TestMRTBinaryInverse mirrors the package's own tests: power and sample size
// are inverse to each other.
func TestMRTBinaryInverse(t *testing.T) {
	r, err := MRTBinary(linearExample(0.9, 0))
	if err != nil {
		t.Fatal(err)
	}
	// Power at round(exact n) for 90% is 0.9 to 1e-4 (test-mrt_binary_power.R).
	p, err := MRTBinary(linearExample(0, int(math.Round(r.NExact))))
	if err != nil {
		t.Fatal(err)
	}
	if !near(p.Power, 0.9, 1e-4) {
		t.Errorf("power at round(n) = %v, want 0.9", p.Power)
	}
	// And the sample size for the power at n = 10 (quadratic null curve) is 10.
	s := linearExample(0, 10)
	s.NullBasis, s.NullCoef = PolyBasis(10, 3), []float64{-0.2, -0.1, 0.01}
	p, err = MRTBinary(s)
	if err != nil {
		t.Fatal(err)
	}
	s.N, s.Power = 0, p.Power
	r, err = MRTBinary(s)
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 10 || !near(r.NExact, 10, 1e-6) {
		t.Errorf("sample size for the power at 10 = %d (exact %v)", r.N, r.NExact)
	}
}

// TestMRTBinaryProperties: monotone in N, power -> alpha as the effect -> 0,
// and, without Monte Carlo, the noncentrality for a small constant effect
// agrees with the delta-method information for a log relative risk.
func TestMRTBinaryProperties(t *testing.T) {
	prev := 0.0
	for n := 10; n <= 1000; n += 30 {
		r, err := MRTBinary(linearExample(0, n))
		if err != nil {
			t.Fatal(err)
		}
		if r.Power <= prev {
			t.Errorf("power not increasing: %v at %d after %v", r.Power, n, prev)
		}
		prev = r.Power
	}
	for _, scale := range []float64{1e-2, 1e-4, 1e-6} {
		s := linearExample(0, 200)
		s.EffectCoef = []float64{0.15 * scale, -0.01 * scale}
		r, err := MRTBinary(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Power - 0.05; got < 0 || got > 20*scale*scale+1e-12 {
			t.Errorf("effect scaled by %g: power %v, want alpha + O(scale^2)", scale, r.Power)
		}
	}

	// Constant f = g = 1, constant p, tau, mu0. For small beta the
	// estimator of log RR is asymptotically that of a two-sample comparison
	// of n T tau p and n T tau (1-p) Bernoulli(mu0) outcomes, whose variance
	// is (1-mu0)/mu0 (1/n1 + 1/n0); so lambda/n -> T tau mu0 p (1-p) beta^2/(1-mu0).
	T, tau, p, mu0 := 60, 0.7, 0.3, 0.25
	for _, beta := range []float64{1e-2, 1e-3, 1e-4} {
		s := BinarySpec{
			Availability: []float64{tau}, RandProb: []float64{p},
			EffectBasis: PolyBasis(T, 1), EffectCoef: []float64{beta},
			NullBasis: PolyBasis(T, 1), NullCoef: []float64{math.Log(mu0)},
			N: 100,
		}
		r, err := MRTBinary(s)
		if err != nil {
			t.Fatal(err)
		}
		want := 100 * float64(T) * tau * mu0 * p * (1 - p) * beta * beta / (1 - mu0)
		if relErr(r.Lambda, want) > 3*beta {
			t.Errorf("beta %g: lambda %.10g, delta method %.10g", beta, r.Lambda, want)
		}
	}
}

func TestMRTBinaryWarnings(t *testing.T) {
	s := linearExample(0, 100)
	alt := make([][]float64, 10)
	for i := range alt {
		alt[i] = []float64{1, float64((i + 1) % 2)}
	}
	s.EffectBasis = alt
	r, err := MRTBinary(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "column 2 is not in the linear span") {
		t.Errorf("warnings %q", r.Warnings)
	}
	s = linearExample(0, 100)
	s.EffectBasis, s.EffectCoef = PolyBasis(10, 3), []float64{0.15, -0.01, -0.001}
	r, err = MRTBinary(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) == 0 || !strings.Contains(r.Warnings[0], "3 columns and the null basis 2") {
		t.Errorf("warnings %q", r.Warnings)
	}
	if r, _ := MRTBinary(linearExample(0, 100)); len(r.Warnings) != 0 {
		t.Errorf("unexpected warnings %q", r.Warnings)
	}
}

func TestMRTBinaryErrors(t *testing.T) {
	cases := []struct {
		field string
		edit  func(*BinarySpec)
	}{
		{"EffectBasis", func(s *BinarySpec) { s.EffectBasis = nil }},
		{"NullBasis", func(s *BinarySpec) { s.NullBasis = PolyBasis(9, 2) }},
		{"EffectCoef", func(s *BinarySpec) { s.EffectCoef = nil }},
		{"NullCoef", func(s *BinarySpec) { s.NullCoef = nil }},
		{"EffectBasis", func(s *BinarySpec) { s.EffectCoef = []float64{0.1, 0, 0} }},
		{"NullBasis", func(s *BinarySpec) { s.NullCoef = []float64{-1} }},
		{"Availability", func(s *BinarySpec) { s.Availability = []float64{0} }},
		{"Availability", func(s *BinarySpec) { s.Availability = []float64{0.5, 0.5} }},
		{"RandProb", func(s *BinarySpec) { s.RandProb = []float64{1} }},
		{"Alpha", func(s *BinarySpec) { s.Alpha = -3 }},
		{"Power", func(s *BinarySpec) { s.N, s.Power = 0, 2 }},
		{"N", func(s *BinarySpec) { s.N = 4 }},
		{"NullCoef", func(s *BinarySpec) { s.NullCoef = []float64{0.1, 0} }},
		{"EffectCoef", func(s *BinarySpec) { s.EffectCoef = []float64{2, 0} }},
		{"EffectBasis", func(s *BinarySpec) {
			s.EffectBasis = make([][]float64, 10)
			for i := range s.EffectBasis {
				s.EffectBasis[i] = []float64{1, 2}
			}
		}},
	}
	for _, c := range cases {
		s := linearExample(0, 100)
		c.edit(&s)
		_, err := MRTBinary(s)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("want a FieldError on %s, got %v", c.field, err)
		}
	}
	s := linearExample(0.8, 0)
	s.EffectCoef = []float64{1e-5, 0}
	if _, err := MRTBinary(s); !errors.Is(err, ErrUnattainable) {
		t.Errorf("tiny effect: want ErrUnattainable, got %v", err)
	}
	var s2 BinarySpec
	for _, c := range []struct {
		curves BinaryCurves
		field  string
	}{
		{BinaryCurves{DecisionPoints: 0}, "DecisionPoints"},
		{BinaryCurves{DecisionPoints: 5, NullShape: Constant, P0Initial: 1.2, EffectShape: Constant, RRInitial: 1.1}, "P0Initial"},
		{BinaryCurves{DecisionPoints: 5, NullShape: LogLinear, P0Initial: 0.2, P0Final: 0, EffectShape: Constant, RRInitial: 1.1}, "P0Final"},
		{BinaryCurves{DecisionPoints: 5, NullShape: Constant, P0Initial: 0.2, EffectShape: "cubic", RRInitial: 1.1}, "EffectShape"},
		{BinaryCurves{DecisionPoints: 1, NullShape: LogLinear, P0Initial: 0.2, P0Final: 0.3, EffectShape: Constant, RRInitial: 1.1}, "DecisionPoints"},
		{BinaryCurves{DecisionPoints: 5, NullShape: Constant, P0Initial: 0.2, EffectShape: Constant, RRInitial: -1}, "RRInitial"},
	} {
		err := c.curves.Apply(&s2)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%+v: want a FieldError on %s, got %v", c.curves, c.field, err)
		}
	}
}
