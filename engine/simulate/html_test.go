package simulate

import (
	"bytes"
	"strings"
	"testing"
)

// syntheticReport is a hand-made report that takes the branches the
// example studies do not: a failed check, a power error, an upper bound,
// unnamed strata, safety reasons.
func syntheticReport(kind string) *Report {
	r := &Report{
		Study: StudyInfo{ID: "synthetic", Name: "A made-up study", Revision: "sha256:0123456789abcdef0123", MinMinutesBetween: 90},
		Run:   RunInfo{Participants: 12, Days: 3, Seed: 7, Start: "2026-03-02", Timezone: "Europe/London"},
		Checks: []Check{
			{Name: "cap respected", OK: true, Detail: "0 of 36 days over"},
			{Name: "rate matches", OK: false, Detail: "|z| = 3.4"},
		},
		Totals:     Totals{Decisions: 100, Deliver: 30, None: 60, Safety: 10, Available: 70, Randomised: 70},
		Deliveries: Deliveries{Mean: 1.5, Max: 3, Cap: 4, DaysOverCap: 0, ParticipantDays: 36, Histogram: []int{4, 10, 12, 10}},
		Availability: Availability{Rate: 0.7,
			Reasons:         []ReasonCount{{Reason: "quiet_hours", Count: 20, Share: 0.2}, {Reason: "driving", Count: 10, Share: 0.1}},
			ByDecisionPoint: []PointRate{{ID: "morning", Decisions: 50, Available: 0.8, Deliveries: 20}, {ID: "evening", Decisions: 50, Available: 0.6, Deliveries: 10}}},
		Funnel: Funnel{
			Overall: FunnelRow{Points: 100, Scheduled: 85, Triggered: 5, Requested: 10, Decided: 98, Missed: 2, Deliver: 30, Sent: 29, Delivered: 28, Opened: 15, Completed: 8},
			ByDecisionPoint: []FunnelRow{
				{ID: "morning", Points: 50, Scheduled: 50, Decided: 48, Missed: 2, Deliver: 20, Sent: 20, Delivered: 19, Opened: 10, Completed: 5},
				{ID: "evening", Points: 50, Scheduled: 35, Triggered: 5, Requested: 10, Decided: 50, Deliver: 10, Sent: 9, Delivered: 9, Opened: 5, Completed: 3},
			},
			ByPhase: []PhaseCounts{{Phase: "active", Points: 70, Randomised: 70, Deliver: 30}, {Phase: "baseline", Points: 30}},
		},
		Safety: SafetySummary{Decisions: 10, Participants: 2, Reasons: []ReasonCount{{Reason: "phq9_item9", Count: 10}}},
		Factors: []FactorRate{
			{Name: "prompt", Levels: [2]string{"none", "prompt"}, Source: "fixed", Randomised: 70, Realised: 0.51, Intended: 0.5, Z: 0.17, OK: true},
			{Name: "tone", Levels: [2]string{"plain", "warm"}, Source: "policy", Randomised: 70, Realised: 0.8, Intended: 0.5, Z: -3.5, OK: false},
		},
		Cells: &CellBalance{Factors: []string{"coach", "app"}, MaxSpread: 1, Strata: []CellRow{
			{Stratum: "", Cells: []string{"no/no", "yes/no"}, Counts: []int{3, 3}},
			{Stratum: "site=a", Cells: []string{"no/no", "yes/no"}, Counts: []int{2, 3}},
		}},
		Engagement: EngagementSummary{OpenRate: 0.5, CompleteRate: 0.25, ReportRate: 0.6, Disengaged: 1, OptedOut: 1, OutcomeMissing: 0.3},
		Daily:      []DayRow{{Day: 0, Available: 0.7, OpenRate: 0.5, ReportRate: 0.6}, {Day: 1, Available: 0.65, OpenRate: 0.45, ReportRate: 1.2}, {Day: 2, Available: -0.1, OpenRate: 0.4, ReportRate: 0.5}},
		Effects:    []EffectEstimate{{Factor: "prompt", Outcome: "stress_90m", True: -1.5, Estimate: -1.2, SE: 0.3, N1: 35, N0: 35, Note: "prompt vs none"}},
	}
	for h := range 24 {
		r.Hours.Decisions[h], r.Hours.Deliveries[h] = h%5, h%3
	}
	switch kind {
	case "error":
		r.Power = PowerReport{Kind: "mrt", Effect: "prompt on stress_90m", Error: "no variance in the outcome", Assumptions: []string{"ICC 0.1"}}
	case "bound":
		r.Power = PowerReport{Kind: "mrt", Effect: "prompt on stress_90m", N: 10, AtMost: true, Target: 0.8, PowerAtN: 0.93,
			NMissing: 10, AtMostMissing: true, PowerAtNMissing: 0.85, ObservedShare: 0.7, Assumptions: []string{"ICC 0.1", "effect constant over days"}}
	case "detectable":
		r.Power = PowerReport{Kind: "factorial", Effect: "coach main effect", Detectable: 0.42}
	default:
		r.Power = PowerReport{Kind: "none"}
		r.Factors, r.Cells, r.Effects = nil, nil, nil
		r.Safety.Reasons, r.Availability.Reasons = nil, nil
		r.Deliveries.Cap = 0
		r.Funnel.ByPhase = r.Funnel.ByPhase[:1]
	}
	return r
}

