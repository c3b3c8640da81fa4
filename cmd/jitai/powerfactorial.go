package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/experiments/power"
)

const powerFactorialLong = `Power, total sample size or detectable effect for one effect-coded (-1/+1)
coefficient of a two-level factorial experiment with independent assignment
(MOST; conventions of R's MOST::FactorialPowerPlan). Give exactly two of an
effect size, --n and --power; the third is computed. The coefficient b is tested
with F(1, N - k), k = 1 + all effects up to --order (+1 with a pretest), and
noncentrality N b^2 / sigma^2.

Effect sizes (give at most one): --d (Cohen's d of a main effect, 2b/sd),
--raw-main (main-effect mean difference, 2b), --raw-coef (b), --std-coef (b/sd),
--f2 (b^2/sd^2). --sd is required with --raw-main and --raw-coef.`

// powerFactorialParams are the flags of `jitai power factorial`.
type powerFactorialParams struct {
	factors, order                int
	d, rawMain, rawCoef, stdCoef  float64
	f2, sd, pretest, alpha, power float64
	n                             int
	json                          bool
}

// newPowerFactorialCmd is `jitai power factorial`.
func newPowerFactorialCmd() *cobra.Command {
	var p powerFactorialParams
	cmd := &cobra.Command{
		Use:     "factorial",
		Short:   "Two-level factorial experiment, one effect-coded coefficient (MOST; R MOST::FactorialPowerPlan)",
		Long:    powerFactorialLong,
		Example: "  jitai power factorial --factors 5 --order 2 --n 300 --raw-main 3 --sd 10",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return p.run(&flagRules{fs: cmd.Flags()}, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&p.factors, "factors", 0, "number of two-level factors (required)")
	f.IntVar(&p.order, "order", 1, "highest interaction order in the model: 1 main effects only, 2 up to two-way, ...")
	f.Float64Var(&p.d, "d", 0, "effect size: Cohen's d of a main effect (standardized mean difference)")
	f.Float64Var(&p.rawMain, "raw-main", 0, "effect size: unstandardized main-effect mean difference")
	f.Float64Var(&p.rawCoef, "raw-coef", 0, "effect size: unstandardized effect-coded regression coefficient")
	f.Float64Var(&p.stdCoef, "std-coef", 0, "effect size: standardized regression coefficient (coefficient / sd)")
	f.Float64Var(&p.f2, "f2", 0, "effect size: effect size ratio coefficient^2 / sd^2 (Cohen's f^2)")
	f.Float64Var(&p.sd, "sd", 0, "outcome standard deviation within a condition (required for --raw-main, --raw-coef)")
	f.Float64Var(&p.pretest, "pretest-corr", 0, "pretest-posttest correlation of a pretest covariate, in [0, 1): error variance x (1 - r^2)")
	f.Float64Var(&p.alpha, "alpha", 0.05, "two-sided significance level")
	f.Float64Var(&p.power, "power", 0, "power: wanted (to find N or the effect) or omitted (to find the power)")
	f.IntVar(&p.n, "n", 0, "total number of participants")
	f.BoolVar(&p.json, "json", false, "print JSON")
	return cmd
}

// spec checks the flags and builds the specification; effectFlag is the
// effect size flag given, if any.
func (p *powerFactorialParams) spec(r *flagRules) (spec power.FactorialSpec, effectFlag string, err error) {
	if name, ok := r.require("factors"); !ok {
		return spec, "", r.usageErr(name, "is required")
	}
	spec = power.FactorialSpec{Factors: p.factors, Order: p.order, SD: p.sd, Alpha: p.alpha}
	for _, e := range []struct {
		flag string
		kind power.EffectKind
		v    float64
	}{{"d", power.CohensD, p.d}, {"raw-main", power.RawMain, p.rawMain}, {"raw-coef", power.RawCoef, p.rawCoef}, {"std-coef", power.StdCoef, p.stdCoef}, {"f2", power.EffectSizeRatio, p.f2}} {
		if !r.set(e.flag) {
			continue
		}
		if effectFlag != "" {
			return spec, "", r.usageErr(e.flag, "give one effect size; --%s is already given", effectFlag)
		}
		effectFlag, spec.EffectKind, spec.Effect = e.flag, e.kind, e.v
	}
	if r.set("n") {
		if p.n < 1 {
			return spec, "", r.usageErr("n", "must be a positive number of participants, got %d", p.n)
		}
		spec.N = p.n
	}
	if r.set("power") {
		if !(p.power > 0 && p.power < 1) {
			return spec, "", r.usageErr("power", "must lie in (0, 1), got %v", p.power)
		}
		spec.Power = p.power
	}
	given := 0
	for _, ok := range []bool{effectFlag != "", r.set("n"), r.set("power")} {
		if ok {
			given++
		}
	}
	if given != 2 {
		return spec, "", usageErrorf("give exactly two of an effect size (--d, --raw-main, --raw-coef, --std-coef, --f2), --n and --power; the third is computed")
	}
	if r.set("pretest-corr") {
		spec.Pretest, spec.PretestCorr = true, p.pretest
	}
	if r.set("sd") && p.sd <= 0 {
		return spec, "", r.usageErr("sd", "must be positive, got %v", p.sd)
	}
	return spec, effectFlag, nil
}

// run computes and prints the power, sample size or detectable effect.
func (p *powerFactorialParams) run(r *flagRules, w io.Writer) error {
	spec, effectFlag, err := p.spec(r)
	if err != nil {
		return err
	}
	r.fields = map[string]string{
		"Factors": "factors", "Order": "order", "Effect": effectFlag, "SD": "sd",
		"PretestCorr": "pretest-corr", "Alpha": "alpha", "Power": "power", "N": "n",
	}
	return report(r, w, p.json, spec, power.Factorial, p.write)
}

// write prints the result as text.
func (p *powerFactorialParams) write(w io.Writer, spec power.FactorialSpec, res power.FactorialResult) {
	title := map[power.FactorialSolve]string{power.SolvePower: "power", power.SolveN: "sample size", power.SolveEffect: "detectable effect"}[res.Solved]
	fmt.Fprintf(w, "Factorial experiment %s (MOST; FactorialPowerPlan conventions, independent assignment)\n", title)
	row := func(k, v string) { fmt.Fprintf(w, "  %-24s %s\n", k, v) }
	orderDesc := "main effects only"
	if p.order >= 2 {
		orderDesc = fmt.Sprintf("main effects and interactions up to %d-way", p.order)
	}
	row("factors", fmt.Sprintf("%d two-level factors (%s conditions)", p.factors, g(res.Cells)))
	row("model", fmt.Sprintf("%s: %d regression coefficients", orderDesc, res.RegressionCoefs))
	if spec.Pretest {
		row("pretest covariate", fmt.Sprintf("r = %s: error sd %s x sqrt(1 - r^2) = %s", g(spec.PretestCorr), g(res.SD), g(res.SigmaEffective)))
	}
	row("outcome sd", g(res.SD))
	row("test", fmt.Sprintf("F(1, %d) at two-sided alpha %s", res.DF2, g(res.Alpha)))
	row("noncentrality", fmt.Sprintf("N b^2 / sigma^2 = %s", g(res.Lambda)))
	fmt.Fprintln(w)
	switch res.Solved {
	case power.SolvePower:
		fmt.Fprintf(w, "power = %.4f with N = %d (b = %s)\n", res.Power, res.N, g(res.Coef))
	case power.SolveN:
		fmt.Fprintf(w, "N = %d participants for power %s (power %.6f at N = %d, b = %s)\n", res.N, g(res.TargetPower), res.Power, res.N, g(res.Coef))
	case power.SolveEffect:
		fmt.Fprintf(w, "detectable effect with N = %d and power %s:\n", res.N, g(res.TargetPower))
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
	if res.TooFewForCells {
		fmt.Fprintf(w, "note: a complete factorial needs at least %s participants (one per condition)\n", g(res.Cells))
	}
}
