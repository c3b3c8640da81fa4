package analysis

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// num formats a figure for the human-readable tables (6 significant digits).
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// WriteMRTText writes a human-readable report of a WCLS or EMEE result. The
// spec and data name are used for the header only.
func WriteMRTText(w io.Writer, res *MRTResult, s MRTSpec, dataName string) error {
	var b strings.Builder
	title, scale := mrtTitle(res.Estimator)
	fmt.Fprintf(&b, "%s: causal excursion effect of %s on %s (%s)\n", title, s.Treatment, s.Outcome, scale)
	fmt.Fprintf(&b, "data: %s\n", dataName)
	fmt.Fprintf(&b, "participants: %d (%d with an available decision point)\n", res.NParticipants, res.NEff)
	if d := res.Dropped; d != nil {
		var per []string
		for _, id := range slices.Sorted(maps.Keys(d.ByParticipant)) {
			per = append(per, fmt.Sprintf("%s %d", id, d.ByParticipant[id]))
		}
		fmt.Fprintf(&b, "complete cases: %d rows dropped, missing one of %s (by participant: %s)\n", d.Rows, strings.Join(d.Columns, ", "), strings.Join(per, ", "))
	}
	avail := s.Availability
	if avail == "" {
		avail = "(always available)"
	}
	switch res.Estimator {
	case "wcls", "emee":
		numer := s.NumeratorProb
		if numer.IsZero() {
			numer = Prob{Value: DefaultNumeratorProb}
		}
		fmt.Fprintf(&b, "randomisation probability: %s; numerator probability: %s; availability: %s\n", s.RandProb, numer, avail)
	default:
		fmt.Fprintf(&b, "randomisation probability: %s; availability: %s\n", s.RandProb, avail)
	}
	switch res.Test {
	case "hotelling":
		fmt.Fprintf(&b, "variance: sandwich with the Mancl-DeRouen small-sample correction (n_eff <= %d); tests: Hotelling's T^2 (F)\n", SmallSampleThreshold)
	case "wald":
		fmt.Fprintf(&b, "variance: sandwich (n_eff > %d, no small-sample correction); tests: Wald (F)\n", SmallSampleThreshold)
	case "t":
		if res.SmallSample {
			fmt.Fprintf(&b, "variance: sandwich with the small-sample adjustment; tests: t\n")
		} else {
			fmt.Fprintf(&b, "variance: sandwich (no small-sample correction, no term for the nuisance fits); tests: t\n")
		}
	}
	statName := "F stat"
	if res.Test == "t" {
		statName = "t"
	}
	table := func(title string, rows []Estimate) {
		fmt.Fprintf(&b, "\n%s\n", title)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "term\testimate\tstd err\t95%% CI\t%s\tdf\tp-value\n", statName)
		for _, e := range rows {
			df := fmt.Sprintf("%d, %d", e.DF1, e.DF2)
			if res.Test == "t" {
				df = strconv.Itoa(e.DF2)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t[%s, %s]\t%s\t%s\t%s\n", e.Term, num(e.Estimate), num(e.StdErr),
				num(e.CILow), num(e.CIHigh), num(e.Statistic), df, num(e.PValue))
		}
		tw.Flush()
	}
	table("Causal excursion effect", res.Effects)
	if len(res.Controls) > 0 {
		table("Control variables (fitted to reduce variance; not for interpretation)", res.Controls)
	}
	if res.Test == "hotelling" {
		fmt.Fprintf(&b, "\nF stat is (estimate/std err)^2; the Hotelling p-value and interval use it scaled by d1(d1+d2-1)/d2.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mrtTitle names an MRT estimator and the scale of its effects.
func mrtTitle(estimator string) (title, scale string) {
	switch estimator {
	case "emee":
		return "EMEE (estimator of the marginal excursion effect)", "log relative-risk scale"
	case "emee2":
		return "EMEE2 (marginal excursion effect, treatment centred by its probability)", "log relative-risk scale"
	case "dcee":
		return "DCEE (distal causal excursion effect)", "additive scale, distal outcome"
	case "mcee":
		return "MCEE (mediated causal excursion effects: alpha direct, beta indirect)", "additive scale, distal outcome"
	}
	return "WCLS (weighted and centred least squares)", "additive scale"
}

// WriteFactorialText writes a human-readable report of a factorial analysis.
func WriteFactorialText(w io.Writer, res *FactorialResult, s FactorialSpec, dataName string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Factorial effects on %s (effect coding: low = -1, high = +1)\n", s.Outcome)
	fmt.Fprintf(&b, "data: %s (%d runs)\n", dataName, res.N)
	for _, l := range res.Levels {
		fmt.Fprintf(&b, "  %s: low %q, high %q\n", l.Factor, l.Low, l.High)
	}
	fmt.Fprintf(&b, "\nCoefficients (effect = 2 x coefficient = mean at high - mean at low; std err, t, p and CI are the coefficient's)\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "term\tcoefficient\teffect\tstd err\tt\tp-value\t95%% CI\n")
	for _, c := range res.Coefficients {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t[%s, %s]\n", c.Term, num(c.Estimate), num(float64(c.Effect)),
			num(float64(c.StdErr)), num(float64(c.T)), num(float64(c.PValue)), num(float64(c.CILow)), num(float64(c.CIHigh)))
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nAnalysis of variance (sequential sums of squares)\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "term\tdf\tsum sq\tmean sq\tF\tp-value\n")
	for _, r := range res.ANOVA {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", r.Term, r.DF, num(r.SumSq), num(float64(r.MeanSq)), num(float64(r.F)), num(float64(r.PValue)))
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nresidual df %d, sigma %s, R-squared %s\n", res.ResidualDF, num(float64(res.Sigma)), num(float64(res.RSquared)))
	if res.ResidualDF == 0 {
		fmt.Fprintf(&b, "The model is saturated: no residual degrees of freedom, so no standard errors or tests.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
