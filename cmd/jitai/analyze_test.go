package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	heartSteps = "../../experiments/analysis/testdata/data_mimicHeartSteps.csv"
	binaryData = "../../experiments/analysis/testdata/data_binary.csv"
	nistData   = "../../experiments/analysis/testdata/nist_eddy_current_2x3.csv"
)

func heartStepsArgs(extra ...string) []string {
	return append([]string{"wcls", "--csv", heartSteps, "--id", "userid", "--outcome", "logstep_30min",
		"--treatment", "intervention", "--rand-prob", "rand_prob", "--availability", "avail"}, extra...)
}

func binaryArgs(est string, extra ...string) []string {
	return append([]string{est, "--csv", binaryData, "--id", "userid", "--outcome", "Y", "--treatment", "A",
		"--rand-prob", "rand_prob", "--availability", "avail", "--controls", "time_var1,time_var2"}, extra...)
}

func TestCLIGolden(t *testing.T) {
	fit3 := []string{"--controls", "logstep_pre30min,logstep_30min_lag1,is_at_home_or_work", "--moderators", "is_at_home_or_work", "--lincomb", "1,1"}
	cases := []struct {
		golden string
		args   []string
	}{
		{"wcls_fit3.txt", heartStepsArgs(fit3...)},
		{"wcls_fit3.json", heartStepsArgs(append(fit3, "--json")...)},
		{"wcls_fit1b.txt", heartStepsArgs("--controls", "logstep_pre30min", "--numerator-prob", "0.6")},
		{"wcls_binary.json", binaryArgs("wcls", "--moderators", "time_var1", "--json")},
		{"wcls_binary.txt", binaryArgs("wcls", "--moderators", "time_var1")},
		{"emee_time_var1.txt", binaryArgs("emee", "--moderators", "time_var1", "--lincomb", "1,1")},
		{"emee_time_var1.json", binaryArgs("emee", "--moderators", "time_var1", "--lincomb", "1,1", "--json")},
		{"factorial_nist_x1x2.txt", []string{"factorial", "--csv", nistData, "--outcome", "Y", "--factors", "X1,X2", "--interactions", "X1:X2"}},
		{"factorial_nist_x1x2.json", []string{"factorial", "--csv", nistData, "--outcome", "Y", "--factors", "X1,X2", "--order", "2", "--json"}},
		{"factorial_nist_saturated.json", []string{"factorial", "--csv", nistData, "--outcome", "Y", "--factors", "X1,X2,X3", "--order", "3", "--levels", "X1=-1:1", "--json"}},
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := runAnalyze(c.args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			path := filepath.Join("testdata", "analyze", "golden", c.golden)
			if !strings.HasSuffix(c.golden, ".json") || *update {
				goldenFile(t, path, stdout.String())
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			compareJSON(t, stdout.Bytes(), want)
		})
	}
}

// compareJSON compares JSON documents structurally, numbers to a relative
// 1e-9 (the last digits of a float may differ between platforms).
func compareJSON(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, g, w any)
	walk = func(path string, g, w any) {
		switch wv := w.(type) {
		case map[string]any:
			gv, ok := g.(map[string]any)
			if !ok || len(gv) != len(wv) {
				t.Errorf("%s: got %v, want %v", path, g, w)
				return
			}
			for k := range wv {
				walk(path+"."+k, gv[k], wv[k])
			}
		case []any:
			gv, ok := g.([]any)
			if !ok || len(gv) != len(wv) {
				t.Errorf("%s: got %v, want %v", path, g, w)
				return
			}
			for i := range wv {
				walk(path+"["+strconv.Itoa(i)+"]", gv[i], wv[i])
			}
		case float64:
			gv, ok := g.(float64)
			if !ok || math.Abs(gv-wv) > 1e-9*math.Max(math.Abs(wv), 1e-300) && math.Abs(gv-wv) > 1e-15 {
				t.Errorf("%s: got %v, want %v", path, g, w)
			}
		default:
			if g != w {
				t.Errorf("%s: got %v, want %v", path, g, w)
			}
		}
	}
	walk("$", g, w)
}

