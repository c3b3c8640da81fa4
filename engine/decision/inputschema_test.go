package decision

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// richInput builds the policy input of a participant with every optional
// part present: EMA, context, both assessments, preferences with a snooze
// and quiet hours, deliveries and engagement with a rating.
func richInput(t *testing.T) map[string]any {
	t.Helper()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := policies.LoadStudy(context.Background(), "../../policies/examples/stress-mrt", cat)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(s)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 18, 14, 0, 0, 0, time.UTC)
	rating := 7.0
	ago := func(m int) time.Time { return now.Add(-time.Duration(m) * time.Minute) }
	st := &trial.State{
		EMA:     map[string]trial.Observation{"stress": {Value: 6.0, Time: ago(20)}},
		Context: map[string]trial.Observation{"driving": {Value: false, Time: ago(5)}},
		Assessments: map[string]trial.Assessment{
			"phq9": {Instrument: "phq9", Items: []int{1, 1, 1, 1, 1, 1, 1, 1, 0}, Total: 8, Severity: "mild", Time: ago(60 * 24)},
			"gad7": {Instrument: "gad7", Items: []int{1, 1, 1, 1, 1, 1, 1}, Total: 7, Severity: "mild", Time: ago(60 * 24)},
		},
		Preferences: trial.Preferences{SnoozedUntil: now.Add(time.Hour), QuietHours: &trial.QuietHours{Start: "21:00", End: "07:00"}},
		Prompts:     []trial.Prompt{{DecisionID: "d1", Time: ago(120), Intervention: "box-breathing"}},
		Decisions:   []time.Time{ago(120)},
		Engagement:  []trial.Engagement{{DecisionID: "d1", Status: "rated", Time: ago(100), Rating: &rating}},
	}
	p := &trial.Participant{Study: "stress-mrt", ID: "p1", Timezone: "Europe/London", Strata: map[string]string{"site": "leeds"},
		Assignment: map[string]string{"framing": "gain"}, EnrolledAt: now.AddDate(0, 0, -3)}
	clock := newLocalClock(now, rt.Location)
	dp := &policies.DecisionPoint{ID: "afternoon", Time: "14:30", Kind: "scheduled"}
	in := buildInput(rt, &trial.Snapshot{Participant: p, State: st}, pointDoc(dp, trial.TriggerEvent, now, "e1"),
		map[string]any{"driving": false}, now, clock, computeHistory(st, now, clock), phaseAt(rt, p, rt.Location, now),
		&trial.Event{ID: "e1", Type: trial.EventEMA, Time: now.Add(-time.Minute), Data: []byte(`{"stress":8}`)})
	// input.derived is added by decide from the study's enricher plugins
	// (plugins/host tests show their values reach the policy); one
	// enricher's answer stands for it here.
	in["derived"] = map[string]any{"sleep": map[string]any{"debt_hours": 2.5}}
	// Through JSON, as the policy sees it.
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func typeOf(v any) string {
	switch v.(type) {
	case string:
		return policies.FieldString
	case float64:
		return policies.FieldNumber
	case bool:
		return policies.FieldBool
	case []any:
		return policies.FieldArray
	case map[string]any:
		return policies.FieldObject
	}
	return "null"
}

// TestInputSchemaMatchesBuildInput: every value buildInput produces is in
// the schema with its type, and everything the schema documents is
// produced (for a participant with every optional part present).
func TestInputSchemaMatchesBuildInput(t *testing.T) {
	in := richInput(t)
	var walk func(path string, v any, f *policies.InputField)
	walk = func(path string, v any, f *policies.InputField) {
		if f.Type != policies.FieldAny && f.Type != typeOf(v) {
			t.Errorf("input%s is a %s; the schema says %s", path, typeOf(v), f.Type)
			return
		}
		m, ok := v.(map[string]any)
		if !ok || f.Type == policies.FieldAny {
			return
		}
		for k, c := range m {
			switch {
			case f.Fields[k] != nil:
				walk(path+"."+k, c, f.Fields[k])
			case f.Each != nil:
				walk(path+"."+k, c, f.Each)
			default:
				t.Errorf("input%s.%s is produced but not in the schema (engine/inputschema.go) or docs/policy.md", path, k)
			}
		}
		for k := range f.Fields {
			if _, ok := m[k]; !ok {
				t.Errorf("the schema documents input%s.%s, which buildInput did not produce", path, k)
			}
		}
		if f.Each != nil && f.Fields == nil && len(m) == 0 {
			t.Errorf("input%s is empty: the test input should exercise it", path)
		}
	}
	walk("", in, InputSchema())
}

// TestInputSchemaMatchesDocs: every path in the input table of
// docs/policy.md resolves in the schema, and every path of the schema is
// documented (itself or an object containing it).
func TestInputSchemaMatchesDocs(t *testing.T) {
	raw, err := os.ReadFile("../../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "## Input document")
	end := strings.Index(doc, "## Output document")
	if start < 0 || end < start {
		t.Fatal("docs/policy.md has no Input document section")
	}
	cell := regexp.MustCompile("^\\| (`[^|]*`) \\|")
	var documented [][]string
	for _, line := range strings.Split(doc[start:end], "\n") {
		m := cell.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var prev []string
		for _, part := range strings.Split(m[1], ",") {
			part = strings.Trim(strings.TrimSpace(part), "`")
			var p []string
			if strings.HasPrefix(part, ".") {
				p = append(append([]string{}, prev[:len(prev)-1]...), strings.Split(part[1:], ".")...)
			} else {
				p = strings.Split(part, ".")
			}
			prev = p
			documented = append(documented, p)
		}
	}
	if len(documented) < 30 {
		t.Fatalf("read only %d paths from docs/policy.md; is the parser still right?", len(documented))
	}
	schema := InputSchema()
	for _, p := range documented {
		if why := schema.Lookup(p); why != "" {
			t.Errorf("docs/policy.md documents input.%s: %s", strings.Join(p, "."), why)
		}
	}
	// Every schema path is documented: itself, through an enclosing path, or
	// as the parent of documented paths.
	covered := func(path []string) bool {
		for _, d := range documented {
			ok := true
			for i := range min(len(d), len(path)) {
				if d[i] != path[i] && !(strings.HasPrefix(d[i], "<") && path[i] == "*") {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
		return false
	}
	var paths [][]string
	var walk func(path []string, f *policies.InputField)
	walk = func(path []string, f *policies.InputField) {
		if len(path) > 0 {
			paths = append(paths, path)
		}
		keys := make([]string, 0, len(f.Fields))
		for k := range f.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walk(append(append([]string{}, path...), k), f.Fields[k])
		}
		if f.Each != nil {
			walk(append(append([]string{}, path...), "*"), f.Each)
		}
	}
	walk(nil, schema)
	for _, p := range paths {
		if !covered(p) {
			t.Errorf("input.%s is in the schema but not in docs/policy.md", strings.Join(p, "."))
		}
	}
}
