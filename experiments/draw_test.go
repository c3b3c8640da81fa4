package experiments

import (
	"fmt"
	"math"
	"testing"
)

func TestUniformReproducibleAndKeyed(t *testing.T) {
	d := NewDrawer("seed-0123456789")
	a := d.Uniform("p1", "d1", "prompt")
	if a != NewDrawer("seed-0123456789").Uniform("p1", "d1", "prompt") {
		t.Fatal("same keys gave different draws")
	}
	for _, other := range []float64{
		d.Uniform("p1", "d1", "framing"),
		d.Uniform("p2", "d1", "prompt"),
		d.Uniform("p1", "d2", "prompt"),
		NewDrawer("seed-other-seed").Uniform("p1", "d1", "prompt"),
		d.Uniform("p1d", "1", "prompt"), // length prefixes keep tuples apart
	} {
		if other == a {
			t.Fatalf("different keys gave the same draw %v", a)
		}
	}
}

func TestUniformDistribution(t *testing.T) {
	// Kolmogorov-Smirnov-like check on deciles and independence of two factors.
	d := NewDrawer("dist-seed-xyz")
	const n = 200000
	var bins [10]int
	var both, p1, p2 int
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("d%d", i)
		u := d.Uniform("p", id, "prompt")
		v := d.Uniform("p", id, "framing")
		if u < 0 || u >= 1 {
			t.Fatalf("draw %v outside [0,1)", u)
		}
		bins[int(u*10)]++
		a, b := Level(u, 0.6), Level(v, 0.5)
		p1 += a
		p2 += b
		both += a * b
	}
	for i, c := range bins {
		// expected 20000, sd ~134; 5 sd
		if math.Abs(float64(c)-n/10) > 5*math.Sqrt(n*0.1*0.9) {
			t.Errorf("decile %d has %d draws, want about %d", i, c, n/10)
		}
	}
	// P(A=1,B=1) should be 0.3 if independent.
	if got := float64(both) / n; math.Abs(got-0.3) > 5*math.Sqrt(0.3*0.7/n) {
		t.Errorf("joint rate %v, want 0.3 (factors not independent?)", got)
	}
	if got := float64(p1) / n; math.Abs(got-0.6) > 5*math.Sqrt(0.24/n) {
		t.Errorf("rate of level 1 at p=0.6 is %v", got)
	}
}

func TestClipAndWeighted(t *testing.T) {
	for _, c := range []struct{ p, lo, hi, want float64 }{
		{0.5, 0.1, 0.9, 0.5}, {0.01, 0.1, 0.9, 0.1}, {0.95, 0.1, 0.9, 0.9}, {math.NaN(), 0.2, 0.8, 0.2},
	} {
		if got := Clip(c.p, c.lo, c.hi); got != c.want {
			t.Errorf("Clip(%v,%v,%v) = %v, want %v", c.p, c.lo, c.hi, got, c.want)
		}
	}
	w := []float64{1, 0, 3}
	for _, c := range []struct {
		u    float64
		i    int
		prob float64
	}{{0, 0, 0.25}, {0.2499, 0, 0.25}, {0.25, 2, 0.75}, {0.9999, 2, 0.75}} {
		i, p := Weighted(c.u, w)
		if i != c.i || p != c.prob {
			t.Errorf("Weighted(%v) = %d,%v want %d,%v", c.u, i, p, c.i, c.prob)
		}
	}
	if i, _ := Weighted(0.5, []float64{0, -1}); i != -1 {
		t.Errorf("no positive weight should give -1, got %d", i)
	}
}

func TestBlockAssignerBalanced(t *testing.T) {
	rows := FullFactorial(4)
	if len(rows) != 16 || rows[1][0] != 1 || rows[1][1] != 0 || rows[2][1] != 1 {
		t.Fatalf("standard order wrong: %v", rows[:3])
	}
	a, err := NewBlockAssigner("assign-seed-123", rows)
	if err != nil {
		t.Fatal(err)
	}
	for _, stratum := range []string{"site=a", "site=b"} {
		counts := make([]int, 16)
		for seq := int64(0); seq < 16*7+5; seq++ {
			counts[a.RowIndex(stratum, seq)]++
			lo, hi := counts[0], counts[0]
			for _, c := range counts {
				lo, hi = min(lo, c), max(hi, c)
			}
			if hi-lo > 1 {
				t.Fatalf("%s after %d enrolments counts differ by %d: %v", stratum, seq+1, hi-lo, counts)
			}
		}
	}
	again, _ := NewBlockAssigner("assign-seed-123", rows)
	if a.RowIndex("site=a", 3) != again.RowIndex("site=a", 3) {
		t.Fatal("not reproducible")
	}
	same := 0
	for seq := int64(0); seq < 16; seq++ {
		if a.RowIndex("site=a", seq) == a.RowIndex("site=b", seq) {
			same++
		}
	}
	if same == 16 {
		t.Fatal("strata share one permutation")
	}
}

func BenchmarkUniform(b *testing.B) {
	d := NewDrawer("bench-seed-123")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.Uniform("participant-1", "01JD0000000000000000000000", "prompt")
	}
}
