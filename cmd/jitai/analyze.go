package main

import (
	"encoding/json"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// newAnalyzeCmd is `jitai analyze wcls|emee|emee2|dcee|mcee|factorial`:
// causal excursion effects of micro-randomised treatments (WCLS for
// continuous, EMEE and EMEE2 for binary proximal outcomes, DCEE for distal
// outcomes, MCEE for effects mediated on a distal outcome) and effect-coded
// factorial effects, computed by experiments/analysis.
func newAnalyzeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "analyze",
		Short: "Estimators: wcls, emee, emee2, dcee, mcee (causal excursion effects), factorial effects",
		Long: `Estimate effects from a CSV file (--csv): causal excursion effects of
micro-randomised treatments (wcls for continuous and emee, emee2 for binary
proximal outcomes; dcee for a distal outcome, mcee for the direct and
mediated effects on a distal outcome; all following R's MRTAnalysis 0.3.1)
and effect-coded factorial effects. Each writes a report, or JSON with
--json. docs/analysis.md maps R's arguments to the flags and lists what is
not implemented.

Exit status: 0 done; 1 the data cannot be read or the model cannot be fitted
(for example a singular design), or the output cannot be written; 2 usage
error.`,
		Args: cobra.NoArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(newAnalyzeWCLSCmd(), newAnalyzeEMEECmd(), newAnalyzeEMEE2Cmd(), newAnalyzeDCEECmd(), newAnalyzeMCEECmd(), newAnalyzeFactorialCmd())
	return cmd
}

// requireFlags is a usage error naming the flags of names that are empty.
func requireFlags(cmd *cobra.Command, names ...string) error {
	var missing []string
	for _, name := range names {
		if f := cmd.Flags().Lookup(name); f == nil || f.Value.String() == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		return usageErrorf("missing required flag(s) %s", strings.Join(missing, ", "))
	}
	return nil
}

// writeJSONLine writes v as indented JSON and a newline.
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
