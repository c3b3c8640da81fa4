package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// Prob is a probability given either as a column of the data (Column) or as a
// constant (Value, used when Column is empty).
type Prob struct {
	Column string
	Value  float64
}

// ParseProb reads a command-line probability: a number is a constant, anything
// else names a column.
func ParseProb(s string) Prob {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return Prob{Value: v}
	}
	return Prob{Column: s}
}

// IsZero reports whether p is unset (no column and a zero constant).
func (p Prob) IsZero() bool { return p.Column == "" && p.Value == 0 }

// String returns the column name or the constant.
func (p Prob) String() string {
	if p.Column != "" {
		return p.Column
	}
	return strconv.FormatFloat(p.Value, 'g', -1, 64)
}

// DefaultNumeratorProb is the numerator probability p~ used when MRTSpec
// leaves it unset, as in the reference software (not the randomisation
// probability).
const DefaultNumeratorProb = 0.5

// SmallSampleThreshold is the largest effective number of participants for
// which WCLS applies the Mancl-DeRouen correction and Hotelling's test.
const SmallSampleThreshold = 50

// MRTSpec describes a causal excursion effect analysis of a micro-randomised
// trial in long format (one row per participant and decision point, the rows
// of a participant contiguous and in time order).
//
// The effect model is beta'S with S = (1, Moderators...); the control model is
// alpha'Z with Z = (1, Controls...). Every moderator must also be a control.
type MRTSpec struct {
	ID        string // participant id column (text or numeric)
	Outcome   string // proximal outcome column
	Treatment string // treatment column, 0/1
	// RandProb is the randomisation probability P(A=1 | history), a column or
	// a constant.
	RandProb Prob
	// Availability is the availability column (0/1); empty means every row
	// is available.
	Availability string
	Moderators   []string
	Controls     []string
	// NumeratorProb is the numerator probability p~ of the weights and of the
	// centring of A; unset means DefaultNumeratorProb.
	NumeratorProb Prob
	// Lincombs are linear combinations of the effect coefficients (each of
	// length 1 + len(Moderators)) to estimate and test as well.
	Lincombs [][]float64
}

// Estimate is one row of a causal excursion effect table.
//
// Statistic is (estimate/std_err)^2 for the WCLS tests ("wald" and
// "hotelling", as printed by MRTAnalysis) and the t value for EMEE, EMEE2,
// DCEE and MCEE ("t", where df1 is 1 and df2 the t degrees of freedom).
type Estimate struct {
	Term     string  `json:"term"`
	Estimate float64 `json:"estimate"`
	StdErr   float64 `json:"std_err"`
	// StdErrUnadjusted is the standard error without the small-sample
	// adjustment (EMEE2 only; MRTAnalysis's fit$fit$beta_se).
	StdErrUnadjusted float64 `json:"std_err_unadjusted,omitempty"`
	CILow            float64 `json:"ci_low"`
	CIHigh           float64 `json:"ci_high"`
	Statistic        float64 `json:"statistic"`
	DF1              int     `json:"df1"`
	DF2              int     `json:"df2"`
	PValue           float64 `json:"p_value"`
}

// MRTResult is the result of WCLS, EMEE, EMEE2, DCEE or MCEE. Effects holds
// the moderator coefficients ("(Intercept)" and the moderators' column
// names; DCEE "Intercept"; MCEE the alpha then the beta coefficients)
// followed by the linear combinations; Controls holds the control
// coefficients of WCLS, EMEE and EMEE2 (not for interpretation; empty for
// DCEE and MCEE).
type MRTResult struct {
	Estimator     string     `json:"estimator"` // "wcls", "emee", "emee2", "dcee" or "mcee"
	NParticipants int        `json:"n_participants"`
	NEff          int        `json:"n_eff"`
	SmallSample   bool       `json:"small_sample"`
	Test          string     `json:"test"` // "hotelling", "wald" or "t"
	Effects       []Estimate `json:"effects"`
	Controls      []Estimate `json:"controls"`
	// Dropped says which rows were left out as incomplete (CompleteCases);
	// nil when the analysis used every row.
	Dropped *Dropped `json:"dropped_rows,omitempty"`

	// Coef is (alpha, beta): the control coefficients then the effect
	// coefficients (DCEE: the effect coefficients; MCEE: alpha, the direct
	// effect, then beta, the indirect one).
	Coef []float64 `json:"-"`
	// Vcov is the variance matrix of Coef used for the tests (corrected when
	// SmallSample).
	Vcov *mat.SymDense `json:"-"`
	// Iterations is the number of Newton steps (EMEE and EMEE2 only).
	Iterations int `json:"-"`
}

