package simulate

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

const css = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;max-width:900px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}
p.lead{color:#555;margin-top:0}table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f6f9}td.l,th.l{text-align:left}.ok{color:#1e7b34}.bad{color:#c0392b;font-weight:600}
svg{width:100%;height:auto;max-width:640px;display:block;margin:.5em 0}.tick{font-size:10px;fill:#555}.axis{font-size:11px;fill:#333}
.note{color:#555;font-size:.92em}ul{margin:.3em 0}code{background:#f4f4f4;padding:0 3px}`

// writeHTML writes the self-contained report: inline CSS and SVG, no
// scripts, fonts or links to fetch.
func writeHTML(w io.Writer, r *Report) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Simulation of %s</title><style>%s</style></head><body>\n", esc(r.Study.ID), css)
	p("<h1>Simulation of %s</h1>\n<p class=\"lead\">%s. %d synthetic participants over %d days from %s (%s), seed %d; policy revision <code>%s</code>.</p>\n",
		esc(r.Study.ID), esc(r.Study.Name), r.Run.Participants, r.Run.Days, esc(r.Run.Start), esc(r.Run.Timezone), r.Run.Seed, esc(short(r.Study.Revision)))

	p("<h2>Checks</h2>\n<table><tr><th class=l>check</th><th class=l>result</th><th class=l>detail</th></tr>\n")
	for _, c := range r.Checks {
		cls, word := "ok", "pass"
		if !c.OK {
			cls, word = "bad", "FAIL"
		}
		p("<tr><td class=l>%s</td><td class=\"l %s\">%s</td><td class=l>%s</td></tr>\n", esc(c.Name), cls, word, esc(c.Detail))
	}
	p("</table>\n")

	t := r.Totals
	p("<h2>Decisions</h2>\n<table><tr><th class=l>decisions</th><th>deliver</th><th>none</th><th>safety</th><th>available</th><th>randomised</th></tr>")
	p("<tr><td class=l>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td></tr></table>\n", t.Decisions, t.Deliver, t.None, t.Safety, t.Available, t.Randomised)

	d := r.Deliveries
	p("<h2>Deliveries per participant-day</h2>\n<p>Mean %.2f, maximum %d; the study's cap (<code>burden.max_per_day</code>) is %d, and %d of %d participant-days went over it. Minimum gap between deliveries: %d minutes.</p>\n",
		d.Mean, d.Max, d.Cap, d.DaysOverCap, d.ParticipantDays, r.Study.MinMinutesBetween)
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
	b.WriteString(barChart("deliveries per participant-day", labels, vals, nil, "participant-days", "deliveries in the day", mark))

	p("<h2>When deliveries land</h2>\n<p>Decisions (light) and deliveries (dark) by participant-local hour.</p>\n")
	hl := make([]string, 24)
	hd, hv := make([]float64, 24), make([]float64, 24)
	for h := range 24 {
		hl[h] = strconv.Itoa(h)
		hd[h], hv[h] = float64(r.Hours.Decisions[h]), float64(r.Hours.Deliveries[h])
	}
	b.WriteString(barChart("decisions and deliveries by hour", hl, hv, hd, "count", "local hour", -1))

	a := r.Availability
	p("<h2>Availability</h2>\n<p>%.1f%% of decision points were available (treatable). A decision may give several reasons; safety decisions are counted under Safety.</p>\n", 100*a.Rate)
	if len(a.Reasons) > 0 {
		var rl []string
		var rs []float64
		for _, rc := range a.Reasons {
			rl, rs = append(rl, rc.Reason), append(rs, rc.Share)
		}
		b.WriteString(hbarChart("unavailable reasons (share of all decisions)", rl, rs))
	}
	p("<table><tr><th class=l>decision point</th><th>decisions</th><th>available</th><th>deliveries</th></tr>\n")
	for _, dp := range a.ByDecisionPoint {
		p("<tr><td class=l>%s</td><td>%d</td><td>%.1f%%</td><td>%d</td></tr>\n", esc(dp.ID), dp.Decisions, 100*dp.Available, dp.Deliveries)
	}
	p("</table>\n")

	s := r.Safety
	p("<h2>Safety</h2>\n<p>%d safety decisions (signposting, never randomised) for %d participants.</p>\n", s.Decisions, s.Participants)
	if len(s.Reasons) > 0 {
		p("<table><tr><th class=l>reason</th><th>decisions</th></tr>\n")
		for _, rc := range s.Reasons {
			p("<tr><td class=l>%s</td><td>%d</td></tr>\n", esc(rc.Reason), rc.Count)
		}
		p("</table>\n")
	}

	p("<h2>Randomisation</h2>\n")
	if len(r.Factors) == 0 {
		p("<p>The study has no within-person (micro-randomised) factors.</p>\n")
	} else {
		p("<p>Each within-person factor's realised rate of its second level at randomised decision points against the mean probability the engine used (clipped, as recorded). z is the difference in standard errors; |z| &gt; 3 is flagged.</p>\n")
		p("<table><tr><th class=l>factor</th><th class=l>levels</th><th class=l>source</th><th>randomised</th><th>realised</th><th>intended</th><th>z</th></tr>\n")
		for _, f := range r.Factors {
			cls := "ok"
			if !f.OK {
				cls = "bad"
			}
			p("<tr><td class=l>%s</td><td class=l>%s / %s</td><td class=l>%s</td><td>%d</td><td>%.4f</td><td>%.4f</td><td class=%s>%+.2f</td></tr>\n",
				esc(f.Name), esc(f.Levels[0]), esc(f.Levels[1]), esc(f.Source), f.Randomised, f.Realised, f.Intended, cls, f.Z)
		}
		p("</table>\n<p class=note>By decision point: <code>factors.csv</code>.</p>\n")
	}
	if c := r.Cells; c != nil {
		p("<h3>Between-person cell balance</h3>\n<p>Participants per cell (%s) within each stratum; permuted blocks keep counts within one of each other. Largest spread: %d.</p>\n", esc(strings.Join(c.Factors, " / ")), c.MaxSpread)
		p("<table><tr><th class=l>cell</th>")
		for _, st := range c.Strata {
			name := st.Stratum
			if name == "" {
				name = "(no strata)"
			}
			p("<th>%s</th>", esc(name))
		}
		p("</tr>\n")
		if len(c.Strata) > 0 {
			for i, cell := range c.Strata[0].Cells {
				p("<tr><td class=l>%s</td>", esc(cell))
				for _, st := range c.Strata {
					p("<td>%d</td>", st.Counts[i])
				}
				p("</tr>\n")
			}
		}
		p("</table>\n")
	}

	e := r.Engagement
	p("<h2>Engagement over the study</h2>\n<p>Open rate %.1f%% and completion %.1f%% of deliveries; %.1f%% of self-report requests answered; %d participants disengaged (%d of them opted out). The primary outcome is missing at %.1f%% of decision points.</p>\n",
		100*e.OpenRate, 100*e.CompleteRate, 100*e.ReportRate, e.Disengaged, e.OptedOut, 100*e.OutcomeMissing)
	av, op, rp := make([]float64, len(r.Daily)), make([]float64, len(r.Daily)), make([]float64, len(r.Daily))
	for i, dr := range r.Daily {
		av[i], op[i], rp[i] = dr.Available, dr.OpenRate, dr.ReportRate
	}
	b.WriteString(lineChart("daily rates", []series{{"available", "#3b6ea8", av}, {"opened", "#e08e0b", op}, {"self-reports", "#2e8b57", rp}}, "study day"))

	p("<h2>Effects</h2>\n")
	if len(r.Effects) == 0 {
		p("<p>No estimate: the primary outcome is not a simulated self-report.</p>\n")
	} else {
		p("<p>Differences in the mean primary outcome between levels, next to the effect the cohort built in. The standard errors treat decisions as independent and so are too small; for inference export the data and use <code>jitai analyze wcls</code>.</p>\n")
		p("<table><tr><th class=l>factor</th><th class=l>outcome</th><th>true</th><th>estimate</th><th>se</th><th>n1</th><th>n0</th><th class=l>compares</th></tr>\n")
		for _, ef := range r.Effects {
			p("<tr><td class=l>%s</td><td class=l>%s</td><td>%+.3f</td><td>%+.3f</td><td>%.3f</td><td>%d</td><td>%d</td><td class=l>%s</td></tr>\n",
				esc(ef.Factor), esc(ef.Outcome), ef.True, ef.Estimate, ef.SE, ef.N1, ef.N0, esc(ef.Note))
		}
		p("</table>\n")
	}

	pw := r.Power
	p("<h2>Sample size and power</h2>\n")
	switch {
	case pw.Kind == "none":
		p("<p>Not computed.</p>\n")
	case pw.Error != "":
		p("<p>%s (%s): <span class=bad>%s</span></p>\n", esc(pw.Kind), esc(pw.Effect), esc(pw.Error))
	case pw.Detectable > 0:
		p("<p>%s: with %d participants the smallest main effect detectable with 80%% power is <b>%.3f</b>.</p>\n", esc(pw.Effect), r.Run.Participants, pw.Detectable)
	default:
		rel := "="
		if pw.AtMost {
			rel = "&le;" // MRTSampleSize's search starts at 10
		}
		p("<p>%s: <b>N %s %d</b> participants for %.0f%% power; with the %d simulated participants the power is <b>%.3f</b>.</p>\n", esc(pw.Effect), rel, pw.N, 100*pw.Target, r.Run.Participants, pw.PowerAtN)
		if pw.NMissing > 0 {
			rel = "="
			if pw.AtMostMissing {
				rel = "&le;"
			}
			p("<p>Counting only the %.0f%% of randomised points whose outcome was observed: <b>N %s %d</b>; power with %d participants <b>%.3f</b>.</p>\n",
				100*pw.ObservedShare, rel, pw.NMissing, r.Run.Participants, pw.PowerAtNMissing)
		}
	}
	if len(pw.Assumptions) > 0 {
		p("<p>Assumed:</p><ul>\n")
		for _, as := range pw.Assumptions {
			p("<li>%s</li>\n", esc(as))
		}
		p("</ul>\n")
	}
	p("<h2>Files</h2>\n<p class=note><code>report.json</code> (everything above), <code>participant_days.csv</code>, <code>factors.csv</code>, <code>availability.csv</code>, <code>hours.csv</code>, and <code>decisions.jsonl</code> (every decision record, for <code>jitai replay</code>). See docs/simulate.md for the cohort model.</p>\n")
	p("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func short(rev string) string {
	if len(rev) > 19 {
		return rev[:19]
	}
	return rev
}
