package power

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"
)

// loadCases reads a JSON array of test cases from testdata: adding a case is
// adding an entry, not code.
func loadCases[T any](t *testing.T, name string) []T {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var cases []T
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(cases) == 0 {
		t.Fatalf("%s: no cases", name)
	}
	return cases
}

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

type mrtCase struct {
	Name   string  `json:"name"`
	Source string  `json:"source"`
	Spec   MRTSpec `json:"spec"`
	Want   struct {
		N             int      `json:"n"`
		Power         float64  `json:"power"`
		PowerBelow    *float64 `json:"power_at_n_minus_1"`
		AtSearchStart bool     `json:"at_search_start"`
	} `json:"want"`
	Tol float64 `json:"tol"`
}

// TestMRTReference reproduces the reference figures (shared/reference/README.md)
// and MRTSampleSize's own examples and further cases computed with its
// functions in R (testdata/mrt_cases.json).
func TestMRTReference(t *testing.T) {
	for _, c := range loadCases[mrtCase](t, "mrt_cases.json") {
		t.Run(c.Name, func(t *testing.T) {
			res, err := MRT(c.Spec)
			if err != nil {
				t.Fatal(err)
			}
			if res.N != c.Want.N {
				t.Errorf("N = %d, want %d", res.N, c.Want.N)
			}
			if !near(res.Power, c.Want.Power, c.Tol) {
				t.Errorf("power = %.15g, want %.15g (tol %g)", res.Power, c.Want.Power, c.Tol)
			}
			if c.Want.PowerBelow != nil && (res.PowerBelow == nil || !near(*res.PowerBelow, *c.Want.PowerBelow, c.Tol)) {
				t.Errorf("power at N-1 = %v, want %.15g", res.PowerBelow, *c.Want.PowerBelow)
			}
			if res.AtSearchStart != c.Want.AtSearchStart {
				t.Errorf("AtSearchStart = %v, want %v", res.AtSearchStart, c.Want.AtSearchStart)
			}
			if res.DF2 != res.N-res.EffectParams-res.ControlParams {
				t.Errorf("df2 = %d with N %d, p %d, q %d", res.DF2, res.N, res.EffectParams, res.ControlParams)
			}
		})
	}
}

