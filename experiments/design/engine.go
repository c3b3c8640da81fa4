package design

import (
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"
)

// jmax is the longest word length the engine tracks incrementally: a node
// knows A3..A6 of its partial design exactly; longer words are counted only
// at leaves that tie on A3..A6.
const jmax = 6

// level is the state of the depth-first search at one depth.
type level struct {
	// c[j][v] is the number of j-subsets of the chosen columns whose XOR is
	// v, for j = 1..jmax-1 (c[1] is the membership indicator).
	c [jmax][]int32
	// a[j] is A_j of the chosen columns, j <= jmax.
	a [jmax + 1]int64
	// gb is the set of added columns as a bitset over column values; img
	// holds, per base-factor permutation, the bitset of their images.
	gb  []uint64
	img []uint64
}

type engineMode int

const (
	// modeOptimize finds the lexicographically smallest column list among
	// the designs of minimum aberration.
	modeOptimize engineMode = iota
	// modeTarget finds the lexicographically smallest column list whose
	// word-length pattern equals target.
	modeTarget
	// modeFeasible finds the first design without words shorter than
	// minRes.
	modeFeasible
)

// engine chooses p columns from cands (ascending) to add to the columns
// init, depth first in increasing order, so that the first design reached
// among equals is the lexicographically smallest. Columns are bitmasks over q
// base factors.
type engine struct {
	q, n   int
	init   []uint32
	cands  []uint32
	p, k   int
	mode   engineMode
	target []int64 // modeTarget: A_0..A_k wanted
	minRes int     // modeFeasible: shortest word length allowed
	pool   []bool  // columns that pair sums may fall on (nil: all nonzero)

	noWaterFill bool // tests: disable the water-filling bound

	// Orderly pruning: perms[i][c] is column c with base factors permuted
	// (identity excluded); applied up to depth permDepth. firstGen applies
	// the weaker rule that the first added column is 2^w - 1.
	perms     [][]uint16
	permDepth int
	firstGen  bool
	words     int

	lv   []level
	gens []uint32

	have     bool
	best     []int64 // A_0..A_k of the incumbent (modeOptimize)
	bestGens []uint32
	done     bool

	limit    int64 // nodes allowed (negative: no bound)
	cost     int64 // what a node counts for: max(1, 2^q/128)
	now      func() time.Time
	deadline time.Time // zero: none
	nodes    int64
	stopped  bool
	late     bool // stopped by the deadline rather than the node limit

	scratch []int64
	eligAt  [][]uint32 // eligible candidates, per depth
}

func newEngine(q int, init, cands []uint32, p int, mode engineMode) *engine {
	e := &engine{
		q: q, n: 1 << q, init: init, cands: cands, p: p, k: len(init) + p, mode: mode,
		limit: -1, cost: max(1, int64(1)<<q/128),
	}
	e.words = (e.n + 63) / 64
	e.lv = make([]level, p+1)
	for d := range e.lv {
		for j := 1; j < jmax; j++ {
			e.lv[d].c[j] = make([]int32, e.n)
		}
		e.lv[d].gb = make([]uint64, e.words)
	}
	root := &e.lv[0]
	for _, y := range init {
		e.addInPlace(root, y)
	}
	e.gens = make([]uint32, p)
	e.scratch = make([]int64, 0, len(cands))
	e.eligAt = make([][]uint32, p+1)
	for d := range e.eligAt {
		e.eligAt[d] = make([]uint32, 0, len(cands))
	}
	return e
}

// withPerms enables orderly pruning by base-factor permutations (init must
// be the unit columns) up to the given depth.
func (e *engine) withPerms(depth int) {
	e.perms = basePermutations(e.q)
	e.permDepth = depth
	for d := 0; d <= depth && d < len(e.lv); d++ {
		e.lv[d].img = make([]uint64, len(e.perms)*e.words)
	}
}

// basePermutations returns every non-identity permutation of q base
// factors as a map of column values.
func basePermutations(q int) [][]uint16 {
	n := 1 << q
	var out [][]uint16
	perm := make([]int, q)
	for i := range perm {
		perm[i] = i
	}
	var rec func(i int)
	rec = func(i int) {
		if i == q {
			m := make([]uint16, n)
			ident := true
			for c := 0; c < n; c++ {
				var img uint16
				for b := 0; b < q; b++ {
					if c>>b&1 == 1 {
						img |= 1 << perm[b]
					}
				}
				m[c] = img
				if int(img) != c {
					ident = false
				}
			}
			if !ident {
				out = append(out, m)
			}
			return
		}
		for j := i; j < q; j++ {
			perm[i], perm[j] = perm[j], perm[i]
			rec(i + 1)
			perm[i], perm[j] = perm[j], perm[i]
		}
	}
	rec(0)
	return out
}

