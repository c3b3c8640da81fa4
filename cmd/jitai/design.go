package main

import (
	"io"

	"github.com/jitai/jitai/experiments/design"
)

// runDesign implements `jitai design --factors K (--runs N | --resolution R)
// [--generators "E=ABC,F=ABD"] [--json]`: two-level full and fractional
// factorial designs (minimum aberration by search, FrF2 conventions) with
// their generators, defining relation, word-length pattern, resolution,
// aliases and clear two-factor interactions. The flags, output and their
// tests live with the search in experiments/design (design.RunCommand).
func runDesign(args []string, stdout, stderr io.Writer) int {
	return design.RunCommand(args, stdout, stderr)
}