// Effect returns the effect row with the given term name.
func (r *MRTResult) Effect(term string) (Estimate, bool) {
	for _, e := range r.Effects {
		if e.Term == term {
			return e, true
		}
	}
	return Estimate{}, false
}

// Validate checks the spec without looking at data: required columns,
// duplicated names, that every moderator is also a control, and the lengths of
// the linear combinations.
func (s MRTSpec) Validate() error { return s.validate(true) }

// ValidateEMEE2 is Validate for EMEE2, whose moderators need not be
// controls.
func (s MRTSpec) ValidateEMEE2() error { return s.validate(false) }

// validate is Validate; modsAreControls requires every moderator to be a
// control (wcls and emee).
func (s MRTSpec) validate(modsAreControls bool) error {
	for _, f := range []struct{ what, v string }{{"id", s.ID}, {"outcome", s.Outcome}, {"treatment", s.Treatment}} {
		if f.v == "" {
			return fmt.Errorf("no %s column given", f.what)
		}
	}
	if s.RandProb.IsZero() {
		return fmt.Errorf("no randomisation probability given (a column or a number)")
	}
	ctl := map[string]bool{}
	for _, c := range s.Controls {
		if c == "" {
			return fmt.Errorf("empty control name")
		}
		if ctl[c] {
			return fmt.Errorf("control %q is listed twice", c)
		}
		ctl[c] = true
	}
	mod := map[string]bool{}
	for _, m := range s.Moderators {
		if m == "" {
			return fmt.Errorf("empty moderator name")
		}
		if mod[m] {
			return fmt.Errorf("moderator %q is listed twice", m)
		}
		mod[m] = true
		if modsAreControls && !ctl[m] {
			return fmt.Errorf("moderator %q is not a control: every moderator must also be a control (add it to the controls)", m)
		}
	}
	p := 1 + len(s.Moderators)
	for k, l := range s.Lincombs {
		if len(l) != p {
			return fmt.Errorf("linear combination %d has %d coefficients, want %d (the intercept and one per moderator)", k+1, len(l), p)
		}
		nz := 0
		for _, v := range l {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("linear combination %d: coefficients must be finite numbers", k+1)
			}
			if v != 0 {
				nz++
			}
		}
		if nz == 0 {
			return fmt.Errorf("linear combination %d is all zeros", k+1)
		}
	}
	return nil
}

// Columns returns the columns the analysis reads: the id column (text) and
// the numeric ones.
func (s MRTSpec) Columns() (id string, numeric []string) {
	numeric = append(numeric, s.Outcome, s.Treatment)
	if s.Availability != "" {
		numeric = append(numeric, s.Availability)
	}
	for _, p := range []Prob{s.RandProb, s.NumeratorProb} {
		if p.Column != "" {
			numeric = append(numeric, p.Column)
		}
	}
	numeric = append(numeric, s.Controls...)
	numeric = append(numeric, s.Moderators...)
	return s.ID, numeric
}

// group is the row range [start, end) of one participant.
type group struct {
	id         string
	start, end int
}

