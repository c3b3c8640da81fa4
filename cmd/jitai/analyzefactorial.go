package main

import (
	"github.com/spf13/cobra"

	"github.com/jitai/jitai/experiments/analysis"
)

// analyzeFactorialParams are the flags of `jitai analyze factorial`.
type analyzeFactorialParams struct {
	csv, outcome, factors, levels string
	interactions, covariates      string
	order                         int
	json                          bool
}

// newAnalyzeFactorialCmd is `jitai analyze factorial`.
func newAnalyzeFactorialCmd() *cobra.Command {
	var p analyzeFactorialParams
	cmd := &cobra.Command{
		Use:   "factorial --csv FILE.csv --outcome COL --factors a,b,c",
		Short: "Effect-coded factorial effects and ANOVA",
		Long: `Estimate the effect-coded (-1/+1) main effects and interactions of two-level
factors by least squares, with their ANOVA.`,
		Example: "  jitai analyze factorial --csv f.csv --outcome y --factors a,b,c --order 2",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "csv", "outcome", "factors"); err != nil {
				return err
			}
			spec, err := p.spec()
			if err != nil {
				return err
			}
			numeric := append([]string{spec.Outcome}, spec.Covariates...)
			tab, err := analysis.ReadFile(p.csv, numeric, spec.Factors)
			if err != nil {
				return err
			}
			res, err := analysis.Factorial(tab, spec)
			if err != nil {
				return err
			}
			if p.json {
				return writeJSONLine(cmd.OutOrStdout(), res)
			}
			return analysis.WriteFactorialText(cmd.OutOrStdout(), res, spec, p.csv)
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.csv, "csv", "", "CSV file with one row per run or participant (required)")
	f.StringVar(&p.outcome, "outcome", "", "outcome column (required)")
	f.StringVar(&p.factors, "factors", "", "comma-separated two-level factor columns (required)")
	f.StringVar(&p.levels, "levels", "", `low and high levels, e.g. "a=low:high,b=off:on" (default: the first level in sorted order is low)`)
	f.StringVar(&p.interactions, "interactions", "", `interaction terms, e.g. "a:b,d:e"`)
	f.IntVar(&p.order, "order", 0, "include every interaction of up to this many factors (instead of --interactions)")
	f.StringVar(&p.covariates, "covariates", "", "comma-separated numeric covariate columns")
	f.BoolVar(&p.json, "json", false, "write JSON instead of a table")
	return cmd
}

// spec checks the flags and builds the model specification.
func (p *analyzeFactorialParams) spec() (analysis.FactorialSpec, error) {
	if p.interactions != "" && p.order != 0 {
		return analysis.FactorialSpec{}, usageErrorf("give either --interactions or --order, not both")
	}
	if p.order < 0 {
		return analysis.FactorialSpec{}, usageErrorf("--order must be at least 1")
	}
	lv, err := analysis.ParseLevels(p.levels)
	if err != nil {
		return analysis.FactorialSpec{}, usageErrorf("%v", err)
	}
	return analysis.FactorialSpec{
		Outcome: p.outcome, Factors: splitList(p.factors), Levels: lv,
		Interactions: analysis.ParseInteractions(p.interactions), Order: p.order,
		Covariates: splitList(p.covariates),
	}, nil
}
