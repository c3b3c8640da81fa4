package page

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// A Chart is an SVG plot as template data (drawn by the "chart"
// template): its size, its accessible title and its shapes in drawing
// order. The builders here compute coordinates from numbers; every text
// (title, labels, tooltips) is a plain string the template escapes.
type Chart struct {
	Title         string
	Width, Height int
	Shapes        []Shape
}

// A Shape is one element of a Chart: exactly one field is set.
type Shape struct {
	Line     *Line
	Rect     *Rect
	Text     *Text
	Polyline *Polyline
}

// A Line is an SVG line; Dash, when set, is its stroke-dasharray.
type Line struct {
	X1, Y1, X2, Y2 string
	Stroke         string
	Dash           string
}

// A Rect is a filled SVG rectangle; Tip, when set, is its tooltip.
type Rect struct {
	X, Y, Width, Height string
	Fill                string
	Tip                 string
}

// A Text is an SVG text. Rotate, when set, holds the arguments of a
// rotate() transform; Anchor and Fill are optional.
type Text struct {
	X, Y   string
	Rotate string
	Anchor string
	Class  string
	Fill   string
	Text   string
}

// A Polyline is an unfilled SVG polyline of width 2.
type Polyline struct {
	Stroke string
	Points string
}

// Series is one line of a LineChart.
type Series struct {
	Name   string
	Colour string
	Values []float64
}

// Geometry and colours of the charts.
const (
	svgW   = 640
	svgH   = 240
	padL   = 56
	padR   = 12
	padT   = 16
	padB   = 36
	plotW  = svgW - padL - padR
	plotH  = svgH - padT - padB
	colour = "#3b6ea8"
	muted  = "#c9d6e6"
	warn   = "#c0392b"
)

// d and f1 format coordinates: whole numbers, and one decimal.
func d(v int) string         { return strconv.Itoa(v) }
func f1(v float64) string    { return strconv.FormatFloat(v, 'f', 1, 64) }
func (c *Chart) add(s Shape) { c.Shapes = append(c.Shapes, s) }

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e9 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2g", v)
}

// axes draws the y axis with 4 ticks up to top, and the frame.
func (c *Chart) axes(top float64, yLabel string, pct bool) {
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		y := padT + plotH - plotH*float64(i)/4
		label := fmtTick(v)
		if pct {
			label = fmt.Sprintf("%.0f%%", 100*v)
		}
		c.add(Shape{Line: &Line{X1: d(padL), Y1: f1(y), X2: d(svgW - padR), Y2: f1(y), Stroke: "#e5e5e5"}})
		c.add(Shape{Text: &Text{X: d(padL - 6), Y: f1(y + 4), Anchor: "end", Class: "tick", Text: label}})
	}
	c.add(Shape{Line: &Line{X1: d(padL), Y1: d(padT + plotH), X2: d(svgW - padR), Y2: d(padT + plotH), Stroke: "#888"}})
	if yLabel != "" {
		mid := padT + plotH/2
		c.add(Shape{Text: &Text{X: "12", Y: d(mid), Rotate: fmt.Sprintf("-90 12 %d", mid), Anchor: "middle", Class: "axis", Text: yLabel}})
	}
}

