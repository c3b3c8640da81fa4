package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenFile(t, filepath.Join("testdata", "golden", name), got)
}

// goldenFile compares got with the file at path (rewritten with -update).
func goldenFile(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// revisionRe matches a policy revision prefix, which changes with every
// edit of an example study.
var revisionRe = regexp.MustCompile(`revision [0-9a-f]{12}`)

func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

const examples = "../../policies/examples"

// TestStudyCheckGolden: check passes the example studies and reports every
// problem of a broken study, each with file:line, exiting 1.
func TestStudyCheckGolden(t *testing.T) {
	for _, c := range []struct {
		dir  string
		code int
	}{
		{filepath.Join(examples, "stress-mrt"), 0},
		{filepath.Join(examples, "mood-most"), 0},
		{filepath.Join("testdata", "study", "broken"), 1},
	} {
		name := filepath.Base(c.dir)
		t.Run(name, func(t *testing.T) {
			out, errs, code := runCmd(t, "study", "check", c.dir)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, out, errs)
			}
			golden(t, "study-check-"+name+".txt", revisionRe.ReplaceAllString(out, "revision <rev>"))
		})
	}
}

// TestStudyTestGolden runs the example studies' Rego tests and scenarios.
func TestStudyTestGolden(t *testing.T) {
	for _, name := range []string{"stress-mrt", "mood-most"} {
		t.Run(name, func(t *testing.T) {
			out, errs, code := runCmd(t, "study", "test", filepath.Join(examples, name))
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errs)
			}
			golden(t, "study-test-"+name+".txt", out)
		})
	}
}

