// Command jitai is the just-in-time adaptive intervention engine: one binary
// with subcommands, one file per subcommand (cobra).
package main

import "os"

func main() {
	os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
