package main

import "github.com/spf13/cobra"

// newAnalyzeWCLSCmd is `jitai analyze wcls`.
func newAnalyzeWCLSCmd() *cobra.Command {
	cmd, _ := newAnalyzeMRTCmd("wcls", wclsDoc(mrtCmdDoc{
		short: "Causal excursion effects of a continuous proximal outcome (WCLS)",
		long: `Estimate the causal excursion effect of a micro-randomised treatment on a
continuous proximal outcome by weighted and centred least squares (Boruvka et
al. 2018; conventions of R's MRTAnalysis::wcls), optionally moderated.`,
	}))
	return cmd
}
