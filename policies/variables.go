package policies

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/jitai/jitai/engine/trial"
)

// Variable types of the data dictionary.
const (
	TypeNumber   = "number"
	TypeInteger  = "integer"
	TypeBoolean  = "boolean"
	TypeCategory = "category"
)

// Sources of the data dictionary's variables: where a value comes from.
const (
	// SourceEMA and SourceContext are reported by the app in events of that
	// type (and context also with a decision request).
	SourceEMA     = "ema"
	SourceContext = "context"
	// SourceAssessment is a questionnaire the engine scores (phq9, gad7):
	// the variable is its total score.
	SourceAssessment = "assessment"
	// SourceDerived is a value an enricher plugin derives
	// (input.derived.<plugin>.<name>).
	SourceDerived = "derived"
)

// What ingestion does with a variable the dictionary does not declare.
const (
	UnknownKeep   = "keep"
	UnknownRefuse = "refuse"
)

// Variable is one entry of a study's data dictionary: an EMA or context
// variable apps report, an assessment's total score or a value an enricher
// plugin derives (docs/study.md, "Variables: the data dictionary").
type Variable struct {
	Name string `yaml:"name" json:"name"`
	// Source is where the value comes from: ema, context, assessment or
	// derived.
	Source string `yaml:"source" json:"source"`
	// Plugin is the enricher plugin of a derived variable.
	Plugin string `yaml:"plugin" json:"plugin,omitempty"`
	// Type is number, integer, boolean or category.
	Type string `yaml:"type" json:"type"`
	// Min and Max bound numbers and integers (either may be left out).
	Min *float64 `yaml:"min" json:"min,omitempty"`
	Max *float64 `yaml:"max" json:"max,omitempty"`
	// Levels are the values of a category.
	Levels []string `yaml:"levels" json:"levels,omitempty"`
	Unit   string   `yaml:"unit" json:"unit,omitempty"`
	Label  string   `yaml:"label" json:"label,omitempty"`
	// CurrentFor is how long a report stays current: documentation, shown
	// in the codebook (zero means not stated); the policy input still
	// holds older values with their age.
	CurrentFor Duration `yaml:"current_for" json:"current_for,omitzero"`
}

// Variable looks up the declared variable name of source (ema, context or
// assessment).
func (c *Config) Variable(source, name string) (*Variable, bool) {
	return c.declared(source, "", name)
}

// DerivedVariable looks up the declared variable name that enricher plugin
// derives.
func (c *Config) DerivedVariable(plugin, name string) (*Variable, bool) {
	return c.declared(SourceDerived, plugin, name)
}

func (c *Config) declared(source, plugin, name string) (*Variable, bool) {
	for i := range c.Variables {
		if v := &c.Variables[i]; v.Source == source && v.Plugin == plugin && v.Name == name {
			return v, true
		}
	}
	return nil, false
}

// Fits reports whether a value (as JSON decodes it: float64, bool or
// string) is of the variable's type, in its range or among its levels.
func (v *Variable) Fits(value any) bool { return v.Check(value) == nil }

// ChecksVariables reports whether ingestion has anything to check: the
// study declares variables or refuses undeclared ones.
func (c *Config) ChecksVariables() bool {
	return len(c.Variables) > 0 || c.UnknownVariables == UnknownRefuse
}

// CheckVariable checks a reported value of variable name of an event of
// type source (ema or context) against the data dictionary. The error
// names the rule broken, e.g. "stress must be a number from 0 to 10; got
// -50". An undeclared variable is an error only with unknown_variables:
// refuse.
func (c *Config) CheckVariable(source, name string, value any) error {
	v, ok := c.Variable(source, name)
	if !ok {
		if c.UnknownVariables == UnknownRefuse {
			return fmt.Errorf("%s is not a declared %s variable of this study (unknown_variables: refuse)", name, source)
		}
		return nil
	}
	return v.Check(value)
}

// Check checks a reported value against the variable's type, range and
// levels.
func (v *Variable) Check(value any) error {
	switch v.Type {
	case TypeNumber, TypeInteger:
		x, ok := number(value)
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) || x < v.lo() || x > v.hi() || (v.Type == TypeInteger && x != math.Trunc(x)) {
			return fmt.Errorf("%s must be %s; got %s", v.Name, v.expects(), show(value))
		}
	case TypeBoolean:
		if _, ok := value.(bool); !ok {
			return fmt.Errorf("%s must be true or false; got %s", v.Name, show(value))
		}
	case TypeCategory:
		s, ok := value.(string)
		if !ok || !contains(v.Levels, s) {
			return fmt.Errorf("%s must be one of %s; got %s", v.Name, strings.Join(v.Levels, ", "), show(value))
		}
	}
	return nil
}

func (v *Variable) lo() float64 {
	if v.Min == nil {
		return math.Inf(-1)
	}
	return *v.Min
}

func (v *Variable) hi() float64 {
	if v.Max == nil {
		return math.Inf(1)
	}
	return *v.Max
}

