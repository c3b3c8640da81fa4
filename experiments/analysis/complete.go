package analysis

import (
	"math"
	"slices"
)

// Complete cases. An export holds rows an analysis cannot use as they are:
// an available decision whose outcome was never reported, a control that
// was missing. MRTAnalysis is given complete cases (the rows with every
// variable of the model), so analyses here can be too: CompleteCases drops
// the rows that miss one of the columns and says how many each
// participant lost. The estimators are then the same estimators on the
// same complete cases, with the same results.

// Dropped counts the rows CompleteCases dropped.
type Dropped struct {
	Rows int `json:"rows"`
	// ByParticipant counts them per participant id.
	ByParticipant map[string]int `json:"by_participant"`
	// Columns lists the columns a row needed.
	Columns []string `json:"columns"`
}

// CompleteCases returns the rows of t that have a value in every column
// of cols, with what it dropped (nil when nothing was). When availability
// is named, a row whose availability is 0 is kept whatever else it misses:
// estimators that use available rows only (wcls, emee) never read its
// outcome; give availability "" for those that read every row (emee2,
// dcee, mcee). Rows keep their source lines for error messages.
func (t *Table) CompleteCases(id, availability string, cols []string) (*Table, *Dropped, error) {
	ids, err := t.Text(id)
	if err != nil {
		return nil, nil, err
	}
	var avail []float64
	if availability != "" {
		if avail, err = t.Numeric(availability); err != nil {
			return nil, nil, err
		}
	}
	need := make([][]float64, 0, len(cols))
	var needText [][]string
	for _, c := range cols {
		if v, ok := t.num[c]; ok {
			need = append(need, v)
			continue
		}
		s, err := t.Text(c)
		if err != nil {
			return nil, nil, err
		}
		needText = append(needText, s)
	}
	keep := make([]int, 0, t.n)
	d := &Dropped{ByParticipant: map[string]int{}, Columns: slices.Clone(cols)}
	for i := range t.n {
		if ok := (avail != nil && avail[i] == 0) || complete(i, need, needText); ok {
			keep = append(keep, i)
			continue
		}
		d.Rows++
		d.ByParticipant[ids[i]]++
	}
	if d.Rows == 0 {
		return t, nil, nil
	}
	return t.rows(keep), d, nil
}

func complete(i int, num [][]float64, text [][]string) bool {
	for _, v := range num {
		if math.IsNaN(v[i]) {
			return false
		}
	}
	for _, v := range text {
		if v[i] == "" {
			return false
		}
	}
	return true
}

// rows is a table of the given rows of t, in that order.
func (t *Table) rows(keep []int) *Table {
	out := &Table{name: t.name, n: len(keep), columns: slices.Clone(t.columns), num: map[string][]float64{}, text: map[string][]string{},
		lines: make([]int, len(keep))}
	for j, i := range keep {
		out.lines[j] = t.Line(i)
	}
	for c, v := range t.num {
		w := make([]float64, len(keep))
		for j, i := range keep {
			w[j] = v[i]
		}
		out.num[c] = w
	}
	for c, v := range t.text {
		w := make([]string, len(keep))
		for j, i := range keep {
			w[j] = v[i]
		}
		out.text[c] = w
	}
	return out
}
