package main

import (
	"fmt"
	"io"
)

// runAnalyze implements `jitai analyze`. Being written (issue 3): this file is replaced whole.
func runAnalyze(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "jitai analyze: not available in this build yet")
	return 2
}
