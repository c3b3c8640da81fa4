package design

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"testing"
	"time"
)

// bruteForce enumerates every set of k-q generator columns in
// lexicographic order and returns the first one of minimum aberration (the
// package's tie-breaking rule) with its pattern A_0..A_k.
func bruteForce(k, q int) ([]uint32, []int64) {
	cands := interactionColumns(q)
	p := k - q
	idx := make([]int, p)
	for i := range idx {
		idx[i] = i
	}
	gens := make([]uint32, p)
	var best []int64
	var bestGens []uint32
	w := make([]int64, k+1)
	cols := unitColumns(q)
	for {
		for i, j := range idx {
			gens[i] = cands[j]
		}
		if p <= 16 {
			// Gray code over the subsets of generators: the word of a subset
			// is its generated factors plus the XOR of their columns.
			clear(w)
			w[0] = 1
			var x uint32
			for s := 1; s < 1<<p; s++ {
				x ^= gens[bits.TrailingZeros(uint(s))]
				g := s ^ s>>1
				w[bits.OnesCount32(x)+bits.OnesCount(uint(g))]++
			}
		} else {
			copy(w, wordLengthPattern(append(cols[:q:q], gens...), q))
		}
		if best == nil || lexCompare(w, best) < 0 {
			best, bestGens = slices.Clone(w), slices.Clone(gens)
		}
		// next combination
		i := p - 1
		for i >= 0 && idx[i] == len(cands)-p+i {
			i--
		}
		if i < 0 {
			return bestGens, best
		}
		idx[i]++
		for j := i + 1; j < p; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

// The search is exact: it returns the same design as the enumeration of all
// generator sets (the lexicographically first of minimum aberration) for
// every run size and factor count where the enumeration is quick. The
// 32-run designs with 27-31 factors and the 64-run ones with 61-63 go
// through the complement search.
func TestDesignSearchMatchesBruteForce(t *testing.T) {
	var cases [][2]int // {k, q}
	add := func(q, from, to int) {
		for k := from; k <= to; k++ {
			cases = append(cases, [2]int{k, q})
		}
	}
	add(2, 3, 3)
	add(3, 4, 7)
	add(4, 5, 15)
	add(5, 6, 14)
	add(5, 25, 31)
	add(6, 7, 12)
	add(6, 60, 63)
	add(7, 8, 11)
	for _, c := range cases {
		k, q := c[0], c[1]
		if testing.Short() && bruteForceCost(k, q) > 1e8 {
			continue
		}
		t.Run(fmt.Sprintf("%d-factors-%d-runs", k, 1<<q), func(t *testing.T) {
			t.Parallel()
			wantGens, wantWLP := bruteForce(k, q)
			d, err := MinimumAberration(k, 1<<q, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.wordLengths(); !slices.Equal(got, wantWLP) {
				t.Errorf("WLP %v, brute force %v", got[3:], wantWLP[3:])
			}
			if got := d.GeneratorColumns(); !slices.Equal(got, toInts(wantGens)) {
				t.Errorf("generator columns %v, brute force %v", got, wantGens)
			}
			if !d.ProvenMinimumAberration() {
				t.Errorf("not proven")
			}
		})
	}
}

func bruteForceCost(k, q int) float64 {
	m, p := float64(1<<q-q-1), k-q
	c := 1.0
	for i := 0; i < p; i++ {
		c = c * (m - float64(i)) / float64(i+1)
	}
	return c * float64(min(1<<min(p, 20), k*k*(1<<q)))
}

func toInts(c []uint32) []int {
	out := make([]int, len(c))
	for i, v := range c {
		out[i] = int(v)
	}
	return out
}

// The complement search and the direct branch and bound are two exact
// methods; where both finish quickly they must agree, generators included.
func TestDesignComplementAgreesWithDirect(t *testing.T) {
	var cases [][2]int
	for k := 5; k <= 6; k++ {
		cases = append(cases, [2]int{k, 3})
	}
	for k := 9; k <= 14; k++ {
		cases = append(cases, [2]int{k, 4})
	}
	for k := 17; k <= 30; k++ {
		cases = append(cases, [2]int{k, 5})
	}
	cases = append(cases, [2]int{60, 6}, [2]int{62, 6})
	for _, c := range cases {
		k, q := c[0], c[1]
		s := Options{}.searcher()
		g1 := s.complement(k, q)
		g2, _ := s.direct(k, q, nil)
		if s.stopped {
			t.Fatalf("%d factors in %d runs: search stopped", k, 1<<q)
		}
		if !slices.Equal(g1, g2) {
			w1 := wordLengthPattern(append(unitColumns(q), g1...), q)
			w2 := wordLengthPattern(append(unitColumns(q), g2...), q)
			t.Errorf("%d factors in %d runs: complement %v (WLP %v), direct %v (WLP %v)", k, 1<<q, g1, w1[3:], g2, w2[3:])
		}
	}
}

// Every design of up to 64 runs, and of 128 runs with up to 7 added
// factors, is proven minimum aberration within DefaultMaxNodes search nodes
// (the budget a study's design is searched with). The time each takes is
// logged, not asserted: speed targets live in benchmarks.
func TestDesignExactRangeWithinDefaultBudget(t *testing.T) {
	type job struct{ k, runs int }
	var jobs []job
	for q := 2; q <= 6; q++ {
		for k := q + 1; k < 1<<q; k++ {
			jobs = append(jobs, job{k, 1 << q})
		}
	}
	for k := 8; k <= 15; k++ {
		jobs = append(jobs, job{k, 128})
	}
	var slowest time.Duration
	var slowJob, largest job
	var most int64
	for _, j := range jobs {
		start := time.Now()
		d, err := MinimumAberration(j.k, j.runs, 0)
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if !d.ProvenMinimumAberration() {
			t.Errorf("%d factors in %d runs: not proven (%s)", j.k, j.runs, d.SearchNote())
		}
		if took > slowest {
			slowest, slowJob = took, j
		}
		if n := d.SearchNodes(); n > most {
			most, largest = n, j
		}
	}
	t.Logf("%d designs; most nodes: %d factors in %d runs, %d nodes; slowest: %d factors in %d runs, %s",
		len(jobs), largest.k, largest.runs, most, slowJob.k, slowJob.runs, slowest)
}

// The node budget is exact and the only bound: a search given exactly the
// nodes it needs proves the design, one node fewer does not, and repeating
// either gives the same design and node count.
func TestDesignNodeBudgetIsDeterministic(t *testing.T) {
	for _, c := range [][2]int{{12, 64}, {21, 64}, {27, 32}, {40, 64}, {11, 128}} {
		k, runs := c[0], c[1]
		full, err := MinimumAberration(k, runs, 0)
		if err != nil {
			t.Fatal(err)
		}
		n := full.SearchNodes()
		if !full.ProvenMinimumAberration() || n < 2 {
			t.Fatalf("%d factors in %d runs: proven %v in %d nodes", k, runs, full.ProvenMinimumAberration(), n)
		}
		exact, _ := MinimumAberration(k, runs, n)
		if !exact.ProvenMinimumAberration() || !slices.Equal(exact.Columns(), full.Columns()) || exact.SearchNodes() != n {
			t.Errorf("%d factors in %d runs with %d nodes: proven %v, %v in %d nodes; want %v", k, runs, n,
				exact.ProvenMinimumAberration(), exact.Generators(), exact.SearchNodes(), full.Generators())
		}
		short1, _ := MinimumAberration(k, runs, n-1)
		short2, _ := MinimumAberration(k, runs, n-1)
		if short1.ProvenMinimumAberration() {
			t.Errorf("%d factors in %d runs: proven with %d nodes, one fewer than it needs", k, runs, n-1)
		}
		if want := fmt.Sprintf("node budget (%d nodes)", n-1); !strings.Contains(short1.SearchNote(), want) {
			t.Errorf("%d factors in %d runs: note %q, want %q", k, runs, short1.SearchNote(), want)
		}
		if !slices.Equal(short1.Columns(), short2.Columns()) || short1.SearchNodes() != short2.SearchNodes() {
			t.Errorf("%d factors in %d runs: two searches with %d nodes gave %v (%d nodes) and %v (%d nodes)", k, runs, n-1,
				short1.Generators(), short1.SearchNodes(), short2.Generators(), short2.SearchNodes())
		}
	}
}

// Without a time budget the search never reads a clock, so its outcome does
// not depend on the machine's speed or load.
func TestDesignSearchReadsNoClock(t *testing.T) {
	clock := func() time.Time {
		t.Fatal("the search read the clock without a time budget")
		return time.Time{}
	}
	for _, c := range [][3]int{{30, 128, 5000}, {12, 64, 0}, {40, 256, 20000}} {
		o := Options{MaxNodes: int64(c[2]), Now: clock}
		d, err := o.MinimumAberration(c[0], c[1])
		if err != nil {
			t.Fatal(err)
		}
		again, _ := o.MinimumAberration(c[0], c[1])
		if !slices.Equal(d.Columns(), again.Columns()) || d.ProvenMinimumAberration() != again.ProvenMinimumAberration() {
			t.Errorf("%d factors in %d runs: %v then %v", c[0], c[1], d.Generators(), again.Generators())
		}
	}
	if _, err := (Options{MaxNodes: 3000, Now: clock}).ForResolution(12, 5); err != nil {
		t.Fatal(err)
	}
}

// Pruning is sound: the search without the symmetry rule and without the
// water-filling bound finds the same designs.
func TestDesignPruningAblations(t *testing.T) {
	for _, c := range [][2]int{{10, 5}, {13, 5}, {16, 5}, {12, 6}, {14, 6}, {10, 7}} {
		k, q := c[0], c[1]
		s := Options{MaxNodes: -1}.searcher() // the plain search needs more than the default
		full, _ := s.direct(k, q, nil)
		e := newEngine(q, unitColumns(q), interactionColumns(q), k-q, modeOptimize)
		e.noWaterFill = true
		s.configure(e)
		e.seed()
		e.search()
		if e.stopped {
			t.Fatalf("%d factors in %d runs: plain search stopped", k, 1<<q)
		}
		if !slices.Equal(full, e.bestGens) {
			t.Errorf("%d factors in %d runs: %v with pruning, %v without", k, 1<<q, full, e.bestGens)
		}
	}
}

// The bounds that put the complement of a large design in a subspace hold
// for every run size up to 256.
func TestDesignExclusionBounds(t *testing.T) {
	for q := 2; q <= 8; q++ {
		for t0 := 1; t0 <= 1<<(q-1)-2; t0++ {
			if !exclusionHolds(q, t0) {
				t.Errorf("q=%d t=%d: exclusion bound fails", q, t0)
			}
		}
	}
	// Exact values where t >= 2^(r-1): PG(3,2) minus a point has 35-7 lines.
	b := newLineBounds()
	if v, ok := b.spanned(4, 14); !ok || v != 28 {
		t.Errorf("lines of 14 points spanning 4 dims: %d %v, want 28", v, ok)
	}
}

func TestDesignSubspaces(t *testing.T) {
	// Gaussian binomials [6 choose r]_2.
	for r, want := range []int{1, 63, 651, 1395, 651, 63, 1} {
		if got := len(subspaces(6, r)); got != want {
			t.Errorf("%d-dimensional subspaces of GF(2)^6: %d, want %d", r, got, want)
		}
	}
}

func TestDesignWordLengthPatternMethodsAgree(t *testing.T) {
	for _, g := range [][]uint32{{7, 11, 13}, {3, 5, 6, 7}, {7, 11, 19, 29}, {15, 51, 85, 106}} {
		q := bits.Len32(slices.Max(g))
		k := q + len(g)
		cols := append(unitColumns(q), g...)
		dp := wordLengthPattern(cols, q)
		w := make([]int64, k+1)
		w[0] = 1
		for s := 1; s < 1<<len(g); s++ {
			var x uint32
			for i := range g {
				if s>>i&1 == 1 {
					x ^= g[i]
				}
			}
			w[bits.OnesCount32(x)+bits.OnesCount(uint(s))]++
		}
		if !slices.Equal(dp, w) {
			t.Errorf("%v: DP %v, enumeration %v", g, dp, w)
		}
	}
}

// A search that runs out of time (an interactive option) returns its best
// design, not proven.
func TestDesignBudgetExhausted(t *testing.T) {
	clock := time.Unix(0, 0)
	now := func() time.Time {
		clock = clock.Add(time.Millisecond)
		return clock
	}
	d, err := Options{MaxNodes: -1, Budget: 5 * time.Millisecond, Now: now}.MinimumAberration(30, 128)
	if err != nil {
		t.Fatal(err)
	}
	if d.ProvenMinimumAberration() || !strings.Contains(d.SearchNote(), "time budget (5ms)") {
		t.Errorf("proven %v, note %q", d.ProvenMinimumAberration(), d.SearchNote())
	}
	if d.Factors() != 30 || d.Runs() != 128 || d.Resolution() < 4 {
		t.Errorf("design %s", d)
	}
}

func TestDesignForResolution(t *testing.T) {
	tests := []struct {
		k, res, runs int
		gens         string
	}{
		{3, 3, 4, "C=AB"},
		{3, 4, 8, ""},
		{4, 4, 8, "D=ABC"},
		{5, 4, 16, "E=ABCD"},
		{5, 5, 16, "E=ABCD"},
		{7, 4, 16, "E=ABC F=ABD G=ACD"},
		{7, 3, 8, "D=AB E=AC F=BC G=ABC"},
		{8, 5, 64, "G=ABCD H=ABEF"},
		{9, 6, 128, ""},
		{11, 5, 128, ""},
		{12, 5, 256, ""},
		{16, 4, 32, ""},
		{17, 4, 64, ""},
	}
	for _, tt := range tests {
		d, err := ForResolution(tt.k, tt.res, 0)
		if err != nil {
			t.Fatalf("ForResolution(%d, %d): %v", tt.k, tt.res, err)
		}
		if d.Runs() != tt.runs {
			t.Errorf("ForResolution(%d, %d): %d runs, want %d", tt.k, tt.res, d.Runs(), tt.runs)
		}
		if r := d.Resolution(); r != 0 && r < tt.res {
			t.Errorf("ForResolution(%d, %d): resolution %d", tt.k, tt.res, r)
		}
		if tt.gens != "" && strings.Join(d.Generators(), " ") != tt.gens {
			t.Errorf("ForResolution(%d, %d): generators %v, want %s", tt.k, tt.res, d.Generators(), tt.gens)
		}
		if !d.ProvenMinimumAberration() {
			t.Errorf("ForResolution(%d, %d): not proven", tt.k, tt.res)
		}
	}
}

func TestDesignRequestErrors(t *testing.T) {
	tests := []struct {
		call  func() error
		field string
		msg   string
	}{
		{func() error { _, err := MinimumAberration(6, 24, 0); return err }, "runs", "not a power of 2"},
		{func() error { _, err := MinimumAberration(4, 32, 0); return err }, "runs", "exceed the full factorial"},
		{func() error { _, err := MinimumAberration(8, 8, 0); return err }, "runs", "need at least 16 runs"},
		{func() error { _, err := MinimumAberration(20, 8192, 0); return err }, "runs", "at most 4096"},
		{func() error { _, err := MinimumAberration(0, 8, 0); return err }, "factors", "want 1 to 63"},
		{func() error { _, err := MinimumAberration(64, 128, 0); return err }, "factors", "want 1 to 63"},
		{func() error { _, err := ForResolution(5, 2, 0); return err }, "resolution", "below III"},
		{func() error { _, err := ForResolution(40, 8, 0); return err }, "resolution", "not reachable for 40 factors in at most 4096 runs"},
	}
	for _, tt := range tests {
		err := tt.call()
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != tt.field || !strings.Contains(ie.Problem, tt.msg) {
			t.Errorf("error %v, want field %s with %q", err, tt.field, tt.msg)
		}
	}
}
