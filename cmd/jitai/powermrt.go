package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/experiments/power"
)

const powerMRTLong = `Sample size or power of a micro-randomized trial with a continuous proximal
outcome (Liao, Klasnja, Tewari and Murphy 2016), with the conventions of R's
MRTSampleSize: the effect is modelled as beta(t) = Z_t'd with
Z_t = (1, day, day^2)[:p], day = 0, 1, ...; the test is F(p, N - p - q).
Without --n, N is the first of 10, 11, ..., --max-n whose power reaches --power.

Shapes are per day. linear: from --*-initial on day 1 to 2*mean - initial on
the last day. quadratic: starts at --*-initial, turns on the given day
(1-based) and averages --*-mean over the study.`

// powerMRTParams are the flags of `jitai power mrt`.
type powerMRTParams struct {
	days, perDay                int
	prob                        floatList
	effShape                    string
	effMean, effInit, effMax    float64
	avShape                     string
	avMean, avInit, avChange    float64
	effectParams, controlParams int
	alpha, power                float64
	n, maxN                     int
	json                        bool
}

// newPowerMRTCmd is `jitai power mrt`.
func newPowerMRTCmd() *cobra.Command {
	var p powerMRTParams
	cmd := &cobra.Command{
		Use:   "mrt",
		Short: "Micro-randomized trial, continuous proximal outcome (Liao et al. 2016; R MRTSampleSize)",
		Long:  powerMRTLong,
		Example: `  jitai power mrt --days 42 --decisions-per-day 5 --rand-prob 0.4 \
    --effect-shape quadratic --effect-mean 0.1 --effect-initial 0 --effect-max-day 28 \
    --avail-shape quadratic --avail-mean 0.5 --avail-initial 0.7 --avail-change-day 42`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := &flagRules{fs: cmd.Flags()}
			return p.run(r, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.days, "days", 0, "study length in days (required)")
	f.IntVar(&p.perDay, "decisions-per-day", 0, "decision points a day (required)")
	f.Var(&p.prob, "rand-prob", "randomisation probability: one value, one a day, or one per decision point, comma-separated (required)")
	f.StringVar(&p.effShape, "effect-shape", "constant", "standardized effect trend: constant, linear or quadratic")
	f.Float64Var(&p.effMean, "effect-mean", 0, "average standardized proximal effect (required)")
	f.Float64Var(&p.effInit, "effect-initial", 0, "standardized effect on day 1 (linear, quadratic)")
	f.Float64Var(&p.effMax, "effect-max-day", 0, "day of the maximal effect, 1-based (quadratic)")
	f.StringVar(&p.avShape, "avail-shape", "constant", "expected availability trend: constant, linear or quadratic")
	f.Float64Var(&p.avMean, "avail-mean", 0, "average expected availability (required)")
	f.Float64Var(&p.avInit, "avail-initial", 0, "expected availability on day 1 (linear, quadratic)")
	f.Float64Var(&p.avChange, "avail-change-day", 0, "day of maximal or minimal availability, 1-based (quadratic)")
	f.IntVar(&p.effectParams, "effect-params", 0, "p, parameters of the effect model (default: 1 constant, 2 linear, 3 quadratic)")
	f.IntVar(&p.controlParams, "control-params", 3, "q, parameters of the control model (denominator df N - p - q)")
	f.Float64Var(&p.alpha, "alpha", 0.05, "significance level")
	f.Float64Var(&p.power, "power", 0.8, "wanted power (sample-size mode)")
	f.IntVar(&p.n, "n", 0, "number of participants: compute the power for this N instead of a sample size")
	f.IntVar(&p.maxN, "max-n", 1000, "largest N the sample-size search tries")
	f.BoolVar(&p.json, "json", false, "print JSON")
	return cmd
}

// check reports the usage errors of the flags that do not depend on the
// trend shapes.
func (p *powerMRTParams) check(r *flagRules) error {
	if name, ok := r.require("days", "decisions-per-day", "rand-prob", "effect-mean", "avail-mean"); !ok {
		return r.usageErr(name, "is required")
	}
	if r.set("n") && r.set("power") {
		return r.usageErr("power", "give --power (to find N) or --n (to find the power), not both")
	}
	if r.set("n") && r.set("max-n") {
		return r.usageErr("max-n", "applies only to the sample-size search (without --n)")
	}
	if r.set("n") && p.n < 1 {
		return r.usageErr("n", "must be a positive number of participants, got %d", p.n)
	}
	if p.controlParams < 1 {
		return r.usageErr("control-params", "must be at least 1 (the control model has an intercept), got %d", p.controlParams)
	}
	if r.set("effect-params") && p.effectParams < 1 {
		return r.usageErr("effect-params", "must be at least 1, got %d", p.effectParams)
	}
	return nil
}

// trend builds the effect or availability trend (prefix effect or avail)
// and checks that only the flags of its shape are given.
func trend(r *flagRules, prefix, shape string, mean, initial, day float64, dayFlag string) (power.Trend, error) {
	t := power.Trend{Shape: power.Shape(shape), Mean: mean, Initial: initial, ChangeDay: day}
	switch t.Shape {
	case power.Constant:
		if err := r.only(fmt.Sprintf("to --%s-shape linear or quadratic", prefix), prefix+"-initial"); err != nil {
			return t, err
		}
		return t, r.only(fmt.Sprintf("to --%s-shape quadratic", prefix), dayFlag)
	case power.Linear:
		if err := r.only(fmt.Sprintf("to --%s-shape quadratic", prefix), dayFlag); err != nil {
			return t, err
		}
		if name, ok := r.require(prefix + "-initial"); !ok {
			return t, r.usageErr(name, "is required for --%s-shape linear", prefix)
		}
	case power.Quadratic:
		if name, ok := r.require(prefix+"-initial", dayFlag); !ok {
			return t, r.usageErr(name, "is required for --%s-shape quadratic", prefix)
		}
	default:
		return t, r.usageErr(prefix+"-shape", "unknown shape %q (want constant, linear or quadratic)", shape)
	}
	return t, nil
}

// run computes and prints the sample size or the power.
func (p *powerMRTParams) run(r *flagRules, w io.Writer) error {
	if err := p.check(r); err != nil {
		return err
	}
	r.fields = map[string]string{
		"Days": "days", "DecisionsPerDay": "decisions-per-day", "RandProb": "rand-prob",
		"Effect": "effect-mean", "Effect.Shape": "effect-shape", "Effect.ChangeDay": "effect-max-day",
		"Availability": "avail-mean/--avail-initial/--avail-change-day", "Availability.Shape": "avail-shape",
		"Availability.ChangeDay": "avail-change-day", "EffectParams": "effect-params",
		"ControlParams": "control-params", "Alpha": "alpha", "Power": "power", "N": "n", "MaxN": "max-n",
	}
	eff, err := trend(r, "effect", p.effShape, p.effMean, p.effInit, p.effMax, "effect-max-day")
	if err != nil {
		return err
	}
	av, err := trend(r, "avail", p.avShape, p.avMean, p.avInit, p.avChange, "avail-change-day")
	if err != nil {
		return err
	}
	spec := power.MRTSpec{
		Days: p.days, DecisionsPerDay: p.perDay, RandProb: p.prob, Effect: eff, Availability: av,
		EffectParams: p.effectParams, ControlParams: p.controlParams, Alpha: p.alpha, Power: p.power, MaxN: p.maxN,
	}
	if r.set("n") {
		spec.N, spec.Power = p.n, 0
	}
	return report(r, w, p.json, spec, power.MRT, p.write)
}

// write prints the result as text.
func (p *powerMRTParams) write(w io.Writer, spec power.MRTSpec, res power.MRTResult) {
	total := p.days * p.perDay
	if spec.N > 0 {
		fmt.Fprintln(w, "MRT power, continuous proximal outcome (Liao et al. 2016; MRTSampleSize conventions)")
	} else {
		fmt.Fprintln(w, "MRT sample size, continuous proximal outcome (Liao et al. 2016; MRTSampleSize conventions)")
	}
	row := func(k, v string) { fmt.Fprintf(w, "  %-24s %s\n", k, v) }
	row("decision points", fmt.Sprintf("%d days x %d a day = %d", p.days, p.perDay, total))
	row("randomisation prob.", describeList(p.prob, p.days, total))
	row("standardized effect", describeTrend(spec.Effect, "maximum"))
	row("expected availability", describeTrend(spec.Availability, "turning point"))
	row("model", fmt.Sprintf("p = %s, q = %s", plural(res.EffectParams, "effect parameter"), plural(res.ControlParams, "control parameter")))
	row("effect coefficients d", formatCoef(res.EffectCoef))
	row("test", fmt.Sprintf("F(%d, %d) at alpha %s, critical value %s", res.DF1, res.DF2, g(res.Alpha), g(res.CriticalF)))
	row("noncentrality", g(res.Lambda))
	fmt.Fprintln(w)
	switch {
	case spec.N > 0:
		fmt.Fprintf(w, "power = %.6f with N = %d participants\n", res.Power, res.N)
	case res.AtSearchStart:
		fmt.Fprintf(w, "N <= %d participants: power %.6f at N = %d already reaches %s (the search starts at %d)\n", res.N, res.Power, res.N, g(res.TargetPower), res.N)
	default:
		fmt.Fprintf(w, "N = %d participants for power %s (power %.6f at N = %d, %.6f at N = %d)\n", res.N, g(res.TargetPower), res.Power, res.N, *res.PowerBelow, res.N-1)
	}
}

func describeTrend(t power.Trend, turn string) string {
	switch t.Shape {
	case power.Linear:
		return fmt.Sprintf("linear: mean %s, initial %s", g(t.Mean), g(t.Initial))
	case power.Quadratic:
		return fmt.Sprintf("quadratic: mean %s, initial %s, %s on day %s", g(t.Mean), g(t.Initial), turn, g(t.ChangeDay))
	}
	return fmt.Sprintf("constant: %s", g(t.Mean))
}
