// Command jitai is the just-in-time adaptive intervention engine: one binary
// with subcommands.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/jitai/jitai/policies"
)

type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", "serve the HTTP API for the studies in a folder", runServe},
		{"study", "check a study folder or run its policy tests (study check DIR | study test DIR)", runStudy},
		{"simulate", "run a synthetic cohort through the real engine and report how the study behaves", runSimulate},
		{"design", "two-level factorial designs: minimum aberration, aliases, resolution", runDesign},
		{"assignments", "between-person assignment balance per stratum", runAssignments},
		{"export", "analysis-ready export (CSV or Parquet, with a codebook) or the decision log as JSONL (Redis)", runExport},
		{"analyze", "estimators: wcls, emee (causal excursion effects), factorial effects", runAnalyze},
		{"token", "API tokens: token create --role ROLE [--study ID] [--name NAME] | token list | token revoke ID", runToken},
		{"power", "sample size and power: mrt, mrt-binary, factorial", runPower},
		{"replay", "re-evaluate logged decisions: check they reproduce, or what a new policy would change", runReplay},
		{"explain", "explain one logged decision: rules fired, values read, availability, draws, option", runExplain},
		{"version", "print the version", func([]string, io.Writer, io.Writer) int { fmt.Println(version); return 0 }},
	}
}

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	// Every command that evaluates policies (simulate, replay, study...)
	// honours JITAI_EVALUATOR; serve also takes --evaluator.
	ev := os.Getenv("JITAI_EVALUATOR")
	if ev == "" {
		ev = policies.EvaluatorIR
	}
	if err := policies.SetEvaluator(ev); err != nil {
		fmt.Fprintf(stderr, "jitai: JITAI_EVALUATOR: %v\n", err)
		return 2
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "jitai: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: jitai <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'jitai <command> -h' for a command's flags.")
}
