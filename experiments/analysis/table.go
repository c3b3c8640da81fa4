package analysis

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Table is a column store of an analysis data set: numeric columns as float64
// (a missing value is NaN) and text columns as strings. It remembers the
// source name and the source line of each row so that errors can point at the
// offending line. Build one with ReadCSV, or with NewTable and SetNumeric or
// SetText (for instance from a simulation).
type Table struct {
	name    string
	n       int
	columns []string // every column of the source, in source order
	num     map[string][]float64
	text    map[string][]string
	lines   []int // source line of each row; nil means row + 2 (one header line)
}

// NewTable returns an empty table of n rows; name is used in error messages
// (usually a file name).
func NewTable(name string, n int) *Table {
	return &Table{name: name, n: n, num: map[string][]float64{}, text: map[string][]string{}}
}

// SetNumeric adds or replaces a numeric column; NaN marks a missing value.
func (t *Table) SetNumeric(col string, v []float64) error {
	if len(v) != t.n {
		return fmt.Errorf("%s: column %q has %d values, want %d", t.name, col, len(v), t.n)
	}
	t.addColumn(col)
	t.num[col] = v
	return nil
}

// SetText adds or replaces a text column; an empty string marks a missing value.
func (t *Table) SetText(col string, v []string) error {
	if len(v) != t.n {
		return fmt.Errorf("%s: column %q has %d values, want %d", t.name, col, len(v), t.n)
	}
	t.addColumn(col)
	t.text[col] = v
	return nil
}

func (t *Table) addColumn(col string) {
	for _, c := range t.columns {
		if c == col {
			return
		}
	}
	t.columns = append(t.columns, col)
}

// Name returns the name used in error messages.
func (t *Table) Name() string { return t.name }

// Len returns the number of rows.
func (t *Table) Len() int { return t.n }

// Columns returns the names of the source's columns in source order
// (including columns that were not loaded).
func (t *Table) Columns() []string { return append([]string(nil), t.columns...) }

// Line returns the source line of row i (the header is line 1).
func (t *Table) Line(i int) int {
	if t.lines == nil {
		return i + 2
	}
	return t.lines[i]
}

// Numeric returns a numeric column. A text column whose values are all
// numbers or missing is converted.
func (t *Table) Numeric(col string) ([]float64, error) {
	if v, ok := t.num[col]; ok {
		return v, nil
	}
	if s, ok := t.text[col]; ok {
		v := make([]float64, len(s))
		for i, x := range s {
			f, err := parseNumber(x)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: column %q: %w", t.name, t.Line(i), col, err)
			}
			v[i] = f
		}
		return v, nil
	}
	return nil, t.missingColumn(col)
}

// Text returns a text column. A numeric column is formatted (missing values
// become empty strings).
func (t *Table) Text(col string) ([]string, error) {
	if v, ok := t.text[col]; ok {
		return v, nil
	}
	if f, ok := t.num[col]; ok {
		v := make([]string, len(f))
		for i, x := range f {
			if !math.IsNaN(x) {
				v[i] = strconv.FormatFloat(x, 'g', -1, 64)
			}
		}
		return v, nil
	}
	return nil, t.missingColumn(col)
}

// Has reports whether the column exists in the source (loaded or not).
func (t *Table) Has(col string) bool {
	for _, c := range t.columns {
		if c == col {
			return true
		}
	}
	return false
}

func (t *Table) missingColumn(col string) error {
	if t.Has(col) {
		return fmt.Errorf("%s: column %q was not loaded", t.name, col)
	}
	return fmt.Errorf("%s: column %q does not exist (columns: %s)", t.name, col, strings.Join(t.columns, ", "))
}

// ReadCSV reads a CSV file with a header row. Only the named columns are
// loaded: numeric ones as float64 and text ones as strings; the others may
// hold anything. A column named in neither list is ignored, and a named column
// that is not in the header is an error that lists the columns there are.
//
// Missing values: an empty field, NA or NaN (any case) is missing and stored
// as NaN (numeric) or "" (text); whether a missing value is allowed is decided
// by the analysis that uses the column (see WCLS). Numeric fields also accept
// TRUE/FALSE (as written by R) as 1/0; anything else that is not a finite
// number is an error naming the file, line and column.
func ReadCSV(r io.Reader, name string, numeric, text []string) (*Table, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: empty file (a header row is required)", name)
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	t := NewTable(name, 0)
	index := map[string]int{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		h = strings.TrimSpace(h)
		if _, dup := index[h]; dup {
			return nil, fmt.Errorf("%s:1: column %q appears twice in the header", name, h)
		}
		index[h] = i
		t.columns = append(t.columns, h)
	}
	type target struct {
		col    string
		idx    int
		isText bool
	}
	var targets []target
	seen := map[string]bool{}
	for g, group := range [][]string{numeric, text} {
		for _, c := range group {
			if seen[c] {
				continue
			}
			seen[c] = true
			idx, ok := index[c]
			if !ok {
				return nil, t.missingColumn(c)
			}
			targets = append(targets, target{col: c, idx: idx, isText: g == 1})
		}
	}
	nums := make([][]float64, len(targets))
	texts := make([][]string, len(targets))
	var lines []int
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		lines = append(lines, line)
		for k, tg := range targets {
			field := rec[tg.idx]
			if tg.isText {
				v := strings.TrimSpace(field)
				if isMissing(v) {
					v = ""
				}
				col := texts[k]
				if n := len(col); n > 0 && col[n-1] == v {
					v = col[n-1] // share the previous row's string
				} else {
					v = strings.Clone(v)
				}
				texts[k] = append(col, v)
				continue
			}
			f, err := parseNumber(field)
			if err != nil {
				l, c := cr.FieldPos(tg.idx)
				return nil, fmt.Errorf("%s:%d:%d: column %q: %w", name, l, c, tg.col, err)
			}
			nums[k] = append(nums[k], f)
		}
	}
	t.n = len(lines)
	t.lines = lines
	for k, tg := range targets {
		if tg.isText {
			v := texts[k]
			if v == nil {
				v = []string{}
			}
			t.text[tg.col] = v
		} else {
			v := nums[k]
			if v == nil {
				v = []float64{}
			}
			t.num[tg.col] = v
		}
	}
	return t, nil
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d:%d: %v", name, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func isMissing(s string) bool {
	switch s {
	case "", "NA", "na", "Na", "NaN", "nan", "NAN":
		return true
	}
	return false
}

// parseNumber parses a numeric field; missing values become NaN.
func parseNumber(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if isMissing(s) {
		return math.NaN(), nil
	}
	switch s {
	case "TRUE", "True", "true":
		return 1, nil
	case "FALSE", "False", "false":
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return f, nil
}
