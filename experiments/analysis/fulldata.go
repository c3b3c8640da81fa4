package analysis

import (
	"fmt"
	"math"
)

// fullSpec names the columns of an estimator that, as its MRTAnalysis
// counterpart, needs complete data on every row (emee2, dcee, mcee): these
// use the unavailable rows too, so a missing value anywhere is an error.
type fullSpec struct {
	who                                  string // estimator name, for errors
	id, outcome, treatment, availability string
	randProb                             Prob
	// columns are the other numeric columns (controls, moderators, ...).
	columns []string
	// binaryOutcome requires a 0/1 outcome on available rows (emee2).
	binaryOutcome bool
}

// fullData is a data set checked against a fullSpec: every value present,
// availability 0/1, treatment 0/1, the randomisation probability strictly
// between 0 and 1 on available rows.
type fullData struct {
	name   string
	n      int // rows
	groups []group
	// y, a, avail and p are the outcome, treatment, availability (all 1
	// without an availability column) and randomisation probability.
	y, a, avail, p []float64
	cols           map[string][]float64
}

// rowError is an error naming the file, line, participant and column.
func rowError(t *Table, ids []string, i int, column, format string, args ...any) error {
	return fmt.Errorf("%s:%d: participant %q: column %q: %s", t.Name(), t.Line(i), ids[i], column, fmt.Sprintf(format, args...))
}

// prepareFull reads and checks the columns of s.
func prepareFull(t *Table, s fullSpec) (*fullData, error) {
	for _, f := range []struct{ what, v string }{{"id", s.id}, {"outcome", s.outcome}, {"treatment", s.treatment}} {
		if f.v == "" {
			return nil, fmt.Errorf("no %s column given", f.what)
		}
	}
	if s.randProb.IsZero() {
		return nil, fmt.Errorf("no randomisation probability given (a column or a number)")
	}
	if s.randProb.Column == "" && !(s.randProb.Value > 0 && s.randProb.Value < 1) {
		return nil, fmt.Errorf("randomisation probability %v is outside (0,1)", s.randProb.Value)
	}
	ids, err := t.Text(s.id)
	if err != nil {
		return nil, err
	}
	d := &fullData{name: t.Name(), n: t.Len(), cols: map[string][]float64{}}
	if d.groups, err = contiguousGroups(t, ids, s.id); err != nil {
		return nil, err
	}
	if len(d.groups) == 0 {
		return nil, fmt.Errorf("%s: no rows", t.Name())
	}
	names := append([]string{s.outcome, s.treatment}, s.columns...)
	if s.availability != "" {
		names = append(names, s.availability)
	}
	if s.randProb.Column != "" {
		names = append(names, s.randProb.Column)
	}
	for _, c := range names {
		if _, done := d.cols[c]; done {
			continue
		}
		v, err := t.Numeric(c)
		if err != nil {
			return nil, err
		}
		for i, x := range v {
			if math.IsNaN(x) {
				return nil, rowError(t, ids, i, c, "missing value (%s uses every row, available or not: the data must be complete)", s.who)
			}
		}
		d.cols[c] = v
	}
	d.y, d.a = d.cols[s.outcome], d.cols[s.treatment]
	d.avail = constant(d.n, 1)
	if s.availability != "" {
		d.avail = d.cols[s.availability]
	}
	d.p = constant(d.n, s.randProb.Value)
	if s.randProb.Column != "" {
		d.p = d.cols[s.randProb.Column]
	}
	for i := 0; i < d.n; i++ {
		if av := d.avail[i]; av != 0 && av != 1 {
			return nil, rowError(t, ids, i, s.availability, "availability must be 0 or 1, got %v", av)
		}
		if a := d.a[i]; a != 0 && a != 1 {
			return nil, rowError(t, ids, i, s.treatment, "treatment must be 0 or 1, got %v", a)
		}
		if d.avail[i] == 0 {
			continue
		}
		if p := d.p[i]; !(p > 0 && p < 1) {
			return nil, rowError(t, ids, i, s.randProb.Column, "randomisation probability %v on an available row is outside (0,1)", p)
		}
		if y := d.y[i]; s.binaryOutcome && y != 0 && y != 1 {
			return nil, rowError(t, ids, i, s.outcome, "a binary outcome must be 0 or 1 on an available row, got %v", y)
		}
	}
	return d, nil
}

func constant(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// columns returns the named columns.
func (d *fullData) columns(names []string) [][]float64 {
	out := make([][]float64, len(names))
	for k, c := range names {
		out[k] = d.cols[c]
	}
	return out
}

// designRow fills x with (1, cols...) at row i.
func designRow(i int, cols [][]float64, x []float64) {
	x[0] = 1
	for k, c := range cols {
		x[1+k] = c[i]
	}
}

// nEff is the number of participants with at least one available row.
func (d *fullData) nEff() int {
	n := 0
	for _, g := range d.groups {
		for i := g.start; i < g.end; i++ {
			if d.avail[i] == 1 {
				n++
				break
			}
		}
	}
	return n
}
