package simulate

import (
	"embed"
	"io"
	"strconv"

	"github.com/jitai/jitai/engine/simulate/page"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// pages holds report.html's template ("simulation") with the shared page
// frame and charts. It is parsed once and never changed.
var pages = page.Must(page.New(templateFS, "templates/*.tmpl"))

// reportPage is the data of the "simulation" template: the report, its
// short policy revision and its charts.
type reportPage struct {
	*Report
	Revision      string
	DeliveryChart page.Chart
	HourChart     page.Chart
	ReasonChart   *page.Chart // nil when no decision was unavailable
	FunnelChart   page.Chart
	DailyChart    page.Chart
}

// writeHTML writes the self-contained report: inline CSS and SVG, no
// scripts, fonts or links to fetch.
func writeHTML(w io.Writer, r *Report) error {
	return pages.Render(w, "simulation", newReportPage(r))
}

func newReportPage(r *Report) reportPage {
	p := reportPage{Report: r, Revision: short(r.Study.Revision)}

	d := r.Deliveries
	labels := make([]string, len(d.Histogram))
	vals := make([]float64, len(d.Histogram))
	for k, n := range d.Histogram {
		labels[k], vals[k] = strconv.Itoa(k), float64(n)
	}
	mark := -1
	if d.Cap > 0 {
		mark = d.Cap
		for len(labels) <= d.Cap {
			labels = append(labels, strconv.Itoa(len(labels)))
			vals = append(vals, 0)
		}
	}
	p.DeliveryChart = page.BarChart("deliveries per participant-day", labels, vals, nil, "participant-days", "deliveries in the day", mark)

	hl := make([]string, 24)
	hd, hv := make([]float64, 24), make([]float64, 24)
	for h := range 24 {
		hl[h] = strconv.Itoa(h)
		hd[h], hv[h] = float64(r.Hours.Decisions[h]), float64(r.Hours.Deliveries[h])
	}
	p.HourChart = page.BarChart("decisions and deliveries by hour", hl, hv, hd, "count", "local hour", -1)

	if rs := r.Availability.Reasons; len(rs) > 0 {
		rl, sh := make([]string, len(rs)), make([]float64, len(rs))
		for i, rc := range rs {
			rl[i], sh[i] = rc.Reason, rc.Share
		}
		c := page.HBarChart("unavailable reasons (share of all decisions)", rl, sh)
		p.ReasonChart = &c
	}

	p.FunnelChart = funnelChart(&r.Funnel.Overall)

	av, op, rp := make([]float64, len(r.Daily)), make([]float64, len(r.Daily)), make([]float64, len(r.Daily))
	for i, dr := range r.Daily {
		av[i], op[i], rp[i] = dr.Available, dr.OpenRate, dr.ReportRate
	}
	p.DailyChart = page.LineChart("daily rates", []page.Series{
		{Name: "available", Colour: "#3b6ea8", Values: av},
		{Name: "opened", Colour: "#e08e0b", Values: op},
		{Name: "self-reports", Colour: "#2e8b57", Values: rp},
	}, "study day")
	return p
}

func short(rev string) string {
	if len(rev) > 19 {
		return rev[:19]
	}
	return rev
}
