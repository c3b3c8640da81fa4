package interventions

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// dimensionsFile is the file in a catalogue folder that declares the variant
// dimensions.
const dimensionsFile = "dimensions.yaml"

// minSteps is the least number of steps of an intervention or a variant that
// sets steps.
const minSteps = 2

// Vocabularies of the catalogue fields.
var (
	techniques = []string{
		"relaxation", "grounding", "cognitive_restructuring", "reappraisal",
		"behavioural_activation", "activity_scheduling", "problem_solving",
		"worry_postponement", "self_compassion", "sleep_wind_down",
		"social_connection", "savouring", "mindful_breathing", "values",
		"psychoeducation", "gratitude",
	}
	targets           = []string{"stress", "low_mood", "anxiety", "sleep", "loneliness"}
	contraindications = []string{"acute_risk", "in_public", "late_night", "low_energy", "high_distress", "at_work"}
	interventionKeys  = []string{"id", "title", "technique", "targets", "duration_s", "contraindications", "body", "steps", "variants"}
	variantKeys       = []string{"prefix", "body", "suffix", "steps", "duration_s"}
)

// LoadError is one problem found while loading a catalogue, with the file and
// line it was found at.
type LoadError struct {
	// File is the path of the file within the loaded file system.
	File string
	// Line is the 1-based line, or 0 when the problem concerns the whole file.
	Line int
	// Msg says what is wrong and, where it helps, how to fix it.
	Msg string
}

// Error returns "file:line: msg", or "file: msg" when the line is unknown.
func (e *LoadError) Error() string {
	if e.Line > 0 {
		return e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
	}
	return e.File + ": " + e.Msg
}

// LoadErrors is every problem found while loading a catalogue, ordered by
// file and line.
type LoadErrors []*LoadError

// Error returns the problems one per line.
func (es LoadErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Load reads a catalogue from dir in fsys: dimensions.yaml and every other
// *.yaml file directly in dir, one intervention per file. Sub-folders and
// other files are ignored, except *.yml files, which are an error. Every
// problem found is reported, as a LoadErrors; a failure to list dir is
// returned as a wrapped error instead.
func Load(fsys fs.FS, dir string) (*Catalogue, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading intervention catalogue folder %q: %w", dir, err)
	}
	l := &loader{}

	dimsPath := path.Join(dir, dimensionsFile)
	dimsData, err := fs.ReadFile(fsys, dimsPath)
	if err != nil {
		l.add(dimsPath, 0, fmt.Sprintf("cannot read the dimensions file (%v); every catalogue folder needs a %s", err, dimensionsFile))
	}
	dims := l.parseDimensions(dimsPath, dimsData)

	byID := make(map[string]*Intervention)
	sources := make(map[string]sourceFile)
	for _, e := range entries { // fs.ReadDir sorts by name
		name := e.Name()
		if e.IsDir() || name == dimensionsFile {
			continue
		}
		file := path.Join(dir, name)
		if strings.HasSuffix(name, ".yml") {
			l.add(file, 0, "catalogue files must end in .yaml; rename the file")
			continue
		}
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			l.add(file, 0, fmt.Sprintf("cannot read: %v", err))
			continue
		}
		iv, idLine := l.parseIntervention(file, strings.TrimSuffix(name, ".yaml"), data, dims)
		if iv == nil || iv.ID == "" {
			continue
		}
		if prev, dup := byID[iv.ID]; dup {
			l.add(file, idLine, fmt.Sprintf("duplicate id %q: already used by %s; ids must be unique", iv.ID, prev.File))
			continue
		}
		byID[iv.ID] = iv
		sources[iv.ID] = sourceFile{name: name, data: data}
	}
	if len(byID) == 0 && len(l.errs) == 0 {
		l.add(dir, 0, "no intervention files (*.yaml) found")
	}
	if len(l.errs) > 0 {
		sort.SliceStable(l.errs, func(i, j int) bool {
			a, b := l.errs[i], l.errs[j]
			if a.File != b.File {
				return a.File < b.File
			}
			return a.Line < b.Line
		})
		return nil, l.errs
	}
	for _, iv := range byID {
		iv.compiled = compile(iv)
	}
	return newCatalogue(dims, sourceFile{name: dimensionsFile, data: dimsData}, byID, sources), nil
}

// loader collects the problems of one Load.
type loader struct {
	errs LoadErrors
}

func (l *loader) add(file string, line int, msg string) {
	l.errs = append(l.errs, &LoadError{File: file, Line: line, Msg: msg})
}

