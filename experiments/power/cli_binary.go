package power

import (
	"fmt"
	"io"
	"math"
	"strings"
)

const binaryUsage = `Sample size or power of a micro-randomized trial with a binary proximal
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
also gives n_exact, the real root (mrt_binary_ss with exact = TRUE).

example: jitai power mrt-binary --days 30 --decisions-per-day 5 --rand-prob 0.4 \
  --avail-mean 0.8 --p0 0.3 --rr 1.15
`

func runBinary(args []string, stdout, stderr io.Writer) int {
	c := newCLI("mrt-binary", stderr, binaryUsage)
	fs := c.fs
	points := fs.Int("decision-points", 0, "total decision points T (or give --days and --decisions-per-day)")
	days := fs.Int("days", 0, "study length in days")
	perDay := fs.Int("decisions-per-day", 0, "decision points a day")
	var prob floatList
	fs.Var(&prob, "rand-prob", "randomisation probability: one value, one a day, or one per decision point, comma-separated (required)")
	avShape := fs.String("avail-shape", "constant", "expected availability over decision points: constant or linear")
	avMean := fs.Float64("avail-mean", 0, "expected availability (constant)")
	avInit := fs.Float64("avail-initial", 0, "expected availability at the first decision point (linear)")
	avFinal := fs.Float64("avail-final", 0, "expected availability at the last decision point (linear)")
	nullShape := fs.String("null-shape", "constant", "success probability without treatment: constant or loglinear")
	p0 := fs.Float64("p0", 0, "success probability without treatment (constant null curve)")
	p0Init := fs.Float64("p0-initial", 0, "success probability without treatment at the first decision point (loglinear)")
	p0Final := fs.Float64("p0-final", 0, "success probability without treatment at the last decision point (loglinear)")
	effShape := fs.String("effect-shape", "constant", "relative risk of treatment: constant or loglinear")
	rr := fs.Float64("rr", 0, "relative risk P(Y=1 | A=1) / P(Y=1 | A=0) (constant effect)")
	rrInit := fs.Float64("rr-initial", 0, "relative risk at the first decision point (loglinear)")
	rrFinal := fs.Float64("rr-final", 0, "relative risk at the last decision point (loglinear)")
	var nullCoef, effCoef floatList
	fs.Var(&nullCoef, "null-coef", "coefficients of log P(Y=1 | A=0) on (1, t, t^2, ...), instead of --p0*")
	fs.Var(&effCoef, "effect-coef", "coefficients of log RR(t) on (1, t, t^2, ...), instead of --rr*")
	alpha := fs.Float64("alpha", 0.05, "significance level")
	target := fs.Float64("power", 0.8, "wanted power (sample-size mode)")
	n := fs.Int("n", 0, "number of participants: compute the power for this N instead of a sample size")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := c.parse(args, stdout); !ok {
		return code
	}
	c.fields = map[string]string{
		"RandProb": "rand-prob", "Availability": "avail-mean/--avail-initial/--avail-final",
		"NullShape": "null-shape", "EffectShape": "effect-shape",
		"P0Initial": "p0", "P0Final": "p0-final", "RRInitial": "rr", "RRFinal": "rr-final",
		"NullCoef": "p0/--p0-initial/--p0-final", "EffectCoef": "rr/--rr-initial/--rr-final",
		"EffectBasis": "effect-coef", "NullBasis": "null-coef",
		"DecisionPoints": "decision-points", "Alpha": "alpha", "Power": "power", "N": "n",
	}

	// Decision points.
	T := *points
	switch {
	case c.set["decision-points"]:
		if code, ok := c.only("without --decision-points", "days", "decisions-per-day"); !ok {
			return code
		}
		if T < 1 {
			return c.usageErr("decision-points", "must be at least 1, got %d", T)
		}
	case c.set["days"] || c.set["decisions-per-day"]:
		if name, ok := c.require("days", "decisions-per-day"); !ok {
			return c.usageErr(name, "is required with --%s", map[string]string{"days": "decisions-per-day", "decisions-per-day": "days"}[name])
		}
		if *days < 1 {
			return c.usageErr("days", "must be at least 1, got %d", *days)
		}
		if *perDay < 1 {
			return c.usageErr("decisions-per-day", "must be at least 1, got %d", *perDay)
		}
		T = *days * *perDay
	default:
		return c.usageErr("decision-points", "is required (or --days and --decisions-per-day)")
	}

	// Randomisation probability: one, one a day, or one per decision point.
	if !c.set["rand-prob"] {
		return c.usageErr("rand-prob", "is required")
	}
	randProb := []float64(prob)
	switch {
	case len(prob) == 1 || len(prob) == T:
	case c.set["days"] && len(prob) == *days:
		randProb = perDecision(prob, *days, *perDay)
	default:
		want := fmt.Sprintf("1 or %d (one per decision point)", T)
		if c.set["days"] {
			want = fmt.Sprintf("1, %d (one a day) or %d (one per decision point)", *days, T)
		}
		return c.usageErr("rand-prob", "has %d values; give %s", len(prob), want)
	}

	// Availability.
	var avail []float64
	switch *avShape {
	case "constant":
		if code, ok := c.only("to --avail-shape linear", "avail-initial", "avail-final"); !ok {
			return code
		}
		if name, ok := c.require("avail-mean"); !ok {
			return c.usageErr(name, "is required")
		}
		avail = []float64{*avMean}
	case "linear":
		if code, ok := c.only("to --avail-shape constant", "avail-mean"); !ok {
			return code
		}
		if name, ok := c.require("avail-initial", "avail-final"); !ok {
			return c.usageErr(name, "is required for --avail-shape linear")
		}
		avail = linspace(*avInit, *avFinal, T)
	default:
		return c.usageErr("avail-shape", "unknown shape %q (want constant or linear)", *avShape)
	}

	spec := BinarySpec{Availability: avail, RandProb: randProb, Alpha: *alpha, Power: *target}
	if c.set["n"] {
		if c.set["power"] {
			return c.usageErr("power", "give --power (to find N) or --n (to find the power), not both")
		}
		if *n < 1 {
			return c.usageErr("n", "must be a positive number of participants, got %d", *n)
		}
		spec.N, spec.Power = *n, 0
	}

	// The alternative: coefficients, or curves.
	curves := BinaryCurves{DecisionPoints: T, NullShape: Shape(*nullShape), EffectShape: Shape(*effShape)}
	nullDesc, effDesc := "", ""
	if c.set["null-coef"] || c.set["effect-coef"] {
		if name, ok := c.require("null-coef", "effect-coef"); !ok {
			return c.usageErr(name, "is required with --%s", map[string]string{"null-coef": "effect-coef", "effect-coef": "null-coef"}[name])
		}
		if code, ok := c.only("without --null-coef and --effect-coef", "null-shape", "p0", "p0-initial", "p0-final", "effect-shape", "rr", "rr-initial", "rr-final"); !ok {
			return code
		}
		spec.NullBasis, spec.NullCoef = PolyBasis(T, len(nullCoef)), nullCoef
		spec.EffectBasis, spec.EffectCoef = PolyBasis(T, len(effCoef)), effCoef
		c.fields["NullCoef"], c.fields["EffectCoef"] = "null-coef", "effect-coef"
		nullDesc = "log P0(t) = " + polyDesc(nullCoef)
		effDesc = "log RR(t) = " + polyDesc(effCoef)
	} else {
		switch curves.NullShape {
		case Constant:
			if code, ok := c.only("to --null-shape loglinear", "p0-initial", "p0-final"); !ok {
				return code
			}
			if name, ok := c.require("p0"); !ok {
				return c.usageErr(name, "is required (or --null-coef)")
			}
			curves.P0Initial = *p0
			nullDesc = "constant: " + g(*p0)
		case LogLinear:
			if code, ok := c.only("to --null-shape constant", "p0"); !ok {
				return code
			}
			if name, ok := c.require("p0-initial", "p0-final"); !ok {
				return c.usageErr(name, "is required for --null-shape loglinear")
			}
			curves.P0Initial, curves.P0Final = *p0Init, *p0Final
			c.fields["P0Initial"] = "p0-initial"
			nullDesc = fmt.Sprintf("log-linear: %s to %s", g(*p0Init), g(*p0Final))
		default:
			return c.usageErr("null-shape", "unknown shape %q (want constant or loglinear)", *nullShape)
		}
		switch curves.EffectShape {
		case Constant:
			if code, ok := c.only("to --effect-shape loglinear", "rr-initial", "rr-final"); !ok {
				return code
			}
			if name, ok := c.require("rr"); !ok {
				return c.usageErr(name, "is required (or --effect-coef)")
			}
			curves.RRInitial = *rr
			effDesc = "constant: " + g(*rr)
		case LogLinear:
			if code, ok := c.only("to --effect-shape constant", "rr"); !ok {
				return code
			}
			if name, ok := c.require("rr-initial", "rr-final"); !ok {
				return c.usageErr(name, "is required for --effect-shape loglinear")
			}
			curves.RRInitial, curves.RRFinal = *rrInit, *rrFinal
			c.fields["RRInitial"] = "rr-initial"
			effDesc = fmt.Sprintf("log-linear: %s to %s", g(*rrInit), g(*rrFinal))
		default:
			return c.usageErr("effect-shape", "unknown shape %q (want constant or loglinear)", *effShape)
		}
		if err := curves.Apply(&spec); err != nil {
			return c.fail(err)
		}
		c.fields["NullCoef"] = map[Shape]string{Constant: "p0", LogLinear: "p0-initial/--p0-final"}[curves.NullShape]
		c.fields["EffectCoef"] = map[Shape]string{Constant: "rr", LogLinear: "rr-initial/--rr-final"}[curves.EffectShape]
	}

	res, err := MRTBinary(spec)
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		return writeJSON(stdout, res)
	}
	w := stdout
	if spec.N > 0 {
		fmt.Fprintln(w, "MRT power, binary proximal outcome (Cohn, Qian and Murphy 2023; MRTSampleSizeBinary conventions)")
	} else {
		fmt.Fprintln(w, "MRT sample size, binary proximal outcome (Cohn, Qian and Murphy 2023; MRTSampleSizeBinary conventions)")
	}
	row := func(k, v string) { fmt.Fprintf(w, "  %-24s %s\n", k, v) }
	if c.set["days"] {
		row("decision points", fmt.Sprintf("%d days x %d a day = %d", *days, *perDay, T))
	} else {
		row("decision points", fmt.Sprint(T))
	}
	row("randomisation prob.", describeList(prob, *days, T))
	if len(avail) == 1 {
		row("expected availability", "constant: "+g(avail[0]))
	} else {
		row("expected availability", fmt.Sprintf("linear: %s to %s", g(*avInit), g(*avFinal)))
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
	return 0
}

// linspace is R's seq(from, to, length.out = n).
func linspace(from, to float64, n int) []float64 {
	out := make([]float64, n)
	if n == 1 {
		out[0] = from
		return out
	}
	for i := range out {
		out[i] = from + (to-from)*float64(i)/float64(n-1)
	}
	return out
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