// mrtData is a validated MRT data set ready for estimation. Rows with w == 0
// are unavailable (or have a zero weight) and are skipped by every pass; their
// other values may be missing.
type mrtData struct {
	name     string
	y, a, w  []float64 // w: pt/p if A = 1 else (1-pt)/(1-p); 0 if unavailable
	pt       []float64
	z        [][]float64 // control columns (without the intercept)
	modIdx   []int       // control index of each moderator
	groups   []group
	q, p     int // control and effect dimensions, intercepts included
	ctlNames []string
	modNames []string
	nEff     int
}

func (d *mrtData) dim() int { return d.q + d.p }

// designRow fills x with [Z, (A - pt) S] for row i.
func (d *mrtData) designRow(i int, x []float64) {
	x[0] = 1
	for k, col := range d.z {
		x[1+k] = col[i]
	}
	c := d.a[i] - d.pt[i]
	x[d.q] = c
	for k, m := range d.modIdx {
		x[d.q+1+k] = c * d.z[m][i]
	}
}

// columnNames names the design columns for messages.
func (d *mrtData) columnNames(treatment string) []string {
	names := make([]string, 0, d.dim())
	for _, c := range d.ctlNames {
		names = append(names, fmt.Sprintf("control %q", c))
	}
	names = append(names, fmt.Sprintf("treatment term (%s - numerator probability)", treatment))
	for _, m := range d.modNames[1:] {
		names = append(names, fmt.Sprintf("treatment x moderator %q", m))
	}
	return names
}

// prepareMRT validates the data against the spec and builds the estimation
// arrays. binary requires a 0/1 outcome on available rows.
//
// Rules (documented for users in the package doc): the id and availability
// must be present on every row; on available rows the outcome, treatment (0
// or 1), probabilities (strictly between 0 and 1), controls and moderators
// must be present; on unavailable rows everything else is ignored and may be
// missing.
func prepareMRT(t *Table, s MRTSpec, binary bool) (*mrtData, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	name := t.Name()
	d := &mrtData{name: name}
	ctlIndex := map[string]int{}
	for i, c := range s.Controls {
		ctlIndex[c] = i
	}
	for _, m := range s.Moderators {
		d.modIdx = append(d.modIdx, ctlIndex[m])
	}
	d.q = 1 + len(s.Controls)
	d.p = 1 + len(s.Moderators)
	d.ctlNames = append([]string{"(Intercept)"}, s.Controls...)
	d.modNames = append([]string{"(Intercept)"}, s.Moderators...)

	// Columns.
	ids, err := t.Text(s.ID)
	if err != nil {
		return nil, err
	}
	col := func(c string) ([]float64, error) { return t.Numeric(c) }
	y, err := col(s.Outcome)
	if err != nil {
		return nil, err
	}
	a, err := col(s.Treatment)
	if err != nil {
		return nil, err
	}
	var avail []float64
	if s.Availability != "" {
		if avail, err = col(s.Availability); err != nil {
			return nil, err
		}
	}
	probCol := func(p Prob) (vals []float64, constant float64, err error) {
		if p.Column != "" {
			vals, err = col(p.Column)
			return vals, 0, err
		}
		return nil, p.Value, nil
	}
	pv, pc, err := probCol(s.RandProb)
	if err != nil {
		return nil, err
	}
	num := s.NumeratorProb
	if num.IsZero() {
		num = Prob{Value: DefaultNumeratorProb}
	}
	ptv, ptc, err := probCol(num)
	if err != nil {
		return nil, err
	}
	if pv == nil && !(pc > 0 && pc < 1) {
		return nil, fmt.Errorf("randomisation probability %v is outside (0,1)", pc)
	}
	if ptv == nil && !(ptc > 0 && ptc < 1) {
		return nil, fmt.Errorf("numerator probability %v is outside (0,1)", ptc)
	}
	d.z = make([][]float64, len(s.Controls))
	for k, c := range s.Controls {
		if d.z[k], err = col(c); err != nil {
			return nil, err
		}
	}

	n := t.Len()
	d.y, d.a = y, a
	d.w = make([]float64, n)
	d.pt = make([]float64, n)
	rowErr := func(i int, column, format string, args ...any) error {
		return fmt.Errorf("%s:%d: participant %q: column %q: %s", name, t.Line(i), ids[i], column, fmt.Sprintf(format, args...))
	}
	if d.groups, err = contiguousGroups(t, ids, s.ID); err != nil {
		return nil, err
	}
	rows := mrtRows{s: s, num: num, binary: binary, y: y, a: a, avail: avail, pv: pv, pc: pc, ptv: ptv, ptc: ptc, rowErr: rowErr}
	for _, g := range d.groups {
		effective := false
		for i := g.start; i < g.end; i++ {
			ok, err := rows.check(d, i)
			if err != nil {
				return nil, err
			}
			effective = effective || ok
		}
		if effective {
			d.nEff++
		}
	}
	if d.nEff == 0 {
		return nil, fmt.Errorf("%s: no available rows: nothing to estimate", name)
	}
	return d, nil
}