// yamlError reports a YAML syntax error, taking the line from yaml.v3's
// "yaml: line N: msg" format. yaml.v3 counts lines from 0 for errors found by
// its parser (as opposed to its scanner), and leaves the line out when that
// count is 0, so the line is corrected here; reader errors (bad encoding)
// carry no line.
func (l *loader) yamlError(file string, err error) {
	line, msg := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
	switch {
	case yamlParserProblems[msg]:
		line++
	case isReaderProblem(msg):
		line = 0
	case line == 0:
		line = 1
	}
	l.add(file, line, "invalid YAML: "+msg)
}

// yamlParserProblems are the messages of yaml.v3's parser errors.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// isReaderProblem recognises yaml.v3's errors about the file's encoding.
func isReaderProblem(msg string) bool {
	for _, p := range []string{
		"input error", "control characters are not allowed", "invalid leading UTF-8 octet",
		"invalid trailing UTF-8 octet", "incomplete UTF-8 octet sequence", "invalid length of a UTF-8 sequence",
		"invalid Unicode character", "incomplete UTF-16", "expected low surrogate area", "unexpected low surrogate area",
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// splitLine splits "line N: msg" into N and msg.
func splitLine(s string) (int, string) {
	rest, ok := strings.CutPrefix(s, "line ")
	if !ok {
		return 0, s
	}
	num, msg, ok := strings.Cut(rest, ": ")
	if !ok {
		return 0, s
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, s
	}
	return n, msg
}

// parseDimensions reads dimensions.yaml: a mapping of dimension name to its
// list of levels, level 0 first. It returns what it could read.
func (l *loader) parseDimensions(file string, data []byte) map[string][]string {
	dims := make(map[string][]string)
	if data == nil {
		return dims
	}
	root, ok := l.parseNode(file, data)
	if !ok {
		return dims
	}
	if root.Kind != yaml.MappingNode {
		l.add(file, root.Line, "expected a mapping of dimension name to its levels, e.g. framing: [gain, loss]")
		return dims
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		if !isName(name) {
			l.add(file, k.Line, fmt.Sprintf("dimension name %q must start with a lower-case letter and use only lower-case letters, digits and _", name))
			continue
		}
		if _, dup := dims[name]; dup {
			l.add(file, k.Line, fmt.Sprintf("dimension %q is declared twice", name))
			continue
		}
		if v.Kind != yaml.SequenceNode {
			l.add(file, v.Line, fmt.Sprintf("dimension %q: expected a list of levels, e.g. [off, on]", name))
			continue
		}
		var levels []string
		seen := make(map[string]bool)
		for _, n := range v.Content {
			switch {
			case n.Kind != yaml.ScalarNode:
				l.add(file, n.Line, fmt.Sprintf("dimension %q: a level must be a plain name", name))
			case !isLevel(n.Value):
				l.add(file, n.Line, fmt.Sprintf("dimension %q: level %q must use only lower-case letters, digits, _ and -", name, n.Value))
			case seen[n.Value]:
				l.add(file, n.Line, fmt.Sprintf("dimension %q: level %q is listed twice", name, n.Value))
			default:
				seen[n.Value] = true
				levels = append(levels, n.Value)
			}
		}
		if len(v.Content) < 2 {
			l.add(file, v.Line, fmt.Sprintf("dimension %q needs at least two levels", name))
		}
		dims[name] = levels
	}
	return dims
}

// parseNode parses one YAML document into its root node.
func (l *loader) parseNode(file string, data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.add(file, 0, "file is empty")
		} else {
			l.yamlError(file, err)
		}
		return nil, false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l.yamlError(file, err)
		return nil, false
	default:
		l.add(file, extra.Line, "only one YAML document per file; remove the second document")
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		l.add(file, doc.Line, "expected one YAML document")
		return nil, false
	}
	return doc.Content[0], true
}

// rawIntervention is an intervention file as written.
type rawIntervention struct {
	ID                string                           `yaml:"id"`
	Title             string                           `yaml:"title"`
	Technique         string                           `yaml:"technique"`
	Targets           []string                         `yaml:"targets"`
	DurationS         int                              `yaml:"duration_s"`
	Contraindications []string                         `yaml:"contraindications"`
	Body              string                           `yaml:"body"`
	Steps             []string                         `yaml:"steps"`
	Variants          map[string]map[string]rawVariant `yaml:"variants"`
}

