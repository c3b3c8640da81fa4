// Package page renders self-contained HTML reports through html/template:
// inline CSS and SVG, no scripts, fonts or links to fetch. It holds the
// parts reports share (the page frame and the charts, in templates/);
// a report adds its own templates with New and renders them with Render.
//
// Every value reaches the page through the template, which escapes it for
// where it lands (text, attribute or title); nothing is escaped by hand and
// no text is marked as safe HTML.
package page

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"strings"
)

//go:embed templates/*.tmpl
var shared embed.FS

// Set is a parsed set of templates: the shared ones ("head", "foot",
// "chart") and a report's own. It is immutable once built, so one Set may
// be shared and rendered from several goroutines.
type Set struct {
	t *template.Template
}

// New parses the shared templates and those of fsys that match patterns
// (a report's own, which may call the shared ones). Every template may
// call pct (a share as a percentage: pct 0.25 is 25) and join
// (strings.Join).
func New(fsys fs.FS, patterns ...string) (*Set, error) {
	funcs := template.FuncMap{
		// pct is a share as a percentage (0.25 is 25).
		"pct": func(x float64) float64 { return 100 * x },
		// join joins strings with a separator.
		"join": strings.Join,
	}
	t, err := template.New("page").Funcs(funcs).ParseFS(shared, "templates/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("parsing the shared report templates: %w", err)
	}
	if len(patterns) > 0 {
		if t, err = t.ParseFS(fsys, patterns...); err != nil {
			return nil, fmt.Errorf("parsing report templates: %w", err)
		}
	}
	return &Set{t: t}, nil
}

// Must is New that panics on an error, for a Set built once from embedded
// templates (a package-level value).
func Must(s *Set, err error) *Set {
	if err != nil {
		panic(err)
	}
	return s
}

// Render executes the named template with data and writes the result to
// w. The page is rendered in memory first, so a template error writes
// nothing.
func (s *Set) Render(w io.Writer, name string, data any) error {
	var b bytes.Buffer
	if err := s.t.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	if _, err := b.WriteTo(w); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}
