package main

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/experiments/power"
)

const powerBinaryLong = `Sample size or power of a micro-randomized trial with a binary proximal
outcome and a log relative-risk effect (Cohn, Qian and Murphy 2023), with the
conventions of R's MRTSampleSizeBinary. Decision points are t = 1..T, T given
by --decision-points or by --days x --decisions-per-day.

The alternative is given either as the calculator asks for it, by the success
probability without treatment (--p0, or --p0-initial and --p0-final for
--null-shape loglinear) and the relative risk of treatment (--rr, or
--rr-initial and --rr-final for --effect-shape loglinear), or by coefficients
on the bases (1, t, t^2, ...): --null-coef for log P(Y=1 | available, A=0) and
--effect-coef for log RR(t) (as mrt_binary_ss's alpha and beta).

Without --n, N is the smallest integer whose power reaches --power; the JSON
also gives n_exact, the real root (mrt_binary_ss with exact = TRUE).`

// powerBinaryParams are the flags of `jitai power mrt-binary`.
type powerBinaryParams struct {
	points, days, perDay    int
	prob                    floatList
	avShape                 string
	avMean, avInit, avFinal float64
	nullShape               string
	p0, p0Init, p0Final     float64
	effShape                string
	rr, rrInit, rrFinal     float64
	nullCoef, effCoef       floatList
	alpha, power            float64
	n                       int
	json                    bool
}

