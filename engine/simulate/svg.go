package simulate

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// The report's plots are inline SVG written here, so report.html needs no
// script, font or network.

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

func esc(s string) string { return html.EscapeString(s) }

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
func axes(b *strings.Builder, top float64, yLabel string, pct bool) {
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		y := padT + plotH - plotH*float64(i)/4
		label := fmtTick(v)
		if pct {
			label = fmt.Sprintf("%.0f%%", 100*v)
		}
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`, padL, y, svgW-padR, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" class="tick">%s</text>`, padL-6, y+4, label)
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#888"/>`, padL, padT+plotH, svgW-padR, padT+plotH)
	if yLabel != "" {
		fmt.Fprintf(b, `<text x="12" y="%d" transform="rotate(-90 12 %d)" text-anchor="middle" class="axis">%s</text>`, padT+plotH/2, padT+plotH/2, esc(yLabel))
	}
}

// barChart draws bars of values with labels under them. back, when not
// nil, is drawn behind in a muted colour (same scale). mark, when >= 0,
// draws a dashed vertical line after bar mark (e.g. the daily cap).
func barChart(title string, labels []string, values, back []float64, yLabel, xLabel string, mark int) string {
	var b strings.Builder
	top := 0.0
	for _, v := range values {
		top = math.Max(top, v)
	}
	for _, v := range back {
		top = math.Max(top, v)
	}
	top = niceMax(top)
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-label="%s">`, svgW, svgH, esc(title))
	axes(&b, top, yLabel, false)
	n := len(values)
	bw := float64(plotW) / float64(max(n, 1))
	every := max(1, n/24)
	for i := range n {
		x := float64(padL) + bw*float64(i)
		if back != nil {
			h := float64(plotH) * back[i] / top
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`, x+1, float64(padT+plotH)-h, bw-2, h, muted, esc(labels[i]), fmtTick(back[i]))
		}
		h := float64(plotH) * values[i] / top
		inset := 1.0
		if back != nil {
			inset = bw * 0.25
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`, x+inset, float64(padT+plotH)-h, math.Max(bw-2*inset, 1), h, colour, esc(labels[i]), fmtTick(values[i]))
		if i%every == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" class="tick">%s</text>`, x+bw/2, padT+plotH+14, esc(labels[i]))
		}
	}
	if mark >= 0 && mark < n {
		x := float64(padL) + bw*float64(mark+1)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-dasharray="4 3"/>`, x, padT, x, padT+plotH, warn)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="end" class="tick" fill="%s">cap</text>`, x-3, padT+10, warn)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" class="axis">%s</text>`, padL+plotW/2, svgH-4, esc(xLabel))
	b.WriteString(`</svg>`)
	return b.String()
}

// series is one line of lineChart.
type series struct {
	name   string
	colour string
	values []float64
}

// lineChart draws series over x = 1..n on a 0..1 scale.
func lineChart(title string, ss []series, xLabel string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-label="%s">`, svgW, svgH, esc(title))
	axes(&b, 1, "", true)
	for k, s := range ss {
		n := len(s.values)
		var pts []string
		for i, v := range s.values {
			x := float64(padL)
			if n > 1 {
				x += float64(plotW) * float64(i) / float64(n-1)
			}
			y := float64(padT+plotH) - float64(plotH)*math.Max(0, math.Min(1, v))
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.colour, strings.Join(pts, " "))
		lx := padL + 8 + k*150
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="4" fill="%s"/><text x="%d" y="%d" class="tick">%s</text>`, lx, padT+2, s.colour, lx+16, padT+7, esc(s.name))
	}
	if len(ss) > 0 {
		n := len(ss[0].values)
		for _, i := range []int{0, n / 2, n - 1} {
			if i < 0 || n == 0 {
				continue
			}
			x := float64(padL)
			if n > 1 {
				x += float64(plotW) * float64(i) / float64(n-1)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" class="tick">%d</text>`, x, padT+plotH+14, i+1)
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" class="axis">%s</text>`, padL+plotW/2, svgH-4, esc(xLabel))
	b.WriteString(`</svg>`)
	return b.String()
}

// hbarChart draws labelled horizontal bars (shares 0..1).
func hbarChart(title string, labels []string, shares []float64) string {
	var b strings.Builder
	rowH := 22
	h := padT + rowH*max(len(labels), 1) + 8
	left := 170
	width := svgW - left - 70
	fmt.Fprintf(&b, `<svg viewBox="0 0 %d %d" role="img" aria-label="%s">`, svgW, h, esc(title))
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
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" class="tick">%s</text>`, left-6, y+14, esc(l))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="16" fill="%s"/>`, left, y+2, w, colour)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="tick">%.1f%%</text>`, float64(left)+w+4, y+14, 100*shares[i])
	}
	b.WriteString(`</svg>`)
	return b.String()
}
