package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jitai/jitai/experiments/design"
)

// DesignPinVersion is the version of the DesignPin encoding this package
// writes and reads.
const DesignPinVersion = 1

// Sources of a between-person design (DesignPin.Source).
const (
	// DesignFullFactorial: every cell of the 2^k factorial (no design
	// section, or runs equal to 2^k).
	DesignFullFactorial = "full_factorial"
	// DesignGenerators: generators given in study.yaml.
	DesignGenerators = "generators"
	// DesignSearch: the minimum-aberration design for design.runs, proven
	// by the search.
	DesignSearch = "search"
)

// DesignPin is a canonical, comparable description of a study's
// between-person design: what participants' assignments were drawn from.
// The engine stores it (as JSON) when the first participant enrols and
// checks every later load of the study against it (CheckDesignPin), so that
// the design of a running study cannot change.
//
// Its JSON encoding is stable: fields in this order, no optional fields,
// generators in canonical form ("D=ABC", the notation design.FromGenerators
// reads, whatever notation study.yaml used). In use:
//
//	pin, err := study.DesignPin()           // at the first enrolment
//	b, err := json.Marshal(pin)             // stored with the study
//	pinned, err := policies.ParseDesignPin(b)
//	err = study.VerifyDesignPin(pinned)     // at every later load or reload
type DesignPin struct {
	// Version is DesignPinVersion.
	Version int `json:"version"`
	// Factors are the between-person factors in declaration order: the
	// design's factors A, B, C, ... (design.FactorNames).
	Factors []PinnedFactor `json:"factors"`
	// Runs is the number of design rows (cells), 2^(k-p).
	Runs int `json:"runs"`
	// Generators are the generated factors' generators, "D=ABC"; empty for
	// a full factorial.
	Generators []string `json:"generators"`
	// Source says where the design came from: DesignFullFactorial,
	// DesignGenerators or DesignSearch. It is informational: pinning a
	// searched design's generators in study.yaml changes the source, not
	// the design, and CheckDesignPin accepts it.
	Source string `json:"source"`
	// Fingerprint is "sha256:" and the hex SHA-256 of the design rows in
	// order (see DesignFingerprint), the level indices the engine assigns from.
	Fingerprint string `json:"fingerprint"`
}

// PinnedFactor is a between-person factor of a DesignPin: its name and its
// two levels (level index 0, then 1).
type PinnedFactor struct {
	Name   string    `json:"name"`
	Levels [2]string `json:"levels"`
}

// DesignPin returns the pin of the study's between-person design. It fails
// only for a Study that LoadStudy would have refused (a full factorial of
// more than 12 between-person factors, or a searched design that is not
// proven).
func (s *Study) DesignPin() (DesignPin, error) {
	between := s.Config.FactorsOf(Between)
	pin := DesignPin{Version: DesignPinVersion, Factors: make([]PinnedFactor, len(between)), Generators: []string{}}
	for i, f := range between {
		pin.Factors[i] = PinnedFactor{Name: f.Name}
		copy(pin.Factors[i].Levels[:], f.Levels)
	}
	d := s.Design
	switch {
	case len(between) == 0:
		pin.Runs, pin.Source = 1, DesignFullFactorial
		pin.Fingerprint = DesignFingerprint([][]int{{}})
		return pin, nil
	case d == nil:
		full, err := design.FullFactorial(len(between))
		if err != nil {
			return DesignPin{}, fmt.Errorf("study %s: between-person design: %w", s.Config.ID, err)
		}
		d = full
	case d.Factors() != len(between):
		return DesignPin{}, fmt.Errorf("study %s: the design has %d factors for %d between-person factors", s.Config.ID, d.Factors(), len(between))
	}
	pin.Runs = d.Runs()
	pin.Generators = append(pin.Generators, d.Generators()...)
	switch {
	case len(pin.Generators) == 0:
		pin.Source = DesignFullFactorial
	case s.Config.Design != nil && len(s.Config.Design.Generators) > 0:
		pin.Source = DesignGenerators
	case d.ProvenMinimumAberration():
		pin.Source = DesignSearch
	case s.pinnedSource != "":
		pin.Source = s.pinnedSource // taken from the pin, proven when pinned
	default:
		return DesignPin{}, fmt.Errorf("study %s: the between-person design is neither given by generators nor proven minimum aberration", s.Config.ID)
	}
	pin.Fingerprint = DesignFingerprint(d.Rows())
	return pin, nil
}

