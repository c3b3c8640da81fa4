package analysis

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// simMRT generates a long-format MRT: nPart participants x nPoints decision
// points, controls x1, x2, x3 (x1 also the moderator), availability about
// 0.8, randomisation probability between 0.3 and 0.7 depending on x2, and
//
//	continuous: y = 1 + 0.5 x1 + 0.3 x2 - 0.2 x3 + u_i + A (b0 + b1 x1) + e
//	binary:     P(y = 1) = exp(-1.4 + 0.3 x1 + 0.2 x2 + A (b0 + b1 x1))
//
// with u_i a participant effect. Unavailable rows have a missing outcome and
// probability, as an export writes them.
func simMRT(nPart, nPoints int, seed uint64, binary bool, b0, b1 float64) *Table {
	rng := rand.New(rand.NewPCG(seed, 1))
	n := nPart * nPoints
	ids := make([]string, n)
	cols := map[string][]float64{}
	for _, c := range []string{"y", "a", "p", "avail", "x1", "x2", "x3"} {
		cols[c] = make([]float64, n)
	}
	y, a, p, av, x1, x2, x3 := cols["y"], cols["a"], cols["p"], cols["avail"], cols["x1"], cols["x2"], cols["x3"]
	i := 0
	for j := 0; j < nPart; j++ {
		id := "p" + strconv.Itoa(j+1)
		u := 0.5 * rng.NormFloat64()
		for t := 0; t < nPoints; t++ {
			ids[i] = id
			x1[i] = rng.Float64()
			x2[i] = float64(t) / float64(nPoints)
			x3[i] = rng.NormFloat64()
			if rng.Float64() < 0.8 {
				av[i] = 1
				p[i] = 0.3 + 0.4*x2[i]
				if rng.Float64() < p[i] {
					a[i] = 1
				}
				eff := a[i] * (b0 + b1*x1[i])
				if binary {
					if rng.Float64() < math.Exp(-1.4+0.3*x1[i]+0.2*x2[i]+eff) {
						y[i] = 1
					}
				} else {
					y[i] = 1 + 0.5*x1[i] + 0.3*x2[i] - 0.2*x3[i] + u + eff + rng.NormFloat64()
				}
			} else {
				y[i], p[i] = math.NaN(), math.NaN()
			}
			i++
		}
	}
	t := NewTable("simulated", n)
	if err := t.SetText("id", ids); err != nil {
		panic(err)
	}
	for c, v := range cols {
		if err := t.SetNumeric(c, v); err != nil {
			panic(err)
		}
	}
	return t
}

func simSpec() MRTSpec {
	return MRTSpec{ID: "id", Outcome: "y", Treatment: "a", RandProb: Prob{Column: "p"}, Availability: "avail",
		Controls: []string{"x1", "x2", "x3"}, Moderators: []string{"x1"}}
}

// The estimators recover known effects from simulated trials: every effect
// within its 95% interval's neighbourhood (4 standard errors, so the fixed
// seed is not cherry-picked), in both WCLS branches and for EMEE.
func TestRecoverSimulatedEffects(t *testing.T) {
	cases := []struct {
		name     string
		nPart    int
		binary   bool
		b0, b1   float64
		estimate func(*Table, MRTSpec) (*MRTResult, error)
		test     string
	}{
		{"wcls large sample", 200, false, 0.4, -0.3, WCLS, "wald"},
		{"wcls small sample", 30, false, 0.4, -0.3, WCLS, "hotelling"},
		{"emee", 300, true, 0.3, 0.2, EMEE, "t"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := c.estimate(simMRT(c.nPart, 60, 7, c.binary, c.b0, c.b1), simSpec())
			if err != nil {
				t.Fatal(err)
			}
			if res.Test != c.test {
				t.Errorf("test = %s, want %s", res.Test, c.test)
			}
			for k, want := range []float64{c.b0, c.b1} {
				e := res.Effects[k]
				if math.Abs(e.Estimate-want) > 4*e.StdErr {
					t.Errorf("%s: estimate %.4f (se %.4f), true %.4f", e.Term, e.Estimate, e.StdErr, want)
				}
			}
		})
	}
}

// WCLS is invariant to how the id column is stored and to numeric ids.
func TestNumericIDs(t *testing.T) {
	tab := simMRT(20, 10, 3, false, 0.2, 0)
	ids, _ := tab.Text("id")
	num := make([]float64, len(ids))
	for i, s := range ids {
		v, _ := strconv.Atoi(s[1:])
		num[i] = float64(v)
	}
	res1, err := WCLS(tab, simSpec())
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.SetNumeric("nid", num); err != nil {
		t.Fatal(err)
	}
	spec := simSpec()
	spec.ID = "nid"
	res2, err := WCLS(tab, spec)
	if err != nil {
		t.Fatal(err)
	}
	if res1.Effects[0] != res2.Effects[0] {
		t.Errorf("%+v != %+v", res1.Effects[0], res2.Effects[0])
	}
}

// BenchmarkWCLS1M: 1,000,000 rows (5,000 participants x 200 decision
// points, 3 controls, 1 moderator), the large-sample branch; the table is in
// memory.
func BenchmarkWCLS1M(b *testing.B) {
	tab := simMRT(5000, 200, 1, false, 0.3, 0.2)
	spec := simSpec()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := WCLS(tab, spec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWCLS1MFromCSV is BenchmarkWCLS1M including reading the CSV (as
// `jitai analyze wcls` does).
func BenchmarkWCLS1MFromCSV(b *testing.B) {
	tab := simMRT(5000, 200, 1, false, 0.3, 0.2)
	var buf bytes.Buffer
	cols := []string{"y", "a", "p", "avail", "x1", "x2", "x3"}
	vals := make([][]float64, len(cols))
	for k, c := range cols {
		vals[k], _ = tab.Numeric(c)
	}
	ids, _ := tab.Text("id")
	buf.WriteString("id,y,a,p,avail,x1,x2,x3\n")
	for i := range ids {
		buf.WriteString(ids[i])
		for k := range cols {
			buf.WriteByte(',')
			if v := vals[k][i]; math.IsNaN(v) {
				buf.WriteString("NA")
			} else {
				buf.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		buf.WriteByte('\n')
	}
	data := buf.Bytes()
	spec := simSpec()
	id, numeric := spec.Columns()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t, err := ReadCSV(bytes.NewReader(data), "sim.csv", numeric, []string{id})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := WCLS(t, spec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWCLSSmallSample: 50 participants x 200 points, with the
// Mancl-DeRouen correction.
func BenchmarkWCLSSmallSample(b *testing.B) {
	tab := simMRT(50, 200, 1, false, 0.3, 0.2)
	spec := simSpec()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WCLS(tab, spec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEMEE: 1,000 participants x 100 decision points (100,000 rows),
// 3 controls, 1 moderator.
func BenchmarkEMEE(b *testing.B) {
	tab := simMRT(1000, 100, 1, true, 0.3, 0.2)
	spec := simSpec()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EMEE(tab, spec); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleWCLS() {
	tab := simMRT(40, 50, 11, false, 0.5, 0)
	res, err := WCLS(tab, MRTSpec{
		ID: "id", Outcome: "y", Treatment: "a", RandProb: Prob{Column: "p"}, Availability: "avail",
		Controls: []string{"x1", "x2"},
	})
	if err != nil {
		panic(err)
	}
	e := res.Effects[0]
	fmt.Println(res.Test, e.Term, e.CILow < 0.5 && 0.5 < e.CIHigh)
	// Output: hotelling (Intercept) true
}
