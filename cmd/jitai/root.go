package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/jitai/jitai/engine/store/redisstore"
	"github.com/jitai/jitai/policies"
)

// Exit codes shared by every command: help and success exit 0, a failure 1,
// a usage error (unknown flag, missing required flag, wrong arguments) 2.
// A few commands document more (replay: 3).
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// exitError ends a command with a given exit code. Its error, when not nil,
// is written to stderr after the command's path.
type exitError struct {
	code int
	err  error
}

// Error returns the error, or the exit status when there is none.
func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

// Unwrap returns the error.
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage error: written to stderr with a pointer to --help,
// exit status 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitWith ends a command with code, the command having already said why.
func exitWith(code int) error {
	if code == exitOK {
		return nil
	}
	return &exitError{code: code}
}

// deps are what the commands take from their caller besides flags,
// environment and streams; the zero value is what the jitai binary uses.
type deps struct {
	// redis are the options of the Redis store that export opens (tests
	// give each run a key prefix of its own).
	redis redisstore.Options
	// afterBatch, if set, runs after export --format jsonl has written and
	// fsynced a batch and before it acknowledges it; an error stops the
	// export right there, as a crash would (tests).
	afterBatch func(batch int) error
}

// loadOptions are how commands other than serve load studies:
// JITAI_EVALUATOR chooses the evaluator of studies whose study.yaml does not.
func loadOptions() policies.LoadOptions {
	return policies.LoadOptions{Evaluator: os.Getenv("JITAI_EVALUATOR")}
}

// execute runs the jitai command line args and returns the exit status.
// Help goes to stdout; errors go to stderr.
func execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return executeWith(deps{}, args, stdin, stdout, stderr)
}

// executeWith is execute with the given dependencies.
func executeWith(d deps, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(d, stdin, stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
		if code == exitUsage {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return code
}

// run is execute with the process's stdin.
func run(args []string, stdout, stderr io.Writer) int {
	return execute(args, os.Stdin, stdout, stderr)
}

// newRootCmd builds the jitai command tree, reading stdin and writing
// stdout (help, results) and stderr (errors, progress).
func newRootCmd(d deps, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "jitai",
		Short: "Just-in-time adaptive intervention engine",
		Long: `jitai serves, checks, simulates and analyses just-in-time adaptive
intervention studies: Rego policies decide, the engine randomises, records
and explains every decision.

Every command that evaluates policies honours JITAI_EVALUATOR (ir or topdown).`,
		Version:           versionString(),
		Args:              cobra.NoArgs,
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			// Commands read it again where they load studies (loadOptions).
			if ev := os.Getenv("JITAI_EVALUATOR"); ev != "" {
				if err := policies.CheckEvaluator(ev); err != nil {
					return usageErrorf("JITAI_EVALUATOR: %v", err)
				}
			}
			return nil
		},
		RunE: groupRun,
	}
	root.SetIn(stdin)
	root.SetOut(stdout) // before the completion command, which keeps it
	root.SetErr(stderr)
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(
		newServeCmd(),
		newStudyCmd(),
		newSimulateCmd(),
		newDesignCmd(),
		newAssignmentsCmd(),
		newExportCmd(d),
		newAnalyzeCmd(),
		newTokenCmd(),
		newPowerCmd(),
		newReplayCmd(),
		newExplainCmd(),
		newVersionCmd(),
		newGenDocsCmd(),
	)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	wrapArgs(root)
	return root
}

// groupRun is the RunE of a command that only groups subcommands: without
// one it prints the help to stderr and exits 2.
func groupRun(cmd *cobra.Command, _ []string) error {
	cmd.SetOut(cmd.ErrOrStderr())
	_ = cmd.Help()
	return exitWith(exitUsage)
}

// wrapArgs makes every argument validator's error a usage error (exit 2).
func wrapArgs(c *cobra.Command) {
	if v := c.Args; v != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := v(cmd, args); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// noArgs is the argument validator of a command that takes none.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected argument %q", args[0])
	}
	return nil
}
