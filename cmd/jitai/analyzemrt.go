package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/experiments/analysis"
)

// analyzeMRTParams are the flags of `jitai analyze wcls`, `emee`, `emee2`,
// `dcee` and `mcee`.
type analyzeMRTParams struct {
	csv, id, outcome, treatment, randProb string
	availability, moderators, controls    string
	numerator                             string
	missing                               string
	lincombs                              []string
	json                                  bool

	// dcee and mcee.
	controlRegMethod string
	// mcee.
	dp, mediator, effectForm, mediatorControls string
	lincombAlpha, lincombBeta, lincombJoint    []string
}

// mrtCmdDoc is the help of one causal excursion effect command.
type mrtCmdDoc struct {
	short, long string
	// required are the flags besides --csv, --id, --outcome, --treatment
	// and --rand-prob that must be given.
	required []string
	// example is the command line of the example after `jitai analyze`.
	example string
	// moderators, controls, numerator and lincomb are the help of those
	// flags (lincomb: a default for the estimators with moderators).
	moderators, controls, numerator, lincomb string
}

// newAnalyzeMRTCmd is the command of one causal excursion effect estimator;
// they share the flags of wcls, and the estimator's file adds its own to
// the returned params' flag set.
func newAnalyzeMRTCmd(estimator string, doc mrtCmdDoc) (*cobra.Command, *analyzeMRTParams) {
	p := &analyzeMRTParams{}
	required := append([]string{"csv", "id", "outcome", "treatment", "rand-prob"}, doc.required...)
	use := estimator
	for _, r := range required {
		placeholder := map[string]string{"csv": "FILE.csv", "rand-prob": "COL|NUMBER", "control-reg-method": "METHOD"}[r]
		if placeholder == "" {
			placeholder = "COL"
		}
		use += " --" + r + " " + placeholder
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   doc.short,
		Long:    doc.long,
		Example: "  jitai analyze " + estimator + " " + doc.example,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, required...); err != nil {
				return err
			}
			return p.run(estimator, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.csv, "csv", "", "long-format CSV file (or Parquet, by its .parquet name), one row per participant and decision point, a participant's rows contiguous (required)")
	f.StringVar(&p.id, "id", "", "participant id column (required)")
	f.StringVar(&p.outcome, "outcome", "", "outcome column (required)")
	f.StringVar(&p.treatment, "treatment", "", "treatment column, 0/1 (required)")
	f.StringVar(&p.randProb, "rand-prob", "", "randomisation probability: a column or a number (required)")
	f.StringVar(&p.availability, "availability", "", "availability column, 0/1 (default: always available)")
	f.StringVar(&p.moderators, "moderators", "", doc.moderators)
	f.StringVar(&p.controls, "controls", "", doc.controls)
	f.StringVar(&p.numerator, "numerator-prob", "", doc.numerator)
	if doc.lincomb == "" {
		doc.lincomb = `linear combination of the effect coefficients (the intercept then the moderators), e.g. "1,1"; repeatable`
	}
	f.StringArrayVar(&p.lincombs, "lincomb", nil, doc.lincomb)
	f.BoolVar(&p.json, "json", false, "write JSON instead of a table")
	f.StringVar(&p.missing, "missing", missingComplete, "rows missing a value the model needs: complete-cases (left out, counted per participant in the report) or error (the first such row is an error naming its line and column)")
	return cmd, p
}

// wclsDoc is the help of the flags wcls and emee share.
func wclsDoc(d mrtCmdDoc) mrtCmdDoc {
	d.moderators = "comma-separated moderator columns; each must also be a control"
	d.controls = "comma-separated control columns"
	d.numerator = "numerator probability of the weights: a column or a number (default 0.5)"
	d.example = `--csv stress.csv --id participant_id --outcome stress_90m \
    --treatment treated --rand-prob rand_prob --availability available --moderators day --controls day`
	return d
}