// rawVariant is a variant as written.
type rawVariant struct {
	Prefix    string   `yaml:"prefix"`
	Body      string   `yaml:"body"`
	Suffix    string   `yaml:"suffix"`
	Steps     []string `yaml:"steps"`
	DurationS *int     `yaml:"duration_s"`
}

// parseIntervention reads and validates one intervention file. base is the
// file name without .yaml. It returns the intervention, nil when the file
// could not be decoded, and the line of its id.
func (l *loader) parseIntervention(file, base string, data []byte, dims map[string][]string) (*Intervention, int) {
	root, ok := l.parseNode(file, data)
	if !ok {
		return nil, 0
	}
	if root.Kind != yaml.MappingNode {
		l.add(file, root.Line, "expected a mapping with the keys "+strings.Join(interventionKeys, ", "))
		return nil, 0
	}

	// Decode strictly: unknown keys are errors with their line. Other decoding
	// errors (a list where text is expected, text where a number is, a key
	// given twice) leave the decoded value incomplete, so they end the file's
	// checks rather than cause misleading ones.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var raw rawIntervention
	if err := dec.Decode(&raw); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			l.yamlError(file, err)
			return nil, 0
		}
		fatal := false
		for _, e := range te.Errors {
			line, msg := splitLine(e)
			if key, typ, ok := unknownField(msg); ok {
				allowed := interventionKeys
				if strings.HasSuffix(typ, "rawVariant") {
					allowed = variantKeys
				}
				msg = fmt.Sprintf("unknown key %q; allowed keys are: %s", key, strings.Join(allowed, ", "))
			} else {
				fatal = true
			}
			l.add(file, line, msg)
		}
		if fatal {
			return nil, 0
		}
	}

	v := &validator{l: l, file: file, root: root}
	iv := &Intervention{
		ID:                raw.ID,
		Title:             strings.TrimSpace(raw.Title),
		Technique:         raw.Technique,
		Targets:           raw.Targets,
		Contraindications: raw.Contraindications,
		DurationS:         raw.DurationS,
		Body:              strings.TrimSpace(raw.Body),
		Steps:             trimAll(raw.Steps),
		File:              file,
	}
	if iv.Contraindications == nil {
		iv.Contraindications = []string{}
	}

	idLine := v.line("id")
	switch {
	case iv.ID == "":
		v.errorf(idLine, "id is required; use the file name without .yaml (%q)", base)
	case !isID(iv.ID):
		v.errorf(idLine, "id %q must use only lower-case letters, digits and single hyphens", iv.ID)
	case iv.ID != base:
		v.errorf(idLine, "id %q does not match the file name %q; rename the file or the id", iv.ID, base+".yaml")
	}
	if iv.Title == "" {
		v.errorf(v.line("title"), "title is required")
	} else if strings.ContainsAny(iv.Title, "{}") {
		v.errorf(v.line("title"), "title must not contain { or }; template variables are allowed only in body, prefix, suffix and steps")
	}
	switch {
	case iv.Technique == "":
		v.errorf(v.line("technique"), "technique is required; use one of: %s", strings.Join(techniques, ", "))
	case !slices.Contains(techniques, iv.Technique):
		v.errorf(v.line("technique"), "unknown technique %q; use one of: %s", iv.Technique, strings.Join(techniques, ", "))
	}
	if len(iv.Targets) == 0 {
		v.errorf(v.line("targets"), "targets must list at least one of: %s", strings.Join(targets, ", "))
	}
	v.vocabulary("targets", iv.Targets, targets)
	v.vocabulary("contraindications", iv.Contraindications, contraindications)
	if iv.DurationS <= 0 {
		v.errorf(v.line("duration_s"), "duration_s must be a positive number of seconds")
	}
	if iv.Body == "" {
		v.errorf(v.line("body"), "body is required")
	}
	v.template("body", iv.Body, "body")
	if len(iv.Steps) < minSteps {
		v.errorf(v.line("steps"), "steps must list at least %d steps", minSteps)
	}
	v.steps(iv.Steps, "steps")

	iv.Variants = make(map[string]map[string]Variant, len(raw.Variants))
	for _, dim := range slices.Sorted(maps.Keys(raw.Variants)) {
		levels, known := dims[dim]
		if !known {
			v.errorf(v.line("variants", dim), "unknown dimension %q; %s declares: %s", dim, dimensionsFile, strings.Join(slices.Sorted(maps.Keys(dims)), ", "))
			continue
		}
		rawLevels := raw.Variants[dim]
		for _, level := range levels {
			if _, ok := rawLevels[level]; !ok {
				v.errorf(v.line("variants", dim), "dimension %q has no variant for level %q; every level needs one (write %s: {} for no change)", dim, level, level)
			}
		}
		byLevel := make(map[string]Variant, len(rawLevels))
		for _, level := range slices.Sorted(maps.Keys(rawLevels)) {
			if !slices.Contains(levels, level) {
				v.errorf(v.line("variants", dim, level), "unknown level %q for dimension %q; its levels are: %s", level, dim, strings.Join(levels, ", "))
				continue
			}
			byLevel[level] = v.variant(dim, level, rawLevels[level])
		}
		iv.Variants[dim] = byLevel
	}
	return iv, idLine
}