// The JSON keys are the ones the issue specifies, in that order.
func TestCLIJSONShape(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runAnalyze(binaryArgs("wcls", "--json"), &stdout, &stderr); code != 0 {
		t.Fatal(stderr.String())
	}
	out := stdout.String()
	keys := []string{`"estimator"`, `"n_participants"`, `"n_eff"`, `"small_sample"`, `"test"`, `"effects"`, `"term"`, `"estimate"`,
		`"std_err"`, `"ci_low"`, `"ci_high"`, `"statistic"`, `"df1"`, `"df2"`, `"p_value"`, `"controls"`}
	last := -1
	for _, k := range keys {
		i := strings.Index(out, k)
		if i < 0 || i < last {
			t.Fatalf("key %s missing or out of order in\n%s", k, out)
		}
		last = i
	}
	stdout.Reset()
	if code := runAnalyze([]string{"factorial", "--csv", nistData, "--outcome", "Y", "--factors", "X1,X2", "--json"}, &stdout, &stderr); code != 0 {
		t.Fatal(stderr.String())
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &f); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"coefficients", "anova", "residual_df", "sigma", "r_squared"} {
		if _, ok := f[k]; !ok {
			t.Errorf("factorial JSON has no %q", k)
		}
	}
	if len(f) != 5 {
		t.Errorf("factorial JSON has %d keys, want 5", len(f))
	}
}