// addInPlace adds column y to the state l.
func (e *engine) addInPlace(l *level, y uint32) {
	for j := 1; j < jmax; j++ {
		l.a[j+1] += int64(l.c[j][y])
	}
	tmp := make([]int32, e.n)
	for j := jmax - 1; j >= 2; j-- {
		cj, cp := l.c[j], l.c[j-1]
		for v := range tmp {
			tmp[v] = cj[v] + cp[v^int(y)]
		}
		copy(cj, tmp)
	}
	l.c[1][y]++
}

// extend writes into dst the state src plus column y.
func (e *engine) extend(src, dst *level, y uint32) {
	dst.a = src.a
	for j := 1; j < jmax; j++ {
		dst.a[j+1] += int64(src.c[j][y])
	}
	copy(dst.c[1], src.c[1])
	dst.c[1][y]++
	yi := int(y)
	for j := 2; j < jmax; j++ {
		cj, cp, out := src.c[j], src.c[j-1], dst.c[j]
		for v := range out {
			out[v] = cj[v] + cp[v^yi]
		}
	}
	copy(dst.gb, src.gb)
	dst.gb[y/64] |= 1 << (y % 64)
}

// reference returns the pattern a node is compared against: the incumbent
// or the target (nil when there is none).
func (e *engine) reference() []int64 {
	switch e.mode {
	case modeTarget:
		return e.target
	case modeOptimize:
		if e.have {
			return e.best
		}
	}
	return nil
}

// requiredRes is the shortest word length a useful completion may have:
// the resolution of the reference pattern (up to jmax+1).
func (e *engine) requiredRes() int {
	if e.mode == modeFeasible {
		return e.minRes
	}
	ref := e.reference()
	if ref == nil {
		return 3
	}
	for j := 3; j <= jmax && j < len(ref); j++ {
		if ref[j] > 0 {
			return j
		}
	}
	return jmax + 1
}

// eligible reports whether adding y to l creates no word shorter than res.
func eligible(l *level, y uint32, res int) bool {
	for j := 2; j <= res-2 && j < jmax; j++ {
		if l.c[j][y] != 0 {
			return false
		}
	}
	return true
}

// search runs the depth-first search from the root.
func (e *engine) search() {
	e.dfs(0, 0)
}

func (e *engine) dfs(d, s int) {
	e.nodes += e.cost
	if e.limit >= 0 && e.nodes > e.limit {
		e.stopped = true
		return
	}
	if (e.nodes/e.cost)&1023 == 0 && !e.deadline.IsZero() && e.now().After(e.deadline) {
		e.stopped, e.late = true, true
		return
	}
	cur := &e.lv[d]
	r := e.p - d
	if r == 0 {
		e.leaf(cur)
		return
	}
	res := e.requiredRes()
	elig := e.eligAt[d][:0]
	for _, y := range e.cands[s:] {
		if eligible(cur, y, res) {
			elig = append(elig, y)
		}
	}
	e.eligAt[d] = elig
	if len(elig) < r {
		return
	}
	if ref := e.reference(); ref != nil && e.boundExceeds(cur, elig, r, res, ref) {
		return
	}
	next := &e.lv[d+1]
	for idx, y := range elig {
		if len(elig)-idx < r {
			return
		}
		if ref := e.reference(); ref != nil {
			// The words y makes with the chosen columns bound the final
			// pattern from below; the incumbent may have improved since
			// elig was built, so eligibility is checked again.
			ca := cur.a
			for j := 1; j < jmax; j++ {
				ca[j+1] += int64(cur.c[j][y])
			}
			if cmpPrefix(ca[:], ref) > 0 || !eligible(cur, y, e.requiredRes()) {
				continue
			}
		}
		if d == 0 && e.firstGen && y&(y+1) != 0 {
			continue
		}
		if d < e.permDepth && !e.orderly(cur, next, y) {
			continue
		}
		e.extend(cur, next, y)
		e.gens[d] = y
		e.dfs(d+1, indexAfter(e.cands, y))
		if e.done || e.stopped {
			return
		}
	}
}