// unknownField recognises yaml.v3's "field X not found in type T".
func unknownField(msg string) (key, typ string, ok bool) {
	rest, ok := strings.CutPrefix(msg, "field ")
	if !ok {
		return "", "", false
	}
	key, typ, ok = strings.Cut(rest, " not found in type ")
	return key, typ, ok
}

// validator checks one intervention file, finding lines in its YAML tree.
type validator struct {
	l    *loader
	file string
	root *yaml.Node
}

func (v *validator) errorf(line int, format string, args ...any) {
	v.l.add(v.file, line, fmt.Sprintf(format, args...))
}

// line returns the line of the node at path (mapping keys and sequence
// indexes), or of the nearest ancestor that exists.
func (v *validator) line(path ...string) int {
	n, line := v.root, v.root.Line
	for _, p := range path {
		switch n.Kind {
		case yaml.MappingNode:
			var found bool
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case yaml.SequenceNode:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

// vocabulary checks that every value of the list field key is in vocab and
// appears once.
func (v *validator) vocabulary(key string, values, vocab []string) {
	seen := make(map[string]bool, len(values))
	for i, value := range values {
		line := v.line(key, strconv.Itoa(i))
		switch {
		case !slices.Contains(vocab, value):
			v.errorf(line, "unknown %s value %q; use any of: %s", key, value, strings.Join(vocab, ", "))
		case seen[value]:
			v.errorf(line, "%s lists %q twice", key, value)
		}
		seen[value] = true
	}
}

// steps checks a list of steps at path.
func (v *validator) steps(steps []string, path ...string) {
	for i, s := range steps {
		p := append(append([]string(nil), path...), strconv.Itoa(i))
		where := fmt.Sprintf("%s[%d]", strings.Join(path, "."), i)
		if s == "" {
			v.errorf(v.line(p...), "%s is empty", where)
			continue
		}
		v.template(where, s, p...)
	}
}

// template reports the problems of a template text at path.
func (v *validator) template(where, text string, path ...string) {
	_, problems := parseTemplate(text)
	for _, p := range problems {
		v.errorf(v.line(path...), "%s in %s; allowed variables are {minutes}, {time_of_day} and {target}", p, where)
	}
}

// variant checks one variant and returns it.
func (v *validator) variant(dim, level string, raw rawVariant) Variant {
	at := []string{"variants", dim, level}
	where := "variants." + dim + "." + level
	out := Variant{
		Prefix: strings.TrimSpace(raw.Prefix),
		Body:   strings.TrimSpace(raw.Body),
		Suffix: strings.TrimSpace(raw.Suffix),
		Steps:  trimAll(raw.Steps),
	}
	v.template(where+".prefix", out.Prefix, append(at, "prefix")...)
	v.template(where+".body", out.Body, append(at, "body")...)
	v.template(where+".suffix", out.Suffix, append(at, "suffix")...)
	if raw.Steps != nil && len(out.Steps) < minSteps {
		v.errorf(v.line(append(at, "steps")...), "%s.steps must list at least %d steps when set", where, minSteps)
	}
	v.steps(out.Steps, append(at, "steps")...)
	if raw.DurationS != nil {
		if *raw.DurationS <= 0 {
			v.errorf(v.line(append(at, "duration_s")...), "%s.duration_s must be a positive number of seconds when set", where)
		}
		out.DurationS = *raw.DurationS
	}
	return out
}

func trimAll(ss []string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSpace(s)
	}
	return out
}

// isID reports whether s is lower-case letters and digits in groups joined
// by single hyphens, e.g. box-breathing.
func isID(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' || strings.Contains(s, "--") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isName reports whether s is a dimension name: a lower-case letter, then
// lower-case letters, digits and underscores.
func isName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isLevel reports whether s is a level name: lower-case letters, digits, _
// and -.
func isLevel(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