// TestMRTReferenceCoefficients checks d for the reference study: the
// quadratic effect lies in the span of Z_t, so d is its exact coefficients.
func TestMRTReferenceCoefficients(t *testing.T) {
	res, err := MRT(MRTSpec{
		Days: 42, DecisionsPerDay: 5, RandProb: []float64{0.4},
		Effect:       Trend{Shape: Quadratic, Mean: 0.1, Initial: 0, ChangeDay: 28},
		Availability: Trend{Shape: Quadratic, Mean: 0.5, Initial: 0.7, ChangeDay: 42},
		N:            46,
	})
	if err != nil {
		t.Fatal(err)
	}
	// From R: d = (-2.0e-15, 1.00030873726462e-02, -1.85242358752709e-04),
	// d'Qd = 0.26339907835648801.
	want := []float64{0, 1.00030873726462e-02, -1.85242358752709e-04}
	for i := range want {
		if !near(res.EffectCoef[i], want[i], 1e-13) {
			t.Errorf("d[%d] = %.15g, want %.15g", i, res.EffectCoef[i], want[i])
		}
	}
	if !near(res.Lambda/46, 0.26339907835648801, 1e-14) {
		t.Errorf("d'Qd = %.17g", res.Lambda/46)
	}
	if len(res.Effect) != 210 || len(res.Availability) != 210 {
		t.Errorf("per-decision vectors have %d and %d values, want 210", len(res.Effect), len(res.Availability))
	}
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// TestTrendShapes checks the defining properties of MRTSampleSize's shapes.
func TestTrendShapes(t *testing.T) {
	for _, tr := range []Trend{
		{Shape: Constant, Mean: 0.3},
		{Shape: Linear, Mean: 0.1, Initial: 0.2},
		{Shape: Linear, Mean: 0.6, Initial: 0.6},
		{Shape: Quadratic, Mean: 0.1, Initial: 0, ChangeDay: 28},
		{Shape: Quadratic, Mean: 0.5, Initial: 0.7, ChangeDay: 42},
		{Shape: Quadratic, Mean: 0.5, Initial: 0.7, ChangeDay: 60},
	} {
		days := 42
		v, err := tr.daily("Effect", days)
		if err != nil {
			t.Fatalf("%+v: %v", tr, err)
		}
		if !near(mean(v), tr.Mean, 1e-14) {
			t.Errorf("%+v: mean %.17g", tr, mean(v))
		}
		if tr.Shape != Constant && !near(v[0], tr.Initial, 1e-14) {
			t.Errorf("%+v: day 1 value %.17g", tr, v[0])
		}
		switch tr.Shape {
		case Linear:
			if !near(v[days-1], 2*tr.Mean-tr.Initial, 1e-14) {
				t.Errorf("%+v: last day %.17g", tr, v[days-1])
			}
		case Quadratic:
			// The derivative b + 2c k vanishes at k = ChangeDay - 1: the values
			// are symmetric about the turning point.
			k0 := int(tr.ChangeDay) - 1
			for j := 1; k0-j >= 0 && k0+j < days; j++ {
				if !near(v[k0-j], v[k0+j], 1e-13) {
					t.Errorf("%+v: not symmetric about day %v: %v vs %v", tr, tr.ChangeDay, v[k0-j], v[k0+j])
				}
			}
		}
	}
	one, _ := (&Trend{Shape: Linear, Mean: 0.4, Initial: 0.9}).daily("Effect", 1)
	if len(one) != 1 || one[0] != 0.4 {
		t.Errorf("linear over one day = %v, want [0.4] (MRTSampleSize uses the mean)", one)
	}
}

// TestMRTCustomMatchesShape: custom per-day or per-decision values equal to a
// shape give the same answer, and the power is monotone in N.
func TestMRTCustomMatchesShape(t *testing.T) {
	base := MRTSpec{
		Days: 42, DecisionsPerDay: 5, RandProb: []float64{0.4},
		Effect:       Trend{Shape: Quadratic, Mean: 0.1, Initial: 0, ChangeDay: 28},
		Availability: Trend{Shape: Quadratic, Mean: 0.5, Initial: 0.7, ChangeDay: 42},
	}
	want, err := MRT(base)
	if err != nil {
		t.Fatal(err)
	}
	custom := base
	custom.Effect = Trend{Shape: Custom, Values: want.Effect}
	daily := make([]float64, 42)
	for k := range daily {
		daily[k] = want.Availability[5*k]
	}
	custom.Availability = Trend{Shape: Custom, Values: daily}
	probs := make([]float64, 210)
	for i := range probs {
		probs[i] = 0.4
	}
	custom.RandProb = probs
	got, err := MRT(custom)
	if err != nil {
		t.Fatal(err)
	}
	if got.N != want.N || !near(got.Power, want.Power, 1e-12) {
		t.Errorf("custom values: N %d power %v, shapes: N %d power %v", got.N, got.Power, want.N, want.Power)
	}
	prev := 0.0
	for n := 7; n < 300; n += 7 {
		s := base
		s.N = n
		r, err := MRT(s)
		if err != nil {
			t.Fatal(err)
		}
		if r.Power <= prev {
			t.Errorf("power not increasing in N: %v at %d after %v", r.Power, n, prev)
		}
		prev = r.Power
	}
	zero := base
	zero.Effect = Trend{Shape: Constant, Mean: 0}
	zero.N = 50
	r, err := MRT(zero)
	if err != nil {
		t.Fatal(err)
	}
	if !near(r.Power, 0.05, 1e-12) {
		t.Errorf("power with no effect = %v, want alpha", r.Power)
	}
}

func TestMRTErrors(t *testing.T) {
	ok := func() MRTSpec {
		return MRTSpec{
			Days: 42, DecisionsPerDay: 5, RandProb: []float64{0.4},
			Effect:       Trend{Shape: Constant, Mean: 0.1},
			Availability: Trend{Shape: Constant, Mean: 0.5},
		}
	}
	cases := []struct {
		field string
		edit  func(*MRTSpec)
	}{
		{"Days", func(s *MRTSpec) { s.Days = 0 }},
		{"DecisionsPerDay", func(s *MRTSpec) { s.DecisionsPerDay = -1 }},
		{"RandProb", func(s *MRTSpec) { s.RandProb = nil }},
		{"RandProb", func(s *MRTSpec) { s.RandProb = []float64{1} }},
		{"RandProb", func(s *MRTSpec) { s.RandProb = []float64{0.4, 0.5} }},
		{"RandProb", func(s *MRTSpec) { s.RandProb = make([]float64, 42); s.RandProb[3] = 1.2 }},
		{"Effect.Shape", func(s *MRTSpec) { s.Effect.Shape = "cubic" }},
		{"Effect.Shape", func(s *MRTSpec) { s.Effect.Shape = "" }},
		{"Effect", func(s *MRTSpec) { s.Effect.Mean = math.NaN() }},
		{"Effect.Values", func(s *MRTSpec) { s.Effect = Trend{Shape: Custom, Values: []float64{1, 2}} }},
		{"Availability", func(s *MRTSpec) { s.Availability.Mean = 1.2 }},
		{"Availability", func(s *MRTSpec) { s.Availability = Trend{Shape: Linear, Mean: 0.5, Initial: 1.1} }},
		{"Availability.ChangeDay", func(s *MRTSpec) {
			// (2 days - 1)/6 + 1 makes the quadratic undetermined.
			s.Availability = Trend{Shape: Quadratic, Mean: 0.5, Initial: 0.6, ChangeDay: 83.0/6 + 1}
		}},
		{"EffectParams", func(s *MRTSpec) { s.EffectParams = 50 }},
		{"ControlParams", func(s *MRTSpec) { s.ControlParams = -2 }},
		{"Alpha", func(s *MRTSpec) { s.Alpha = 1.5 }},
		{"Power", func(s *MRTSpec) { s.Power = 1 }},
		{"N", func(s *MRTSpec) { s.N = 4 }},
		{"MaxN", func(s *MRTSpec) { s.MaxN = 5 }},
	}
	for _, c := range cases {
		s := ok()
		c.edit(&s)
		_, err := MRT(s)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("want a FieldError on %s, got %v", c.field, err)
		}
	}
	s := ok()
	s.Effect.Mean = 0.001
	if _, err := MRT(s); !errors.Is(err, ErrUnattainable) {
		t.Errorf("tiny effect: want ErrUnattainable, got %v", err)
	}
}
