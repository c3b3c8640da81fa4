// Package interventions holds the catalogue of CBT micro-interventions that
// jitai can offer: the catalogue types, loading and validation of the YAML
// files that describe them, and rendering of an intervention's content for the
// component levels in force at a decision.
//
// The built-in catalogue lives in catalogue/, one file per intervention plus
// dimensions.yaml, which declares the content variant dimensions (framing,
// reminder, booster, dose) and their levels. It is embedded into the binary;
// see Embedded. A Catalogue is immutable once loaded and safe for concurrent
// use.
package interventions

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// minEmbedded is the least number of interventions the built-in catalogue holds.
const minEmbedded = 24

//go:embed catalogue/*.yaml
var embedded embed.FS

// Intervention is one catalogue entry. Interventions returned by a Catalogue
// are shared and must not be modified.
type Intervention struct {
	// ID is the unique identifier, equal to the file name without .yaml.
	ID string
	// Title is a short human-readable name.
	Title string
	// Technique is the CBT technique, from a fixed vocabulary.
	Technique string
	// Targets are the needs the intervention addresses (stress, low_mood,
	// anxiety, sleep, loneliness).
	Targets []string
	// Contraindications are conditions in which the intervention should not
	// be offered (acute_risk, in_public, late_night, low_energy,
	// high_distress, at_work).
	Contraindications []string
	// Steps are the base steps; they may use template variables.
	Steps []string
	// DurationS is the base duration in seconds.
	DurationS int
	// Body is the base text; it may use template variables.
	Body string
	// Variants maps dimension -> level -> content variant.
	Variants map[string]map[string]Variant
	// File is the source file, for error messages.
	File string

	compiled *compiled
}

// Variant is the content of an intervention for one level of one dimension.
// Empty fields leave the base content unchanged.
type Variant struct {
	// Prefix is text placed before the body.
	Prefix string
	// Body replaces the base body when not empty.
	Body string
	// Suffix is text placed after the body.
	Suffix string
	// Steps replace the base steps when not empty.
	Steps []string
	// DurationS replaces the base duration when greater than zero.
	DurationS int
}

// Catalogue is a validated, immutable set of interventions together with the
// variant dimensions they are written for. It is safe for concurrent use.
type Catalogue struct {
	dims     map[string][]string
	dimsFile sourceFile
	byID     map[string]*Intervention
	ids      []string
	sources  map[string]sourceFile // id -> its file
	revision string
}

// sourceFile is a catalogue file's name (relative to the catalogue folder)
// and content, kept for the revision.
type sourceFile struct {
	name string
	data []byte
}

// Embedded returns the built-in catalogue. It is parsed and validated on every
// call, so callers should load it once and keep it.
func Embedded() (*Catalogue, error) {
	c, err := Load(embedded, "catalogue")
	if err != nil {
		return nil, fmt.Errorf("loading the built-in intervention catalogue: %w", err)
	}
	if c.Len() < minEmbedded {
		return nil, fmt.Errorf("the built-in intervention catalogue holds %d interventions; it needs at least %d", c.Len(), minEmbedded)
	}
	return c, nil
}

// Get returns the intervention with the given id.
func (c *Catalogue) Get(id string) (*Intervention, bool) {
	iv, ok := c.byID[id]
	return iv, ok
}

// IDs returns the ids of all interventions, sorted.
func (c *Catalogue) IDs() []string {
	return append([]string(nil), c.ids...)
}

// Len returns the number of interventions.
func (c *Catalogue) Len() int { return len(c.ids) }

// Dimensions returns a copy of the variant dimensions and their levels,
// level 0 first, as declared in dimensions.yaml.
func (c *Catalogue) Dimensions() map[string][]string {
	out := make(map[string][]string, len(c.dims))
	for name, levels := range c.dims {
		out[name] = append([]string(nil), levels...)
	}
	return out
}

