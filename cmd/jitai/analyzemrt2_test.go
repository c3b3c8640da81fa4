package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const mrt2Dir = "../../experiments/analysis/testdata/mrt2"

// TestCLIMRT2Reference runs `jitai analyze emee2|dcee|mcee|emee|wcls --json`
// on the shared reference data sets with the flags that say what each case's
// R call says, and compares the effects with the R figures of
// expected_shared.json (relative 1e-6 for estimates and standard errors,
// absolute 1e-6 for interval ends and p-values).
func TestCLIMRT2Reference(t *testing.T) {
	base := func(est, data, outcome string, extra ...string) []string {
		return append([]string{est, "--csv", filepath.Join(mrt2Dir, data), "--id", "id", "--outcome", outcome,
			"--treatment", "A", "--rand-prob", "prob", "--availability", "avail", "--json"}, extra...)
	}
	mediator := func(extra ...string) []string {
		return base("mcee", "mrt2_mediator_shared.csv", "y_distal", append([]string{"--dp", "dp", "--mediator", "med"}, extra...)...)
	}
	args := map[string][]string{
		"shared_emee2_marginal": base("emee2", "mrt2_binary_shared.csv", "y_bin", "--controls", "x1,day"),
		"shared_emee2_home": base("emee2", "mrt2_binary_shared.csv", "y_bin", "--moderators", "home", "--controls", "x1,day,home",
			"--numerator-prob", "0.4", "--lincomb", "1,1"),
		"shared_emee2_day":        base("emee2", "mrt2_binary_shared.csv", "y_bin", "--moderators", "day", "--controls", "day", "--lincomb", "1,6"),
		"shared_dcee_lm_marginal": base("dcee", "mrt2_distal_shared.csv", "y_distal", "--controls", "x1,home,dp", "--control-reg-method", "lm"),
		"shared_dcee_lm_home": base("dcee", "mrt2_distal_shared.csv", "y_distal", "--moderators", "home", "--controls", "x1,home,dp",
			"--control-reg-method", "lm", "--lincomb", "1,1"),
		"shared_dcee_zero_marginal": base("dcee", "mrt2_distal_shared.csv", "y_distal", "--control-reg-method", "set_to_zero"),
		"shared_mcee_glm_const":     mediator("--mediator-controls", "dp,x1,home,med", "--lincomb-joint", "1,-1"),
		"shared_mcee_glm_dp": mediator("--effect-form", "dp", "--mediator-controls", "dp,x1,home,med",
			"--lincomb-alpha", "1,25", "--lincomb-beta", "1,25"),
		"shared_mcee_general_known_glm_lm": mediator("--mediator-controls", "dp,x1,med", "--controls", "dp,x1"),
		"shared_emee_marginal":             base("emee", "mrt2_binary_shared.csv", "y_bin", "--controls", "x1,day"),
		"shared_emee_home_pt04": base("emee", "mrt2_binary_shared.csv", "y_bin", "--moderators", "home", "--controls", "x1,day,home",
			"--numerator-prob", "0.4", "--lincomb", "1,1"),
		"shared_wcls_binaryset_home": base("wcls", "mrt2_binary_shared.csv", "y_prox", "--moderators", "home", "--controls", "x1,day,home",
			"--lincomb", "1,1"),
		"shared_wcls_distalset_pt04":         base("wcls", "mrt2_distal_shared.csv", "y_prox", "--controls", "x1,day", "--numerator-prob", "0.4"),
		"shared_wcls_mediatorset_home_small": base("wcls", "mrt2_mediator_shared.csv", "y_prox", "--moderators", "home", "--controls", "x1,home"),
	}
	raw, err := os.ReadFile(filepath.Join(mrt2Dir, "expected_shared.json"))
	if err != nil {
		t.Fatal(err)
	}
	type refEffect struct {
		Term     string  `json:"term"`
		Estimate float64 `json:"estimate"`
		StdErr   float64 `json:"std_err"`
		CILow    float64 `json:"ci_low"`
		CIHigh   float64 `json:"ci_high"`
		PValue   float64 `json:"p_value"`
	}
	var file map[string][]struct {
		Name    string      `json:"name"`
		Effects []refEffect `json:"effects"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, cases := range file {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				a, ok := args[c.Name]
				if !ok {
					t.Fatalf("no command line for reference case %s", c.Name)
				}
				seen++
				var stdout, stderr bytes.Buffer
				if code := runAnalyze(a, &stdout, &stderr); code != 0 {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				var got struct {
					Effects []refEffect `json:"effects"`
				}
				if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
					t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
				}
				if len(got.Effects) != len(c.Effects) {
					t.Fatalf("%d effects, want %d:\n%s", len(got.Effects), len(c.Effects), stdout.String())
				}
				for k, w := range c.Effects {
					g := got.Effects[k]
					if g.Term != w.Term {
						t.Errorf("row %d: term %q, want %q", k, g.Term, w.Term)
					}
					for _, f := range []struct {
						what      string
						got, want float64
						relative  bool
					}{{"estimate", g.Estimate, w.Estimate, true}, {"std_err", g.StdErr, w.StdErr, true},
						{"ci_low", g.CILow, w.CILow, false}, {"ci_high", g.CIHigh, w.CIHigh, false}, {"p_value", g.PValue, w.PValue, false}} {
						d := math.Abs(f.got - f.want)
						if f.relative {
							d /= math.Abs(f.want)
						}
						if !(d <= 1e-6) {
							t.Errorf("%s %s = %.12g, want %.12g", w.Term, f.what, f.got, f.want)
						}
					}
				}
			})
		}
	}
	if seen != len(args) {
		t.Errorf("%d reference cases run, %d command lines", seen, len(args))
	}
}

func TestCLIMRT2Errors(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(mrt2Dir, "mrt2_binary_shared.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// Blank the y_bin field (column 11) of the first unavailable row: emee2
	// uses unavailable rows, so the data must be complete.
	lines := strings.Split(string(raw), "\n")
	line := 0
	for i := 1; i < len(lines); i++ {
		if f := strings.Split(lines[i], ","); len(f) > 10 && f[6] == "0" {
			f[10] = ""
			lines[i] = strings.Join(f, ",")
			line = i + 1
			break
		}
	}
	if line == 0 {
		t.Fatal("no unavailable row")
	}
	holey := filepath.Join(dir, "holey.csv")
	if err := os.WriteFile(holey, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	common := func(est, data, outcome string, extra ...string) []string {
		return append([]string{est, "--csv", data, "--id", "id", "--outcome", outcome, "--treatment", "A",
			"--rand-prob", "prob", "--availability", "avail"}, extra...)
	}
	distal := filepath.Join(mrt2Dir, "mrt2_distal_shared.csv")
	med := filepath.Join(mrt2Dir, "mrt2_mediator_shared.csv")
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"emee2 needs complete data", common("emee2", holey, "y_bin", "--controls", "x1", "--missing", "error"), 1,
			[]string{fmt.Sprintf("holey.csv:%d:", line), `column "y_bin"`, "missing value", "every row"}},
		{"emee2 non-binary outcome", common("emee2", distal, "y_prox"), 1, []string{`column "y_prox"`, "binary outcome must be 0 or 1"}},
		{"dcee without a method", common("dcee", distal, "y_distal"), 2, []string{"missing required flag(s) --control-reg-method"}},
		{"dcee gam", common("dcee", distal, "y_distal", "--control-reg-method", "gam"), 2, []string{`"gam" is not implemented`}},
		{"dcee numerator", common("dcee", distal, "y_distal", "--control-reg-method", "lm", "--numerator-prob", "0.5"), 2,
			[]string{"dcee has no numerator probability"}},
		{"dcee constant probability", common("dcee", distal, "y_distal", "--control-reg-method", "lm", "--rand-prob", "0.5"), 2,
			[]string{"as a column"}},
		{"dcee lincomb length", common("dcee", distal, "y_distal", "--control-reg-method", "set_to_zero", "--lincomb", "1,1"), 2,
			[]string{"linear combination 1 has 2 coefficients, want 1"}},
		{"mcee without dp and mediator", common("mcee", med, "y_distal"), 2, []string{"missing required flag(s) --dp, --mediator"}},
		{"mcee moderators", common("mcee", med, "y_distal", "--dp", "dp", "--mediator", "med", "--moderators", "home"), 2,
			[]string{"--effect-form"}},
		{"mcee lincomb", common("mcee", med, "y_distal", "--dp", "dp", "--mediator", "med", "--lincomb", "1"), 2,
			[]string{"--lincomb-alpha"}},
		{"mcee rf", common("mcee", med, "y_distal", "--dp", "dp", "--mediator", "med", "--control-reg-method", "rf"), 2,
			[]string{`"rf" is not implemented`}},
		{"mcee mediator in eta controls", common("mcee", med, "y_distal", "--dp", "dp", "--mediator", "med", "--controls", "x1,med"), 2,
			[]string{"must not include the mediator"}},
		{"mcee joint lincomb length", common("mcee", med, "y_distal", "--dp", "dp", "--mediator", "med", "--lincomb-joint", "1"), 2,
			[]string{"joint linear combination 1 has 1 coefficients, want 2"}},
		{"mcee outcome not distal", common("mcee", med, "y_prox", "--dp", "dp", "--mediator", "med"), 1,
			[]string{`column "y_prox"`, "same on every row of a participant"}},
		{"mcee decision points", common("mcee", med, "y_distal", "--dp", "x1", "--mediator", "med"), 1,
			[]string{`column "x1"`, "increase strictly"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkAnalyzeError(t, c.args, c.code, c.want) })
	}
}

// The text reports of the new estimators name them and their tables.
func TestCLIMRT2Text(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"mcee", "--csv", filepath.Join(mrt2Dir, "mrt2_mediator_shared.csv"), "--id", "id", "--dp", "dp", "--outcome", "y_distal",
		"--treatment", "A", "--mediator", "med", "--rand-prob", "prob", "--availability", "avail", "--mediator-controls", "dp,x1,home,med",
		"--lincomb-joint", "1,-1"}
	if code := runAnalyze(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, w := range []string{"MCEE", "alpha:(Intercept)", "beta:(Intercept)", "L x theta", "0.393172", "43"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("report does not contain %q:\n%s", w, stdout.String())
		}
	}
	if strings.Contains(stdout.String(), "Control variables") {
		t.Errorf("mcee report has a control table:\n%s", stdout.String())
	}
}
