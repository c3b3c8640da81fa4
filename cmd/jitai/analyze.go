package main

import (
	"io"

	"github.com/jitai/jitai/experiments/analysis"
)

// runAnalyze implements `jitai analyze wcls|emee|factorial`: causal excursion
// effects of micro-randomised treatments (WCLS for continuous, EMEE for
// binary proximal outcomes) and effect-coded factorial effects. The flags,
// output and exit codes are documented in experiments/analysis (RunCommand).
func runAnalyze(args []string, stdout, stderr io.Writer) int {
	return analysis.RunCommand(args, stdout, stderr)
}