// Revision returns the hex sha256 over the sorted names and contents of the
// catalogue's files: dimensions.yaml and the file of every intervention in c.
// Names are relative to the catalogue folder, so the same files give the same
// revision wherever they are loaded from. A subset has its own revision.
func (c *Catalogue) Revision() string { return c.revision }

// Subset returns a catalogue holding only the interventions with the given
// ids; repeated ids count once. Empty ids mean the whole catalogue. The error
// names every unknown id.
func (c *Catalogue) Subset(ids []string) (*Catalogue, error) {
	if len(ids) == 0 {
		return c, nil
	}
	var unknown []string
	byID := make(map[string]*Intervention, len(ids))
	for _, id := range ids {
		iv, ok := c.byID[id]
		if !ok {
			unknown = append(unknown, strconv.Quote(id))
			continue
		}
		byID[id] = iv
	}
	if len(unknown) > 0 {
		noun := "id"
		if len(unknown) > 1 {
			noun = "ids"
		}
		return nil, fmt.Errorf("unknown intervention %s %s; the catalogue holds: %s",
			noun, strings.Join(unknown, ", "), strings.Join(c.ids, ", "))
	}
	return newCatalogue(c.dims, c.dimsFile, byID, c.sources), nil
}

// CheckDimension returns an error unless name is a dimension of the catalogue
// with exactly the given levels, in the same order, and every intervention in
// c has a variant for each of those levels. Studies call it at load for every
// factor that changes content, so that Render never meets an unknown level.
func (c *Catalogue) CheckDimension(name string, levels []string) error {
	have, ok := c.dims[name]
	if !ok {
		return fmt.Errorf("the intervention catalogue has no dimension %q; dimensions.yaml declares: %s",
			name, strings.Join(slices.Sorted(maps.Keys(c.dims)), ", "))
	}
	if !slices.Equal(have, levels) {
		return fmt.Errorf("dimension %q has levels [%s] in the intervention catalogue, not [%s]; use the same levels in the same order",
			name, strings.Join(have, ", "), strings.Join(levels, ", "))
	}
	var missing []string
	for _, id := range c.ids {
		variants := c.byID[id].Variants[name]
		for _, level := range levels {
			if _, ok := variants[level]; !ok {
				missing = append(missing, id)
				break
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("interventions without a variant for every level of dimension %q: %s; add the variants or leave these interventions out of the study",
			name, strings.Join(missing, ", "))
	}
	return nil
}

// PolicyData returns the catalogue as policy data: id -> {"title",
// "technique", "targets", "duration_s", "contraindications"}. It uses only
// JSON-compatible types (string, json.Number, []any, map[string]any), so it
// can be handed to OPA as data. Every call returns a fresh value.
func (c *Catalogue) PolicyData() map[string]any {
	out := make(map[string]any, len(c.ids))
	for _, id := range c.ids {
		iv := c.byID[id]
		out[id] = map[string]any{
			"title":             iv.Title,
			"technique":         iv.Technique,
			"targets":           toAnySlice(iv.Targets),
			"duration_s":        json.Number(strconv.Itoa(iv.DurationS)),
			"contraindications": toAnySlice(iv.Contraindications),
		}
	}
	return out
}

// newCatalogue builds a catalogue over the given interventions and computes
// its revision.
func newCatalogue(dims map[string][]string, dimsFile sourceFile, byID map[string]*Intervention, sources map[string]sourceFile) *Catalogue {
	c := &Catalogue{
		dims:     dims,
		dimsFile: dimsFile,
		byID:     byID,
		ids:      slices.Sorted(maps.Keys(byID)),
		sources:  make(map[string]sourceFile, len(byID)),
	}
	files := []sourceFile{dimsFile}
	for _, id := range c.ids {
		src := sources[id]
		c.sources[id] = src
		files = append(files, src)
	}
	c.revision = revision(files)
	return c
}

// revision hashes files in name order; each file is written as its name, its
// length and its content, so no two different sets hash alike.
func revision(files []sourceFile) string {
	sorted := append([]sourceFile(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	h := sha256.New()
	for _, f := range sorted {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func toAnySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
