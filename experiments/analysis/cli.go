package analysis

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const usageText = `usage:
  jitai analyze wcls --data FILE.csv --id COL --outcome COL --treatment COL --rand-prob COL|NUMBER
        [--availability COL] [--moderators a,b] [--controls c,d] [--numerator-prob COL|NUMBER]
        [--lincomb "1,1"]... [--json]
  jitai analyze emee   (the same flags; binary outcome, log relative risk)
  jitai analyze factorial --data FILE.csv --outcome COL --factors a,b,c [--levels "a=low:high,b=off:on"]
        [--interactions "a:b,d:e" | --order 2] [--covariates x,y] [--json]

Run 'jitai analyze SUBCOMMAND -h' for the flags of one subcommand.
`

// RunCommand implements `jitai analyze wcls|emee|factorial`: it reads the
// CSV named by --data, runs the estimator and writes a human-readable report,
// or JSON with --json. It returns the process exit code: 0 on success, 2 for a
// usage, data or model error (reported on stderr), 1 when the output cannot be
// written.
func RunCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return 2
	}
	switch args[0] {
	case "wcls", "emee":
		return runMRT(args[0], args[1:], stdout, stderr)
	case "factorial":
		return runFactorial(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return 0
	}
	fmt.Fprintf(stderr, "jitai analyze: unknown estimator %q (want wcls, emee or factorial)\n\n%s", args[0], usageText)
	return 2
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// lincombFlag collects repeated --lincomb values.
type lincombFlag [][]float64

func (l *lincombFlag) String() string { return fmt.Sprint([][]float64(*l)) }

func (l *lincombFlag) Set(s string) error {
	var v []float64
	for _, p := range strings.Split(s, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return fmt.Errorf("%q is not a comma-separated list of numbers", s)
		}
		v = append(v, f)
	}
	*l = append(*l, v)
	return nil
}

// parseFlags parses a subcommand's flags and checks the required ones (by
// flag name) are set. ok is false when the command should end with code
// (0 for -h, 2 for a usage error, already reported).
func parseFlags(fs *flag.FlagSet, args []string, cmd string, stderr io.Writer, required ...string) (code int, ok bool) {
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: jitai analyze %s [flags]\n", cmd)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		return fail(stderr, cmd, fmt.Errorf("unexpected argument %q", fs.Arg(0))), false
	}
	var missing []string
	for _, name := range required {
		if strings.TrimSpace(fs.Lookup(name).Value.String()) == "" {
			missing = append(missing, "--"+name)
		}
	}
	if len(missing) > 0 {
		return fail(stderr, cmd, fmt.Errorf("missing required flag(s) %s", strings.Join(missing, ", "))), false
	}
	return 0, true
}

func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "jitai analyze %s: %s\n", cmd, strings.TrimPrefix(err.Error(), cmd+": "))
	return 2
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func readData(path string, numeric, text []string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadCSV(f, path, numeric, text)
}

func runMRT(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("analyze "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "long-format CSV, one row per participant and decision point, a participant's rows contiguous (required)")
	id := fs.String("id", "", "participant id column (required)")
	outcome := fs.String("outcome", "", "proximal outcome column (required)")
	treatment := fs.String("treatment", "", "treatment column, 0/1 (required)")
	randProb := fs.String("rand-prob", "", "randomisation probability: a column or a number (required)")
	availability := fs.String("availability", "", "availability column, 0/1 (default: always available)")
	moderators := fs.String("moderators", "", "comma-separated moderator columns; each must also be a control")
	controls := fs.String("controls", "", "comma-separated control columns")
	numerator := fs.String("numerator-prob", "", "numerator probability of the weights: a column or a number (default 0.5)")
	var lincombs lincombFlag
	fs.Var(&lincombs, "lincomb", `linear combination of the effect coefficients ("(Intercept)" then the moderators), e.g. "1,1"; repeatable`)
	asJSON := fs.Bool("json", false, "write JSON instead of a table")
	if code, ok := parseFlags(fs, args, cmd, stderr, "data", "id", "outcome", "treatment", "rand-prob"); !ok {
		return code
	}
	spec := MRTSpec{
		ID: *id, Outcome: *outcome, Treatment: *treatment,
		RandProb: ParseProb(*randProb), Availability: *availability,
		Moderators: splitList(*moderators), Controls: splitList(*controls),
		Lincombs: lincombs,
	}
	if *numerator != "" {
		spec.NumeratorProb = ParseProb(*numerator)
	}
	if err := spec.Validate(); err != nil {
		return fail(stderr, cmd, err)
	}
	idCol, numeric := spec.Columns()
	tab, err := readData(*data, numeric, []string{idCol})
	if err != nil {
		return fail(stderr, cmd, err)
	}
	var res *MRTResult
	if cmd == "wcls" {
		res, err = WCLS(tab, spec)
	} else {
		res, err = EMEE(tab, spec)
	}
	if err != nil {
		return fail(stderr, cmd, err)
	}
	if *asJSON {
		err = writeJSON(stdout, res)
	} else {
		err = WriteMRTText(stdout, res, spec, *data)
	}
	if err != nil {
		fmt.Fprintf(stderr, "jitai analyze %s: writing the result: %v\n", cmd, err)
		return 1
	}
	return 0
}

