package main

import (
	"fmt"
	"io"
)

// runDesign implements `jitai design`. Being written (issue 3): this file is replaced whole.
func runDesign(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "jitai design: not available in this build yet")
	return 2
}
