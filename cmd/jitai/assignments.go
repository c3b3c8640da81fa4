package main

import (
	"fmt"
	"io"
)

// runAssignments implements `jitai assignments`. Being written (issue 3).
func runAssignments(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "jitai assignments: not available in this build yet")
	return 2
}
