package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/jitai/jitai/experiments/power"
)

// newPowerCmd is `jitai power mrt|mrt-binary|factorial`: sample size and
// power for micro-randomized trials (continuous and binary proximal
// outcomes) and factorial experiments, computed by experiments/power.
func newPowerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "power",
		Short: "Sample size and power: mrt, mrt-binary, factorial",
		Long: `Sample size and power of micro-randomized trials (continuous and binary
proximal outcomes) and of factorial experiments. --json prints
{"n":...,"power":...,...}.

Exit status: 0 computed; 1 the computation failed (for example a power that
cannot be reached); 2 usage error (the message names the flag).`,
		Args: cobra.NoArgs,
		RunE: groupRun,
	}
	cmd.AddCommand(newPowerMRTCmd(), newPowerBinaryCmd(), newPowerFactorialCmd())
	return cmd
}

// floatList is a comma-separated list of numbers (a pflag.Value).
type floatList []float64

// String returns the numbers comma-separated.
func (l *floatList) String() string {
	parts := make([]string, len(*l))
	for i, v := range *l {
		parts[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(parts, ",")
}

// Set parses a comma-separated list of numbers.
func (l *floatList) Set(s string) error {
	*l = (*l)[:0]
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", f)
		}
		*l = append(*l, v)
	}
	if len(*l) == 0 {
		return errors.New("no numbers given")
	}
	return nil
}

// Type names the value in help.
func (l *floatList) Type() string { return "numbers" }

// flagRules checks which flags of a power method were given, and names the
// flag in its errors.
type flagRules struct {
	fs *pflag.FlagSet
	// fields maps a power.FieldError's Field to the flag(s) to name.
	fields map[string]string
}

func (r *flagRules) set(name string) bool { return r.fs.Changed(name) }

// usageErr is a usage error about one flag.
func (r *flagRules) usageErr(flagName, format string, args ...any) error {
	return usageErrorf("--%s: %s", flagName, fmt.Sprintf(format, args...))
}

// require returns the first of names not given.
func (r *flagRules) require(names ...string) (string, bool) {
	for _, n := range names {
		if !r.set(n) {
			return n, false
		}
	}
	return "", true
}

// only reports the first of names that is given although it does not
// apply.
func (r *flagRules) only(why string, names ...string) error {
	for _, n := range names {
		if r.set(n) {
			return r.usageErr(n, "applies only %s", why)
		}
	}
	return nil
}

// fail reports a computation error: a FieldError becomes a usage error
// naming the flag (exit 2), anything else exits 1.
func (r *flagRules) fail(err error) error {
	var fe *power.FieldError
	if errors.As(err, &fe) {
		flagName := r.fields[fe.Field]
		if flagName == "" {
			flagName = fe.Field
		}
		return usageErrorf("--%s: %s", flagName, fe.Problem)
	}
	return errors.New(strings.TrimPrefix(err.Error(), "power: "))
}

// report runs a power computation on spec and prints its result: JSON with
// asJSON, else text by write.
func report[S, R any](r *flagRules, w io.Writer, asJSON bool, spec S, compute func(S) (R, error), write func(io.Writer, S, R)) error {
	res, err := compute(spec)
	if err != nil {
		return r.fail(err)
	}
	if asJSON {
		return writeIndentedJSON(w, res)
	}
	write(w, spec, res)
	return nil
}

func writeIndentedJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func g(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func describeList(v []float64, days, total int) string {
	if len(v) == 1 {
		return g(v[0])
	}
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	per := "per decision point"
	if len(v) == days && days != total {
		per = "per day"
	}
	return fmt.Sprintf("%d values %s, %s to %s", len(v), per, g(lo), g(hi))
}

// formatCoef shows coefficients to 6 digits, with rounding noise (below
// 1e-10 of the largest) shown as 0.
func formatCoef(v []float64) string {
	big := 0.0
	for _, x := range v {
		big = max(big, math.Abs(x))
	}
	parts := make([]string, len(v))
	for i, x := range v {
		if math.Abs(x) < 1e-10*big {
			x = 0
		}
		parts[i] = g(x)
	}
	return strings.Join(parts, ", ")
}
