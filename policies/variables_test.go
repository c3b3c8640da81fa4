package policies

import (
	"strings"
	"testing"
)

const dictionaryStudy = scheduledStudy + `unknown_variables: keep
variables:
  - {name: stress, source: ema, type: number, min: 0, max: 10, unit: "0-10", label: "Stress right now", current_for: 6h}
  - {name: cups, source: ema, type: integer, min: 0}
  - {name: driving, source: context, type: boolean}
  - name: location
    source: context
    type: category
    levels: [home, work]
`

func TestVariablesParse(t *testing.T) {
	c, err := ParseConfig("s/study.yaml", []byte(dictionaryStudy))
	if err != nil {
		t.Fatalf("valid dictionary refused: %v", err)
	}
	v, ok := c.Variable("ema", "stress")
	if !ok || v.Type != TypeNumber || *v.Min != 0 || *v.Max != 10 || v.Unit != "0-10" || v.CurrentFor.Hours() != 6 {
		t.Errorf("stress = %+v", v)
	}
	if _, ok := c.Variable("ema", "driving"); ok {
		t.Error("driving is a context variable, found as ema")
	}
	for _, x := range []struct {
		src, name string
		val       any
		want      string
	}{
		{"ema", "stress", 4.5, ""},
		{"ema", "stress", -50.0, "stress must be a number from 0 to 10; got -50"},
		{"ema", "cups", 2.5, "cups must be a whole number of at least 0; got 2.5"},
		{"context", "driving", "yes", `driving must be true or false; got "yes"`},
		{"context", "location", "gym", `location must be one of home, work; got "gym"`},
		{"ema", "undeclared", "anything", ""},
	} {
		err := c.CheckVariable(x.src, x.name, x.val)
		if (err == nil) != (x.want == "") || err != nil && err.Error() != x.want {
			t.Errorf("CheckVariable(%s, %s, %v) = %v; want %q", x.src, x.name, x.val, err, x.want)
		}
	}
	c.UnknownVariables = UnknownRefuse
	if err := c.CheckVariable("ema", "undeclared", 1.0); err == nil {
		t.Error("undeclared variable passed with unknown_variables: refuse")
	}
}

