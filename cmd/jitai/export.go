package main

import (
	"fmt"
	"io"
)

// runExport implements `jitai export`. Being written (issue 3): this file is replaced whole.
func runExport(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "jitai export: not available in this build yet")
	return 2
}
