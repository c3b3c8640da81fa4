package policies

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/interventions"
)

func TestImpureCallsRefusedWithLine(t *testing.T) {
	cases := map[string]string{
		"http.send":          `x := http.send({"method": "get", "url": "http://example.org"})`,
		"time.now_ns":        `x := time.now_ns()`,
		"rand.intn":          `x := rand.intn("k", 10)`,
		"uuid.rfc4122":       `x := uuid.rfc4122("k")`,
		"opa.runtime":        `x := opa.runtime()`,
		"net.lookup_ip_addr": `x := net.lookup_ip_addr("example.org")`,
	}
	for name, rule := range cases {
		src := "package jitai.policy\n\ndecision := {}\n\n" + rule + "\n"
		_, err := ParseModules(map[string]string{"s/policy/p.rego": src})
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		want := "s/policy/p.rego:5: call to " + name + " is not allowed"
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want it to contain %q", name, err, want)
		}
	}
	// Pure built-ins with similar names stay allowed.
	src := "package jitai.policy\n\ndecision := {\"t\": time.parse_rfc3339_ns(input.now)}\n"
	if _, err := ParseModules(map[string]string{"p.rego": src}); err != nil {
		t.Errorf("pure policy refused: %v", err)
	}
}

func TestCompileErrorsCarryFileAndLine(t *testing.T) {
	mods, err := ParseModules(map[string]string{"s/policy/a.rego": "package jitai.policy\n\ndecision := {}\n\nbad if {\n  undefined_fn(1)\n}\n"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(context.Background(), mods, nil)
	if err == nil || !strings.Contains(err.Error(), "s/policy/a.rego:6:") {
		t.Fatalf("error %v, want s/policy/a.rego:6", err)
	}
	_, err = ParseModules(map[string]string{"s/policy/b.rego": "package jitai.policy\n\ndecision := {\n"})
	if err == nil || !strings.Contains(err.Error(), "s/policy/b.rego:") {
		t.Fatalf("parse error %v lacks file:line", err)
	}
	mods, _ = ParseModules(map[string]string{"c.rego": "package jitai.policy\n\nother := 1\n"})
	if _, err := Compile(context.Background(), mods, nil); err == nil || !strings.Contains(err.Error(), "no rule `decision`") {
		t.Fatalf("missing decision: %v", err)
	}
}

func TestEvalAndDecodeOutput(t *testing.T) {
	src := `package jitai.policy

decision := {
	"safety_reasons": [r | some r in ["risk_flag"]; input.risk],
	"unavailable_reasons": [],
	"candidates": [{"id": id, "weight": 2} | some id, _ in data.jitai.catalogue],
	"probabilities": {"prompt": 0.7},
	"tailoring": {"need": "stress"},
}
`
	mods, err := ParseModules(map[string]string{"p.rego": src})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := Compile(context.Background(), mods, map[string]any{"catalogue": map[string]any{"b": map[string]any{}, "a": map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := pol.Eval(context.Background(), ast.MustInterfaceToValue(map[string]any{"risk": true}))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SafetyReasons) != 1 || len(out.Candidates) != 2 || out.Candidates[0].ID != "a" || out.Candidates[0].Weight != 2 ||
		out.Probabilities["prompt"] != 0.7 || out.Tailoring["need"] != "stress" {
		t.Fatalf("output %+v", out)
	}
	for _, bad := range []string{
		`{"safety_reasons": "x"}`,
		`{"candidates": [{"weight": 1}]}`,
		`{"candidates": [{"id": "a", "weight": -1}]}`,
		`{"probabilities": {"prompt": 1.5}}`,
		`{"available": "yes"}`,
		`[]`,
	} {
		var v any
		d := json.NewDecoder(strings.NewReader(bad))
		d.UseNumber()
		_ = d.Decode(&v)
		if _, err := DecodeOutput(v); err == nil {
			t.Errorf("DecodeOutput(%s) accepted", bad)
		}
	}
	var v any
	_ = json.Unmarshal([]byte(`{"available": false}`), &v)
	if out, err := DecodeOutput(v); err != nil || len(out.UnavailableReasons) != 1 {
		t.Errorf("available=false without reasons: %+v %v", out, err)
	}
}

const validStudy = `id: s1
name: A study
timezone: Europe/London
seed: "0123456789abcdef"
decision_points:
  - {id: morning, time: "09:00"}
delivery_factor: prompt
factors:
  - name: prompt
    type: within
    levels: [none, deliver]
    probability: 0.6
    bounds: [0.1, 0.9]
crisis:
  text: "Call 116 123."
`

func TestParseConfigErrorsPointAtLines(t *testing.T) {
	if _, err := ParseConfig("s/study.yaml", []byte(validStudy)); err != nil {
		t.Fatalf("valid study refused: %v", err)
	}
	cases := []struct{ name, edit, want string }{
		{"probability outside bounds", strings.Replace(validStudy, "probability: 0.6", "probability: 0.95", 1), "s/study.yaml:12: probability 0.95"},
		{"bad clock", strings.Replace(validStudy, `"09:00"`, `"9am"`, 1), "s/study.yaml:6: time \"9am\""},
		{"unknown key", strings.Replace(validStudy, "name: A study", "name: A study\ncolour: blue", 1), "s/study.yaml:3: field colour not found"},
		{"bad zone", strings.Replace(validStudy, "Europe/London", "Mars/Olympus", 1), "s/study.yaml:3: timezone"},
		{"short seed", strings.Replace(validStudy, `"0123456789abcdef"`, `"x"`, 1), "s/study.yaml:4: seed"},
		{"one level", strings.Replace(validStudy, "[none, deliver]", "[none]", 1), "s/study.yaml:11: factor \"prompt\" needs exactly two"},
		{"no crisis", strings.Replace(validStudy, "  text: \"Call 116 123.\"", "  title: x", 1), "crisis.text is required"},
		{"between with probability", strings.Replace(validStudy, "type: within", "type: between", 1), "between-person factor \"prompt\""},
		{"bad delivery factor", strings.Replace(validStudy, "delivery_factor: prompt", "delivery_factor: nope", 1), "s/study.yaml:7: delivery_factor \"nope\""},
		{"yaml syntax", validStudy + "factors: [\n", "s/study.yaml:"},
	}
	for _, c := range cases {
		_, err := ParseConfig("s/study.yaml", []byte(c.edit))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestRevisionIsContentHash(t *testing.T) {
	a := Revision(map[string][]byte{"study.yaml": []byte("x"), "policy/p.rego": []byte("y")})
	b := Revision(map[string][]byte{"policy/p.rego": []byte("y"), "study.yaml": []byte("x")})
	c := Revision(map[string][]byte{"study.yaml": []byte("x"), "policy/p.rego": []byte("y ")})
	d := Revision(map[string][]byte{"study.yaml": []byte("xp"), "olicy/p.rego": []byte("y")})
	if a != b || a == c || a == d || len(a) != 64 {
		t.Fatalf("revisions %s %s %s %s", a, b, c, d)
	}
}

func TestLoadStudyRefusesBadStudyWithFileLine(t *testing.T) {
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "s1")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "policy"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(validStudy), 0o644))
	must(os.WriteFile(filepath.Join(dir, "policy", "p.rego"), []byte("package jitai.policy\n\ndecision := {\"t\": time.now_ns()}\n"), 0o644))
	_, err = LoadStudy(context.Background(), dir, cat)
	if err == nil || !strings.Contains(err.Error(), "s1/policy/p.rego:3: call to time.now_ns is not allowed") {
		t.Fatalf("impure study: %v", err)
	}
	must(os.WriteFile(filepath.Join(dir, "policy", "p.rego"), []byte("package jitai.policy\n\ndecision := {}\n"), 0o644))
	s, err := LoadStudy(context.Background(), dir, cat)
	if err != nil {
		t.Fatal(err)
	}
	// Tests do not change the revision; policy files do.
	must(os.WriteFile(filepath.Join(dir, "policy", "p_test.rego"), []byte("package jitai.policy\n\ntest_x if { true }\n"), 0o644))
	s2, err := LoadStudy(context.Background(), dir, cat)
	if err != nil || s2.Revision != s.Revision {
		t.Fatalf("a test file changed the revision: %v", err)
	}
	res, err := s2.RunTests(context.Background())
	if err != nil || len(res) != 1 || !res[0].Pass {
		t.Fatalf("rego tests: %+v %v", res, err)
	}
	// A content factor the catalogue does not vary on is refused.
	must(os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(strings.Replace(validStudy, "crisis:", `  - name: tone
    type: within
    levels: [warm, plain]
    probability: 0.5
    content: true
crisis:`, 1)), 0o644))
	if _, err := LoadStudy(context.Background(), dir, cat); err == nil || !strings.Contains(err.Error(), "factor tone is content") {
		t.Fatalf("unknown content dimension: %v", err)
	}
}