// stopWhy names the budget that stopped the engine.
func (e *engine) stopWhy(s *searcher) string {
	if e.late {
		return fmt.Sprintf("time budget (%s)", s.budget)
	}
	return fmt.Sprintf("node budget (%d nodes)", s.maxNodes)
}

// indexAfter returns the index of the first candidate greater than y.
func indexAfter(c []uint32, y uint32) int {
	i, _ := slices.BinarySearch(c, y)
	return i + 1
}

// cmpPrefix compares a[3..jmax] with ref[3..jmax] lexicographically.
func cmpPrefix(a []int64, ref []int64) int {
	for j := 3; j <= jmax && j < len(ref); j++ {
		if a[j] != ref[j] {
			if a[j] < ref[j] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// orderly reports whether the generator set of cur plus y is the
// lexicographically smallest among its images under base-factor
// permutations (for sorted lists of equal length, the smaller list holds
// the smallest element of the symmetric difference). It fills next.img.
func (e *engine) orderly(cur, next *level, y uint32) bool {
	w := e.words
	gb := next.gb // scratch: final value is written again by extend
	copy(gb, cur.gb)
	gb[y/64] |= 1 << (y % 64)
	for pi, m := range e.perms {
		iy := m[y]
		src := cur.img[pi*w : pi*w+w]
		dst := next.img[pi*w : pi*w+w]
		copy(dst, src)
		dst[iy/64] |= 1 << (iy % 64)
		for i := 0; i < w; i++ {
			if x := dst[i] ^ gb[i]; x != 0 {
				if dst[i]&(x&-x) != 0 {
					return false
				}
				break
			}
		}
	}
	return true
}

// boundExceeds reports whether every completion of cur with r of the
// eligible columns has a pattern lexicographically worse than ref.
func (e *engine) boundExceeds(cur *level, elig []uint32, r, res int, ref []int64) bool {
	for j := 3; j <= jmax && j < len(ref); j++ {
		lb := cur.a[j]
		if j >= res {
			vals := e.scratch[:0]
			for _, y := range elig {
				vals = append(vals, int64(cur.c[j-1][y]))
			}
			lb += sumSmallest(vals, r)
		}
		if j == 4 && res >= 4 && !e.noWaterFill {
			if w := e.waterFill(cur, r); w > lb {
				lb = w
			}
		}
		if lb != ref[j] {
			return lb > ref[j]
		}
	}
	return false
}

// sumSmallest returns the sum of the r smallest values (it reorders v).
func sumSmallest(v []int64, r int) int64 {
	var s int64
	if r*4 < len(v) {
		for i := 0; i < r; i++ {
			m := i
			for j := i + 1; j < len(v); j++ {
				if v[j] < v[m] {
					m = j
				}
			}
			v[i], v[m] = v[m], v[i]
			s += v[i]
		}
		return s
	}
	slices.Sort(v)
	for _, x := range v[:r] {
		s += x
	}
	return s
}

// waterFill bounds A4 of any resolution IV completion of cur with r more
// columns. In a design without words of length 3, 3*A4 = sum over columns v
// of C(m_v, 2), m_v being the number of pairs of design columns whose XOR is
// v (v is then not a design column). The r new columns bring
// r*size + C(r,2) new pairs; spreading them as evenly as possible over the
// columns that are not design columns (r columns with m_v = 0 become design
// columns) gives the smallest possible sum.
func (e *engine) waterFill(cur *level, r int) int64 {
	var hist [128]int64
	var over []int64
	maxm := 0
	for v := 1; v < e.n; v++ {
		if cur.c[1][v] != 0 || (e.pool != nil && !e.pool[v]) {
			continue
		}
		m := int(cur.c[2][v])
		if m < len(hist) {
			hist[m]++
		} else {
			over = append(over, int64(m))
		}
		if m > maxm {
			maxm = m
		}
	}
	if len(over) > 0 {
		return 0 // pair counts beyond the histogram: skip the bound
	}
	hist[0] -= int64(r)
	if hist[0] < 0 {
		return 0
	}
	var slots int64
	for _, h := range hist {
		slots += h
	}
	size := int64(len(e.init) + (e.p - r))
	x := int64(r)*size + int64(r)*int64(r-1)/2
	var sum int64
	for m := 0; m <= maxm; m++ {
		sum += hist[m] * int64(m) * int64(m-1) / 2
	}
	if slots == 0 {
		if x > 0 {
			return math.MaxInt64 / 4 // no column left for the new pairs
		}
		return (sum + 2) / 3
	}
	// Raise the lowest slots one level at a time.
	var cnt int64
	for level := 0; x > 0; level++ {
		if level < len(hist) {
			cnt += hist[level]
		}
		if cnt == 0 {
			continue
		}
		if level < maxm && x >= cnt {
			sum += cnt * int64(level) // cnt slots go from level to level+1
			x -= cnt
			continue
		}
		if level < maxm {
			sum += x * int64(level)
			break
		}
		// All slots at the top level: spread x evenly.
		full, rem := x/cnt, x%cnt
		l := int64(level)
		inc := func(to int64) int64 { return to*(to-1)/2 - l*(l-1)/2 }
		sum += (cnt-rem)*inc(l+full) + rem*inc(l+full+1)
		break
	}
	return (sum + 2) / 3
}

// leaf handles a complete design.
func (e *engine) leaf(cur *level) {
	switch e.mode {
	case modeFeasible:
		if e.minRes > jmax+1 {
			w := e.leafPattern()
			for j := 3; j < e.minRes && j < len(w); j++ {
				if w[j] != 0 {
					return
				}
			}
		}
		e.bestGens = slices.Clone(e.gens)
		e.done = true
	case modeTarget:
		if cmpPrefix(cur.a[:], e.target) != 0 {
			return
		}
		w := e.leafPattern()
		if lexCompare(w, e.target) == 0 {
			e.best = w
			e.bestGens = slices.Clone(e.gens)
			e.done = true
		}
	case modeOptimize:
		if e.have && cmpPrefix(cur.a[:], e.best) > 0 {
			return
		}
		w := e.leafPattern()
		if e.have {
			c := lexCompare(w, e.best)
			if c > 0 || (c == 0 && lexCompareCols(e.gens, e.bestGens) >= 0) {
				return
			}
		}
		e.have = true
		e.best = w
		e.bestGens = slices.Clone(e.gens)
	}
}

// leafPattern returns the word-length pattern of the complete design and
// charges its computation, O(k^2 2^q) against a node's O(2^q), to the node
// count: k^2/16 nodes. Past the limit the search stops (this design still
// counts).
func (e *engine) leafPattern() []int64 {
	e.nodes += e.cost * max(1, int64(e.k*e.k/16))
	if e.limit >= 0 && e.nodes > e.limit {
		e.stopped = true
	}
	return wordLengthPattern(e.columns(), e.q)
}

// columns returns init plus the chosen columns.
func (e *engine) columns() []uint32 {
	return append(slices.Clone(e.init), e.gens...)
}

// seed sets a first incumbent by a greedy construction: add, one at a time,
// the column that creates the fewest short words (A3, then A4, ...),
// among all candidates or, with oddOnly, among columns of odd weight (these
// never form words of length 3). The better of the two designs is kept.
func (e *engine) seed() {
	for _, oddOnly := range []bool{false, true} {
		if gens, ok := e.greedy(oddOnly); ok {
			e.offer(gens)
		}
	}
}

// offer makes the sorted generator columns gens the incumbent if they are
// better than it.
func (e *engine) offer(gens []uint32) {
	cols := append(slices.Clone(e.init), gens...)
	w := wordLengthPattern(cols, e.q)
	if !e.have || lexCompare(w, e.best) < 0 || (lexCompare(w, e.best) == 0 && lexCompareCols(gens, e.bestGens) < 0) {
		e.have, e.best, e.bestGens = true, w, slices.Clone(gens)
	}
}

func (e *engine) greedy(oddOnly bool) ([]uint32, bool) {
	var l level
	for j := 1; j < jmax; j++ {
		l.c[j] = make([]int32, e.n)
	}
	for _, y := range e.init {
		e.addInPlace(&l, y)
	}
	used := make(map[uint32]bool)
	gens := make([]uint32, 0, e.p)
	for len(gens) < e.p {
		var pick uint32
		var pickInc [jmax + 1]int64
		found := false
		for _, y := range e.cands {
			if used[y] || (oddOnly && bits.OnesCount32(y)%2 == 0) {
				continue
			}
			var inc [jmax + 1]int64
			for j := 1; j < jmax; j++ {
				inc[j+1] = int64(l.c[j][y])
			}
			if !found || cmpPrefix(inc[:], pickInc[:]) < 0 {
				pick, pickInc, found = y, inc, true
			}
		}
		if !found {
			return nil, false
		}
		used[pick] = true
		gens = append(gens, pick)
		e.addInPlace(&l, pick)
	}
	slices.Sort(gens)
	return gens, true
}
