package page_test

import (
	"bytes"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jitai/jitai/engine/simulate/page"
)

// plan is a report of another kind, built on the shared templates as the
// analysis-plan report will be.
var plan = fstest.MapFS{"templates/plan.html.tmpl": {Data: []byte(
	`{{define "plan"}}{{template "head" .Title}}<h1>{{.Title}}</h1>{{template "chart" .Chart}}{{template "foot"}}{{end}}`)}}

type planData struct {
	Title string
	Chart page.Chart
}

func TestRenderAnotherReport(t *testing.T) {
	set, err := page.New(plan, "templates/*.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	const hostile = `<script>alert(1)</script>"'&`
	const escaped = `&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;`
	data := planData{
		Title: hostile,
		Chart: page.BarChart(hostile, []string{hostile, "b"}, []float64{1, 2}, []float64{2, 3}, hostile, hostile, 0),
	}
	var b bytes.Buffer
	if err := set.Render(&b, "plan", data); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	if !strings.HasPrefix(html, "<!DOCTYPE html>\n") || !strings.HasSuffix(html, "</body></html>\n") {
		t.Errorf("not a whole page:\n%s", html)
	}
	if strings.Contains(html, "<script") || strings.Contains(html, `"'&`) {
		t.Errorf("unescaped text:\n%s", html)
	}
	for _, want := range []string{
		"<title>" + escaped + "</title>",
		"<h1>" + escaped + "</h1>",
		`aria-label="` + escaped + `"`,
		"<title>" + escaped + ": 2</title>", // tooltip of the back bar
		`class="tick">` + escaped + "</text>",
		`class="axis">` + escaped + "</text>", // both axis labels
		`stroke-dasharray="4 3"`,              // the mark
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s:\n%s", want, html)
		}
	}
	if n := strings.Count(html, escaped); n != 8 {
		t.Errorf("escaped text appears %d times, want 8 (title, heading, aria-label, 2 tooltips, tick, 2 axis labels)", n)
	}
}

func TestRenderErrorWritesNothing(t *testing.T) {
	set, err := page.New(plan, "templates/*.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := set.Render(&b, "no-such-report", nil); err == nil {
		t.Error("rendered a template that does not exist")
	}
	// A template that fails half way: the head is rendered, then .Chart
	// is missing from the data.
	if err := set.Render(&b, "plan", map[string]any{"Title": "t", "Chart": 3}); err == nil {
		t.Error("rendered a chart from a number")
	}
	if b.Len() != 0 {
		t.Errorf("a failed render wrote %q", b.String())
	}
}

func TestNewRejectsBadTemplates(t *testing.T) {
	bad := fstest.MapFS{"t.tmpl": {Data: []byte(`{{define "x"}}{{.`)}}
	if _, err := page.New(bad, "t.tmpl"); err == nil {
		t.Error("parsed a broken template")
	}
	if _, err := page.New(bad, "none/*.tmpl"); err == nil {
		t.Error("parsed a pattern that matches nothing")
	}
}

func TestCharts(t *testing.T) {
	t.Run("line chart clips to 0..1 and labels first, middle and last day", func(t *testing.T) {
		c := page.LineChart("rates", []page.Series{{Name: "a", Colour: "#000", Values: []float64{-1, 0.5, 2}}}, "day")
		var pts string
		var ticks []string
		for _, s := range c.Shapes {
			if s.Polyline != nil {
				pts = s.Polyline.Points
			}
			if s.Text != nil && s.Text.Anchor == "middle" && s.Text.Class == "tick" {
				ticks = append(ticks, s.Text.Text)
			}
		}
		if pts != "56.0,204.0 342.0,110.0 628.0,16.0" {
			t.Errorf("points %q", pts)
		}
		if strings.Join(ticks, " ") != "1 2 3" {
			t.Errorf("day ticks %v", ticks)
		}
	})
	t.Run("horizontal bars scale to the largest share", func(t *testing.T) {
		c := page.HBarChart("reasons", []string{"a", "b"}, []float64{0.2, 0.1})
		var widths []string
		for _, s := range c.Shapes {
			if s.Rect != nil {
				widths = append(widths, s.Rect.Width)
			}
		}
		if strings.Join(widths, " ") != "400.0 200.0" || c.Height != 16+2*22+8 {
			t.Errorf("widths %v, height %d", widths, c.Height)
		}
		if e := page.HBarChart("none", nil, nil); len(e.Shapes) != 0 || e.Height != 16+22+8 {
			t.Errorf("empty chart %+v", e)
		}
	})
}
