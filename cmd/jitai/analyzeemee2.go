package main

import "github.com/spf13/cobra"

// newAnalyzeEMEE2Cmd is `jitai analyze emee2`.
func newAnalyzeEMEE2Cmd() *cobra.Command {
	cmd, _ := newAnalyzeMRTCmd("emee2", mrtCmdDoc{
		short: "Causal excursion effects of a binary proximal outcome, treatment centred by its probability (EMEE2)",
		long: `Estimate the causal excursion effect of a micro-randomised treatment on a
binary proximal outcome on the log relative-risk scale, with the treatment
centred by the randomisation probability and no weights (conventions of R's
MRTAnalysis::emee2), optionally moderated.

As emee2, it uses the unavailable rows too (in the small-sample adjusted
standard errors), so every row must be complete; the numerator probability
is accepted and ignored. Moderators need not be controls. std_err is the
adjusted standard error, std_err_unadjusted the plain sandwich one.`,
		example: `--csv trial.csv --id participant_id --outcome opened_1h \
    --treatment treated --rand-prob rand_prob --availability available --moderators home --controls hour,home`,
		moderators: "comma-separated moderator columns",
		controls:   "comma-separated control columns",
		numerator:  "accepted and ignored, as MRTAnalysis::emee2 ignores numerator_prob",
	})
	return cmd
}
