package main

import (
	"io"

	"github.com/jitai/jitai/experiments/power"
)

// runPower implements `jitai power mrt|mrt-binary|factorial`: sample size and
// power for micro-randomized trials (continuous and binary proximal outcomes)
// and factorial experiments. The flags, output and their tests live with the
// methods in experiments/power (power.RunCommand).
func runPower(args []string, stdout, stderr io.Writer) int {
	return power.RunCommand(args, stdout, stderr)
}
