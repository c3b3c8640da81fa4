package design

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// FromGenerators builds the 2^(k-p) design with the given p generators, one
// per generated factor. A generator is written as FrF2 prints it, "E=ABC"
// (the generated factor, then the base factors it is the product of), or as
// a Yates column number ("7" for ABC), which then applies to the generated
// factors in order. The base factors are the first q = k-p factors.
//
// It returns an *InputError (Field "generators" or "factors") naming the
// problem when a generator uses an unknown factor, defines a base factor,
// has fewer than two base factors (it would copy a base factor), repeats a
// factor, duplicates another generator's word, or when the number of
// generators does not fit k.
func FromGenerators(k int, gens []string) (*Design, error) {
	if err := checkFactors(k); err != nil {
		return nil, err
	}
	p := len(gens)
	q := k - p
	if p == 0 {
		return FullFactorial(k)
	}
	if q < minDim(k) {
		return nil, inputErr("generators", "%d generators for %d factors leave %d base factors (%d runs), which hold at most %d factors; %d factors need at most %d generators",
			p, k, q, 1<<max(q, 0), 1<<max(q, 0)-1, k, k-minDim(k))
	}
	if 1<<q > MaxRuns {
		return nil, inputErr("generators", "%d generators for %d factors give %d runs, more than %d", p, k, 1<<q, MaxRuns)
	}
	names := FactorNames(k)
	index := make(map[string]int, k)
	for i, n := range names {
		index[n] = i
	}
	baseList := strings.Join(names[:q], "")
	genList := strings.Join(names[q:], ",")
	cols := make([]uint32, p)
	set := make([]bool, p)
	next := 0 // next generated factor for positional (numeric) generators
	for _, raw := range gens {
		g := strings.TrimSpace(raw)
		if g == "" {
			return nil, inputErr("generators", "empty generator in the list")
		}
		var slot int
		var col uint32
		if lhs, rhs, ok := strings.Cut(g, "="); ok {
			lhs, rhs = strings.TrimSpace(lhs), strings.TrimSpace(rhs)
			i, known := index[lhs]
			switch {
			case !known:
				return nil, inputErr("generators", "%q: unknown factor %q (factors are %s)", g, lhs, strings.Join(names, ""))
			case i < q:
				return nil, inputErr("generators", "%q: %s is a base factor; with %d generators the base factors are %s and the generators define %s", g, lhs, p, baseList, genList)
			}
			slot = i - q
			c, err := parseWord(rhs, g, names, index, q)
			if err != nil {
				return nil, err
			}
			col = c
		} else {
			v, err := strconv.Atoi(g)
			if err != nil {
				return nil, inputErr("generators", "%q is neither NAME=WORD (like %s=%s) nor a Yates column number", g, names[q], names[0]+names[1])
			}
			for next < p && set[next] {
				next++
			}
			if next == p {
				return nil, inputErr("generators", "%q: every generated factor already has a generator", g)
			}
			if v < 1 || v >= 1<<q {
				return nil, inputErr("generators", "column %d is outside 1..%d (%d base factors)", v, 1<<q-1, q)
			}
			if v&(v-1) == 0 {
				return nil, inputErr("generators", "column %d is base factor %s; a generator needs at least two base factors", v, names[bits.TrailingZeros(uint(v))])
			}
			slot, col = next, uint32(v)
		}
		if set[slot] {
			return nil, inputErr("generators", "%s is given two generators", names[q+slot])
		}
		for j := 0; j < p; j++ {
			if set[j] && cols[j] == col {
				return nil, inputErr("generators", "%s and %s have the same generator %s: they would be the same column", names[q+j], names[q+slot], wordOf(col, names))
			}
		}
		set[slot], cols[slot] = true, col
	}
	for j := 0; j < p; j++ {
		if !set[j] {
			return nil, inputErr("generators", "no generator for %s", names[q+j])
		}
	}
	d := newDesign(k, q, cols)
	d.note = "user-given generators"
	return d, nil
}

func wordOf(col uint32, names []string) string {
	var b strings.Builder
	for c := col; c != 0; c &= c - 1 {
		b.WriteString(names[bits.TrailingZeros32(c)])
	}
	return b.String()
}

// parseWord parses a product of base factors ("ABC", or "F1F2F3" beyond 50
// factors) into a column.
func parseWord(w, g string, names []string, index map[string]int, q int) (uint32, error) {
	if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "+") {
		return 0, inputErr("generators", "%q: signs are not supported; generated factors are the plain product of their base factors", g)
	}
	var tokens []string
	if len(names) > 50 {
		for rest := w; rest != ""; {
			if rest[0] != 'F' {
				return 0, inputErr("generators", "%q: cannot read %q as factor names F1, F2, ...", g, rest)
			}
			j := 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			tokens = append(tokens, rest[:j])
			rest = rest[j:]
		}
	} else {
		for _, r := range w {
			tokens = append(tokens, string(r))
		}
	}
	var col uint32
	for _, tok := range tokens {
		i, ok := index[tok]
		switch {
		case !ok:
			return 0, inputErr("generators", "%q: unknown factor %q (base factors are %s)", g, tok, strings.Join(names[:q], ""))
		case i >= q:
			return 0, inputErr("generators", "%q: %s is a generated factor; generators are products of the base factors %s", g, tok, strings.Join(names[:q], ""))
		case col&(1<<i) != 0:
			return 0, inputErr("generators", "%q: factor %s appears twice", g, tok)
		}
		col |= 1 << i
	}
	switch bits.OnesCount32(col) {
	case 0:
		return 0, inputErr("generators", "%q: empty word", g)
	case 1:
		return 0, inputErr("generators", "%q: a generator needs at least two base factors (this one copies %s)", g, tokens[0])
	}
	return col, nil
}

// String returns a one-line summary, for example
// "2^(7-3) design, 16 runs, resolution IV: E=ABC F=ABD G=ACD".
func (d *Design) String() string {
	p := d.k - d.q
	if p == 0 {
		return fmt.Sprintf("2^%d full factorial, %d runs", d.k, d.Runs())
	}
	return fmt.Sprintf("2^(%d-%d) design, %d runs, resolution %s: %s", d.k, p, d.Runs(), Roman(d.Resolution()), strings.Join(d.Generators(), " "))
}
