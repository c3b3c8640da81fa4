package interventions

import (
	"fmt"
	"strings"
)

// varKind is what one part of a template renders.
type varKind uint8

const (
	literal varKind = iota
	varMinutes
	varTimeOfDay
	varTarget
)

// templateVars are the variables a catalogue text may use.
var templateVars = map[string]varKind{
	"minutes":     varMinutes,
	"time_of_day": varTimeOfDay,
	"target":      varTarget,
}

// part is a literal text or a variable.
type part struct {
	kind varKind
	text string
}

// template is a catalogue text split at load into literals and variables, so
// that rendering only concatenates.
type template struct {
	parts []part
	// static holds the text when it uses no variables.
	static string
	// hasVars says whether any part is a variable.
	hasVars bool
	// size is the length of the literals plus room for the variables.
	size int
}

// parseTemplate splits text into parts. Problems (unknown variables, an
// unclosed { or a stray }) are returned as messages; such text is kept as
// a literal, so a template always renders.
func parseTemplate(text string) (template, []string) {
	var (
		t        = template{static: text}
		problems []string
		start    int // start of the pending literal
	)
	for i := 0; i < len(text); {
		switch text[i] {
		case '}':
			problems = append(problems, `unmatched "}"`)
			i++
		case '{':
			end := strings.IndexByte(text[i+1:], '}')
			if end < 0 {
				problems = append(problems, `unclosed "{"`)
				i = len(text)
				continue
			}
			name := text[i+1 : i+1+end]
			kind, ok := templateVars[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("unknown template variable %q", name))
				i += end + 2
				continue
			}
			if start < i {
				t.parts = append(t.parts, part{text: text[start:i]})
			}
			t.parts = append(t.parts, part{kind: kind})
			t.hasVars = true
			i += end + 2
			start = i
		default:
			i++
		}
	}
	if start < len(text) {
		t.parts = append(t.parts, part{text: text[start:]})
	}
	for _, p := range t.parts {
		if p.kind == literal {
			t.size += len(p.text)
		} else {
			t.size += 16
		}
	}
	return t, problems
}

// values are the rendered template variables of one Render.
type values struct {
	minutes, timeOfDay, target string
}

// empty reports whether the template renders as the empty string.
func (t *template) empty() bool { return len(t.parts) == 0 }

// writeTo appends the rendered template to b.
func (t *template) writeTo(b *strings.Builder, v *values) {
	for _, p := range t.parts {
		switch p.kind {
		case literal:
			b.WriteString(p.text)
		case varMinutes:
			b.WriteString(v.minutes)
		case varTimeOfDay:
			b.WriteString(v.timeOfDay)
		case varTarget:
			b.WriteString(v.target)
		}
	}
}

// render returns the rendered template; a text without variables is returned
// without copying.
func (t *template) render(v *values) string {
	if !t.hasVars {
		return t.static
	}
	var b strings.Builder
	b.Grow(t.size)
	t.writeTo(&b, v)
	return b.String()
}