func TestVariablesErrorsPointAtLines(t *testing.T) {
	r := func(old, new string) string { return strings.Replace(dictionaryStudy, old, new, 1) }
	cases := []struct{ name, edit, want string }{
		{"bad name", r("name: stress", "name: Stress"), `s/study.yaml:20: variable name "Stress" must be a lower-case identifier`},
		{"twice", r("name: cups", "name: stress"), `s/study.yaml:21: ema variable "stress" is declared twice`},
		{"same name other source", r("name: driving", "name: stress"), ""},
		{"bad source", r("source: ema, type: integer", "source: survey, type: integer"), `s/study.yaml:21: variable "cups": source "survey" must be ema, context, assessment or derived`},
		{"assessment", r("name: cups, source: ema", "name: phq9, source: assessment"), ""},
		{"assessment not an instrument", r("name: cups, source: ema", "name: cups, source: assessment"), `s/study.yaml:21: assessment variable "cups" must name an instrument the engine scores: phq9 or gad7`},
		{"assessment not integer", r("name: stress, source: ema, type: number", "name: gad7, source: assessment, type: number"), `s/study.yaml:20: assessment variable "gad7" is a total score: its type must be integer`},
		{"assessment range", r("name: cups, source: ema, type: integer, min: 0}", "name: gad7, source: assessment, type: integer, min: 0, max: 30}"), `s/study.yaml:21: assessment variable "gad7": min and max must lie within its total's range, 0 to 21`},
		{"derived without enricher", r("source: context, type: boolean}", "source: derived, plugin: sleep, type: boolean}"), `s/study.yaml:22: derived variable "driving": plugin "sleep" must name an enricher plugin of the study (plugins)`},
		{"plugin of ema", r("name: cups, source: ema,", "name: cups, source: ema, plugin: sleep,"), `s/study.yaml:21: variable "cups": plugin applies only to derived variables`},
		{"bad type", r("type: boolean", "type: bool"), `s/study.yaml:22: variable "driving": type "bool" must be number, integer, boolean or category`},
		{"min above max", r("min: 0, max: 10", "min: 10, max: 0"), `s/study.yaml:20: variable "stress": max 0 is below min 10`},
		{"bounds on boolean", r("type: boolean}", "type: boolean, max: 1}"), `s/study.yaml:22: variable "driving": min and max apply only to number and integer variables`},
		{"levels on number", r("type: integer, min: 0}", "type: integer, levels: [a]}"), `s/study.yaml:21: variable "cups": levels apply only to category variables`},
		{"no levels", r("levels: [home, work]", "levels: []"), `s/study.yaml:26: category variable "location" needs levels`},
		{"level twice", r("levels: [home, work]", "levels: [home, home]"), `s/study.yaml:26: variable "location": level "home" is listed twice`},
		{"empty level", r("levels: [home, work]", `levels: [home, ""]`), `s/study.yaml:26: variable "location": a level must be 1 to 64 characters`},
		{"negative current_for", r("current_for: 6h", "current_for: -1h"), `s/study.yaml:20: variable "stress": current_for must be positive`},
		{"bad unknown", r("unknown_variables: keep", "unknown_variables: drop"), `s/study.yaml:18: unknown_variables "drop" must be keep`},
		{"unknown key", r("unit: \"0-10\"", "units: \"0-10\""), "s/study.yaml:20: field units not found"},
	}
	for _, c := range cases {
		_, err := ParseConfig("s/study.yaml", []byte(c.edit))
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	refuse := scheduledStudy + "unknown_variables: refuse\n"
	if _, err := ParseConfig("s/study.yaml", []byte(refuse)); err == nil || !strings.Contains(err.Error(), "s/study.yaml:18: unknown_variables: refuse needs a data dictionary") {
		t.Errorf("refuse without variables: %v", err)
	}
}

// dictionaryPolicy reads declared variables (stress, driving, location)
// and undeclared ones: the EMA risk (line 5), the context noise from the
// request (line 6) and a state context event (line 7), an assessment (line
// 8) and a plugin's value (line 9).
const dictionaryPolicy = `package jitai.policy

a if input.state.ema.stress.value > 7
b if input.context.driving == true
c if input.state.ema.risk.value == 1
d if input.context.noise > 3
e if input.state.context.wifi.value == "home"
f if input.state.assessment.phq9.total > 9
g if input.derived.sleep.debt_hours > 5
h if object.get(input.state.context, ["location", "value"], "") == "home"
`

// TestCheckDictionaryRefs: with a data dictionary, each input path naming
// an undeclared variable is reported at its Rego line: a warning, or a
// problem for EMA and context variables under unknown_variables: refuse;
// without a dictionary nothing is reported.
func TestCheckDictionaryRefs(t *testing.T) {
	mods, err := ParseModules(map[string]string{"p/policy.rego": dictionaryPolicy})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseConfig("s/study.yaml", []byte(dictionaryStudy))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`p/policy.rego:5: warning: input.state.ema.risk.value reads ema variable "risk", which the data dictionary does not declare: add it to study.yaml variables (docs/study.md)`,
		`p/policy.rego:6: warning: input.context.noise reads context variable "noise", which`,
		`p/policy.rego:7: warning: input.state.context.wifi.value reads context variable "wifi", which`,
		`p/policy.rego:8: warning: input.state.assessment.phq9.total reads assessment variable "phq9", which`,
		`p/policy.rego:9: warning: input.derived.sleep.debt_hours reads derived variable "debt_hours" of plugin sleep, which`,
	}
	check := func(got ConfigErrors, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%d reports, want %d:\n%v", len(got), len(want), got)
		}
		for i, w := range want {
			if !strings.HasPrefix(got[i].Error(), w) {
				t.Errorf("report %d:\n got %s\nwant %s...", i, got[i], w)
			}
		}
	}
	check(CheckDictionaryRefs(mods, c), want)

	c.UnknownVariables = UnknownRefuse
	got := CheckDictionaryRefs(mods, c)
	for i, e := range got {
		if refuse := i < 3; e.Warning == refuse || refuse != strings.HasSuffix(e.Msg, "with unknown_variables: refuse the app can never report it") {
			t.Errorf("under refuse, report %d: %s (warning %v)", i, e, e.Warning)
		}
	}

	c.Variables, c.UnknownVariables = nil, ""
	check(CheckDictionaryRefs(mods, c), nil)
}
