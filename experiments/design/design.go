package design

import (
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
)

// Limits of the package.
const (
	// MaxFactors is the largest number of factors a design may have.
	MaxFactors = 63
	// MaxRuns is the largest run size (2^12, as FrF2).
	MaxRuns = 4096
	// maxListedWords is the largest defining relation that is listed word
	// by word (2^16 - 1 words).
	maxListedWords = 1<<16 - 1
)

// Design is a two-level regular (full or fractional) factorial design.
// The zero value is not usable; build one with MinimumAberration,
// ForResolution, FromGenerators or FullFactorial.
type Design struct {
	k, q  int
	cols  []uint32 // one column per factor: a bitmask over the base factors
	names []string

	searched bool // the design comes from a minimum-aberration search
	proven   bool // ... and the search proved it
	note     string
	nodes    int64 // search nodes examined

	wlp []int64 // cached: A_0..A_k
}

func newDesign(k, q int, gens []uint32) *Design {
	cols := make([]uint32, 0, k)
	for i := 0; i < q; i++ {
		cols = append(cols, 1<<i)
	}
	cols = append(cols, gens...)
	return &Design{k: k, q: q, cols: cols, names: FactorNames(k)}
}

// FullFactorial returns the 2^k full factorial design.
func FullFactorial(k int) (*Design, error) {
	if k < 1 || k > MaxFactors {
		return nil, fmt.Errorf("design: %d factors: want 1 to %d", k, MaxFactors)
	}
	if 1<<k > MaxRuns {
		return nil, fmt.Errorf("design: a full factorial in %d factors has %d runs, more than %d", k, 1<<k, MaxRuns)
	}
	d := newDesign(k, k, nil)
	d.searched, d.proven = true, true
	return d, nil
}

// FactorNames returns FrF2's default factor names for k factors: A, B, C, ...
// skipping I, then a, b, c, ... skipping i (50 names); for more than 50
// factors, F1, F2, ..., Fk.
func FactorNames(k int) []string {
	names := make([]string, 0, k)
	if k > 50 {
		for i := 1; i <= k; i++ {
			names = append(names, "F"+strconv.Itoa(i))
		}
		return names
	}
	for _, alphabet := range []string{"ABCDEFGHJKLMNOPQRSTUVWXYZ", "abcdefghjklmnopqrstuvwxyz"} {
		for _, r := range alphabet {
			if len(names) == k {
				return names
			}
			names = append(names, string(r))
		}
	}
	return names
}

// Factors returns the number of factors k.
func (d *Design) Factors() int { return d.k }

// Runs returns the number of runs 2^(k-p).
func (d *Design) Runs() int { return 1 << d.q }

// BaseFactors returns the number of base factors q = k-p.
func (d *Design) BaseFactors() int { return d.q }

// Names returns the factor names (A, B, C, ... skipping I).
func (d *Design) Names() []string { return slices.Clone(d.names) }

// ProvenMinimumAberration reports whether the design is proven to be of
// minimum aberration: true for a full factorial and for a search that
// finished; false for a search that stopped at its budget (the design is
// then the best one found) and for user-given generators.
func (d *Design) ProvenMinimumAberration() bool { return d.proven }

// Searched reports whether the design comes from a minimum-aberration
// search (or is a full factorial) rather than from user-given generators.
func (d *Design) Searched() bool { return d.searched }

// SearchNodes returns the number of search nodes the search examined: the
// quantity bounded by Options.MaxNodes (0 for user-given generators and
// for a full factorial asked for directly).
func (d *Design) SearchNodes() int64 { return d.nodes }

// SearchNote says, for a searched design, how the search ended.
func (d *Design) SearchNote() string { return d.note }

// Columns returns each factor's column as its Yates column number: the
// bitmask over base factors (A=1, B=2, AB=3, C=4, ...).
func (d *Design) Columns() []int {
	out := make([]int, d.k)
	for i, c := range d.cols {
		out[i] = int(c)
	}
	return out
}