func TestCLIErrors(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(heartSteps)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	// Line 3 is available (avail 1): give it a probability of 1.
	badProb := append([]string(nil), lines...)
	f := strings.Split(badProb[2], ",")
	if f[9] != "1" {
		t.Fatalf("line 3 is not available: %s", badProb[2])
	}
	f[8] = "1"
	badProb[2] = strings.Join(f, ",")
	badProbPath := filepath.Join(dir, "bad_prob.csv")
	// Swap line 3 (participant 1) with the first line of participant 2 (line 212).
	split := append([]string(nil), lines...)
	split[2], split[211] = split[211], split[2]
	splitPath := filepath.Join(dir, "split.csv")
	for p, l := range map[string][]string{badProbPath: badProb, splitPath: split} {
		if err := os.WriteFile(p, []byte(strings.Join(l, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	withData := func(path string, extra ...string) []string {
		a := heartStepsArgs(extra...)
		a[2] = path
		return a
	}
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"column does not exist", heartStepsArgs("--controls", "steps_yesterday"), 1,
			[]string{`column "steps_yesterday" does not exist`}},
		{"outcome column does not exist", binaryArgs("emee", "--outcome", "Z"), 1, []string{`column "Z" does not exist`}},
		{"probability outside (0,1) on an available row", withData(badProbPath), 1,
			[]string{"bad_prob.csv:3:", `participant "1"`, `column "rand_prob"`, "outside (0,1)"}},
		{"rows not contiguous", withData(splitPath), 1,
			[]string{"split.csv:", `rows of participant "1" are not contiguous`}},
		{"moderator that is not a control", heartStepsArgs("--moderators", "is_at_home_or_work"), 2,
			[]string{`moderator "is_at_home_or_work" is not a control`}},
		{"singular design", heartStepsArgs("--controls", "logstep_pre30min,rand_prob"), 1,
			[]string{"singular design", `control "rand_prob"`}},
		{"emee singular design", binaryArgs("emee", "--controls", "time_var1,time_var1"), 2,
			[]string{`control "time_var1" is listed twice`}},
		{"missing flags", []string{"wcls", "--csv", heartSteps}, 2, []string{"missing required flag(s) --id, --outcome, --treatment, --rand-prob"}},
		{"bad lincomb", heartStepsArgs("--lincomb", "1,x"), 2, []string{"invalid value"}},
		{"lincomb length", heartStepsArgs("--lincomb", "1,1"), 2, []string{"linear combination 1 has 2 coefficients, want 1"}},
		{"no such file", heartStepsArgs("--csv", filepath.Join(dir, "nope.csv")), 1, []string{"nope.csv"}},
		{"unknown estimator", []string{"gee"}, 2, []string{`unknown command "gee" for "jitai analyze"`}},
		{"no estimator", nil, 2, []string{"Usage:", "wcls", "emee", "factorial"}},
		{"interactions and order", []string{"factorial", "--csv", nistData, "--outcome", "Y", "--factors", "X1,X2", "--order", "2", "--interactions", "X1:X2"}, 2,
			[]string{"either --interactions or --order"}},
		{"bad levels", []string{"factorial", "--csv", nistData, "--outcome", "Y", "--factors", "X1", "--levels", "X1=lo"}, 2,
			[]string{"factor=low:high"}},
		{"factorial column does not exist", []string{"factorial", "--csv", nistData, "--outcome", "Y", "--factors", "X1,X9"}, 1,
			[]string{`column "X9" does not exist`}},
		{"data flag of the store", []string{"wcls", "--data", heartSteps}, 2, []string{"unknown flag: --data"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkAnalyzeError(t, c.args, c.code, c.want) })
	}
}

// checkAnalyzeError runs `jitai analyze ARGS...` and checks the exit code,
// that nothing went to stdout on an error and that stderr says each of want.
func checkAnalyzeError(t *testing.T, args []string, code int, want []string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	got := runAnalyze(args, &stdout, &stderr)
	if got != code {
		t.Fatalf("exit %d, want %d; stderr: %s", got, code, stderr.String())
	}
	if code != 0 && stdout.Len() != 0 {
		t.Errorf("stdout not empty on error: %s", stdout.String())
	}
	for _, w := range want {
		if !strings.Contains(stderr.String(), w) {
			t.Errorf("stderr %q does not contain %q", stderr.String(), w)
		}
	}
}

// runAnalyze runs `jitai analyze ARGS...`.
func runAnalyze(args []string, stdout, stderr *bytes.Buffer) int {
	return run(append([]string{"analyze"}, args...), stdout, stderr)
}

// TestAnalyzeCompleteCases: the HeartSteps data with the outcome blanked
// (NA) on some available rows and a control blanked on one unavailable
// row. By default every estimator analyses the complete cases: the same
// result, to the last digit, as the same data with those rows deleted by
// hand, and the report counts the rows left out per participant (the
// unavailable row stays: wcls never reads its outcome). --missing error
// refuses the first such row, naming its line and column.
func TestAnalyzeCompleteCases(t *testing.T) {
	raw, err := os.ReadFile(heartSteps)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	header := strings.Split(lines[0], ",")
	col := func(name string) int { return slices.Index(header, name) }
	withNA := []string{lines[0]}
	deleted := []string{lines[0]}
	blanked := map[string]int{}
	unavailableBlank := false
	for i, l := range lines[1:] {
		f := strings.Split(l, ",")
		switch {
		case f[col("avail")] == "1" && i%17 == 5:
			f[col("logstep_30min")] = "NA"
			blanked[f[col("userid")]]++
			withNA = append(withNA, strings.Join(f, ","))
			continue // not in the hand-made complete cases
		case f[col("avail")] == "0" && !unavailableBlank:
			f[col("logstep_30min")] = "NA"
			unavailableBlank = true
		}
		withNA = append(withNA, strings.Join(f, ","))
		deleted = append(deleted, strings.Join(f, ","))
	}
	dir := t.TempDir()
	naFile, delFile := filepath.Join(dir, "na.csv"), filepath.Join(dir, "deleted.csv")
	if err := os.WriteFile(naFile, []byte(strings.Join(withNA, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(delFile, []byte(strings.Join(deleted, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(file string, extra ...string) []string {
		return append([]string{"wcls", "--csv", file, "--id", "userid", "--outcome", "logstep_30min", "--treatment", "intervention",
			"--rand-prob", "rand_prob", "--availability", "avail", "--controls", "logstep_pre30min,is_at_home_or_work", "--moderators", "is_at_home_or_work", "--json"}, extra...)
	}
	var a, b, stderr bytes.Buffer
	if code := runAnalyze(args(naFile), &a, &stderr); code != 0 {
		t.Fatalf("complete cases: %s", stderr.String())
	}
	if code := runAnalyze(args(delFile), &b, &stderr); code != 0 {
		t.Fatalf("rows deleted by hand: %s", stderr.String())
	}
	var got, want struct {
		Effects []map[string]any `json:"effects"`
		Dropped *struct {
			Rows          int            `json:"rows"`
			ByParticipant map[string]int `json:"by_participant"`
		} `json:"dropped_rows"`
	}
	if err := json.Unmarshal(a.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b.Bytes(), &want); err != nil {
		t.Fatal(err)
	}
	if len(blanked) == 0 || !reflect.DeepEqual(got.Effects, want.Effects) {
		t.Fatalf("complete cases differ from the rows deleted by hand:\n%v\n%v", got.Effects, want.Effects)
	}
	total := 0
	for _, n := range blanked {
		total += n
	}
	if got.Dropped == nil || got.Dropped.Rows != total || !reflect.DeepEqual(got.Dropped.ByParticipant, blanked) || want.Dropped != nil {
		t.Fatalf("dropped %+v, want %d rows %v (and none for the complete file: %+v)", got.Dropped, total, blanked, want.Dropped)
	}
	var out bytes.Buffer
	stderr.Reset()
	if code := runAnalyze(args(naFile, "--missing", "error"), &out, &stderr); code == 0 || !strings.Contains(stderr.String(), "outcome is missing on an available row") {
		t.Fatalf("--missing error: exit %d, %s", code, stderr.String())
	}
}