// DesignFingerprint returns "sha256:" and the hex SHA-256 of the text
// "jitai design rows v1\n", then "<runs> <factors>\n", then one line per row
// of its level indices as digits ("0110\n"). Row order counts: permuted
// blocks assign by row index.
func DesignFingerprint(rows [][]int) string {
	h := sha256.New()
	k := 0
	if len(rows) > 0 {
		k = len(rows[0])
	}
	fmt.Fprintf(h, "jitai design rows v1\n%d %d\n", len(rows), k)
	line := make([]byte, 0, k+1)
	for _, r := range rows {
		line = line[:0]
		for _, v := range r {
			line = append(line, byte('0'+v))
		}
		line = append(line, '\n')
		h.Write(line)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ParseDesignPin decodes a stored pin. It refuses unknown fields and
// versions other than DesignPinVersion.
func ParseDesignPin(data []byte) (DesignPin, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p DesignPin
	if err := dec.Decode(&p); err != nil {
		return DesignPin{}, fmt.Errorf("reading the stored between-person design pin: %w", err)
	}
	if p.Version != DesignPinVersion {
		return DesignPin{}, fmt.Errorf("the stored between-person design pin has version %d; this jitai reads version %d: run the jitai version that enrolled the participants", p.Version, DesignPinVersion)
	}
	if !strings.HasPrefix(p.Fingerprint, "sha256:") || p.Runs < 1 {
		return DesignPin{}, fmt.Errorf("the stored between-person design pin is damaged (runs %d, fingerprint %q)", p.Runs, p.Fingerprint)
	}
	if p.Generators == nil {
		p.Generators = []string{}
	}
	if p.Factors == nil {
		p.Factors = []PinnedFactor{}
	}
	return p, nil
}

// DesignChangedError reports that a study's between-person design differs
// from the pin stored when participants enrolled.
type DesignChangedError struct {
	// Changes says what differs, one entry per difference.
	Changes []string
	// Pinned is the stored pin.
	Pinned DesignPin
}

// Error lists the changes, says that the change is refused and how to
// proceed.
func (e *DesignChangedError) Error() string {
	var restore []string
	for _, f := range e.Pinned.Factors {
		restore = append(restore, fmt.Sprintf("%s [%s, %s]", f.Name, f.Levels[0], f.Levels[1]))
	}
	section := "no design section (the full factorial)"
	if len(e.Pinned.Generators) > 0 {
		quoted := make([]string, len(e.Pinned.Generators))
		for i, g := range e.Pinned.Generators {
			quoted[i] = fmt.Sprintf("%q", g)
		}
		section = fmt.Sprintf("design: {runs: %d, generators: [%s]}", e.Pinned.Runs, strings.Join(quoted, ", "))
	}
	if len(restore) == 0 {
		restore = []string{"none"}
	}
	return "the between-person design differs from the one participants were enrolled under: " + strings.Join(e.Changes, "; ") +
		". Changing the between-person design of a study with enrolled participants is refused: their assignments are rows of the pinned design. " +
		"Restore it in study.yaml (between-person factors, in this order: " + strings.Join(restore, ", ") + "; " + section + "), " +
		"or, to change the design, start a new study with a new id."
}

// CheckDesignPin compares the pin stored when participants enrolled with the
// pin of the study as loaded now. It returns nil when the designs are the
// same (the Source may differ: pinning a searched design's generators keeps
// the design) and a *DesignChangedError naming every factor, level, run
// size and generator that changed otherwise.
func CheckDesignPin(pinned, current DesignPin) error {
	var changes []string
	changes = append(changes, factorChanges(pinned.Factors, current.Factors)...)
	if pinned.Runs != current.Runs {
		changes = append(changes, fmt.Sprintf("runs: %d, pinned %d", current.Runs, pinned.Runs))
	}
	changes = append(changes, generatorChanges(pinned, current)...)
	if len(changes) == 0 && pinned.Fingerprint != current.Fingerprint {
		changes = append(changes, fmt.Sprintf("the design rows differ (fingerprint %s, pinned %s) although factors, runs and generators are the same: this jitai builds the rows differently from the one that enrolled the participants", current.Fingerprint, pinned.Fingerprint))
	}
	if len(changes) == 0 {
		return nil
	}
	return &DesignChangedError{Changes: changes, Pinned: pinned}
}

// VerifyDesignPin checks the study's between-person design against a stored
// pin (CheckDesignPin).
func (s *Study) VerifyDesignPin(pinned DesignPin) error {
	current, err := s.DesignPin()
	if err != nil {
		return err
	}
	return CheckDesignPin(pinned, current)
}

func factorChanges(pinned, current []PinnedFactor) []string {
	var out []string
	letters := design.FactorNames(max(len(pinned), len(current), 1))
	for i := 0; i < max(len(pinned), len(current)); i++ {
		switch {
		case i >= len(current):
			out = append(out, fmt.Sprintf("between-person factor %s (design factor %s) was removed", pinned[i].Name, letters[i]))
		case i >= len(pinned):
			out = append(out, fmt.Sprintf("between-person factor %s (design factor %s) was added", current[i].Name, letters[i]))
		case pinned[i].Name != current[i].Name:
			out = append(out, fmt.Sprintf("between-person factor %d (design factor %s) is %s, pinned %s", i+1, letters[i], current[i].Name, pinned[i].Name))
		case pinned[i].Levels != current[i].Levels:
			out = append(out, fmt.Sprintf("factor %s has levels [%s, %s], pinned [%s, %s]", current[i].Name,
				current[i].Levels[0], current[i].Levels[1], pinned[i].Levels[0], pinned[i].Levels[1]))
		}
	}
	return out
}

// generatorChanges compares generators by the factor they generate.
func generatorChanges(pinned, current DesignPin) []string {
	byFactor := func(gens []string) map[string]string {
		m := map[string]string{}
		for _, g := range gens {
			lhs, _, _ := strings.Cut(g, "=")
			m[lhs] = g
		}
		return m
	}
	was, now := byFactor(pinned.Generators), byFactor(current.Generators)
	var letters []string
	for _, l := range design.FactorNames(max(len(pinned.Factors), len(current.Factors), 1)) {
		if was[l] != "" || now[l] != "" {
			letters = append(letters, l)
		}
	}
	var extra []string // letters beyond the factors (a damaged pin): still reported
	for _, m := range []map[string]string{was, now} {
		for l := range m {
			if !slices.Contains(letters, l) && !slices.Contains(extra, l) {
				extra = append(extra, l)
			}
		}
	}
	slices.Sort(extra)
	letters = append(letters, extra...)
	name := func(l string) string {
		for i, n := range design.FactorNames(len(current.Factors)) {
			if n == l {
				return " (" + current.Factors[i].Name + ")"
			}
		}
		return ""
	}
	var out []string
	for _, l := range letters {
		switch w, n := was[l], now[l]; {
		case w == n:
		case w == "":
			out = append(out, fmt.Sprintf("generator %s%s was added", n, name(l)))
		case n == "":
			out = append(out, fmt.Sprintf("generator %s was removed", w))
		default:
			out = append(out, fmt.Sprintf("generator of %s%s is %s, pinned %s", l, name(l), n, w))
		}
	}
	return out
}