// GeneratorColumns returns the Yates column numbers of the generated factors
// (FrF2's "gen" entry of a catalogue design).
func (d *Design) GeneratorColumns() []int { return d.Columns()[d.q:] }

// word renders a set of factors (bit i = factor i) as concatenated names.
func (d *Design) word(set uint64) string {
	var b strings.Builder
	for set != 0 {
		i := bits.TrailingZeros64(set)
		b.WriteString(d.names[i])
		set &= set - 1
	}
	return b.String()
}

// baseWord renders a column (a set of base factors) as concatenated names.
func (d *Design) baseWord(col uint32) string { return d.word(uint64(col)) }

// Generators returns the generators, one per generated factor, as FrF2
// writes them: "E=ABC".
func (d *Design) Generators() []string {
	out := make([]string, 0, d.k-d.q)
	for i := d.q; i < d.k; i++ {
		out = append(out, d.names[i]+"="+d.baseWord(d.cols[i]))
	}
	return out
}

// generatorWords returns the p words that generate the defining relation:
// each generated factor with its generator (E=ABC gives ABCE).
func (d *Design) generatorWords() []uint64 {
	out := make([]uint64, 0, d.k-d.q)
	for i := d.q; i < d.k; i++ {
		out = append(out, uint64(d.cols[i])|1<<i)
	}
	return out
}

// DefiningRelation returns the words of the defining contrast subgroup
// (all 2^p - 1 of them), ordered by length and then by factor order, and
// true. When there are more than 65535 words it returns only the p
// generating words and false.
func (d *Design) DefiningRelation() ([]string, bool) {
	gw := d.generatorWords()
	p := len(gw)
	if p == 0 {
		return []string{}, true
	}
	var words []uint64
	complete := true
	if 1<<p-1 > maxListedWords {
		words, complete = gw, false
	} else {
		words = make([]uint64, 0, 1<<p-1)
		var w uint64
		for i := 1; i < 1<<p; i++ {
			w ^= gw[bits.TrailingZeros(uint(i))] // Gray code: one generator changes
			words = append(words, w)
		}
	}
	sortFactorSets(words)
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = d.word(w)
	}
	return out, complete
}

// sortFactorSets orders sets of factors by size, then lexicographically by
// factor positions (ABC before ABD before ACD).
func sortFactorSets(s []uint64) {
	slices.SortFunc(s, func(a, b uint64) int {
		if ca, cb := bits.OnesCount64(a), bits.OnesCount64(b); ca != cb {
			return ca - cb
		}
		for a != 0 && b != 0 {
			ia, ib := bits.TrailingZeros64(a), bits.TrailingZeros64(b)
			if ia != ib {
				return ia - ib
			}
			a &= a - 1
			b &= b - 1
		}
		return 0
	})
}

// wordLengths returns A_0..A_k, A_j being the number of words of length j
// in the defining relation (A_0 = 1).
func (d *Design) wordLengths() []int64 {
	if d.wlp == nil {
		d.wlp = wordLengthPattern(d.cols, d.q)
	}
	return d.wlp
}

// WLP returns the word-length pattern (A3, A4, ..., Am): the number of words
// of each length from 3 up to the longest word, as FrF2 prints it (2^(6-2)
// with E=ABC, F=ABD gives [0 3]). It is empty for a full factorial.
func (d *Design) WLP() []int64 {
	a := d.wordLengths()
	m := len(a) - 1
	for m >= 3 && a[m] == 0 {
		m--
	}
	if m < 3 {
		return []int64{}
	}
	return slices.Clone(a[3 : m+1])
}

// Resolution returns the length of the shortest word of the defining
// relation, or 0 for a full factorial (no word: nothing is aliased).
func (d *Design) Resolution() int {
	for j, a := range d.wordLengths() {
		if j > 0 && a > 0 {
			return j
		}
	}
	return 0
}

// effect is a main effect (j < 0) or a two-factor interaction of factors
// i < j.
type effect struct{ i, j int }

func (e effect) main() bool { return e.j < 0 }