// newPowerBinaryCmd is `jitai power mrt-binary`.
func newPowerBinaryCmd() *cobra.Command {
	var p powerBinaryParams
	cmd := &cobra.Command{
		Use:   "mrt-binary",
		Short: "Micro-randomized trial, binary proximal outcome (Cohn, Qian and Murphy 2023; R MRTSampleSizeBinary)",
		Long:  powerBinaryLong,
		Example: `  jitai power mrt-binary --days 30 --decisions-per-day 5 --rand-prob 0.4 \
    --avail-mean 0.8 --p0 0.3 --rr 1.15`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return p.run(&flagRules{fs: cmd.Flags()}, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.points, "decision-points", 0, "total decision points T (or give --days and --decisions-per-day)")
	f.IntVar(&p.days, "days", 0, "study length in days")
	f.IntVar(&p.perDay, "decisions-per-day", 0, "decision points a day")
	f.Var(&p.prob, "rand-prob", "randomisation probability: one value, one a day, or one per decision point, comma-separated (required)")
	f.StringVar(&p.avShape, "avail-shape", "constant", "expected availability over decision points: constant or linear")
	f.Float64Var(&p.avMean, "avail-mean", 0, "expected availability (constant)")
	f.Float64Var(&p.avInit, "avail-initial", 0, "expected availability at the first decision point (linear)")
	f.Float64Var(&p.avFinal, "avail-final", 0, "expected availability at the last decision point (linear)")
	f.StringVar(&p.nullShape, "null-shape", "constant", "success probability without treatment: constant or loglinear")
	f.Float64Var(&p.p0, "p0", 0, "success probability without treatment (constant null curve)")
	f.Float64Var(&p.p0Init, "p0-initial", 0, "success probability without treatment at the first decision point (loglinear)")
	f.Float64Var(&p.p0Final, "p0-final", 0, "success probability without treatment at the last decision point (loglinear)")
	f.StringVar(&p.effShape, "effect-shape", "constant", "relative risk of treatment: constant or loglinear")
	f.Float64Var(&p.rr, "rr", 0, "relative risk P(Y=1 | A=1) / P(Y=1 | A=0) (constant effect)")
	f.Float64Var(&p.rrInit, "rr-initial", 0, "relative risk at the first decision point (loglinear)")
	f.Float64Var(&p.rrFinal, "rr-final", 0, "relative risk at the last decision point (loglinear)")
	f.Var(&p.nullCoef, "null-coef", "coefficients of log P(Y=1 | A=0) on (1, t, t^2, ...), instead of --p0*")
	f.Var(&p.effCoef, "effect-coef", "coefficients of log RR(t) on (1, t, t^2, ...), instead of --rr*")
	f.Float64Var(&p.alpha, "alpha", 0.05, "significance level")
	f.Float64Var(&p.power, "power", 0.8, "wanted power (sample-size mode)")
	f.IntVar(&p.n, "n", 0, "number of participants: compute the power for this N instead of a sample size")
	f.BoolVar(&p.json, "json", false, "print JSON")
	return cmd
}

// decisionPoints is T, from --decision-points or --days x --decisions-per-day.
func (p *powerBinaryParams) decisionPoints(r *flagRules) (int, error) {
	switch {
	case r.set("decision-points"):
		if err := r.only("without --decision-points", "days", "decisions-per-day"); err != nil {
			return 0, err
		}
		if p.points < 1 {
			return 0, r.usageErr("decision-points", "must be at least 1, got %d", p.points)
		}
		return p.points, nil
	case r.set("days") || r.set("decisions-per-day"):
		if name, ok := r.require("days", "decisions-per-day"); !ok {
			return 0, r.usageErr(name, "is required with --%s", map[string]string{"days": "decisions-per-day", "decisions-per-day": "days"}[name])
		}
		if p.days < 1 {
			return 0, r.usageErr("days", "must be at least 1, got %d", p.days)
		}
		if p.perDay < 1 {
			return 0, r.usageErr("decisions-per-day", "must be at least 1, got %d", p.perDay)
		}
		return p.days * p.perDay, nil
	}
	return 0, r.usageErr("decision-points", "is required (or --days and --decisions-per-day)")
}

// randProb is one probability, one a day, or one per decision point.
func (p *powerBinaryParams) randProb(r *flagRules, T int) ([]float64, error) {
	if !r.set("rand-prob") {
		return nil, r.usageErr("rand-prob", "is required")
	}
	switch {
	case len(p.prob) == 1 || len(p.prob) == T:
		return p.prob, nil
	case r.set("days") && len(p.prob) == p.days:
		return power.PerDecision(p.prob, p.days, p.perDay), nil
	}
	want := fmt.Sprintf("1 or %d (one per decision point)", T)
	if r.set("days") {
		want = fmt.Sprintf("1, %d (one a day) or %d (one per decision point)", p.days, T)
	}
	return nil, r.usageErr("rand-prob", "has %d values; give %s", len(p.prob), want)
}

// availability is the expected availability at each decision point.
func (p *powerBinaryParams) availability(r *flagRules, T int) ([]float64, error) {
	switch p.avShape {
	case "constant":
		if err := r.only("to --avail-shape linear", "avail-initial", "avail-final"); err != nil {
			return nil, err
		}
		if name, ok := r.require("avail-mean"); !ok {
			return nil, r.usageErr(name, "is required")
		}
		return []float64{p.avMean}, nil
	case "linear":
		if err := r.only("to --avail-shape constant", "avail-mean"); err != nil {
			return nil, err
		}
		if name, ok := r.require("avail-initial", "avail-final"); !ok {
			return nil, r.usageErr(name, "is required for --avail-shape linear")
		}
		return power.Linspace(p.avInit, p.avFinal, T), nil
	}
	return nil, r.usageErr("avail-shape", "unknown shape %q (want constant or linear)", p.avShape)
}

// coefficients sets the alternative from --null-coef and --effect-coef.
func (p *powerBinaryParams) coefficients(r *flagRules, spec *power.BinarySpec, T int) (nullDesc, effDesc string, err error) {
	if name, ok := r.require("null-coef", "effect-coef"); !ok {
		return "", "", r.usageErr(name, "is required with --%s", map[string]string{"null-coef": "effect-coef", "effect-coef": "null-coef"}[name])
	}
	if err := r.only("without --null-coef and --effect-coef", "null-shape", "p0", "p0-initial", "p0-final", "effect-shape", "rr", "rr-initial", "rr-final"); err != nil {
		return "", "", err
	}
	spec.NullBasis, spec.NullCoef = power.PolyBasis(T, len(p.nullCoef)), p.nullCoef
	spec.EffectBasis, spec.EffectCoef = power.PolyBasis(T, len(p.effCoef)), p.effCoef
	r.fields["NullCoef"], r.fields["EffectCoef"] = "null-coef", "effect-coef"
	return "log P0(t) = " + polyDesc(p.nullCoef), "log RR(t) = " + polyDesc(p.effCoef), nil
}

// curve reads one curve of the alternative, constant or log-linear: the
// null curve (flag p0, field P0Initial) or the effect (flag rr, field
// RRInitial). It returns the initial and final values and a description.
func curve(r *flagRules, name, flag, field string, shape power.Shape, value, initial, final float64) (float64, float64, string, error) {
	switch shape {
	case power.Constant:
		if err := r.only("to --"+name+"-shape loglinear", flag+"-initial", flag+"-final"); err != nil {
			return 0, 0, "", err
		}
		if n, ok := r.require(flag); !ok {
			return 0, 0, "", r.usageErr(n, "is required (or --%s-coef)", name)
		}
		return value, 0, "constant: " + g(value), nil
	case power.LogLinear:
		if err := r.only("to --"+name+"-shape constant", flag); err != nil {
			return 0, 0, "", err
		}
		if n, ok := r.require(flag+"-initial", flag+"-final"); !ok {
			return 0, 0, "", r.usageErr(n, "is required for --%s-shape loglinear", name)
		}
		r.fields[field] = flag + "-initial"
		return initial, final, fmt.Sprintf("log-linear: %s to %s", g(initial), g(final)), nil
	}
	return 0, 0, "", r.usageErr(name+"-shape", "unknown shape %q (want constant or loglinear)", shape)
}

// curves sets the alternative from the null and effect curves.
func (p *powerBinaryParams) curves(r *flagRules, spec *power.BinarySpec, T int) (nullDesc, effDesc string, err error) {
	c := power.BinaryCurves{DecisionPoints: T, NullShape: power.Shape(p.nullShape), EffectShape: power.Shape(p.effShape)}
	if c.P0Initial, c.P0Final, nullDesc, err = curve(r, "null", "p0", "P0Initial", c.NullShape, p.p0, p.p0Init, p.p0Final); err != nil {
		return "", "", err
	}
	if c.RRInitial, c.RRFinal, effDesc, err = curve(r, "effect", "rr", "RRInitial", c.EffectShape, p.rr, p.rrInit, p.rrFinal); err != nil {
		return "", "", err
	}
	if err := c.Apply(spec); err != nil {
		return "", "", r.fail(err)
	}
	r.fields["NullCoef"] = map[power.Shape]string{power.Constant: "p0", power.LogLinear: "p0-initial/--p0-final"}[c.NullShape]
	r.fields["EffectCoef"] = map[power.Shape]string{power.Constant: "rr", power.LogLinear: "rr-initial/--rr-final"}[c.EffectShape]
	return nullDesc, effDesc, nil
}

// run computes and prints the sample size or the power.
func (p *powerBinaryParams) run(r *flagRules, w io.Writer) error {
	r.fields = map[string]string{
		"RandProb": "rand-prob", "Availability": "avail-mean/--avail-initial/--avail-final",
		"NullShape": "null-shape", "EffectShape": "effect-shape",
		"P0Initial": "p0", "P0Final": "p0-final", "RRInitial": "rr", "RRFinal": "rr-final",
		"NullCoef": "p0/--p0-initial/--p0-final", "EffectCoef": "rr/--rr-initial/--rr-final",
		"EffectBasis": "effect-coef", "NullBasis": "null-coef",
		"DecisionPoints": "decision-points", "Alpha": "alpha", "Power": "power", "N": "n",
	}
	T, err := p.decisionPoints(r)
	if err != nil {
		return err
	}
	randProb, err := p.randProb(r, T)
	if err != nil {
		return err
	}
	avail, err := p.availability(r, T)
	if err != nil {
		return err
	}
	spec := power.BinarySpec{Availability: avail, RandProb: randProb, Alpha: p.alpha, Power: p.power}
	if r.set("n") {
		if r.set("power") {
			return r.usageErr("power", "give --power (to find N) or --n (to find the power), not both")
		}
		if p.n < 1 {
			return r.usageErr("n", "must be a positive number of participants, got %d", p.n)
		}
		spec.N, spec.Power = p.n, 0
	}
	alternative := p.curves
	if r.set("null-coef") || r.set("effect-coef") {
		alternative = p.coefficients
	}
	nullDesc, effDesc, err := alternative(r, &spec, T)
	if err != nil {
		return err
	}
	return report(r, w, p.json, spec, power.MRTBinary, func(w io.Writer, spec power.BinarySpec, res power.BinaryResult) {
		p.write(w, r, T, spec, res, nullDesc, effDesc)
	})
}

// write prints the result as text.
func (p *powerBinaryParams) write(w io.Writer, r *flagRules, T int, spec power.BinarySpec, res power.BinaryResult, nullDesc, effDesc string) {
	if spec.N > 0 {
		fmt.Fprintln(w, "MRT power, binary proximal outcome (Cohn, Qian and Murphy 2023; MRTSampleSizeBinary conventions)")
	} else {
		fmt.Fprintln(w, "MRT sample size, binary proximal outcome (Cohn, Qian and Murphy 2023; MRTSampleSizeBinary conventions)")
	}
	row := func(k, v string) { fmt.Fprintf(w, "  %-24s %s\n", k, v) }
	if r.set("days") {
		row("decision points", fmt.Sprintf("%d days x %d a day = %d", p.days, p.perDay, T))
	} else {
		row("decision points", fmt.Sprint(T))
	}
	row("randomisation prob.", describeList(p.prob, p.days, T))
	if len(spec.Availability) == 1 {
		row("expected availability", "constant: "+g(spec.Availability[0]))
	} else {
		row("expected availability", fmt.Sprintf("linear: %s to %s", g(p.avInit), g(p.avFinal)))
	}
	row("P(Y=1 | available, A=0)", nullDesc)
	row("relative risk", effDesc)
	row("model", fmt.Sprintf("p = %s, q = %s", plural(len(spec.EffectCoef), "effect parameter"), plural(len(spec.NullCoef), "null-curve parameter")))
	row("test", fmt.Sprintf("F(%d, %d) at alpha %s, critical value %s", res.DF1, res.DF2, g(res.Alpha), g(res.CriticalF)))
	row("noncentrality", g(res.Lambda))
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	fmt.Fprintln(w)
	switch {
	case spec.N > 0:
		fmt.Fprintf(w, "power = %.6f with N = %d participants\n", res.Power, res.N)
	case res.AtSearchStart:
		fmt.Fprintf(w, "N = %d participants, the smallest the test allows, already gives power %.6f >= %s\n", res.N, res.Power, g(res.TargetPower))
	default:
		fmt.Fprintf(w, "N = %d participants for power %s (power %.6f at N = %d; exact root n = %.4f)\n", res.N, g(res.TargetPower), res.Power, res.N, res.NExact)
	}
}

func polyDesc(coef []float64) string {
	var b strings.Builder
	for i, v := range coef {
		if i > 0 {
			if v < 0 || math.Signbit(v) {
				b.WriteString(" - ")
				v = -v
			} else {
				b.WriteString(" + ")
			}
		}
		b.WriteString(g(v))
		switch i {
		case 0:
		case 1:
			b.WriteString(" t")
		default:
			fmt.Fprintf(&b, " t^%d", i)
		}
	}
	return b.String()
}