// expects describes a numeric variable's values: "a number from 0 to 10".
func (v *Variable) expects() string {
	s := "a number"
	if v.Type == TypeInteger {
		s = "a whole number"
	}
	switch {
	case v.Min != nil && v.Max != nil:
		return fmt.Sprintf("%s from %s to %s", s, num(*v.Min), num(*v.Max))
	case v.Min != nil:
		return fmt.Sprintf("%s of at least %s", s, num(*v.Min))
	case v.Max != nil:
		return fmt.Sprintf("%s of at most %s", s, num(*v.Max))
	}
	return s
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// show renders a reported value as JSON would: strings quoted.
func show(value any) string {
	if s, ok := value.(string); ok {
		return strconv.Quote(s)
	}
	if x, ok := number(value); ok {
		return num(x)
	}
	if value == nil {
		return "null"
	}
	return fmt.Sprint(value)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// variables validates the data dictionary.
func (v *validator) variables(c *Config) {
	vars, unknown := c.Variables, c.UnknownVariables
	switch unknown {
	case "", UnknownKeep:
	case UnknownRefuse:
		if len(vars) == 0 {
			v.at("unknown_variables", "unknown_variables: refuse needs a data dictionary: declare the study's variables")
		}
	default:
		v.at("unknown_variables", "unknown_variables %q must be keep (store undeclared variables) or refuse (refuse events that report them)", unknown)
	}
	seen := map[string]bool{}
	for i := range vars {
		d := &vars[i]
		p := fmt.Sprintf("variables[%d]", i)
		if !trial.ValidVariable(d.Name) {
			v.at(p+".name", "variable name %q must be a lower-case identifier of at most 64 characters", d.Name)
		}
		v.variableSource(p, d, c.Plugins)
		if key := d.Source + "." + d.Plugin + "." + d.Name; seen[key] {
			v.at(p+".name", "%s variable %q is declared twice", d.Source, d.Name)
		} else {
			seen[key] = true
		}
		v.variableType(p, d)
		if d.CurrentFor.Duration < 0 {
			v.at(p+".current_for", "variable %q: current_for must be positive", d.Name)
		}
	}
}

// variableSource checks a variable's source, and the plugin of a derived
// variable or the instrument of an assessment.
func (v *validator) variableSource(p string, d *Variable, plugins []PluginConfig) {
	if d.Plugin != "" && d.Source != SourceDerived {
		v.at(p+".plugin", "variable %q: plugin applies only to derived variables", d.Name)
	}
	switch d.Source {
	case SourceEMA, SourceContext:
	case SourceAssessment:
		if _, ok := trial.InstrumentMaxTotal(d.Name); !ok {
			v.at(p+".name", "assessment variable %q must name an instrument the engine scores: phq9 or gad7", d.Name)
		}
		if d.Type != TypeInteger {
			v.at(p+".type", "assessment variable %q is a total score: its type must be integer", d.Name)
		}
		if top, ok := trial.InstrumentMaxTotal(d.Name); ok && (d.Min != nil && *d.Min < 0 || d.Max != nil && *d.Max > float64(top)) {
			v.at(p, "assessment variable %q: min and max must lie within its total's range, 0 to %d", d.Name, top)
		}
	case SourceDerived:
		ok := false
		for _, pc := range plugins {
			ok = ok || pc.Kind == PluginEnricher && pc.Name == d.Plugin
		}
		if !ok {
			v.at(p+".plugin", "derived variable %q: plugin %q must name an enricher plugin of the study (plugins)", d.Name, d.Plugin)
		}
	default:
		v.at(p+".source", "variable %q: source %q must be ema, context, assessment or derived", d.Name, d.Source)
	}
}

func (v *validator) variableType(p string, d *Variable) {
	numeric := d.Type == TypeNumber || d.Type == TypeInteger
	switch d.Type {
	case TypeNumber, TypeInteger, TypeBoolean, TypeCategory:
	default:
		v.at(p+".type", "variable %q: type %q must be number, integer, boolean or category", d.Name, d.Type)
		return
	}
	if !numeric && (d.Min != nil || d.Max != nil) {
		v.at(p, "variable %q: min and max apply only to number and integer variables", d.Name)
	}
	for _, b := range []*float64{d.Min, d.Max} {
		if b != nil && (math.IsNaN(*b) || math.IsInf(*b, 0)) {
			v.at(p, "variable %q: min and max must be finite numbers", d.Name)
		}
	}
	if d.Min != nil && d.Max != nil && *d.Min > *d.Max {
		v.at(p+".max", "variable %q: max %s is below min %s", d.Name, num(*d.Max), num(*d.Min))
	}
	if d.Type != TypeCategory {
		if d.Levels != nil {
			v.at(p+".levels", "variable %q: levels apply only to category variables", d.Name)
		}
		return
	}
	if len(d.Levels) == 0 {
		v.at(p+".levels", "category variable %q needs levels", d.Name)
	}
	levels := map[string]bool{}
	for _, l := range d.Levels {
		if l == "" || len(l) > trial.MaxStringValue {
			v.at(p+".levels", "variable %q: a level must be 1 to %d characters", d.Name, trial.MaxStringValue)
		}
		if levels[l] {
			v.at(p+".levels", "variable %q: level %q is listed twice", d.Name, l)
		}
		levels[l] = true
	}
}

// CheckEvent checks the variables of a (valid) EMA or context event against
// the study's data dictionary, in name order so the error is always the
// same one; field names the event in the request (events[2]). Ingestion and
// study scenarios both call it, so a scenario holds only what an app can
// send.
func (c *Config) CheckEvent(field string, ev *trial.Event) error {
	if (ev.Type != trial.EventEMA && ev.Type != trial.EventContext) || !c.ChecksVariables() {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(ev.Data, &m); err != nil {
		return trial.InputErrorf(field+".data", "must be an object of variable: value")
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := c.CheckVariable(ev.Type, k, m[k]); err != nil {
			return trial.InputErrorf(field+".data."+k, "%v", err)
		}
	}
	return nil
}
