package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/experiments/analysis"
)

// analyzeMRTParams are the flags of `jitai analyze wcls` and `emee`.
type analyzeMRTParams struct {
	csv, id, outcome, treatment, randProb string
	availability, moderators, controls    string
	numerator                             string
	lincombs                              []string
	json                                  bool
}

// newAnalyzeMRTCmd is the command of one causal excursion effect estimator
// (wcls or emee); both take the same flags.
func newAnalyzeMRTCmd(estimator, short, long string) *cobra.Command {
	var p analyzeMRTParams
	cmd := &cobra.Command{
		Use:   estimator + " --csv FILE.csv --id COL --outcome COL --treatment COL --rand-prob COL|NUMBER",
		Short: short,
		Long:  long,
		Example: fmt.Sprintf(`  jitai analyze %s --csv stress.csv --id participant_id --outcome stress_90m \
    --treatment treated --rand-prob rand_prob --availability available --moderators day --controls day`, estimator),
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "csv", "id", "outcome", "treatment", "rand-prob"); err != nil {
				return err
			}
			return p.run(estimator, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.csv, "csv", "", "long-format CSV file, one row per participant and decision point, a participant's rows contiguous (required)")
	f.StringVar(&p.id, "id", "", "participant id column (required)")
	f.StringVar(&p.outcome, "outcome", "", "proximal outcome column (required)")
	f.StringVar(&p.treatment, "treatment", "", "treatment column, 0/1 (required)")
	f.StringVar(&p.randProb, "rand-prob", "", "randomisation probability: a column or a number (required)")
	f.StringVar(&p.availability, "availability", "", "availability column, 0/1 (default: always available)")
	f.StringVar(&p.moderators, "moderators", "", "comma-separated moderator columns; each must also be a control")
	f.StringVar(&p.controls, "controls", "", "comma-separated control columns")
	f.StringVar(&p.numerator, "numerator-prob", "", "numerator probability of the weights: a column or a number (default 0.5)")
	f.StringArrayVar(&p.lincombs, "lincomb", nil, `linear combination of the effect coefficients ("(Intercept)" then the moderators), e.g. "1,1"; repeatable`)
	f.BoolVar(&p.json, "json", false, "write JSON instead of a table")
	return cmd
}

// spec checks the flags and builds the model specification.
func (p *analyzeMRTParams) spec() (analysis.MRTSpec, error) {
	spec := analysis.MRTSpec{
		ID: p.id, Outcome: p.outcome, Treatment: p.treatment,
		RandProb: analysis.ParseProb(p.randProb), Availability: p.availability,
		Moderators: splitList(p.moderators), Controls: splitList(p.controls),
	}
	for _, s := range p.lincombs {
		l, err := analysis.ParseLincomb(s)
		if err != nil {
			return spec, usageErrorf("--lincomb: invalid value: %v", err)
		}
		spec.Lincombs = append(spec.Lincombs, l)
	}
	if p.numerator != "" {
		spec.NumeratorProb = analysis.ParseProb(p.numerator)
	}
	if err := spec.Validate(); err != nil {
		return spec, usageErrorf("%v", err)
	}
	return spec, nil
}

// run reads the data, fits the model and writes the result.
func (p *analyzeMRTParams) run(estimator string, w io.Writer) error {
	spec, err := p.spec()
	if err != nil {
		return err
	}
	idCol, numeric := spec.Columns()
	tab, err := analysis.ReadCSVFile(p.csv, numeric, []string{idCol})
	if err != nil {
		return err
	}
	fit := analysis.WCLS
	if estimator == "emee" {
		fit = analysis.EMEE
	}
	res, err := fit(tab, spec)
	if err != nil {
		return err
	}
	if p.json {
		return writeJSONLine(w, res)
	}
	return analysis.WriteMRTText(w, res, spec, p.csv)
}