func (d *Design) effectName(e effect) string {
	if e.main() {
		return d.names[e.i]
	}
	return d.names[e.i] + d.names[e.j]
}

// aliasGroups groups the main effects and two-factor interactions by the
// column they are estimated on. Within a group, effects are in FrF2's order:
// main effect first, then 2FIs by factor positions.
func (d *Design) aliasGroups() [][]effect {
	groups := map[uint32][]effect{}
	var order []uint32
	add := func(col uint32, e effect) {
		if _, ok := groups[col]; !ok {
			order = append(order, col)
		}
		groups[col] = append(groups[col], e)
	}
	for i := 0; i < d.k; i++ {
		add(d.cols[i], effect{i, -1})
	}
	for i := 0; i < d.k; i++ {
		for j := i + 1; j < d.k; j++ {
			add(d.cols[i]^d.cols[j], effect{i, j})
		}
	}
	out := make([][]effect, 0, len(order))
	for _, col := range order {
		out = append(out, groups[col])
	}
	return out
}

// Aliases returns the alias chains among main effects and two-factor
// interactions, FrF2-style: first each main effect aliased with 2FIs
// ("A=BE", "G=BF=DE"), in factor order; then the chains of two or more 2FIs
// aliased with no main effect ("AB=CE=DF"), ordered by their first 2FI.
// Effects of order three or more are not shown.
func (d *Design) Aliases() []string {
	var mains, fi2 [][]effect
	for _, g := range d.aliasGroups() {
		if len(g) < 2 {
			continue
		}
		if g[0].main() {
			mains = append(mains, g)
		} else {
			fi2 = append(fi2, g)
		}
	}
	less := func(a, b []effect) int {
		if a[0].i != b[0].i {
			return a[0].i - b[0].i
		}
		return a[0].j - b[0].j
	}
	slices.SortFunc(mains, less)
	slices.SortFunc(fi2, less)
	out := make([]string, 0, len(mains)+len(fi2))
	for _, g := range append(mains, fi2...) {
		parts := make([]string, len(g))
		for i, e := range g {
			parts[i] = d.effectName(e)
		}
		out = append(out, strings.Join(parts, "="))
	}
	return out
}

// Clear2FIs returns the clear two-factor interactions: those aliased with no
// main effect and no other two-factor interaction, in factor order.
func (d *Design) Clear2FIs() []string {
	var out []effect
	for _, g := range d.aliasGroups() {
		if len(g) == 1 && !g[0].main() {
			out = append(out, g[0])
		}
	}
	slices.SortFunc(out, func(a, b effect) int {
		if a.i != b.i {
			return a.i - b.i
		}
		return a.j - b.j
	})
	names := make([]string, len(out))
	for i, e := range out {
		names[i] = d.effectName(e)
	}
	return names
}

// Matrix returns the design matrix in -1/+1 coding: one row per run in
// standard (Yates) order, the first factor changing fastest, one column per
// factor. A generated factor is the product of its generator's base factors
// (FrF2's convention, so D=ABC is +1 exactly when an odd number of A, B, C
// are +1).
func (d *Design) Matrix() [][]int {
	rows := d.Rows()
	for _, r := range rows {
		for j, v := range r {
			r[j] = 2*v - 1
		}
	}
	return rows
}

// Rows returns the design as level indices 0 (low, -1) and 1 (high, +1),
// rows in the order of Matrix: the form used for assigning participants to
// design rows.
func (d *Design) Rows() [][]int {
	n := d.Runs()
	flat := make([]int, n*d.k)
	rows := make([][]int, n)
	for r := 0; r < n; r++ {
		row := flat[r*d.k : (r+1)*d.k : (r+1)*d.k]
		for j, c := range d.cols {
			// x_j = prod over base factors b in c of (2*bit_b(r) - 1)
			// = (-1)^(|c| + popcount(r & c)); high level when that is +1.
			if (bits.OnesCount32(c)+bits.OnesCount32(uint32(r)&c))%2 == 0 {
				row[j] = 1
			}
		}
		rows[r] = row
	}
	return rows
}
