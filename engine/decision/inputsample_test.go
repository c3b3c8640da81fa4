package decision

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jitai/jitai/policies"
)

// TestInputSamplerDrawsDeclaredVariables: with a data dictionary, the
// sampler draws each declared variable where the input holds it, from its
// type: both bounds of a range, every level of a category, both booleans,
// and the variable missing; values of another type are rare.
func TestInputSamplerDrawsDeclaredVariables(t *testing.T) {
	lo, hi, top := 0.0, 10.0, 27.0
	vars := []policies.Variable{
		{Name: "stress", Source: policies.SourceEMA, Type: policies.TypeNumber, Min: &lo, Max: &hi},
		{Name: "cups", Source: policies.SourceEMA, Type: policies.TypeInteger, Min: &lo},
		{Name: "driving", Source: policies.SourceContext, Type: policies.TypeBoolean},
		{Name: "location", Source: policies.SourceContext, Type: policies.TypeCategory, Levels: []string{"home", "work", "transit"}},
		{Name: "phq9", Source: policies.SourceAssessment, Type: policies.TypeInteger, Min: &lo, Max: &top},
		{Name: "debt_hours", Source: policies.SourceDerived, Plugin: "sleep", Type: policies.TypeNumber, Min: &lo},
	}
	g := NewInputSampler(7, nil).Declare(vars)
	schema := InputSchema()
	// seen[path] holds the values drawn at path ("missing" when absent).
	seen := map[string]map[string]int{}
	n, fit := 0, 0
	see := func(path string, val any, ok bool, v *policies.Variable) {
		if seen[path] == nil {
			seen[path] = map[string]int{}
		}
		if !ok {
			seen[path]["missing"]++
			return
		}
		seen[path][fmt.Sprint(val)]++
		n++
		if v.Fits(jsonValue(t, val)) {
			fit++
		}
	}
	for range 2000 {
		in := g.Sample(schema)
		for _, v := range vars {
			switch v.Source {
			case policies.SourceEMA:
				val, ok := at(in, "state", "ema", v.Name, "value")
				see("state.ema."+v.Name, val, ok, &v)
			case policies.SourceContext:
				val, ok := at(in, "context", v.Name)
				see("context."+v.Name, val, ok, &v)
				val, ok = at(in, "state", "context", v.Name, "value")
				see("state.context."+v.Name, val, ok, &v)
			case policies.SourceAssessment:
				val, ok := at(in, "state", "assessment", v.Name, "total")
				see("state.assessment."+v.Name+".total", val, ok, &v)
			case policies.SourceDerived:
				val, ok := at(in, "derived", v.Plugin, v.Name)
				see("derived."+v.Plugin+"."+v.Name, val, ok, &v)
			}
		}
	}
	want := map[string][]string{
		"state.ema.stress":            {"0", "10", "5", "missing"},
		"state.ema.cups":              {"0", "10", "missing"},
		"context.driving":             {"true", "false", "missing"},
		"state.context.driving":       {"true", "false", "missing"},
		"context.location":            {"home", "work", "transit", "missing"},
		"state.context.location":      {"home", "work", "transit", "missing"},
		"state.assessment.phq9.total": {"0", "27", "missing"},
		"derived.sleep.debt_hours":    {"0", "missing"},
	}
	for path, values := range want {
		for _, w := range values {
			if seen[path][w] == 0 {
				t.Errorf("%s: never drew %s in 2000 inputs (drew %v)", path, w, seen[path])
			}
		}
	}
	// Most drawn values fit their declaration; a few do not, on purpose.
	if share := float64(fit) / float64(n); share < 0.8 || share == 1 {
		t.Errorf("%d of %d drawn values fit their declaration (%.2f); want most, not all", fit, n, share)
	}
}

// at is the value at a path of nested objects, and whether it is there.
func at(doc map[string]any, path ...string) (any, bool) {
	var cur any = doc
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// jsonValue is a value as the policy sees it: after a JSON round trip.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInputSamplerIsDeterministic: the same seed and dictionary give the
// same inputs, so that study check reports the same input every run.
func TestInputSamplerIsDeterministic(t *testing.T) {
	lo := 0.0
	vars := []policies.Variable{
		{Name: "a", Source: policies.SourceDerived, Plugin: "p1", Type: policies.TypeNumber, Min: &lo},
		{Name: "b", Source: policies.SourceDerived, Plugin: "p2", Type: policies.TypeBoolean},
		{Name: "c", Source: policies.SourceDerived, Plugin: "p3", Type: policies.TypeCategory, Levels: []string{"x", "y"}},
		{Name: "d", Source: policies.SourceEMA, Type: policies.TypeInteger, Min: &lo},
	}
	one, two := NewInputSampler(3, nil).Declare(vars), NewInputSampler(3, nil).Declare(vars)
	for i := range 200 {
		a, _ := json.Marshal(one.SampleDense(InputSchema()))
		b, _ := json.Marshal(two.SampleDense(InputSchema()))
		if string(a) != string(b) {
			t.Fatalf("input %d differs with the same seed:\n%s\n%s", i, a, b)
		}
	}
}
