package main

import "github.com/spf13/cobra"

// newAnalyzeEMEECmd is `jitai analyze emee`.
func newAnalyzeEMEECmd() *cobra.Command {
	cmd, _ := newAnalyzeMRTCmd("emee", wclsDoc(mrtCmdDoc{
		short: "Causal excursion effects of a binary proximal outcome (EMEE, log relative risk)",
		long: `Estimate the causal excursion effect of a micro-randomised treatment on a
binary proximal outcome on the log relative-risk scale (Qian et al. 2021;
conventions of R's MRTAnalysis::emee), optionally moderated.`,
	}))
	return cmd
}
