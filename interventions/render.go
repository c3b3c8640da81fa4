package interventions

import (
	"sort"
	"strconv"
	"strings"
)

// Vars are the values of the template variables other than {minutes}, which
// comes from the rendered duration. They come from the engine, never from
// free text a participant typed.
type Vars struct {
	// TimeOfDay is morning, afternoon, evening or night; anything else
	// renders as "day".
	TimeOfDay string
	// Target is the need being addressed, as a target code (low_mood) or in
	// words (low mood). When it is not one of the intervention's targets, the
	// intervention's first target is used, so that only texts written for the
	// intervention are ever shown.
	Target string
}

// Rendered is an intervention's content ready to show, with every template
// variable substituted.
type Rendered struct {
	// ID is the intervention's id.
	ID string `json:"id"`
	// Title is the intervention's title.
	Title string `json:"title"`
	// Body is the text: prefixes, body and suffixes.
	Body string `json:"body"`
	// Steps are the steps to follow; the slice belongs to the caller.
	Steps []string `json:"steps"`
	// DurationS is the expected duration in seconds.
	DurationS int `json:"duration_s"`
}

// targetWords renders target codes in words.
var targetWords = map[string]string{
	"stress":     "stress",
	"low_mood":   "low mood",
	"anxiety":    "anxiety",
	"sleep":      "sleep",
	"loneliness": "loneliness",
}

// compiled is an intervention prepared for fast rendering.
type compiled struct {
	body    template
	steps   []template
	dims    []compiledDim // sorted by name
	codes   []string      // Targets as written
	targets []string      // Targets in words
}

type compiledDim struct {
	name   string
	levels map[string]*compiledVariant
}

type compiledVariant struct {
	prefix, body, suffix template
	steps                []template // nil: keep the steps
	durationS            int        // 0: keep the duration
}

// compile prepares iv for rendering.
func compile(iv *Intervention) *compiled {
	c := &compiled{
		body:    mustTemplate(iv.Body),
		steps:   templates(iv.Steps),
		codes:   iv.Targets,
		targets: make([]string, len(iv.Targets)),
	}
	for i, t := range iv.Targets {
		c.targets[i] = words(t)
	}
	names := make([]string, 0, len(iv.Variants))
	for name := range iv.Variants {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		d := compiledDim{name: name, levels: make(map[string]*compiledVariant, len(iv.Variants[name]))}
		for level, v := range iv.Variants[name] {
			d.levels[level] = &compiledVariant{
				prefix:    mustTemplate(v.Prefix),
				body:      mustTemplate(v.Body),
				suffix:    mustTemplate(v.Suffix),
				steps:     templates(v.Steps),
				durationS: v.DurationS,
			}
		}
		c.dims = append(c.dims, d)
	}
	return c
}

func mustTemplate(text string) template {
	t, _ := parseTemplate(text)
	return t
}

func templates(texts []string) []template {
	if len(texts) == 0 {
		return nil
	}
	out := make([]template, len(texts))
	for i, s := range texts {
		out[i] = mustTemplate(s)
	}
	return out
}

// words renders a target code in words; unknown codes lose their underscores.
func words(target string) string {
	if w, ok := targetWords[target]; ok {
		return w
	}
	return strings.ReplaceAll(target, "_", " ")
}

// Render returns the intervention's content for the given levels of its
// variant dimensions.
//
// For each dimension the intervention declares, in sorted order, that has an
// entry in levels, the variant of that level applies: its body, steps and
// duration replace the base ones (a later dimension wins when two replace the
// same thing), and its prefix and suffix are collected. The body is then the
// prefixes, the body and the suffixes joined by single spaces, empty parts
// left out. Dimensions missing from levels, and dimensions in levels that the
// intervention does not declare, change nothing. A declared dimension with an
// unknown level also falls back to the base content; that should never
// happen, since studies validate their levels with Catalogue.CheckDimension.
//
// Finally the template variables are substituted in the body and the steps:
// {minutes} is the final duration in whole minutes, rounded up and at least
// 1; {time_of_day} and {target} come from vars (see Vars).
func (iv *Intervention) Render(levels map[string]string, vars Vars) Rendered {
	c := iv.compiled
	if c == nil { // built by hand rather than loaded: prepare it now
		c = compile(iv)
	}
	var (
		body      = &c.body
		steps     = c.steps
		durationS = iv.DurationS
		// Prefixes, the body and suffixes in order; a few dimensions fit
		// without allocating.
		partBuf [8]*template
		parts   = partBuf[:0]
		sufBuf  [4]*template
		suf     = sufBuf[:0]
	)
	if len(levels) > 0 {
		for i := range c.dims {
			d := &c.dims[i]
			level, ok := levels[d.name]
			if !ok {
				continue
			}
			v, ok := d.levels[level]
			if !ok {
				continue
			}
			if !v.prefix.empty() {
				parts = append(parts, &v.prefix)
			}
			if !v.body.empty() {
				body = &v.body
			}
			if !v.suffix.empty() {
				suf = append(suf, &v.suffix)
			}
			if v.steps != nil {
				steps = v.steps
			}
			if v.durationS > 0 {
				durationS = v.durationS
			}
		}
	}
	if !body.empty() {
		parts = append(parts, body)
	}
	parts = append(parts, suf...)

	vals := values{
		minutes:   strconv.Itoa(minutes(durationS)),
		timeOfDay: timeOfDay(vars.TimeOfDay),
		target:    c.target(vars.Target),
	}

	out := Rendered{ID: iv.ID, Title: iv.Title, DurationS: durationS}
	switch len(parts) {
	case 0:
	case 1:
		out.Body = parts[0].render(&vals)
	default:
		size := len(parts) - 1
		for _, t := range parts {
			size += t.size
		}
		var b strings.Builder
		b.Grow(size)
		for i, t := range parts {
			if i > 0 {
				b.WriteByte(' ')
			}
			t.writeTo(&b, &vals)
		}
		out.Body = b.String()
	}
	out.Steps = make([]string, len(steps))
	for i := range steps {
		out.Steps[i] = steps[i].render(&vals)
	}
	return out
}

// minutes is a duration in whole minutes, rounded up, at least 1.
func minutes(durationS int) int {
	m := (durationS + 59) / 60
	if m < 1 {
		return 1
	}
	return m
}

// timeOfDay returns tod when it is a known time of day, otherwise "day".
func timeOfDay(tod string) string {
	switch tod {
	case "morning", "afternoon", "evening", "night":
		return tod
	}
	return "day"
}

// target returns the wanted target in words when it is one of the
// intervention's targets (as a code or in words), otherwise the first target
// in words.
func (c *compiled) target(want string) string {
	for i, code := range c.codes {
		if want == code || want == c.targets[i] {
			return c.targets[i]
		}
	}
	if len(c.targets) > 0 {
		return c.targets[0]
	}
	return "how you are feeling"
}
