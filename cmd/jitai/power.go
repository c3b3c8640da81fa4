package main

import (
	"fmt"
	"io"
)

// runPower implements `jitai power`. Being written (issue 3): this file is replaced whole.
func runPower(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "jitai power: not available in this build yet")
	return 2
}