// TestReportHTMLSyntheticGolden pins report.html for hand-made reports
// that take every branch of the page.
func TestReportHTMLSyntheticGolden(t *testing.T) {
	for _, kind := range []string{"error", "bound", "detectable", "none"} {
		t.Run(kind, func(t *testing.T) {
			var got bytes.Buffer
			if err := writeHTML(&got, syntheticReport(kind)); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "report-synthetic-"+kind+".html.golden", got.Bytes())
		})
	}
}

// TestReportHTMLEscapes checks that text from the study, the cohort and
// the labels reaches report.html escaped, wherever it lands: the page
// title, body text, table cells, chart labels, tooltips and aria-labels.
func TestReportHTMLEscapes(t *testing.T) {
	const hostile = `<script>alert(1)</script>"'&`
	const escaped = `&lt;script&gt;alert(1)&lt;/script&gt;&#34;&#39;&amp;`
	r := syntheticReport("error")
	r.Study.ID, r.Study.Name, r.Study.Revision = hostile, hostile, hostile
	r.Run.Start, r.Run.Timezone = hostile, hostile
	r.Checks[0].Name, r.Checks[1].Detail = hostile, hostile
	r.Availability.Reasons[0].Reason = hostile
	r.Availability.ByDecisionPoint[0].ID = hostile
	r.Safety.Reasons[0].Reason = hostile
	r.Factors[0].Name, r.Factors[0].Levels[1], r.Factors[1].Source = hostile, hostile, hostile
	r.Cells.Factors[0], r.Cells.Strata[1].Stratum, r.Cells.Strata[0].Cells[1] = hostile, hostile, hostile
	r.Effects[0].Factor, r.Effects[0].Outcome, r.Effects[0].Note = hostile, hostile, hostile
	r.Power.Effect, r.Power.Error, r.Power.Assumptions[0] = hostile, hostile, hostile
	var b bytes.Buffer
	if err := writeHTML(&b, r); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, raw := range []string{"<script", "alert(1)</", `"'&`} {
		if strings.Contains(html, raw) {
			t.Errorf("report.html contains %q unescaped", raw)
		}
	}
	// Study.ID (title and heading), Name, Start, Timezone (the revision
	// is cut to 19 bytes, so not whole), the 2 check texts, the reason (a
	// chart label), the decision point, the safety reason, the factor's
	// name, level and source, the cell factor, stratum and cell, the
	// effect's 3 texts, the power's effect, error and an assumption.
	if got, want := strings.Count(html, escaped), 22; got != want {
		t.Errorf("escaped text appears %d times, want %d:\n%s", got, want, html)
	}
	for _, want := range []string{
		"<title>Simulation of " + escaped + "</title>",
		`<text x="164" y="30" text-anchor="end" class="tick">` + escaped + "</text>",
		"<td class=l>" + escaped + "</td>",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %s", want)
		}
	}
}