// mrtRows checks the rows of an MRT table and sets their weights.
type mrtRows struct {
	s       MRTSpec
	num     Prob
	binary  bool
	y, a    []float64
	avail   []float64
	pv, ptv []float64
	pc, ptc float64
	rowErr  func(i int, column, format string, args ...any) error
}

// check validates row i; for an available row it sets its numerator
// probability and weight and reports true.
func (r *mrtRows) check(d *mrtData, i int) (bool, error) {
	av := 1.0
	if r.avail != nil {
		av = r.avail[i]
		if math.IsNaN(av) {
			return false, r.rowErr(i, r.s.Availability, "availability is missing")
		}
		if av != 0 && av != 1 {
			return false, r.rowErr(i, r.s.Availability, "availability must be 0 or 1, got %v", av)
		}
	}
	if av == 0 {
		return false, nil
	}
	if math.IsNaN(r.y[i]) {
		return false, r.rowErr(i, r.s.Outcome, "outcome is missing on an available row")
	}
	if r.binary && r.y[i] != 0 && r.y[i] != 1 {
		return false, r.rowErr(i, r.s.Outcome, "a binary outcome must be 0 or 1, got %v", r.y[i])
	}
	if math.IsNaN(r.a[i]) {
		return false, r.rowErr(i, r.s.Treatment, "treatment is missing on an available row")
	}
	if r.a[i] != 0 && r.a[i] != 1 {
		return false, r.rowErr(i, r.s.Treatment, "treatment must be 0 or 1, got %v", r.a[i])
	}
	p := r.pc
	if r.pv != nil {
		p = r.pv[i]
		if math.IsNaN(p) {
			return false, r.rowErr(i, r.s.RandProb.Column, "randomisation probability is missing on an available row")
		}
		if !(p > 0 && p < 1) {
			return false, r.rowErr(i, r.s.RandProb.Column, "randomisation probability %v on an available row is outside (0,1)", p)
		}
	}
	pt := r.ptc
	if r.ptv != nil {
		pt = r.ptv[i]
		if math.IsNaN(pt) {
			return false, r.rowErr(i, r.num.Column, "numerator probability is missing on an available row")
		}
		if !(pt > 0 && pt < 1) {
			return false, r.rowErr(i, r.num.Column, "numerator probability %v on an available row is outside (0,1)", pt)
		}
	}
	for k, c := range r.s.Controls {
		if math.IsNaN(d.z[k][i]) {
			return false, r.rowErr(i, c, "control is missing on an available row")
		}
	}
	d.pt[i] = pt
	if r.a[i] == 1 {
		d.w[i] = pt / p
	} else {
		d.w[i] = (1 - pt) / (1 - p)
	}
	return true, nil
}