// ParseLevels reads "a=low:high,b=off:on" into factor -> {low, high}.
func ParseLevels(s string) (map[string][2]string, error) {
	out := map[string][2]string{}
	for _, item := range splitList(s) {
		f, lv, ok := strings.Cut(item, "=")
		low, high, ok2 := strings.Cut(lv, ":")
		f, low, high = strings.TrimSpace(f), strings.TrimSpace(low), strings.TrimSpace(high)
		if !ok || !ok2 || f == "" || low == "" || high == "" || strings.Contains(high, ":") {
			return nil, fmt.Errorf("--levels: %q should look like factor=low:high", item)
		}
		if _, dup := out[f]; dup {
			return nil, fmt.Errorf("--levels: factor %q is given twice", f)
		}
		out[f] = [2]string{low, high}
	}
	return out, nil
}

// ParseInteractions reads "a:b,d:e" into the factors of each interaction.
func ParseInteractions(s string) [][]string {
	var out [][]string
	for _, item := range splitList(s) {
		var parts []string
		for _, p := range strings.Split(item, ":") {
			parts = append(parts, strings.TrimSpace(p))
		}
		out = append(out, parts)
	}
	return out
}

func runFactorial(args []string, stdout, stderr io.Writer) int {
	const cmd = "factorial"
	fs := flag.NewFlagSet("analyze "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "CSV with one row per run or participant (required)")
	outcome := fs.String("outcome", "", "outcome column (required)")
	factors := fs.String("factors", "", "comma-separated two-level factor columns (required)")
	levels := fs.String("levels", "", `low and high levels, e.g. "a=low:high,b=off:on" (default: the first level in sorted order is low)`)
	interactions := fs.String("interactions", "", `interaction terms, e.g. "a:b,d:e"`)
	order := fs.Int("order", 0, "include every interaction of up to this many factors (instead of --interactions)")
	covariates := fs.String("covariates", "", "comma-separated numeric covariate columns")
	asJSON := fs.Bool("json", false, "write JSON instead of a table")
	if code, ok := parseFlags(fs, args, cmd, stderr, "data", "outcome", "factors"); !ok {
		return code
	}
	if *interactions != "" && *order != 0 {
		return fail(stderr, cmd, fmt.Errorf("give either --interactions or --order, not both"))
	}
	if *order < 0 {
		return fail(stderr, cmd, fmt.Errorf("--order must be at least 1"))
	}
	lv, err := ParseLevels(*levels)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	spec := FactorialSpec{
		Outcome: *outcome, Factors: splitList(*factors), Levels: lv,
		Interactions: ParseInteractions(*interactions), Order: *order,
		Covariates: splitList(*covariates),
	}
	numeric := append([]string{spec.Outcome}, spec.Covariates...)
	tab, err := readData(*data, numeric, spec.Factors)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	res, err := Factorial(tab, spec)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	if *asJSON {
		err = writeJSON(stdout, res)
	} else {
		err = WriteFactorialText(stdout, res, spec, *data)
	}
	if err != nil {
		fmt.Fprintf(stderr, "jitai analyze %s: writing the result: %v\n", cmd, err)
		return 1
	}
	return 0
}