// parseLincombs parses the values of a --lincomb-like flag.
func parseLincombs(flag string, values []string) ([][]float64, error) {
	var out [][]float64
	for _, s := range values {
		l, err := analysis.ParseLincomb(s)
		if err != nil {
			return nil, usageErrorf("--%s: invalid value: %v", flag, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// spec checks the flags and builds the model specification of wcls, emee,
// emee2 and dcee.
func (p *analyzeMRTParams) spec() (analysis.MRTSpec, error) {
	spec := analysis.MRTSpec{
		ID: p.id, Outcome: p.outcome, Treatment: p.treatment,
		RandProb: analysis.ParseProb(p.randProb), Availability: p.availability,
		Moderators: splitList(p.moderators), Controls: splitList(p.controls),
	}
	var err error
	if spec.Lincombs, err = parseLincombs("lincomb", p.lincombs); err != nil {
		return spec, err
	}
	if p.numerator != "" {
		spec.NumeratorProb = analysis.ParseProb(p.numerator)
	}
	return spec, nil
}

// fit checks the flags, fits the estimator's model on tab's source and
// returns the result and the spec describing it.
func (p *analyzeMRTParams) fit(estimator string) (*analysis.MRTResult, analysis.MRTSpec, error) {
	if estimator == "mcee" {
		return p.fitMCEE()
	}
	spec, err := p.spec()
	if err != nil {
		return nil, spec, err
	}
	var fit func(*analysis.Table) (*analysis.MRTResult, error)
	switch estimator {
	case "dcee":
		ds := analysis.DCEESpec{MRTSpec: spec, ControlRegMethod: p.controlRegMethod}
		if err := ds.Validate(); err != nil {
			return nil, spec, usageErrorf("%v", err)
		}
		fit = func(t *analysis.Table) (*analysis.MRTResult, error) { return analysis.DCEE(t, ds) }
	default:
		est := map[string]func(*analysis.Table, analysis.MRTSpec) (*analysis.MRTResult, error){
			"wcls": analysis.WCLS, "emee": analysis.EMEE, "emee2": analysis.EMEE2,
		}[estimator]
		if err := validateMRTFlags(estimator, spec); err != nil {
			return nil, spec, err
		}
		fit = func(t *analysis.Table) (*analysis.MRTResult, error) { return est(t, spec) }
	}
	idCol, numeric := spec.Columns()
	avail := spec.Availability // wcls and emee read available rows only
	if estimator != "wcls" && estimator != "emee" {
		avail = ""
	}
	res, err := readAndFit(p.csv, idCol, numeric, p.missing, avail, fit)
	return res, spec, err
}

// validateMRTFlags checks the spec of wcls, emee and emee2.
func validateMRTFlags(estimator string, spec analysis.MRTSpec) error {
	check := spec.Validate
	if estimator == "emee2" {
		check = spec.ValidateEMEE2
	}
	if err := check(); err != nil {
		return usageErrorf("%v", err)
	}
	return nil
}

// Missing-data rules of the analyze commands (--missing).
const (
	missingComplete = "complete-cases"
	missingError    = "error"
)

// readAndFit reads the columns of the CSV file and fits. Under the
// complete-cases rule, rows missing one of the columns are left out first
// (kept where availability is 0, when the estimator reads available rows
// only: availability names the column then) and counted in the result.
func readAndFit(path, idCol string, numeric []string, missing, availability string, fit func(*analysis.Table) (*analysis.MRTResult, error)) (*analysis.MRTResult, error) {
	tab, err := analysis.ReadFile(path, numeric, []string{idCol})
	if err != nil {
		return nil, err
	}
	var dropped *analysis.Dropped
	switch missing {
	case missingComplete:
		if tab, dropped, err = tab.CompleteCases(idCol, availability, numeric); err != nil {
			return nil, err
		}
	case missingError:
	default:
		return nil, usageErrorf("--missing %q: want %s or %s", missing, missingComplete, missingError)
	}
	res, err := fit(tab)
	if err != nil {
		return nil, err
	}
	res.Dropped = dropped
	return res, nil
}

// run reads the data, fits the model and writes the result.
func (p *analyzeMRTParams) run(estimator string, w io.Writer) error {
	res, spec, err := p.fit(estimator)
	if err != nil {
		return err
	}
	if p.json {
		return writeJSONLine(w, res)
	}
	return analysis.WriteMRTText(w, res, spec, p.csv)
}
