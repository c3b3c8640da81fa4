package design

import (
	"fmt"
	"math/bits"
	"time"
)

// DefaultMaxNodes is the search budget used when none is given: the number
// of search nodes (partial designs) the branch and bound may examine. A node
// of a search in more than 128 runs counts as runs/128 nodes, and a complete
// design whose word-length pattern is computed as k^2/16 more (their cost
// grows with the run size and the factors), so that a search that reaches
// the budget takes about a second in any run size. Every design of up to
// 64 runs, and of 128 runs with up to 7 added factors, is proven within it:
// the largest, 23 factors in 64 runs, needs 64,685 nodes and 15 factors in
// 128 runs 183,227 (TestDesignExactRangeWithinDefaultBudget). A study's
// design is searched with this budget, so whether its run size is proven is
// the same on every machine.
const DefaultMaxNodes int64 = 1_000_000

// InputError reports a request that cannot be met. Field names the input
// ("factors", "runs", "resolution" or "generators"); the command line maps it
// to the flag the user typed.
type InputError struct {
	Field   string
	Problem string
}

// Error returns "design: field: problem".
func (e *InputError) Error() string { return "design: " + e.Field + ": " + e.Problem }

func inputErr(field, format string, args ...any) error {
	return &InputError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Options tunes a search. The zero value bounds it by DefaultMaxNodes search
// nodes and never reads a clock, so the same request gives the same design,
// proven or not, on any machine.
type Options struct {
	// MaxNodes bounds the number of search nodes; past it the best design
	// found is returned, marked as not proven. Zero means DefaultMaxNodes;
	// a negative value means no node bound (then Budget should be set).
	MaxNodes int64
	// Budget, when positive, also bounds the search by wall-clock time.
	// Whether a search finishes then depends on the machine and its load:
	// use it only interactively (jitai design --budget), never for a
	// design that participants are assigned by.
	Budget time.Duration
	// Now is the clock of Budget (nil: time.Now); unused without Budget.
	Now func() time.Time
}

func (o Options) searcher() *searcher {
	s := &searcher{maxNodes: o.MaxNodes, budget: o.Budget}
	if s.maxNodes == 0 {
		s.maxNodes = DefaultMaxNodes
	}
	if o.Budget > 0 {
		s.now = o.Now
		if s.now == nil {
			s.now = time.Now
		}
		s.deadline = s.now().Add(o.Budget)
	}
	return s
}

// MinimumAberration returns the minimum-aberration design for k factors in
// runs runs (a power of two), found by a search of at most maxNodes nodes
// (zero means DefaultMaxNodes). Among designs with the same word-length
// pattern it returns the one with the lexicographically smallest generator
// columns (see the package doc). If the search reaches its budget the best
// design found is returned and ProvenMinimumAberration reports false. The
// result depends only on the arguments.
func MinimumAberration(k, runs int, maxNodes int64) (*Design, error) {
	return Options{MaxNodes: maxNodes}.MinimumAberration(k, runs)
}

// MinimumAberration is the package-level MinimumAberration with these
// options.
func (o Options) MinimumAberration(k, runs int) (*Design, error) {
	if err := checkFactors(k); err != nil {
		return nil, err
	}
	q, err := runsExponent(k, runs)
	if err != nil {
		return nil, err
	}
	if q == k {
		return FullFactorial(k)
	}
	s := o.searcher()
	return s.design(k, q, nil), nil
}

// ForResolution returns the minimum-aberration design for k factors in the
// smallest run size (at most MaxRuns) whose designs reach resolution at
// least res; a full factorial when only the full factorial does. The node
// budget (zero means DefaultMaxNodes) is shared by the run-size search and
// the design search.
func ForResolution(k, res int, maxNodes int64) (*Design, error) {
	return Options{MaxNodes: maxNodes}.ForResolution(k, res)
}

// ForResolution is the package-level ForResolution with these options.
func (o Options) ForResolution(k, res int) (*Design, error) {
	if err := checkFactors(k); err != nil {
		return nil, err
	}
	if res < 3 {
		return nil, inputErr("resolution", "%d is below III: a regular design's resolution is at least 3", res)
	}
	s := o.searcher()
	unknown := false
	for q := minDim(k); q <= k && 1<<q <= MaxRuns; q++ {
		if q == k {
			d, err := FullFactorial(k)
			if err == nil && unknown {
				d.proven = false
				d.nodes = s.used
				d.note = "full factorial; smaller run sizes could not all be ruled out within the " + s.limitName()
			}
			return d, err
		}
		ok, decided, found := s.reaches(k, q, res)
		if !decided {
			unknown = true
			continue
		}
		if !ok {
			continue
		}
		d := s.design(k, q, found)
		if unknown {
			d.proven = false
			d.note = "smaller run sizes could not all be ruled out within the " + s.limitName() + "; " + d.note
		}
		return d, nil
	}
	if 1<<k > MaxRuns {
		return nil, inputErr("resolution", "resolution %s is not reachable for %d factors in at most %d runs", Roman(res), k, MaxRuns)
	}
	return nil, inputErr("resolution", "resolution %s is not reachable for %d factors", Roman(res), k)
}

func checkFactors(k int) error {
	if k < 1 || k > MaxFactors {
		return inputErr("factors", "%d factors: want 1 to %d", k, MaxFactors)
	}
	return nil
}

// runsExponent validates a run size for k factors and returns q with
// runs = 2^q.
func runsExponent(k, runs int) (int, error) {
	if runs < 2 || runs&(runs-1) != 0 {
		return 0, inputErr("runs", "%d is not a power of 2", runs)
	}
	if runs > MaxRuns {
		return 0, inputErr("runs", "%d runs: at most %d", runs, MaxRuns)
	}
	q := bits.TrailingZeros(uint(runs))
	if q > k {
		return 0, inputErr("runs", "%d runs exceed the full factorial in %d factors (%d runs)", runs, k, 1<<k)
	}
	if runs-1 < k {
		return 0, inputErr("runs", "%d factors need at least %d runs (a 2^q-run design holds at most 2^q - 1 factors)", k, 1<<minDim(k))
	}
	return q, nil
}

// searcher runs the searches of one request under one budget: a number of
// search nodes shared by all the engines it runs, and optionally a deadline.
type searcher struct {
	maxNodes int64 // negative: no node bound
	used     int64 // nodes examined so far
	now      func() time.Time
	deadline time.Time // zero: no deadline
	budget   time.Duration
	stopped  bool   // a search reached the budget
	stopWhy  string // which budget: "node budget (N nodes)" or "time budget (D)"
}

// configure hands the remaining budget to an engine.
func (s *searcher) configure(e *engine) {
	e.limit = -1
	if s.maxNodes >= 0 {
		e.limit = max(s.maxNodes-s.used, 0)
	}
	e.now = s.now
	e.deadline = s.deadline
}

// run searches with e (configured) and charges its nodes to the budget.
func (s *searcher) run(e *engine) {
	e.search()
	s.used += e.nodes
	if e.stopped && !s.stopped {
		s.stopped = true
		s.stopWhy = e.stopWhy(s)
	}
}

// limitName names the budget a stopped search reached.
func (s *searcher) limitName() string {
	if s.stopWhy == "" {
		return "search budget"
	}
	return s.stopWhy
}

// unitColumns returns the base-factor columns 1, 2, 4, ...
func unitColumns(q int) []uint32 {
	u := make([]uint32, q)
	for i := range u {
		u[i] = 1 << i
	}
	return u
}

// interactionColumns returns the columns with at least two base factors,
// ascending.
func interactionColumns(q int) []uint32 {
	var c []uint32
	for v := 3; v < 1<<q; v++ {
		if v&(v-1) != 0 {
			c = append(c, uint32(v))
		}
	}
	return c
}

// design searches the minimum-aberration design for k factors in 2^q runs
// (q < k). A non-nil seed (generator columns) is a design to start from.
func (s *searcher) design(k, q int, seed []uint32) *Design {
	var gens []uint32
	if k == 1<<q-1 {
		gens = interactionColumns(q) // saturated: every column
	} else if q <= 6 && k > 1<<(q-1) && exclusionHolds(q, 1<<q-1-k) {
		gens = s.complement(k, q)
	}
	if gens == nil {
		gens, _ = s.direct(k, q, seed)
	}
	d := newDesign(k, q, gens)
	d.searched = true
	d.proven = !s.stopped
	d.nodes = s.used
	if d.proven {
		d.note = fmt.Sprintf("exhaustive search, %d nodes", s.used)
	} else {
		d.note = fmt.Sprintf("the search stopped at its %s; this is the best design found", s.limitName())
	}
	return d
}

// direct runs the branch and bound over generator columns, starting from
// the greedy designs and seed (if not nil). It returns the generator columns
// and the word-length pattern A_0..A_k.
func (s *searcher) direct(k, q int, seed []uint32) ([]uint32, []int64) {
	e := newEngine(q, unitColumns(q), interactionColumns(q), k-q, modeOptimize)
	s.configure(e)
	s.symmetry(e)
	e.seed()
	if seed != nil {
		e.offer(seed)
	}
	s.run(e)
	return e.bestGens, e.best
}

// complement finds the minimum-aberration design for k > 2^(q-1) factors
// from its complement T (t = 2^q - 1 - k columns), which lies in an
// r0-dimensional subspace V (exclusionHolds), V \ T being a
// minimum-aberration set U of u = 2^r0 - 1 - t columns. The generator
// columns are the lexicographically smallest over all V of the smallest
// (equivalently: lexicographically largest T) within V. It returns nil if
// the search ran out of time before any V was done.
func (s *searcher) complement(k, q int) []uint32 {
	n := 1 << q
	t := n - 1 - k
	r0 := minDim(t)
	u := 1<<r0 - 1 - t
	var wU []int64
	if u <= r0 {
		wU = make([]int64, u+1)
		wU[0] = 1
	} else {
		_, wU = s.direct(u, r0, nil)
		if s.stopped {
			return nil
		}
	}
	var best []uint32
	for _, V := range subspaces(q, r0) {
		var forced, pts []uint32
		pool := make([]bool, n)
		for v := 1; v < n; v++ {
			if V>>v&1 == 0 {
				continue
			}
			pool[v] = true
			if v&(v-1) == 0 {
				forced = append(forced, uint32(v))
			} else {
				pts = append(pts, uint32(v))
			}
		}
		if len(forced) > u {
			continue // T would hold a base factor
		}
		e := newEngine(q, forced, pts, u-len(forced), modeTarget)
		e.target = wU
		e.pool = pool
		s.configure(e)
		s.run(e)
		if e.stopped {
			break
		}
		if !e.done {
			continue
		}
		inU := make([]bool, n)
		for _, c := range append(forced, e.bestGens...) {
			inU[c] = true
		}
		var gens []uint32
		for _, c := range interactionColumns(q) {
			if !pool[c] || inU[c] {
				gens = append(gens, c)
			}
		}
		if best == nil || lexCompareCols(gens, best) < 0 {
			best = gens
		}
	}
	return best
}

// symmetry sets the orderly pruning of an engine whose init columns are
// the unit columns: all base-factor permutations, at every depth for
// q <= 6 and at the first depths for q = 7 (5 levels) and q = 8 (2 levels),
// whose q! permutations make each check costly; the first-generator rule
// beyond.
func (s *searcher) symmetry(e *engine) {
	p := e.p
	switch {
	case e.q <= 6:
		e.withPerms(p)
	case e.q == 7:
		e.withPerms(min(5, p))
	case e.q == 8:
		e.withPerms(min(2, p))
	default:
		e.firstGen = true
	}
}

// reaches reports whether some design of k factors in 2^q runs has
// resolution at least res, with such a design's generator columns when one
// was searched for; decided is false when the search ran out of time.
func (s *searcher) reaches(k, q, res int) (ok, decided bool, found []uint32) {
	switch {
	case res <= 3:
		return k <= 1<<q-1, true, nil
	case res == 4:
		return k <= 1<<(q-1), true, nil
	case k > 1<<(q-1) || !hammingAllows(k, q, res):
		return false, true, nil
	}
	e := newEngine(q, unitColumns(q), interactionColumns(q), k-q, modeFeasible)
	e.minRes = res
	s.configure(e)
	s.symmetry(e)
	s.run(e)
	if e.done {
		return true, true, e.bestGens
	}
	if e.stopped {
		return false, false, nil
	}
	return false, true, nil
}

// hammingAllows applies the sphere-packing bound to the defining contrast
// subgroup, a binary linear code of length k, dimension k-q and minimum
// distance at least res: sum_{i<=e} C(k, i) <= 2^q with e = (res-1)/2; for
// even res the code punctured once gives sum_{i<=e} C(k-1, i) <= 2^(q-1).
func hammingAllows(k, q, res int) bool {
	e := (res - 1) / 2
	n, cap := k, 1<<q
	if res%2 == 0 {
		n, cap = k-1, 1<<(q-1)
	}
	sum, c := 0, 1
	for i := 0; i <= e; i++ {
		if i > 0 {
			c = c * (n - i + 1) / i
		}
		sum += c
		if sum > cap {
			return false
		}
	}
	return true
}

// Roman returns the Roman numeral of a resolution (3 gives "III").
func Roman(n int) string {
	if n <= 0 || n >= 40 {
		return fmt.Sprint(n)
	}
	var out []byte
	for _, p := range []struct {
		v int
		s string
	}{{10, "X"}, {9, "IX"}, {5, "V"}, {4, "IV"}, {1, "I"}} {
		for n >= p.v {
			out = append(out, p.s...)
			n -= p.v
		}
	}
	return string(out)
}
