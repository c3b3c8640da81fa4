package design

import (
	"math/bits"
	"slices"
)

// This file holds the search for designs with more than half of the 2^q - 1
// columns (k > 2^(q-1)), done on the complement; see the package doc.

// lineBounds computes upper bounds on the number of lines (words of length
// 3, sets {a, b, a^b}) in a set of t columns spanning exactly r dimensions.
type lineBounds struct {
	span map[[2]int]spanBound
}

type spanBound struct {
	v  int64
	ok bool
}

func newLineBounds() *lineBounds { return &lineBounds{span: map[[2]int]spanBound{}} }

func linesInSpace(r int) int64 { return int64(1<<r-1) * int64(1<<r-2) / 6 }

func choose2(x int64) int64 { return x * (x - 1) / 2 }

// minDim returns the smallest r with 2^r - 1 >= t.
func minDim(t int) int { return bits.Len(uint(t)) }

// spanned bounds the lines of t columns spanning exactly r dimensions; ok is
// false when no such set exists. The bound is exact when t >= 2^(r-1): the
// complement U of the set in the 2^r - 1 columns of the space then has
// u = 2^r - 1 - t < 2^(r-1) columns and
//
//	lines = lines(space) - u (2^(r-1) - 1) + C(u, 2) - A3(U),
//
// largest when U has no line, which is possible for u < 2^(r-1).
// Otherwise it is the smaller of
//
//   - C(t-r+1, 2): a basis of r columns inside the set; a line holds at
//     most two basis columns, the t-r others are each on at most one line
//     with two basis columns, and each pair of non-basis columns is on at
//     most one line;
//   - the largest, over h, the maximum number of the set's columns in a
//     hyperplane (at least the average t(2^(r-1)-1)/(2^r-1), at most t-1), of
//     the smaller of a spectral bound and a decomposition bound.
//
// Spectral: with b_x = sum over the set of (-1)^(x.d), sum over all x of
// b_x^3 = 6 2^r A3, sum of b_x^2 = 2^r t, b_0 = t and b_x = 2h_x - t <= 2h - t
// for x != 0, so 6 2^r A3 <= t^3 + max(0, 2h-t) (2^r t - t^2).
//
// Decomposition: for the hyperplane H holding h columns and the o = t-h
// columns outside it, every line lies in H or has two columns outside H; the
// X lines of the second kind are pairs outside H whose XOR is a column inside
// H, so X <= C(o, 2) and X <= h floor(o/2). The outside columns joined by
// such pairs are congruent modulo the span of the inside ones, so the inside
// columns span at least r - o + (m(X) - 1) dimensions, m(X) being the fewest
// vertices that carry X edges; the inside columns have at most as many lines
// as an h-set of such a dimension in r-1 dimensions (recursively bounded).
func (b *lineBounds) spanned(r, t int) (int64, bool) {
	if t < r || t > 1<<r-1 {
		return 0, false
	}
	key := [2]int{r, t}
	if sb, ok := b.span[key]; ok {
		return sb.v, sb.ok
	}
	v, ok := b.spannedCompute(r, t)
	b.span[key] = spanBound{v, ok}
	return v, ok
}

func (b *lineBounds) spannedCompute(r, t int) (int64, bool) {
	half := 1 << (r - 1)
	if t >= half {
		u := int64(1<<r - 1 - t)
		return linesInSpace(r) - u*int64(half-1) + choose2(u), true
	}
	basis := choose2(int64(t - r + 1))
	N := int64(1) << r
	T := int64(t)
	hlo := int((T*int64(half-1) + N - 2) / (N - 1)) // ceil(t (2^(r-1)-1) / (2^r-1))
	best, found := int64(0), false
	for h := hlo; h < t; h++ {
		o := int64(t - h)
		spec := (T*T*T + max(0, 2*int64(h)-T)*(N*T-T*T)) / (6 * N)
		xmax := min(choose2(o), int64(h)*(o/2))
		// With x > 0 the bound on the inside lines depends on x only
		// through m(x); for each m take the largest x with m(x) = m.
		dec, decOK := b.atLeastDim(r-1, h, r-int(o))
		for m := 2; choose2(int64(m-1)) < xmax; m++ {
			x := min(choose2(int64(m)), xmax)
			if sub, ok := b.atLeastDim(r-1, h, r-int(o)+m-1); ok {
				if !decOK || sub+x > dec {
					dec = sub + x
				}
				decOK = true
			}
		}
		if !decOK {
			continue
		}
		best, found = max(best, min(spec, dec)), true
	}
	if !found {
		return 0, false
	}
	return min(basis, best), true
}

// atLeastDim bounds the lines of t columns of an r-dimensional space that
// span at least rlo dimensions.
func (b *lineBounds) atLeastDim(r, t, rlo int) (int64, bool) {
	if t == 0 {
		return 0, rlo <= 0
	}
	best, found := int64(0), false
	for rr := max(minDim(t), rlo, 0); rr <= min(r, t); rr++ {
		if v, ok := b.spanned(rr, t); ok {
			best, found = max(best, v), true
		}
	}
	return best, found
}

// exclusionHolds reports whether every set of t columns of GF(2)^q spanning
// more than minDim(t) dimensions has strictly fewer lines than the best set
// spanning minDim(t) dimensions. Then every complement of a
// minimum-aberration design with 2^q - 1 - t factors lies in a
// minDim(t)-dimensional subspace.
func exclusionHolds(q, t int) bool {
	b := newLineBounds()
	r0 := minDim(t)
	best, ok := b.spanned(r0, t)
	if !ok {
		return false
	}
	for r := r0 + 1; r <= min(q, t); r++ {
		if ub, ok := b.spanned(r, t); ok && ub >= best {
			return false
		}
	}
	return true
}

// subspaces returns every subspace of GF(2)^q (q <= 6) of dimension dim as
// a bitset over the 2^q vectors (bit v set when v is in the subspace).
func subspaces(q, dim int) []uint64 {
	level := map[uint64]bool{1: true} // {0}
	for d := 0; d < dim; d++ {
		next := map[uint64]bool{}
		for w := range level {
			for x := 1; x < 1<<q; x++ {
				if w>>x&1 == 1 {
					continue
				}
				nw := w
				for v := 0; v < 1<<q; v++ {
					if w>>v&1 == 1 {
						nw |= 1 << (v ^ x)
					}
				}
				next[nw] = true
			}
		}
		level = next
	}
	out := make([]uint64, 0, len(level))
	for w := range level {
		out = append(out, w)
	}
	slices.Sort(out)
	return out
}
