package power

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// RunCommand implements `jitai power mrt|mrt-binary|factorial [flags]`. It
// returns the process exit code: 0 on success, 2 for a usage error (the
// message names the flag), 1 when the computation fails (for example a power
// that cannot be reached).
func RunCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		commandUsage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		commandUsage(stdout)
		return 0
	case "mrt":
		return runMRT(args[1:], stdout, stderr)
	case "mrt-binary":
		return runBinary(args[1:], stdout, stderr)
	case "factorial":
		return runFactorial(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "jitai power: unknown method %q\n\n", args[0])
	commandUsage(stderr)
	return 2
}

func commandUsage(w io.Writer) {
	fmt.Fprint(w, `usage: jitai power <method> [flags]

methods:
  mrt         micro-randomized trial, continuous proximal outcome (Liao et al. 2016; R MRTSampleSize)
  mrt-binary  micro-randomized trial, binary proximal outcome (Cohn, Qian and Murphy 2023; R MRTSampleSizeBinary)
  factorial   two-level factorial experiment, one effect-coded coefficient (MOST; R MOST::FactorialPowerPlan)

Run 'jitai power <method> -h' for its flags. --json prints {"n":...,"power":...,...}.
`)
}

// floatList is a comma-separated list of numbers.
type floatList []float64

func (l *floatList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

func (l *floatList) Set(s string) error {
	*l = (*l)[:0]
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", f)
		}
		*l = append(*l, v)
	}
	if len(*l) == 0 {
		return errors.New("no numbers given")
	}
	return nil
}

// cli holds one subcommand's flag set and its error reporting.
type cli struct {
	name   string
	fs     *flag.FlagSet
	stderr io.Writer
	set    map[string]bool
	fields map[string]string // FieldError.Field -> flag(s)
	usage  string
}

func newCLI(name string, stderr io.Writer, usage string) *cli {
	c := &cli{name: "jitai power " + name, stderr: stderr, set: map[string]bool{}}
	c.fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() {} // parse prints the usage itself, to stdout for -h
	c.usage = usage
	return c
}

// printUsage writes the subcommand's description and its flags, spelled
// with two dashes as the documentation does (the flag package accepts both).
func (c *cli) printUsage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s [flags]\n\n%s\nflags:\n", c.name, c.usage)
	c.fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if typ != "" {
			name += " " + typ
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			def = fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  %s\n    \t%s%s\n", name, usage, def)
	})
}

// parse parses args; it returns (code, false) when the command must stop.
func (c *cli) parse(args []string, stdout io.Writer) (int, bool) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(stdout)
			return 0, false
		}
		// The flag package has printed the error.
		fmt.Fprintf(c.stderr, "Run '%s -h' for the flags.\n", c.name)
		return 2, false
	}
	if c.fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "%s: unexpected argument %q (all inputs are flags; see -h)\n", c.name, c.fs.Arg(0))
		return 2, false
	}
	c.fs.Visit(func(f *flag.Flag) { c.set[f.Name] = true })
	return 0, true
}

func (c *cli) usageErr(flagName, format string, args ...any) int {
	fmt.Fprintf(c.stderr, "%s: --%s: %s\n", c.name, flagName, fmt.Sprintf(format, args...))
	return 2
}

func (c *cli) require(names ...string) (string, bool) {
	for _, n := range names {
		if !c.set[n] {
			return n, false
		}
	}
	return "", true
}

// only reports the first of names that is set although it does not apply.
func (c *cli) only(why string, names ...string) (int, bool) {
	for _, n := range names {
		if c.set[n] {
			return c.usageErr(n, "applies only %s", why), false
		}
	}
	return 0, true
}

// fail reports a computation error: a FieldError becomes a usage error
// naming the flag (exit 2), anything else exits 1.
func (c *cli) fail(err error) int {
	var fe *FieldError
	if errors.As(err, &fe) {
		flagName := c.fields[fe.Field]
		if flagName == "" {
			flagName = fe.Field
		}
		fmt.Fprintf(c.stderr, "%s: --%s: %s\n", c.name, flagName, fe.Problem)
		return 2
	}
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name, strings.TrimPrefix(err.Error(), "power: "))
	return 1
}

func writeJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func g(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func describeList(v []float64, days, total int) string {
	if len(v) == 1 {
		return g(v[0])
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	per := "per decision point"
	if len(v) == days && days != total {
		per = "per day"
	}
	return fmt.Sprintf("%d values %s, %s to %s", len(v), per, g(lo), g(hi))
}

const mrtUsage = `Sample size or power of a micro-randomized trial with a continuous proximal
outcome (Liao, Klasnja, Tewari and Murphy 2016), with the conventions of R's
MRTSampleSize: the effect is modelled as beta(t) = Z_t'd with
Z_t = (1, day, day^2)[:p], day = 0, 1, ...; the test is F(p, N - p - q).
Without --n, N is the first of 10, 11, ..., --max-n whose power reaches --power.

Shapes are per day. linear: from --*-initial on day 1 to 2*mean - initial on
the last day. quadratic: starts at --*-initial, turns on the given day
(1-based) and averages --*-mean over the study.

example: jitai power mrt --days 42 --decisions-per-day 5 --rand-prob 0.4 \
  --effect-shape quadratic --effect-mean 0.1 --effect-initial 0 --effect-max-day 28 \
  --avail-shape quadratic --avail-mean 0.5 --avail-initial 0.7 --avail-change-day 42
`

func runMRT(args []string, stdout, stderr io.Writer) int {
	c := newCLI("mrt", stderr, mrtUsage)
	fs := c.fs
	days := fs.Int("days", 0, "study length in days (required)")
	perDay := fs.Int("decisions-per-day", 0, "decision points a day (required)")
	var prob floatList
	fs.Var(&prob, "rand-prob", "randomisation probability: one value, one a day, or one per decision point, comma-separated (required)")
	effShape := fs.String("effect-shape", "constant", "standardized effect trend: constant, linear or quadratic")
	effMean := fs.Float64("effect-mean", 0, "average standardized proximal effect (required)")
	effInit := fs.Float64("effect-initial", 0, "standardized effect on day 1 (linear, quadratic)")
	effMax := fs.Float64("effect-max-day", 0, "day of the maximal effect, 1-based (quadratic)")
	avShape := fs.String("avail-shape", "constant", "expected availability trend: constant, linear or quadratic")
	avMean := fs.Float64("avail-mean", 0, "average expected availability (required)")
	avInit := fs.Float64("avail-initial", 0, "expected availability on day 1 (linear, quadratic)")
	avChange := fs.Float64("avail-change-day", 0, "day of maximal or minimal availability, 1-based (quadratic)")
	p := fs.Int("effect-params", 0, "p, parameters of the effect model (default: 1 constant, 2 linear, 3 quadratic)")
	q := fs.Int("control-params", 3, "q, parameters of the control model (denominator df N - p - q)")
	alpha := fs.Float64("alpha", 0.05, "significance level")
	target := fs.Float64("power", 0.8, "wanted power (sample-size mode)")
	n := fs.Int("n", 0, "number of participants: compute the power for this N instead of a sample size")
	maxN := fs.Int("max-n", 1000, "largest N the sample-size search tries")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := c.parse(args, stdout); !ok {
		return code
	}
	c.fields = map[string]string{
		"Days": "days", "DecisionsPerDay": "decisions-per-day", "RandProb": "rand-prob",
		"Effect": "effect-mean", "Effect.Shape": "effect-shape", "Effect.ChangeDay": "effect-max-day",
		"Availability": "avail-mean/--avail-initial/--avail-change-day", "Availability.Shape": "avail-shape",
		"Availability.ChangeDay": "avail-change-day", "EffectParams": "effect-params",
		"ControlParams": "control-params", "Alpha": "alpha", "Power": "power", "N": "n", "MaxN": "max-n",
	}
	if name, ok := c.require("days", "decisions-per-day", "rand-prob", "effect-mean", "avail-mean"); !ok {
		return c.usageErr(name, "is required")
	}
	if c.set["n"] && c.set["power"] {
		return c.usageErr("power", "give --power (to find N) or --n (to find the power), not both")
	}
	if c.set["n"] && c.set["max-n"] {
		return c.usageErr("max-n", "applies only to the sample-size search (without --n)")
	}
	if c.set["n"] && *n < 1 {
		return c.usageErr("n", "must be a positive number of participants, got %d", *n)
	}
	if *q < 1 {
		return c.usageErr("control-params", "must be at least 1 (the control model has an intercept), got %d", *q)
	}
	if c.set["effect-params"] && *p < 1 {
		return c.usageErr("effect-params", "must be at least 1, got %d", *p)
	}
	trend := func(prefix, shape string, mean, initial, day float64, dayFlag string) (Trend, int) {
		t := Trend{Shape: Shape(shape), Mean: mean, Initial: initial, ChangeDay: day}
		switch t.Shape {
		case Constant:
			if code, ok := c.only(fmt.Sprintf("to --%s-shape linear or quadratic", prefix), prefix+"-initial"); !ok {
				return t, code
			}
			if code, ok := c.only(fmt.Sprintf("to --%s-shape quadratic", prefix), dayFlag); !ok {
				return t, code
			}
		case Linear:
			if code, ok := c.only(fmt.Sprintf("to --%s-shape quadratic", prefix), dayFlag); !ok {
				return t, code
			}
			if name, ok := c.require(prefix + "-initial"); !ok {
				return t, c.usageErr(name, "is required for --%s-shape linear", prefix)
			}
		case Quadratic:
			if name, ok := c.require(prefix+"-initial", dayFlag); !ok {
				return t, c.usageErr(name, "is required for --%s-shape quadratic", prefix)
			}
		default:
			return t, c.usageErr(prefix+"-shape", "unknown shape %q (want constant, linear or quadratic)", shape)
		}
		return t, 0
	}
	eff, code := trend("effect", *effShape, *effMean, *effInit, *effMax, "effect-max-day")
	if code != 0 {
		return code
	}
	av, code := trend("avail", *avShape, *avMean, *avInit, *avChange, "avail-change-day")
	if code != 0 {
		return code
	}
	spec := MRTSpec{
		Days: *days, DecisionsPerDay: *perDay, RandProb: prob, Effect: eff, Availability: av,
		EffectParams: *p, ControlParams: *q, Alpha: *alpha, Power: *target, MaxN: *maxN,
	}
	if c.set["n"] {
		spec.N, spec.Power = *n, 0
	}
	res, err := MRT(spec)
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		return writeJSON(stdout, res)
	}
	total := *days * *perDay
	w := stdout
	if spec.N > 0 {
		fmt.Fprintln(w, "MRT power, continuous proximal outcome (Liao et al. 2016; MRTSampleSize conventions)")
	} else {
		fmt.Fprintln(w, "MRT sample size, continuous proximal outcome (Liao et al. 2016; MRTSampleSize conventions)")
	}
	row := func(k, v string) { fmt.Fprintf(w, "  %-24s %s\n", k, v) }
	row("decision points", fmt.Sprintf("%d days x %d a day = %d", *days, *perDay, total))
	row("randomisation prob.", describeList(prob, *days, total))
	row("standardized effect", describeTrend(eff, "maximum"))
	row("expected availability", describeTrend(av, "turning point"))
	row("model", fmt.Sprintf("p = %s, q = %s", plural(res.EffectParams, "effect parameter"), plural(res.ControlParams, "control parameter")))
	row("effect coefficients d", formatCoef(res.EffectCoef))
	row("test", fmt.Sprintf("F(%d, %d) at alpha %s, critical value %s", res.DF1, res.DF2, g(res.Alpha), g(res.CriticalF)))
	row("noncentrality", g(res.Lambda))
	fmt.Fprintln(w)
	if spec.N > 0 {
		fmt.Fprintf(w, "power = %.6f with N = %d participants\n", res.Power, res.N)
		return 0
	}
	switch {
	case res.AtSearchStart:
		fmt.Fprintf(w, "N <= %d participants: power %.6f at N = %d already reaches %s (the search starts at %d)\n", res.N, res.Power, res.N, g(res.TargetPower), res.N)
	default:
		fmt.Fprintf(w, "N = %d participants for power %s (power %.6f at N = %d, %.6f at N = %d)\n", res.N, g(res.TargetPower), res.Power, res.N, *res.PowerBelow, res.N-1)
	}
	return 0
}

func describeTrend(t Trend, turn string) string {
	switch t.Shape {
	case Linear:
		return fmt.Sprintf("linear: mean %s, initial %s", g(t.Mean), g(t.Initial))
	case Quadratic:
		return fmt.Sprintf("quadratic: mean %s, initial %s, %s on day %s", g(t.Mean), g(t.Initial), turn, g(t.ChangeDay))
	}
	return fmt.Sprintf("constant: %s", g(t.Mean))
}

// formatCoef shows coefficients to 6 digits, with rounding noise (below
// 1e-10 of the largest) shown as 0.
func formatCoef(v []float64) string {
	big := 0.0
	for _, x := range v {
		big = max(big, math.Abs(x))
	}
	parts := make([]string, len(v))
	for i, x := range v {
		if math.Abs(x) < 1e-10*big {
			x = 0
		}
		parts[i] = g(x)
	}
	return strings.Join(parts, ", ")
}
