package main

import "github.com/spf13/cobra"

// newAnalyzeWCLSCmd is `jitai analyze wcls`.
func newAnalyzeWCLSCmd() *cobra.Command {
	return newAnalyzeMRTCmd("wcls",
		"Causal excursion effects of a continuous proximal outcome (WCLS)",
		`Estimate the causal excursion effect of a micro-randomised treatment on a
continuous proximal outcome by weighted and centred least squares (Boruvka et
al. 2018; conventions of R's MRTAnalysis::wcls), optionally moderated.`)
}