// contiguousGroups splits the rows into participants: contiguous blocks of
// equal ids; a participant's rows must not be split.
func contiguousGroups(t *Table, ids []string, idColumn string) ([]group, error) {
	name := t.Name()
	var groups []group
	seen := make(map[string]int)
	for i := 0; i < t.Len(); i++ {
		id := ids[i]
		if id == "" {
			return nil, fmt.Errorf("%s:%d: column %q: missing participant id", name, t.Line(i), idColumn)
		}
		if len(groups) > 0 && groups[len(groups)-1].id == id {
			groups[len(groups)-1].end = i + 1
			continue
		}
		if g, dup := seen[id]; dup {
			return nil, fmt.Errorf("%s:%d: rows of participant %q are not contiguous: its first block ended at line %d and it starts again here; sort the data by participant, then by decision point",
				name, t.Line(i), id, t.Line(groups[g].end-1))
		}
		seen[id] = len(groups)
		groups = append(groups, group{id: id, start: i, end: i + 1})
	}
	return groups, nil
}

// crossProduct returns sum over rows with w > 0 of w x x'.
func (d *mrtData) crossProduct() *mat.SymDense {
	dim := d.dim()
	x := make([]float64, dim)
	acc := make([]float64, dim*dim)
	for i, w := range d.w {
		if w == 0 {
			continue
		}
		d.designRow(i, x)
		addOuterUpper(acc, dim, w, x)
	}
	return symFromUpper(acc, dim)
}

// addOuterUpper adds w x x' to the upper triangle of the dim x dim row-major acc.
func addOuterUpper(acc []float64, dim int, w float64, x []float64) {
	for r := 0; r < dim; r++ {
		wr := w * x[r]
		row := acc[r*dim : (r+1)*dim]
		for c := r; c < dim; c++ {
			row[c] += wr * x[c]
		}
	}
}

func symFromUpper(acc []float64, dim int) *mat.SymDense {
	s := mat.NewSymDense(dim, nil)
	for r := 0; r < dim; r++ {
		for c := r; c < dim; c++ {
			s.SetSym(r, c, acc[r*dim+c])
		}
	}
	return s
}

// contrasts returns the rows (over the full coefficient vector alpha, beta) of
// the effect table, with their names: one per effect coefficient, then the
// linear combinations.
func (d *mrtData) contrasts(lincombs [][]float64) (rows [][]float64, names []string) {
	return effectContrasts(d.q, d.p, d.modNames, lincombs)
}

// effectContrasts returns the contrast rows over (alpha, beta), alpha of
// length q and beta of length p, for each effect coefficient (named
// modNames) and then each linear combination of beta (named by
// LincombName).
func effectContrasts(q, p int, modNames []string, lincombs [][]float64) (rows [][]float64, names []string) {
	dim := q + p
	for j := 0; j < p; j++ {
		c := make([]float64, dim)
		c[q+j] = 1
		rows = append(rows, c)
		names = append(names, modNames[j])
	}
	for _, l := range lincombs {
		c := make([]float64, dim)
		copy(c[q:], l)
		rows = append(rows, c)
		names = append(names, LincombName(l, modNames))
	}
	return rows, names
}

// LincombName names a linear combination of terms the way MRTAnalysis does:
// "(Intercept) + home", "2*(Intercept) - home", "-home", "- 2*home".
func LincombName(coef []float64, terms []string) string {
	var b strings.Builder
	for i, v := range coef {
		coef := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
		switch {
		case v == 1:
			if b.Len() > 0 {
				b.WriteString(" + ")
			}
			b.WriteString(terms[i])
		case v > 0:
			if b.Len() > 0 {
				b.WriteString(" + ")
			}
			b.WriteString(coef(v) + "*" + terms[i])
		case v == -1:
			if b.Len() > 0 {
				b.WriteString(" - ")
			} else {
				b.WriteString("-")
			}
			b.WriteString(terms[i])
		case v < 0:
			if b.Len() > 0 {
				b.WriteString(" - ")
			} else {
				b.WriteString("- ")
			}
			b.WriteString(coef(-v) + "*" + terms[i])
		}
	}
	return b.String()
}

// quadForm returns c' V c.
func quadForm(v mat.Symmetric, c []float64) float64 {
	cv := mat.NewVecDense(len(c), append([]float64(nil), c...))
	return mat.Inner(cv, v, cv)
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
