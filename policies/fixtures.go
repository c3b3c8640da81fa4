package policies

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// setting is one value of the study's settings (Config.StudyInput): its
// path in the block ("quiet_hours", "start") and its value.
type setting struct {
	path  []string
	value ast.Value
}

// studySettings lists the leaves of the study's settings (scalars and
// arrays), sorted by path. A zero number or empty string is left out: it
// says the study sets nothing (no cap, no gap), and a test that writes 0
// is testing that meaning, not copying the study.
func studySettings(cfg *Config) ([]setting, error) {
	v, err := ast.InterfaceToValue(cfg.StudyInput())
	if err != nil {
		return nil, err
	}
	var out []setting
	var walk func(path []string, v ast.Value)
	walk = func(path []string, v ast.Value) {
		if obj, ok := v.(ast.Object); ok {
			obj.Foreach(func(k, e *ast.Term) {
				if s, ok := k.Value.(ast.String); ok {
					walk(append(slices.Clone(path), string(s)), e.Value)
				}
			})
			return
		}
		if v.Compare(ast.Number("0")) == 0 || v.Compare(ast.String("")) == 0 {
			return
		}
		out = append(out, setting{path: path, value: v})
	}
	walk(nil, v)
	slices.SortFunc(out, func(a, b setting) int { return slices.Compare(a.path, b.path) })
	return out, nil
}

// matches reports whether a fixture value under the object keys path
// (outermost first) repeats the setting: the same value under the same
// setting name, the two key paths agreeing as far as both go from the
// leaf up ({"quiet_hours": {"start": "22:00"}}, {"max_per_day": 4}).
func (st setting) matches(path []string, v ast.Value) bool {
	n := min(len(path), len(st.path))
	if n == 0 || !slices.Equal(path[len(path)-n:], st.path[len(st.path)-n:]) {
		return false
	}
	return v.Compare(st.value) == 0
}

// TestFixtureWarnings reports every place a Rego test file repeats a
// value of study.yaml under the same setting name: an object literal
// whose keys end like a setting of the study's input block (quiet_hours
// start, burden max_per_day, ...) with the study's value, or a `with` of
// such a path. Such a test stays green when the designer changes the
// setting; it should read the value from data.jitai.study (TestStudyData).
// The settings and their names come from Config.StudyInput, not a list.
// Test files that do not parse are left to the test runner.
func (s *Study) TestFixtureWarnings() ConfigErrors {
	settings, err := studySettings(s.Config)
	if err != nil {
		return nil
	}
	var out ConfigErrors
	for _, path := range slices.Sorted(maps.Keys(s.TestFiles)) {
		m, err := ast.ParseModuleWithOpts(path, s.TestFiles[path], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			continue
		}
		w := &fixtureWalker{file: path, settings: settings}
		w.walk(m)
		slices.SortStableFunc(w.out, func(a, b *ConfigError) int { return a.Line - b.Line })
		out = append(out, w.out...)
	}
	return out
}

// fixtureWalker walks a test module's object literals, keeping the keys
// of the enclosing literals, and reports values that repeat a setting.
type fixtureWalker struct {
	file     string
	settings []setting
	out      ConfigErrors
}

// walk visits x for object literals and `with` modifiers, each starting a
// key path of its own.
func (w *fixtureWalker) walk(x any) {
	ast.NewGenericVisitor(func(x any) bool {
		switch t := x.(type) {
		case *ast.With:
			w.value(refKeys(t.Target), t.Value)
			return true
		case *ast.Term:
			if obj, ok := t.Value.(ast.Object); ok {
				w.object(nil, obj)
				return true
			}
		}
		return false
	}).Walk(x)
}

// refKeys is the string parts of a ref after its head (input.study.burden
// -> study, burden), up to the first part that is not a string.
func refKeys(t *ast.Term) []string {
	r, ok := t.Value.(ast.Ref)
	if !ok || len(r) == 0 {
		return nil
	}
	// The parts inputPath reads after input, whatever the head.
	keys, _ := inputPath(append(ast.Ref{ast.InputRootDocument}, r[1:]...))
	return keys
}

func (w *fixtureWalker) object(path []string, obj ast.Object) {
	obj.Foreach(func(k, v *ast.Term) {
		key, ok := k.Value.(ast.String)
		if !ok {
			w.walk(k)
			w.walk(v)
			return
		}
		w.value(append(slices.Clone(path), string(key)), v)
	})
}

// value checks a value under the keys path: an object literal goes on
// with the path; a constant is compared with the settings; anything else
// (a call, a comprehension, an array of objects) is walked afresh.
func (w *fixtureWalker) value(path []string, v *ast.Term) {
	if obj, ok := v.Value.(ast.Object); ok {
		w.object(path, obj)
		return
	}
	if len(path) > 0 && ast.IsConstant(v.Value) {
		w.check(path, v)
	}
	w.walk(v)
}

func (w *fixtureWalker) check(path []string, v *ast.Term) {
	var names []string
	for _, st := range w.settings {
		if st.matches(path, v.Value) {
			names = append(names, strings.Join(st.path, "."))
		}
	}
	if len(names) == 0 {
		return
	}
	line := 0
	if v.Location != nil {
		line = v.Location.Row
	}
	w.out = append(w.out, &ConfigError{File: w.file, Line: line, Warning: true,
		Msg: fmt.Sprintf("the test repeats study.yaml's %s (%s); read it from %s instead", strings.Join(names, " and "), v, TestStudyData)})
}
