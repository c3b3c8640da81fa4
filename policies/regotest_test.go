package policies

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jitai/jitai/interventions"
)

// copyExample copies an example study to a temporary folder of the same
// name, applies edit to each named file's text, and writes extra files.
func copyExample(t *testing.T, name string, edit map[string]func(string) string, extra map[string]string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join("examples", name))); err != nil {
		t.Fatal(err)
	}
	for rel, f := range edit {
		p := filepath.Join(dst, filepath.FromSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for rel, text := range extra {
		if err := os.WriteFile(filepath.Join(dst, filepath.FromSlash(rel)), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// replaceOnce replaces old by new in text, failing the test when text
// does not contain old (the example changed: update the test).
func replaceOnce(t *testing.T, text, old, new string) string {
	t.Helper()
	if !strings.Contains(text, old) {
		t.Fatalf("text lacks %q; update this test", old)
	}
	return strings.Replace(text, old, new, 1)
}

func loadExample(t *testing.T, dir string) *Study {
	t.Helper()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := LoadStudy(context.Background(), dir, cat)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// failing runs a study's Rego tests and returns the names of those that
// fail; it fails the test when fewer than 20 ran.
func failing(t *testing.T, s *Study) []string {
	t.Helper()
	results, err := s.RunTests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 20 {
		t.Fatalf("only %d Rego tests ran", len(results))
	}
	var out []string
	for _, r := range results {
		if !r.Pass {
			out = append(out, r.Name)
		}
	}
	return out
}

// TestRegoTestsFollowStudySettings: with other quiet hours (20:00-07:00)
// and other caps in study.yaml, the example Rego tests still pass: they
// read the settings from data.jitai.study. A mutant policy that ignores
// input.study and hard-codes the original settings fails quiet-hours,
// daily-cap and gap tests once study.yaml changes (tests it passed with
// the original study.yaml, where the settings agree).
func TestRegoTestsFollowStudySettings(t *testing.T) {
	for _, name := range []string{"stress-mrt", "mood-most"} {
		t.Run(name, func(t *testing.T) {
			orig := loadExample(t, filepath.Join("examples", name)).Config
			q, b := orig.QuietHours, orig.Burden
			newCap, newGap := b.MaxPerDay-1, b.MinMinutesBetween+60
			changed := func(text string) string {
				text = replaceOnce(t, text, fmt.Sprintf("quiet_hours:\n  start: %q\n  end: %q\n", q.Start, q.End), "quiet_hours:\n  start: \"20:00\"\n  end: \"07:00\"\n")
				text = replaceOnce(t, text, fmt.Sprintf("max_per_day: %d\n", b.MaxPerDay), fmt.Sprintf("max_per_day: %d\n", newCap))
				return replaceOnce(t, text, fmt.Sprintf("min_minutes_between: %d\n", b.MinMinutesBetween), fmt.Sprintf("min_minutes_between: %d\n", newGap))
			}
			mutant := func(text string) string {
				text = replaceOnce(t, text, "q := input.study.quiet_hours", fmt.Sprintf("q := {%q: %q, %q: %q}", "start", q.Start, "end", q.End))
				text = replaceOnce(t, text, "cap := input.study.burden.max_per_day", fmt.Sprintf("cap := %d", b.MaxPerDay))
				return replaceOnce(t, text, "gap := input.study.burden.min_minutes_between", fmt.Sprintf("gap := %d", b.MinMinutesBetween))
			}

			s := loadExample(t, copyExample(t, name, map[string]func(string) string{"study.yaml": changed}, nil))
			if got := s.Config.QuietHours.Start; got != "20:00" || s.Config.Burden.MaxPerDay != newCap {
				t.Fatalf("the copy's study.yaml was not changed: quiet hours from %s, cap %d", got, s.Config.Burden.MaxPerDay)
			}
			if f := failing(t, s); len(f) > 0 {
				t.Errorf("with study.yaml's quiet hours 20:00-07:00, cap %d and gap %d, the Rego tests fail: %v", newCap, newGap, f)
			}

			// With the original study.yaml the mutant fails only tests that
			// drop or zero a setting themselves; with the changed one, tests
			// at the settings' new boundaries fail too.
			f0 := failing(t, loadExample(t, copyExample(t, name, map[string]func(string) string{"policy/policy.rego": mutant}, nil)))
			f1 := failing(t, loadExample(t, copyExample(t, name, map[string]func(string) string{"study.yaml": changed, "policy/policy.rego": mutant}, nil)))
			for _, want := range []string{"quiet_hours", "max_prompts_today", "min_gap"} {
				if !slices.ContainsFunc(f1, func(n string) bool { return strings.Contains(n, want) && !slices.Contains(f0, n) }) {
					t.Errorf("no %s test fails on a policy that ignores input.study's setting once study.yaml changes it (failing: %v; with the original study.yaml: %v)", want, f1, f0)
				}
			}
		})
	}
}

// TestTestFixtureWarnings: a test file whose fixtures repeat study.yaml's
// values under the settings' names gets a warning for each, at its line;
// other values, other names and zero settings do not; the example tests
// (which read data.jitai.study) get none.
func TestTestFixtureWarnings(t *testing.T) {
	cfg := loadExample(t, filepath.Join("examples", "stress-mrt")).Config
	q, b := cfg.QuietHours, cfg.Burden
	src := strings.Join([]string{
		"package jitai.policy_test_repeats",
		"",
		fmt.Sprintf("fixture := {\"study\": {\"quiet_hours\": {\"start\": %q, \"end\": \"03:33\"}}}", q.Start),
		fmt.Sprintf("caps := {\"burden\": {\"max_per_day\": %d, \"max_per_24h\": 0}}", b.MaxPerDay),
		fmt.Sprintf("gap := object.union({}, {\"min_minutes_between\": %d})", b.MinMinutesBetween),
		fmt.Sprintf("other := {\"max_per_day\": %d, \"prompts_today\": %d}", b.MaxPerDay+1, b.MaxPerDay),
		fmt.Sprintf("own := {\"preferences\": {\"quiet_hours\": {\"end\": %q}}}", q.End),
		"",
		"test_with if {",
		fmt.Sprintf("\tinput.study.quiet_hours.start == \"x\" with input.study.quiet_hours as {\"start\": %q}", q.Start),
		"}",
		"",
	}, "\n")
	s := loadExample(t, copyExample(t, "stress-mrt", nil, map[string]string{"policy/repeats_test.rego": src}))
	var got []string
	for _, w := range s.TestFixtureWarnings() {
		got = append(got, w.Error())
	}
	file := "stress-mrt/policy/repeats_test.rego"
	msg := func(line int, setting, value string) string {
		return fmt.Sprintf("%s:%d: warning: the test repeats study.yaml's %s (%s); read it from data.jitai.study instead", file, line, setting, value)
	}
	want := []string{
		msg(3, "quiet_hours.start", fmt.Sprintf("%q", q.Start)),
		msg(4, "burden.max_per_day", fmt.Sprint(b.MaxPerDay)),
		msg(5, "burden.min_minutes_between", fmt.Sprint(b.MinMinutesBetween)),
		msg(7, "quiet_hours.end", fmt.Sprintf("%q", q.End)),
		msg(10, "quiet_hours.start", fmt.Sprintf("%q", q.Start)),
	}
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, name := range []string{"stress-mrt", "mood-most"} {
		if ws := loadExample(t, filepath.Join("examples", name)).TestFixtureWarnings(); len(ws) > 0 {
			t.Errorf("%s: the example tests repeat study.yaml:\n%s", name, ws)
		}
	}
}

// TestLivePolicyMayNotReadTestStudyData: data.jitai.study exists only for
// the Rego tests, so a live policy file that reads it (directly or through
// an import) is refused with file:line; a test file may read it.
func TestLivePolicyMayNotReadTestStudyData(t *testing.T) {
	for name, src := range map[string]string{
		"direct": "package jitai.policy\n\ndecision := {}\n\nq := data.jitai.study.quiet_hours\n",
		"import": "package jitai.policy\n\nimport data.jitai\n\nq := jitai.study.quiet_hours\n",
	} {
		_, err := ParseModules(map[string]string{"s/policy/p.rego": src})
		want := "s/policy/p.rego:5: data.jitai.study is only for the Rego tests"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to contain %q", name, err, want)
		}
		if _, err := ParseModules(map[string]string{"s/policy/p_test.rego": src}); err != nil {
			t.Errorf("%s: a test file may read data.jitai.study: %v", name, err)
		}
	}
}