// copyStudy copies an example study to a temporary folder of the same
// name, applying edit to each file's text (by path relative to the study).
func copyStudy(t *testing.T, name string, edit func(rel, text string) (string, bool)) string {
	t.Helper()
	src := filepath.Join(examples, name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		text, keep := edit(filepath.ToSlash(rel), string(b))
		if !keep {
			return nil
		}
		return os.WriteFile(filepath.Join(dst, rel), []byte(text), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestScenarioCatchesBrokenQuietHours: a copy of stress-mrt whose quiet
// hours rule never fires, and without its Rego tests, still compiles and
// checks clean, but its scenario files catch it: the quiet-hours cases
// fail with file:line and expected vs got.
func TestScenarioCatchesBrokenQuietHours(t *testing.T) {
	rule := "unavailable contains \"quiet_hours\" if {\n"
	dir := copyStudy(t, "stress-mrt", func(rel, text string) (string, bool) {
		switch rel {
		case "policy/policy_test.rego":
			return "", false // only the scenarios stand guard
		case "policy/policy.rego":
			if !strings.Contains(text, rule) {
				t.Fatalf("stress-mrt's policy has no %q; update this test", rule)
			}
			return strings.Replace(text, rule, rule+"\tfalse # quiet hours removed by mistake\n", 1), true
		}
		return text, true
	})
	if out, errs, code := runCmd(t, "study", "check", dir); code != 0 {
		t.Fatalf("the broken copy should pass check (it is well-formed): %s%s", out, errs)
	}
	out, errs, code := runCmd(t, "study", "test", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1: the scenarios must catch the missing quiet hours\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"FAIL stress-mrt/scenarios/availability.yaml:10 no prompt in the study's quiet hours (late evening)",
		"stress-mrt/scenarios/availability.yaml:16: action: want none, got",
		"stress-mrt/scenarios/availability.yaml:17: reasons: want [quiet_hours], got",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	golden(t, "study-test-broken-quiet-hours.txt", out)
}

// TestStudyFmt: fmt --check lists an unformatted policy and exits 1; -w
// formats it (the policy still compiles to the same decisions); then
// --check passes. The examples are formatted.
func TestStudyFmt(t *testing.T) {
	for _, name := range []string{"stress-mrt", "mood-most"} {
		if out, errs, code := runCmd(t, "study", "fmt", "--check", filepath.Join(examples, name)); code != 0 {
			t.Errorf("example %s is not formatted: %s%s", name, out, errs)
		}
	}
	dir := copyStudy(t, "stress-mrt", func(rel, text string) (string, bool) {
		if rel == "policy/policy.rego" {
			text = strings.Replace(text, "late_night if now_minute >= 1260", "late_night   if   now_minute>=1260", 1)
		}
		return text, true
	})
	policy := filepath.Join(dir, "policy", "policy.rego")
	out, _, code := runCmd(t, "study", "fmt", "--check", dir)
	if code != 1 || strings.TrimSpace(out) != policy {
		t.Fatalf("--check: exit %d, output %q; want 1 and %s", code, out, policy)
	}
	before, _ := os.ReadFile(policy)
	if out, _, code = runCmd(t, "study", "fmt", dir); code != 0 || strings.TrimSpace(out) != policy {
		t.Fatalf("fmt without -w: exit %d, output %q", code, out)
	}
	if after, _ := os.ReadFile(policy); !bytes.Equal(before, after) {
		t.Fatal("fmt without -w changed the file")
	}
	if _, errs, code := runCmd(t, "study", "fmt", "-w", dir); code != 0 {
		t.Fatalf("-w: exit %d: %s", code, errs)
	}
	if out, _, code = runCmd(t, "study", "fmt", "--check", dir); code != 0 || out != "" {
		t.Fatalf("--check after -w: exit %d, output %q", code, out)
	}
	got, _ := os.ReadFile(policy)
	want, _ := os.ReadFile(filepath.Join(examples, "stress-mrt", "policy", "policy.rego"))
	if !bytes.Equal(got, want) {
		t.Error("formatting did not restore the original text")
	}
	if out, errs, code := runCmd(t, "study", "test", dir); code != 0 {
		t.Errorf("the formatted policy fails its tests: %s%s", out, errs)
	}
}

// TestScenarioFileProblems: a scenario file with an unknown key is reported
// with file:line; a case that cannot run (bad time) fails at its line.
func TestScenarioFileProblems(t *testing.T) {
	dir := copyStudy(t, "stress-mrt", func(rel, text string) (string, bool) {
		return text, !strings.HasPrefix(rel, "scenarios/")
	})
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, "scenarios", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "cases:\n  - name: typo\n    time: 2026-11-18T14:30\n    decision_point: afternoon\n    expct: {action: none}\n")
	write("b.yaml", "cases:\n  - name: bad time\n    time: yesterday\n    decision_point: afternoon\n    expect: {action: none}\n  - name: unknown point\n    time: 2026-11-18T14:30\n    decision_point: teatime\n")
	out, _, code := runCmd(t, "study", "test", dir)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	for _, want := range []string{
		"ERROR stress-mrt/scenarios/a.yaml:5: field expct not found (docs/study.md lists the scenario keys)",
		"FAIL stress-mrt/scenarios/b.yaml:2 bad time\n    stress-mrt/scenarios/b.yaml:3: time: \"yesterday\" is neither RFC 3339 nor YYYY-MM-DDTHH:MM",
		"FAIL stress-mrt/scenarios/b.yaml:6 unknown point\n    stress-mrt/scenarios/b.yaml:8: the decision failed: decision_point: study stress-mrt has no decision point \"teatime\"",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestStudyCheckNamesTheEvaluator: a policy the planned IR cannot run (it
// uses `with`) is reported as evaluated by topdown, with the reason, and
// still passes.
func TestStudyCheckNamesTheEvaluator(t *testing.T) {
	dir := t.TempDir()
	yml, err := os.ReadFile(filepath.Join(examples, "stress-mrt", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policytest.WriteStudy(t, dir, string(yml), `package jitai.policy

decision := {"safety_reasons": [], "unavailable_reasons": unavailable, "candidates": []}

unavailable := ["driving" | driving with input.context.driving as true]

driving if input.context.driving == true
`)
	out, errs, code := runCmd(t, "study", "check", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "evaluator topdown (the planned IR cannot run this policy:") || !strings.Contains(out, "`with` is not supported") {
		t.Errorf("check does not say the policy runs on topdown and why:\n%s", out)
	}
}

// TestStudyCheckCountsFallbacks: a policy whose every evaluation fails on
// the IR (a rule body topdown's early exit never reaches calls a failing
// built-in) passes, as topdown decides it, but check says what it costs.
func TestStudyCheckCountsFallbacks(t *testing.T) {
	dir := t.TempDir()
	yml, err := os.ReadFile(filepath.Join(examples, "stress-mrt", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policytest.WriteStudy(t, dir, string(yml), `package jitai.policy

decision := {"safety_reasons": [], "unavailable_reasons": ["quiet" | quiet], "candidates": []}

quiet if true

quiet if to_number(concat("", ["not ", "a number"])) > 0
`)
	out, errs, code := runCmd(t, "study", "check", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "1000 of them failed on the IR and were handed to topdown") {
		t.Errorf("check does not count the fallbacks:\n%s", out)
	}
}

// TestStudyCheckFindsConflictingRule: the change a designer made, a second
// definition of need that conflicts with the first for a stressed, low-mood
// participant, compiles; study check used to say ok. It now fails, naming
// the rule's file:line, the conflict and an input on which it happens.
func TestStudyCheckFindsConflictingRule(t *testing.T) {
	dir := copyStudy(t, "stress-mrt", func(rel, text string) (string, bool) {
		if rel == "policy/policy.rego" {
			text += "\nneed := \"low_mood\" if input.state.ema.mood.value <= 4\n"
		}
		return text, true
	})
	out, _, code := runCmd(t, "study", "check", dir)
	if code != exitFailure {
		t.Fatalf("study check exited %d on a conflicting rule:\n%s", code, out)
	}
	for _, want := range []string{"policy.rego:", "eval_conflict_error", "data.jitai.policy.need", "a scenario on which it happens, to paste", "reasons_exclude:", "- policy_error", "mood:"} {
		if !strings.Contains(out, want) {
			t.Errorf("study check output does not say %q:\n%s", want, out)
		}
	}
}

// TestStudyCheckWarnsOnCopiedSettings: a Rego test whose base input copies
// study.yaml's quiet hours instead of reading data.jitai.study gets a
// warning naming file:line, the setting and its value; the study still
// passes (exit 0).
func TestStudyCheckWarnsOnCopiedSettings(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(examples, "stress-mrt", "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := policies.ParseConfig("study.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	q := cfg.QuietHours.Start
	var line int
	dir := copyStudy(t, "stress-mrt", func(rel, text string) (string, bool) {
		if rel == "policy/policy_test.rego" {
			const own = "\t\"study\": study,\n"
			i := strings.Index(text, own)
			if i < 0 {
				t.Fatalf("stress-mrt's tests have no %q; update this test", own)
			}
			line = strings.Count(text[:i], "\n") + 1
			text = text[:i] + fmt.Sprintf("\t\"study\": {\"quiet_hours\": {\"start\": %q, \"end\": \"03:33\"}},\n", q) + text[i+len(own):]
		}
		return text, true
	})
	out, errs, code := runCmd(t, "study", "check", dir)
	if code != 0 {
		t.Fatalf("exit %d: warnings must not fail the check\n%s%s", code, out, errs)
	}
	want := fmt.Sprintf("stress-mrt/policy/policy_test.rego:%d: warning: the test repeats study.yaml's quiet_hours.start (%q); read it from data.jitai.study instead\n", line, q)
	if !strings.Contains(out, want) || strings.Count(out, "warning:") != 1 {
		t.Errorf("output lacks exactly the warning %q:\n%s", want, out)
	}
}
