package power

import (
	"fmt"
	"io"
)

const factorialUsage = `Power, total sample size or detectable effect for one effect-coded (-1/+1)
coefficient of a two-level factorial experiment with independent assignment
(MOST; conventions of R's MOST::FactorialPowerPlan). Give exactly two of an
effect size, --n and --power; the third is computed. The coefficient b is tested
with F(1, N - k), k = 1 + all effects up to --order (+1 with a pretest), and
noncentrality N b^2 / sigma^2.

Effect sizes (give at most one): --d (Cohen's d of a main effect, 2b/sd),
--raw-main (main-effect mean difference, 2b), --raw-coef (b), --std-coef (b/sd),
--f2 (b^2/sd^2). --sd is required with --raw-main and --raw-coef.

example: jitai power factorial --factors 5 --order 2 --n 300 --raw-main 3 --sd 10
`

func runFactorial(args []string, stdout, stderr io.Writer) int {
	c := newCLI("factorial", stderr, factorialUsage)
	fs := c.fs
	factors := fs.Int("factors", 0, "number of two-level factors (required)")
	order := fs.Int("order", 1, "highest interaction order in the model: 1 main effects only, 2 up to two-way, ...")
	d := fs.Float64("d", 0, "effect size: Cohen's d of a main effect (standardized mean difference)")
	rawMain := fs.Float64("raw-main", 0, "effect size: unstandardized main-effect mean difference")
	rawCoef := fs.Float64("raw-coef", 0, "effect size: unstandardized effect-coded regression coefficient")
	stdCoef := fs.Float64("std-coef", 0, "effect size: standardized regression coefficient (coefficient / sd)")
	f2 := fs.Float64("f2", 0, "effect size: effect size ratio coefficient^2 / sd^2 (Cohen's f^2)")
	sd := fs.Float64("sd", 0, "outcome standard deviation within a condition (required for --raw-main, --raw-coef)")
	pretest := fs.Float64("pretest-corr", 0, "pretest-posttest correlation of a pretest covariate, in [0, 1): error variance x (1 - r^2)")
	alpha := fs.Float64("alpha", 0.05, "two-sided significance level")
	target := fs.Float64("power", 0, "power: wanted (to find N or the effect) or omitted (to find the power)")
	n := fs.Int("n", 0, "total number of participants")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := c.parse(args, stdout); !ok {
		return code
	}
	if name, ok := c.require("factors"); !ok {
		return c.usageErr(name, "is required")
	}
	spec := FactorialSpec{Factors: *factors, Order: *order, SD: *sd, Alpha: *alpha}
	effectFlag := ""
	for _, e := range []struct {
		flag string
		kind EffectKind
		v    float64
	}{{"d", CohensD, *d}, {"raw-main", RawMain, *rawMain}, {"raw-coef", RawCoef, *rawCoef}, {"std-coef", StdCoef, *stdCoef}, {"f2", EffectSizeRatio, *f2}} {
		if !c.set[e.flag] {
			continue
		}
		if effectFlag != "" {
			return c.usageErr(e.flag, "give one effect size; --%s is already given", effectFlag)
		}
		effectFlag, spec.EffectKind, spec.Effect = e.flag, e.kind, e.v
	}
	if c.set["n"] {
		if *n < 1 {
			return c.usageErr("n", "must be a positive number of participants, got %d", *n)
		}
		spec.N = *n
	}
	if c.set["power"] {
		if !(*target > 0 && *target < 1) {
			return c.usageErr("power", "must lie in (0, 1), got %v", *target)
		}
		spec.Power = *target
	}
	given := 0
	for _, ok := range []bool{effectFlag != "", c.set["n"], c.set["power"]} {
		if ok {
			given++
		}
	}
	if given != 2 {
		fmt.Fprintf(stderr, "%s: give exactly two of an effect size (--d, --raw-main, --raw-coef, --std-coef, --f2), --n and --power; the third is computed\n", c.name)
		return 2
	}
	if c.set["pretest-corr"] {
		spec.Pretest, spec.PretestCorr = true, *pretest
	}
	if c.set["sd"] && *sd <= 0 {
		return c.usageErr("sd", "must be positive, got %v", *sd)
	}
	c.fields = map[string]string{
		"Factors": "factors", "Order": "order", "Effect": effectFlag, "SD": "sd",
		"PretestCorr": "pretest-corr", "Alpha": "alpha", "Power": "power", "N": "n",
	}
	res, err := Factorial(spec)
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		return writeJSON(stdout, res)
	}
	w := stdout
	title := map[FactorialSolve]string{SolvePower: "power", SolveN: "sample size", SolveEffect: "detectable effect"}[res.Solved]
	fmt.Fprintf(w, "Factorial experiment %s (MOST; FactorialPowerPlan conventions, independent assignment)\n", title)
	row := func(k, v string) { fmt.Fprintf(w, "  %-24s %s\n", k, v) }
	orderDesc := "main effects only"
	if *order >= 2 {
		orderDesc = fmt.Sprintf("main effects and interactions up to %d-way", *order)
	}
	row("factors", fmt.Sprintf("%d two-level factors (%s conditions)", *factors, g(res.Cells)))
	row("model", fmt.Sprintf("%s: %d regression coefficients", orderDesc, res.RegressionCoefs))
	if spec.Pretest {
		row("pretest covariate", fmt.Sprintf("r = %s: error sd %s x sqrt(1 - r^2) = %s", g(spec.PretestCorr), g(res.SD), g(res.SigmaEffective)))
	}
	row("outcome sd", g(res.SD))
	row("test", fmt.Sprintf("F(1, %d) at two-sided alpha %s", res.DF2, g(res.Alpha)))
	row("noncentrality", fmt.Sprintf("N b^2 / sigma^2 = %s", g(res.Lambda)))
	fmt.Fprintln(w)
	effects := func() {
		line := func(k string, v float64) { fmt.Fprintf(w, "  %-46s %.4f\n", k, v) }
		line("coefficient b (a main effect or interaction)", res.Coef)
		line("main-effect mean difference 2b", res.RawMain)
		line("two-way difference in differences 4b", res.RawInteraction)
		line("standardized coefficient b/sd", res.StdCoef)
		line("Cohen's d of a main effect 2b/sd", res.D)
		line("standardized difference in differences 4b/sd", res.DInteraction)
		line("effect size ratio f^2 = b^2/sd^2", res.F2)
		fmt.Fprintf(w, "(power at this b: %.6f; MOST's search stops where the power rounded to 4 decimals reaches %s)\n", res.Power, g(res.TargetPower))
	}
	switch res.Solved {
	case SolvePower:
		fmt.Fprintf(w, "power = %.4f with N = %d (b = %s)\n", res.Power, res.N, g(res.Coef))
	case SolveN:
		fmt.Fprintf(w, "N = %d participants for power %s (power %.6f at N = %d, b = %s)\n", res.N, g(res.TargetPower), res.Power, res.N, g(res.Coef))
	case SolveEffect:
		fmt.Fprintf(w, "detectable effect with N = %d and power %s:\n", res.N, g(res.TargetPower))
		effects()
	}
	if res.TooFewForCells {
		fmt.Fprintf(w, "note: a complete factorial needs at least %s participants (one per condition)\n", g(res.Cells))
	}
	return 0
}
