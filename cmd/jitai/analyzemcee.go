package main

import (
	"github.com/spf13/cobra"

	"github.com/jitai/jitai/experiments/analysis"
)

// newAnalyzeMCEECmd is `jitai analyze mcee`.
func newAnalyzeMCEECmd() *cobra.Command {
	cmd, p := newAnalyzeMRTCmd("mcee", mrtCmdDoc{
		short: "Mediated causal excursion effects on a distal outcome (MCEE)",
		long: `Estimate the natural direct (alpha) and indirect (beta, through the mediator)
excursion effects of a micro-randomised treatment on a distal outcome,
following R's MRTAnalysis::mcee with parametric nuisance models
(--control-reg-method glm: logistic regression for the treatment model q,
least squares for eta, mu and nu). q and mu use --mediator-controls (the
columns of control_formula_with_mediator); eta and nu use --controls, by
default the mediator controls without the mediator, as mcee derives them.
The effect basis is (1, --effect-form columns), e.g. --effect-form dp for an
effect linear in the decision point. Terms are named "alpha:(Intercept)",
"beta:dp", ...; linear combinations "L x alpha", "L x beta", "L x theta".

Not implemented: the machine-learning learners of MRTAnalysis (gam, rf,
ranger, sl), row weights (weight_per_row, specific_dp_only) and the other
configurations of mcee_general. Every row must be complete.`,
		required: []string{"dp", "mediator"},
		example: `--csv trial.csv --id participant_id --dp decision_point \
    --outcome phq9_week8 --treatment treated --rand-prob rand_prob --availability available \
    --mediator stress_next --mediator-controls decision_point,stress,stress_next --effect-form decision_point`,
		moderators: "not used by mcee: use --effect-form",
		controls:   "comma-separated controls of eta and nu, without the mediator (default: --mediator-controls without the mediator)",
		numerator:  "not used by mcee; giving it is an error",
		lincomb:    "not used by mcee: use --lincomb-alpha, --lincomb-beta or --lincomb-joint",
	})
	f := cmd.Flags()
	f.StringVar(&p.controlRegMethod, "control-reg-method", analysis.ControlRegGLM, `nuisance models: "`+analysis.ControlRegGLM+`" (the only one implemented)`)
	f.StringVar(&p.dp, "dp", "", "decision point column, strictly increasing within a participant (required)")
	f.StringVar(&p.mediator, "mediator", "", "mediator column (required)")
	f.StringVar(&p.effectForm, "effect-form", "", "comma-separated columns of the time-varying effect basis besides the intercept (default: none, a constant effect)")
	f.StringVar(&p.mediatorControls, "mediator-controls", "", "comma-separated controls of q and mu, usually including the mediator")
	f.StringArrayVar(&p.lincombAlpha, "lincomb-alpha", nil, `linear combination of alpha (the intercept then the effect-form columns), e.g. "1,25"; repeatable`)
	f.StringArrayVar(&p.lincombBeta, "lincomb-beta", nil, `linear combination of beta, e.g. "1,25"; repeatable`)
	f.StringArrayVar(&p.lincombJoint, "lincomb-joint", nil, `linear combination of (alpha, beta), e.g. "1,-1"; repeatable`)
	return cmd
}

// fitMCEE checks the mcee flags and fits.
func (p *analyzeMRTParams) fitMCEE() (*analysis.MRTResult, analysis.MRTSpec, error) {
	desc := analysis.MRTSpec{ID: p.id, Outcome: p.outcome, Treatment: p.treatment,
		RandProb: analysis.ParseProb(p.randProb), Availability: p.availability}
	switch {
	case p.moderators != "":
		return nil, desc, usageErrorf("mcee has no moderators: give the effect basis with --effect-form")
	case len(p.lincombs) > 0:
		return nil, desc, usageErrorf("mcee: use --lincomb-alpha, --lincomb-beta or --lincomb-joint instead of --lincomb")
	case p.numerator != "":
		return nil, desc, usageErrorf("mcee has no numerator probability")
	}
	s := analysis.MCEESpec{
		ID: p.id, DP: p.dp, Outcome: p.outcome, Treatment: p.treatment, Mediator: p.mediator,
		RandProb: desc.RandProb, Availability: p.availability, EffectForm: splitList(p.effectForm),
		MediatorControls: splitList(p.mediatorControls), ControlRegMethod: p.controlRegMethod,
	}
	if p.controls != "" {
		s.Controls = splitList(p.controls)
	}
	var err error
	for _, l := range []struct {
		flag   string
		values []string
		to     *[][]float64
	}{{"lincomb-alpha", p.lincombAlpha, &s.LincombAlpha}, {"lincomb-beta", p.lincombBeta, &s.LincombBeta}, {"lincomb-joint", p.lincombJoint, &s.LincombJoint}} {
		if *l.to, err = parseLincombs(l.flag, l.values); err != nil {
			return nil, desc, err
		}
	}
	if err := s.Validate(); err != nil {
		return nil, desc, usageErrorf("%v", err)
	}
	idCol, numeric := s.Columns()
	res, err := readAndFit(p.csv, idCol, numeric, p.missing, "", func(t *analysis.Table) (*analysis.MRTResult, error) { return analysis.MCEE(t, s) })
	return res, desc, err
}
