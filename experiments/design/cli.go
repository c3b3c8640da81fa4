package design

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// RunCommand implements `jitai design --factors K (--runs N | --resolution R)
// [--generators "E=ABC,F=ABD"] [--budget D] [--json]`. It prints a
// human-readable report, or the Report as JSON with --json, and returns the
// process exit code: 0 on success, 2 for a request that cannot be met (the
// message names the flag), 1 for any other failure.
func RunCommand(args []string, stdout, stderr io.Writer) int {
	return Options{}.RunCommand(args, stdout, stderr)
}

// RunCommand is the package-level RunCommand with these options (the
// --budget flag overrides Budget).
func (o Options) RunCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("design", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: jitai design --factors K (--runs N | --resolution R) [--generators "E=ABC,F=ABD"] [--budget 10s] [--json]

Two-level full or fractional factorial design, FrF2 conventions: factors A, B,
C, ... (no I), runs in standard order (first factor changing fastest). Without
--generators the design is the minimum-aberration one, found by search.

`)
		fs.PrintDefaults()
	}
	factors := fs.Int("factors", 0, "number of two-level factors K (1 to 63)")
	runs := fs.Int("runs", 0, "number of runs N, a power of 2 (at most 4096)")
	var res resolutionFlag
	fs.Var(&res, "resolution", "wanted resolution R (3, 4, 5, ... or III, IV, V, ...): the smallest run size that reaches it")
	gens := fs.String("generators", "", `generators, comma-separated: "E=ABC,F=ABD" or Yates columns "7,11"`)
	budget := fs.Duration("budget", 0, "time budget of the search (default 10s); past it the best design found is shown as not proven")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr(stderr, "unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["factors"] {
		return usageErr(stderr, "--factors is required")
	}
	if set["runs"] && set["resolution"] {
		return usageErr(stderr, "--runs and --resolution: give one of them")
	}
	if !set["runs"] && !set["resolution"] && !set["generators"] {
		return usageErr(stderr, "give --runs N or --resolution R")
	}
	if set["budget"] {
		if *budget <= 0 {
			return usageErr(stderr, "--budget: %s is not a positive duration", *budget)
		}
		o.Budget = *budget
	}

	var d *Design
	var err error
	switch {
	case set["generators"]:
		list := splitList(*gens)
		if set["runs"] {
			q, qerr := runsExponent(*factors, *runs)
			if qerr != nil {
				return fail(stderr, qerr)
			}
			if want := *factors - q; len(list) != want {
				return usageErr(stderr, "--generators: %d generators given; %d factors in %d runs need %d", len(list), *factors, *runs, want)
			}
		}
		d, err = FromGenerators(*factors, list)
		if err == nil && set["resolution"] && d.Resolution() != 0 && d.Resolution() < int(res) {
			return usageErr(stderr, "--resolution: the generators give resolution %s, below %s", Roman(d.Resolution()), Roman(int(res)))
		}
	case set["runs"]:
		d, err = o.MinimumAberration(*factors, *runs)
	default:
		d, err = o.ForResolution(*factors, int(res))
	}
	if err != nil {
		return fail(stderr, err)
	}
	if *asJSON {
		b, err := json.Marshal(d.Report())
		if err != nil {
			fmt.Fprintf(stderr, "jitai design: %v\n", err)
			return 1
		}
		b = append(b, '\n')
		if _, err := stdout.Write(b); err != nil {
			return 1
		}
		return 0
	}
	if err := d.WriteText(stdout); err != nil {
		return 1
	}
	return 0
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func usageErr(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "jitai design: "+format+"\n", args...)
	return 2
}

// fail reports an error: an InputError names the flag and exits 2.
func fail(stderr io.Writer, err error) int {
	var ie *InputError
	if errors.As(err, &ie) {
		return usageErr(stderr, "--%s: %s", ie.Field, ie.Problem)
	}
	fmt.Fprintf(stderr, "jitai design: %v\n", err)
	return 1
}

// resolutionFlag parses 4 or IV.
type resolutionFlag int

func (r *resolutionFlag) String() string { return strconv.Itoa(int(*r)) }

func (r *resolutionFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	if v, err := strconv.Atoi(s); err == nil {
		*r = resolutionFlag(v)
		return nil
	}
	for v := 1; v < 40; v++ {
		if strings.EqualFold(Roman(v), s) {
			*r = resolutionFlag(v)
			return nil
		}
	}
	return fmt.Errorf("%q is not a resolution (3, 4, 5, ... or III, IV, V, ...)", s)
}