// BarChart draws bars of values with labels under them. back, when not
// nil, is drawn behind in a muted colour (same scale). mark, when >= 0,
// draws a dashed vertical line after bar mark (e.g. a daily cap).
func BarChart(title string, labels []string, values, back []float64, yLabel, xLabel string, mark int) Chart {
	c := Chart{Title: title, Width: svgW, Height: svgH}
	top := 0.0
	for _, v := range values {
		top = math.Max(top, v)
	}
	for _, v := range back {
		top = math.Max(top, v)
	}
	top = niceMax(top)
	c.axes(top, yLabel, false)
	n := len(values)
	bw := float64(plotW) / float64(max(n, 1))
	every := max(1, n/24)
	for i := range n {
		x := float64(padL) + bw*float64(i)
		if back != nil {
			h := float64(plotH) * back[i] / top
			c.add(Shape{Rect: &Rect{X: f1(x + 1), Y: f1(float64(padT+plotH) - h), Width: f1(bw - 2), Height: f1(h), Fill: muted, Tip: labels[i] + ": " + fmtTick(back[i])}})
		}
		h := float64(plotH) * values[i] / top
		inset := 1.0
		if back != nil {
			inset = bw * 0.25
		}
		c.add(Shape{Rect: &Rect{X: f1(x + inset), Y: f1(float64(padT+plotH) - h), Width: f1(math.Max(bw-2*inset, 1)), Height: f1(h), Fill: colour, Tip: labels[i] + ": " + fmtTick(values[i])}})
		if i%every == 0 {
			c.add(Shape{Text: &Text{X: f1(x + bw/2), Y: d(padT + plotH + 14), Anchor: "middle", Class: "tick", Text: labels[i]}})
		}
	}
	if mark >= 0 && mark < n {
		x := float64(padL) + bw*float64(mark+1)
		c.add(Shape{Line: &Line{X1: f1(x), Y1: d(padT), X2: f1(x), Y2: d(padT + plotH), Stroke: warn, Dash: "4 3"}})
		c.add(Shape{Text: &Text{X: f1(x - 3), Y: d(padT + 10), Anchor: "end", Class: "tick", Fill: warn, Text: "cap"}})
	}
	c.add(Shape{Text: &Text{X: d(padL + plotW/2), Y: d(svgH - 4), Anchor: "middle", Class: "axis", Text: xLabel}})
	return c
}

// LineChart draws series over x = 1..n on a 0..1 scale (values outside
// are clipped), with a legend of the series' names.
func LineChart(title string, ss []Series, xLabel string) Chart {
	c := Chart{Title: title, Width: svgW, Height: svgH}
	c.axes(1, "", true)
	for k, s := range ss {
		n := len(s.Values)
		pts := make([]string, 0, n)
		for i, v := range s.Values {
			x := float64(padL)
			if n > 1 {
				x += float64(plotW) * float64(i) / float64(n-1)
			}
			y := float64(padT+plotH) - float64(plotH)*math.Max(0, math.Min(1, v))
			pts = append(pts, f1(x)+","+f1(y))
		}
		c.add(Shape{Polyline: &Polyline{Stroke: s.Colour, Points: strings.Join(pts, " ")}})
		lx := padL + 8 + k*150
		c.add(Shape{Rect: &Rect{X: d(lx), Y: d(padT + 2), Width: "12", Height: "4", Fill: s.Colour}})
		c.add(Shape{Text: &Text{X: d(lx + 16), Y: d(padT + 7), Class: "tick", Text: s.Name}})
	}
	if len(ss) > 0 {
		n := len(ss[0].Values)
		for _, i := range []int{0, n / 2, n - 1} {
			if i < 0 || n == 0 {
				continue
			}
			x := float64(padL)
			if n > 1 {
				x += float64(plotW) * float64(i) / float64(n-1)
			}
			c.add(Shape{Text: &Text{X: f1(x), Y: d(padT + plotH + 14), Anchor: "middle", Class: "tick", Text: d(i + 1)}})
		}
	}
	c.add(Shape{Text: &Text{X: d(padL + plotW/2), Y: d(svgH - 4), Anchor: "middle", Class: "axis", Text: xLabel}})
	return c
}

// HBarChart draws labelled horizontal bars of shares (0..1), each with
// its percentage.
func HBarChart(title string, labels []string, shares []float64) Chart {
	const rowH, left = 22, 170
	width := svgW - left - 70
	c := Chart{Title: title, Width: svgW, Height: padT + rowH*max(len(labels), 1) + 8}
	top := 0.0
	for _, v := range shares {
		top = math.Max(top, v)
	}
	if top == 0 {
		top = 1
	}
	for i, l := range labels {
		y := padT + i*rowH
		w := float64(width) * shares[i] / top
		c.add(Shape{Text: &Text{X: d(left - 6), Y: d(y + 14), Anchor: "end", Class: "tick", Text: l}})
		c.add(Shape{Rect: &Rect{X: d(left), Y: d(y + 2), Width: f1(w), Height: "16", Fill: colour}})
		c.add(Shape{Text: &Text{X: f1(float64(left) + w + 4), Y: d(y + 14), Class: "tick", Text: fmt.Sprintf("%.1f%%", 100*shares[i])}})
	}
	return c
}
