package main

import (
	"github.com/spf13/cobra"

	"github.com/jitai/jitai/experiments/analysis"
)

// newAnalyzeDCEECmd is `jitai analyze dcee`.
func newAnalyzeDCEECmd() *cobra.Command {
	cmd, p := newAnalyzeMRTCmd("dcee", mrtCmdDoc{
		short: "Distal causal excursion effects (DCEE)",
		long: `Estimate the causal excursion effect of a micro-randomised treatment on a
distal outcome (one value per participant, repeated on each of its rows),
two-stage, following R's MRTAnalysis::dcee with cross_fit = FALSE: the
outcome regressions of stage 1 are least squares on the controls within
A = 0 and within A = 1 (--control-reg-method lm), or zero (set_to_zero, the
controls ignored). Terms are named "Intercept" and the moderators, linear
combinations L1, L2, ...

Not implemented: the machine-learning stage-1 learners of MRTAnalysis (gam,
its default, rf, ranger, sl) and cross-fitting. Every row must be complete;
the randomisation probability must be a column.`,
		required: []string{"control-reg-method"},
		example: `--csv trial.csv --id participant_id --outcome phq9_week8 \
    --treatment treated --rand-prob rand_prob --availability available --control-reg-method lm --controls stress,hour`,
		moderators: "comma-separated moderator columns (raw columns, as dcee binds all.vars(moderator_formula))",
		controls:   "comma-separated control columns of the stage-1 regressions (ignored with set_to_zero)",
		numerator:  "not used by dcee (it has no numerator probability); giving it is an error",
	})
	cmd.Flags().StringVar(&p.controlRegMethod, "control-reg-method", "",
		`stage-1 outcome regression: "`+analysis.ControlRegLM+`" or "`+analysis.ControlRegSetToZero+`" (required)`)
	return cmd
}
