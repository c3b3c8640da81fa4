package policies

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"gopkg.in/yaml.v3"
)

// FactorType says when a factor's level is chosen.
type FactorType string

// Factor types.
const (
	// Between factors are assigned once, at enrolment (factorial designs).
	Between FactorType = "between"
	// Within factors are micro-randomised at every available decision point (MRT).
	Within FactorType = "within"
)

// Probability sources of a within-person factor.
const (
	// SourceFixed uses the factor's declared probability.
	SourceFixed = "fixed"
	// SourcePolicy uses the policy's decision.probabilities[factor] when present.
	SourcePolicy = "policy"
	// SourceBudget spreads a daily budget of treatments over the day's
	// available decision times (Liao, Dempsey et al. 2018).
	SourceBudget = "budget"
	// SourcePlugin asks the probability provider plugin named by the
	// factor's plugin key (docs/plugins.md); the factor's probability is the
	// fallback.
	SourcePlugin = "plugin"
)

// Config is a study's study.yaml.
type Config struct {
	ID             string          `yaml:"id" json:"id"`
	Name           string          `yaml:"name" json:"name"`
	Description    string          `yaml:"description" json:"description,omitempty"`
	Timezone       string          `yaml:"timezone" json:"timezone"`
	Seed           string          `yaml:"seed" json:"-"`
	DecisionPoints []DecisionPoint `yaml:"decision_points" json:"decision_points"`
	DecisionTTL    Duration        `yaml:"decision_ttl" json:"decision_ttl"`
	DeliveryFactor string          `yaml:"delivery_factor" json:"delivery_factor,omitempty"`
	Factors        []Factor        `yaml:"factors" json:"factors"`
	Strata         []string        `yaml:"strata" json:"strata,omitempty"`
	// Design chooses the between-person design; the full factorial when nil.
	Design     *DesignConfig     `yaml:"design" json:"design,omitempty"`
	Outcomes   []Outcome         `yaml:"outcomes" json:"outcomes"`
	Burden     Burden            `yaml:"burden" json:"burden"`
	QuietHours *trial.QuietHours `yaml:"quiet_hours" json:"quiet_hours,omitempty"`
	Crisis     Crisis            `yaml:"crisis" json:"crisis"`
	// CrisisByRegion are the crisis resources of participants in each
	// region (ISO 3166-1 alpha-2, e.g. US, IE); others get Crisis.
	CrisisByRegion map[string]Crisis `yaml:"crisis_by_region" json:"crisis_by_region,omitempty"`
	Interventions  InterventionSel   `yaml:"interventions" json:"interventions"`
	// Erasure says what erasing a participant does to their decision
	// records: ErasureAnonymise (default) keeps them with the participant id
	// replaced by a random surrogate and the input snapshot stripped;
	// ErasureRemove deletes them.
	Erasure string `yaml:"erasure" json:"erasure"`
	// Plugins are the study's out-of-process plugins (docs/plugins.md).
	Plugins []PluginConfig `yaml:"plugins" json:"plugins,omitempty"`
	// Phases are the study's phases in order (baseline, active, follow-up,
	// ...), each a number of study days; after the last a participant is
	// completed. No phases means one active phase without end.
	Phases []Phase `yaml:"phases" json:"phases,omitempty"`
	// Evaluator chooses how the policy is evaluated: EvaluatorIR or
	// EvaluatorTopdown; empty leaves the choice to the loader
	// (LoadOptions, jitai serve --evaluator), which defaults to the IR.
	Evaluator string `yaml:"evaluator" json:"evaluator,omitempty"`
	// OnPolicyError is what a decision is when the policy fails (an
	// evaluation error, a timeout, conflicting values): never a 500.
	OnPolicyError OnPolicyError `yaml:"on_policy_error" json:"on_policy_error"`
	// Delivery is how decisions of scheduled and event-triggered points
	// reach participants; none means the app asks for them.
	Delivery *DeliveryConfig `yaml:"delivery" json:"delivery,omitempty"`
	// Variables are the study's data dictionary (variables.go): the EMA
	// and context variables apps report (checked at ingestion), the
	// assessments and the enrichers' derived values, with their types and
	// ranges; the export's columns and codebook and study check follow it.
	Variables []Variable `yaml:"variables" json:"variables,omitempty"`
	// UnknownVariables is what ingestion does with an EMA or context
	// variable the dictionary does not declare: UnknownKeep (the default)
	// stores it, UnknownRefuse refuses the batch.
	UnknownVariables string `yaml:"unknown_variables" json:"unknown_variables,omitempty"`
}

// OnPolicyError is the study's fail-safe (docs/study.md): the decision when
// its policy cannot be evaluated.
type OnPolicyError struct {
	// Action is the answer: none (the default; reason policy_error, never
	// randomised).
	Action string `yaml:"action" json:"action"`
	// Safety is the answer when the safety rule cannot be evaluated alone
	// either: signpost (the default: the study's crisis signposting,
	// reason safety_unknown) or none.
	Safety string `yaml:"safety" json:"safety"`
	// SafetyRule is the rule of package jitai.policy that holds the
	// safety reasons (default safety).
	SafetyRule string `yaml:"safety_rule" json:"safety_rule"`
}

// Fail-safe choices (OnPolicyError).
const (
	FailNone     = "none"
	FailSignpost = "signpost"
)

// Erasure settings.
const (
	ErasureAnonymise = "anonymise"
	ErasureRemove    = "remove"
)

// DecisionPoint is a named moment of the day at which a decision may be asked for.
type DecisionPoint struct {
	ID   string `yaml:"id" json:"id"`
	Time string `yaml:"time" json:"time,omitempty"` // HH:MM participant-local; empty for app-requested points
	Kind string `yaml:"kind" json:"kind"`           // scheduled (default when Time or Window is set) or app
	// Window makes a scheduled point fire at a random minute within it,
	// drawn from the study seed per participant and local date (instead of Time).
	Window *Window `yaml:"window" json:"window,omitempty"`
	// Days restricts a scheduled point to these days of the week (mon ... sun,
	// participant-local); empty means every day.
	Days []string `yaml:"days" json:"days,omitempty"`
	// StudyDays restricts a scheduled point to a range of study days (day 1
	// is the participant-local day of enrolment); nil means every day.
	StudyDays *DayRange `yaml:"study_days" json:"study_days,omitempty"`
	// Trigger caps an event point (kind: event): the policy's `open` rule
	// opens it when an event arrives.
	Trigger *TriggerConfig `yaml:"trigger" json:"trigger,omitempty"`
}

// TriggerConfig is how an event point opens: within how long of the event
// it must be decided (else it is recorded as missed), and at most how many
// a participant-local day with what gap.
type TriggerConfig struct {
	Within            Duration `yaml:"within" json:"within"`
	MaxPerDay         int      `yaml:"max_per_day" json:"max_per_day,omitempty"`
	MinMinutesBetween int      `yaml:"min_minutes_between" json:"min_minutes_between,omitempty"`
}

// Window is a span of the participant-local day, [Start, End) as HH:MM.
type Window struct {
	Start string `yaml:"start" json:"start"`
	End   string `yaml:"end" json:"end"`
}

// DayRange is an inclusive range of study days. From 0 means day 1; To 0
// means no last day.
type DayRange struct {
	From int `yaml:"from" json:"from,omitempty"`
	To   int `yaml:"to" json:"to,omitempty"`
}

// Contains reports whether study day d lies in the range.
func (r *DayRange) Contains(d int) bool {
	if r == nil {
		return true
	}
	return d >= max(r.From, 1) && (r.To == 0 || d <= r.To)
}

// WeekdayName is the name of d in a decision point's days: (sun, mon, ... sat).
func WeekdayName(d time.Weekday) string {
	const names = "sunmontuewedthufrisat"
	return names[3*d : 3*d+3]
}

func validWeekday(s string) bool {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if WeekdayName(d) == s {
			return true
		}
	}
	return false
}

// Phase is one phase of a study: Days study days long (0 only for a last
// phase without end). Randomise false (e.g. a baseline or follow-up) means
// the phase's decision points are recorded but never randomised or delivered.
type Phase struct {
	Name      string `yaml:"name" json:"name"`
	Days      int    `yaml:"days" json:"days,omitempty"`
	Randomise *bool  `yaml:"randomise" json:"randomise,omitempty"`
}

// Randomises reports whether the phase's decision points are randomised
// (true unless randomise: false).
func (p *Phase) Randomises() bool { return p.Randomise == nil || *p.Randomise }

// Phase names the engine gives itself.
const (
	// PhaseActive is the one phase of a study that declares no phases.
	PhaseActive = "active"
	// PhaseCompleted follows the last phase.
	PhaseCompleted = "completed"
)

// Factor is an intervention component under study.
type Factor struct {
	Name   string     `yaml:"name" json:"name"`
	Type   FactorType `yaml:"type" json:"type"`
	Levels []string   `yaml:"levels" json:"levels"`
	// Probability is P(level 1) for a within-person factor.
	Probability float64 `yaml:"probability" json:"probability,omitempty"`
	// Bounds clip every probability used for this factor.
	Bounds [2]float64 `yaml:"bounds" json:"bounds,omitempty"`
	// ProbabilitySource is fixed (default) or policy.
	ProbabilitySource string `yaml:"probability_source" json:"probability_source,omitempty"`
	// Content says that the factor's level changes the rendered intervention
	// (a catalogue variant dimension of the same name and levels).
	Content bool `yaml:"content" json:"content,omitempty"`
	// Budget configures probability_source: budget.
	Budget *BudgetConfig `yaml:"budget" json:"budget,omitempty"`
	// Plugin names the probability provider of probability_source: plugin.
	Plugin string `yaml:"plugin" json:"plugin,omitempty"`
}

// BudgetConfig is budgeted micro-randomisation (Liao, Dempsey et al. 2018):
// about PerDay treatments a day in each stratum, spread over the day's
// available decision times. Decision times are Interval minutes apart from
// DayStart to DayEnd (participant-local); outside that window the factor's
// fixed probability applies.
type BudgetConfig struct {
	PerDay       float64  `yaml:"per_day" json:"per_day"`
	Lambda       float64  `yaml:"lambda" json:"lambda"`
	Availability float64  `yaml:"availability" json:"availability"`
	DayStart     string   `yaml:"day_start" json:"day_start"`
	DayEnd       string   `yaml:"day_end" json:"day_end"`
	Interval     Duration `yaml:"interval" json:"interval"`
	Blackout     Duration `yaml:"blackout" json:"blackout"`
	// Stratum names a key of the policy's decision.tailoring whose value is
	// the stratum (e.g. "need"); empty means one stratum.
	Stratum string `yaml:"stratum" json:"stratum,omitempty"`
}

// DesignConfig is a fractional between-person design: the between-person
// factors, in declaration order, are the design's factors A, B, C, ...
// Runs asks for the minimum-aberration design of that size; Generators
// give the design explicitly (e.g. ["D=ABC"]).
type DesignConfig struct {
	Runs       int      `yaml:"runs" json:"runs,omitempty"`
	Generators []string `yaml:"generators" json:"generators,omitempty"`
}

// Outcome is a proximal outcome: a value joined to a decision from a later event.
type Outcome struct {
	Name      string   `yaml:"name" json:"name"`
	Event     string   `yaml:"event" json:"event"`                       // ema | engagement | context | assessment
	Variable  string   `yaml:"variable" json:"variable,omitempty"`       // for ema/context/assessment
	Status    string   `yaml:"status" json:"status,omitempty"`           // for engagement
	From      Duration `yaml:"from" json:"from"`                         // window start after the decision
	To        Duration `yaml:"to" json:"to"`                             // window end after the decision
	Aggregate string   `yaml:"aggregate" json:"aggregate,omitempty"`     // first | last | mean | any
	Primary   bool     `yaml:"primary" json:"primary,omitempty"`         // the study's primary proximal outcome
	Describe  string   `yaml:"description" json:"description,omitempty"` // for the codebook
}

// Burden holds the hard caps the engine enforces before randomisation.
type Burden struct {
	// MaxPerDay caps deliveries per participant-local calendar day.
	MaxPerDay int `yaml:"max_per_day" json:"max_per_day"`
	// MaxPer24h caps deliveries in any rolling 24 hours.
	MaxPer24h int `yaml:"max_per_24h" json:"max_per_24h,omitempty"`
	// MinMinutesBetween is the least gap between two deliveries.
	MinMinutesBetween int `yaml:"min_minutes_between" json:"min_minutes_between"`
}

// Crisis is the signposting shown with every safety decision. It comes from
// the study, never from code.
type Crisis struct {
	Title    string    `yaml:"title" json:"title"`
	Text     string    `yaml:"text" json:"text"`
	Contacts []Contact `yaml:"contacts" json:"contacts,omitempty"`
}

// onPolicyError checks the study's fail-safe.
func (v *validator) onPolicyError(o *OnPolicyError) {
	if o.Action != FailNone {
		v.at("on_policy_error.action", "action %q must be none: a failed policy never randomises or delivers", o.Action)
	}
	if o.Safety != FailSignpost && o.Safety != FailNone {
		v.at("on_policy_error.safety", "safety %q must be signpost (show the crisis signposting when safety cannot be evaluated) or none", o.Safety)
	}
	if !nameRe.MatchString(o.SafetyRule) {
		v.at("on_policy_error.safety_rule", "safety_rule %q must be the name of a rule of package jitai.policy", o.SafetyRule)
	}
}

// crisisByRegion checks the regional crisis resources.
func (v *validator) crisisByRegion(m map[string]Crisis) {
	for region, cr := range m {
		p := "crisis_by_region." + region
		if !regionRe.MatchString(region) {
			v.at(p, "region %q must be an ISO 3166-1 alpha-2 code in capitals, such as US or IE", region)
		}
		if strings.TrimSpace(cr.Text) == "" || len(cr.Contacts) == 0 {
			v.at(p, "the crisis resources of region %s need text and at least one contact", region)
		}
	}
}

// regionRe is an ISO 3166-1 alpha-2 code.
var regionRe = regexp.MustCompile(`^[A-Z]{2}$`)

// CrisisFor is the crisis resources of a participant in region (the study
// default when the region has none, or is not set).
func (c *Config) CrisisFor(region string) (cr Crisis, regional bool) {
	if r, ok := c.CrisisByRegion[region]; ok && region != "" {
		return r, true
	}
	return c.Crisis, false
}

// Contact is one crisis service.
type Contact struct {
	Name  string `yaml:"name" json:"name"`
	Phone string `yaml:"phone" json:"phone,omitempty"`
	Text  string `yaml:"text" json:"text,omitempty"`
	URL   string `yaml:"url" json:"url,omitempty"`
}

// InterventionSel selects the catalogue entries a study uses.
type InterventionSel struct {
	// Include lists catalogue ids; empty means the whole catalogue.
	Include []string `yaml:"include" json:"include,omitempty"`
}

// Duration is a time.Duration written as "30m" in YAML and JSON.
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write e.g. 30m or 1h30m)", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// Factor returns the named factor.
func (c *Config) Factor(name string) (*Factor, bool) {
	for i := range c.Factors {
		if c.Factors[i].Name == name {
			return &c.Factors[i], true
		}
	}
	return nil, false
}

// DecisionPoint returns the named decision point.
func (c *Config) DecisionPoint(id string) (*DecisionPoint, bool) {
	for i := range c.DecisionPoints {
		if c.DecisionPoints[i].ID == id {
			return &c.DecisionPoints[i], true
		}
	}
	return nil, false
}

// FactorsOf returns the factors of one type in declaration order.
func (c *Config) FactorsOf(t FactorType) []Factor {
	var out []Factor
	for _, f := range c.Factors {
		if f.Type == t {
			out = append(out, f)
		}
	}
	return out
}

// ConfigError is a problem in a study file, with its position.
type ConfigError struct {
	File string
	Line int
	Msg  string
	// Warning marks something to look at that does not stop the study
	// from loading or running (study check reports it, exits 0).
	Warning bool
}

func (e *ConfigError) Error() string {
	msg := e.Msg
	if e.Warning {
		msg = "warning: " + msg
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
	}
	return fmt.Sprintf("%s: %s", e.File, msg)
}

// ConfigErrors is every problem found in a study.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

var (
	idRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	nameRe   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	lineRe   = regexp.MustCompile(`line (\d+): (.*)`)
	stratRe  = nameRe
	outEvent = map[string]bool{"ema": true, "engagement": true, "context": true, "assessment": true}
	outAgg   = map[string]bool{"first": true, "last": true, "mean": true, "any": true, "count": true}
)

// ParseConfig decodes and validates study.yaml. file names the file in errors.
func ParseConfig(file string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err)
	}
	if len(root.Content) == 0 {
		return nil, ConfigErrors{{File: file, Msg: "file is empty: a study needs at least id, name, timezone and seed"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, yamlError(file, err)
	}
	lines := map[string]int{}
	indexLines(root.Content[0], "", lines)
	c.setDefaults()
	if errs := c.validate(file, lines); len(errs) > 0 {
		return nil, errs
	}
	return &c, nil
}

func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var out ConfigErrors
		for _, m := range te.Errors {
			out = append(out, lineError(file, m))
		}
		return out
	}
	return ConfigErrors{lineError(file, strings.TrimPrefix(err.Error(), "yaml: "))}
}

func lineError(file, msg string) *ConfigError {
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &ConfigError{File: file, Line: n, Msg: m[2]}
	}
	return &ConfigError{File: file, Msg: msg}
}

// indexLines records the line of every mapping key and sequence item by path
// (e.g. "factors[1].probability") so that validation can point at it.
func indexLines(n *yaml.Node, path string, out map[string]int) {
	if _, ok := out[path]; !ok {
		out[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			out[p] = n.Content[i].Line
			indexLines(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = c.Line
			indexLines(c, p, out)
		}
	}
}

func (c *Config) setDefaults() {
	if c.Erasure == "" {
		c.Erasure = ErasureAnonymise
	}
	if c.OnPolicyError.Action == "" {
		c.OnPolicyError.Action = FailNone
	}
	if c.OnPolicyError.Safety == "" {
		c.OnPolicyError.Safety = FailSignpost
	}
	if c.OnPolicyError.SafetyRule == "" {
		c.OnPolicyError.SafetyRule = "safety"
	}
	if c.DecisionTTL.Duration == 0 {
		c.DecisionTTL.Duration = 30 * time.Minute
	}
	for i := range c.DecisionPoints {
		dp := &c.DecisionPoints[i]
		if dp.Kind == "" {
			if dp.Time == "" && dp.Window == nil {
				dp.Kind = "app"
			} else {
				dp.Kind = "scheduled"
			}
		}
	}
	for i := range c.Factors {
		f := &c.Factors[i]
		if f.Type == Within {
			if f.ProbabilitySource == "" {
				f.ProbabilitySource = SourceFixed
			}
			if f.Bounds == [2]float64{} {
				f.Bounds = [2]float64{0, 1}
			}
		}
	}
	for i := range c.Plugins {
		c.Plugins[i].setDefaults()
	}
	for i := range c.Outcomes {
		if c.Outcomes[i].Aggregate == "" {
			c.Outcomes[i].Aggregate = "first"
		}
	}
}

type validator struct {
	file  string
	lines map[string]int
	errs  ConfigErrors
}

// at reports a problem at path, or at the nearest enclosing path that has a line.
func (v *validator) at(path, format string, args ...any) {
	line := 0
	for p := path; ; {
		if l, ok := v.lines[p]; ok {
			line = l
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	v.errs = append(v.errs, &ConfigError{File: v.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (c *Config) validate(file string, lines map[string]int) ConfigErrors {
	v := &validator{file: file, lines: lines}
	if !idRe.MatchString(c.ID) {
		v.at("id", "id %q must be 1-63 lower-case letters, digits, '-' or '_'", c.ID)
	}
	if strings.TrimSpace(c.Name) == "" {
		v.at("name", "name is required")
	}
	if c.Timezone == "" {
		v.at("timezone", "timezone is required (an IANA zone such as Europe/London)")
	} else if _, err := time.LoadLocation(c.Timezone); err != nil {
		v.at("timezone", "timezone %q is not a known IANA zone", c.Timezone)
	}
	if len(c.Seed) < 8 {
		v.at("seed", "seed is required and must be at least 8 characters (it keys every randomisation draw)")
	}
	if len(c.DecisionPoints) == 0 {
		v.at("decision_points", "at least one decision point is required")
	}
	v.decisionPoints(c.DecisionPoints)
	v.phases(c.Phases)
	v.delivery(c.Delivery, c.Plugins)
	v.onPolicyError(&c.OnPolicyError)
	if c.DecisionTTL.Duration < 0 {
		v.at("decision_ttl", "decision_ttl must be positive")
	}
	if c.Evaluator != "" && CheckEvaluator(c.Evaluator) != nil {
		v.at("evaluator", "evaluator %q must be %s (OPA's planned IR) or %s (OPA's topdown evaluator), or left out to use the server's --evaluator", c.Evaluator, EvaluatorIR, EvaluatorTopdown)
	}
	if c.Erasure != ErasureAnonymise && c.Erasure != ErasureRemove {
		v.at("erasure", "erasure %q must be anonymise (keep decision records without the participant id) or remove (delete them)", c.Erasure)
	}
	names := map[string]bool{}
	for i, f := range c.Factors {
		p := fmt.Sprintf("factors[%d]", i)
		if !nameRe.MatchString(f.Name) {
			v.at(p+".name", "factor name %q must be a lower-case identifier", f.Name)
		}
		if names[f.Name] {
			v.at(p+".name", "factor %q is declared twice", f.Name)
		}
		names[f.Name] = true
		if len(f.Levels) != 2 || f.Levels[0] == "" || f.Levels[1] == "" || f.Levels[0] == f.Levels[1] {
			v.at(p+".levels", "factor %q needs exactly two distinct levels [level0, level1]", f.Name)
		}
		switch f.Type {
		case Within:
			lo, hi := f.Bounds[0], f.Bounds[1]
			if !(lo >= 0 && lo <= hi && hi <= 1) {
				v.at(p+".bounds", "bounds [%v, %v] must satisfy 0 <= lo <= hi <= 1", lo, hi)
			}
			if math.IsNaN(f.Probability) || f.Probability < lo || f.Probability > hi {
				v.at(p+".probability", "probability %v of factor %q must lie within its bounds [%v, %v]", f.Probability, f.Name, lo, hi)
			}
			switch f.ProbabilitySource {
			case SourceFixed, SourcePolicy, SourcePlugin:
				if f.Budget != nil {
					v.at(p+".budget", "budget applies only with probability_source: budget")
				}
			case SourceBudget:
				validateBudget(v, p+".budget", f.Budget)
			default:
				v.at(p+".probability_source", "probability_source %q must be fixed, policy, budget or plugin", f.ProbabilitySource)
			}
			validateFactorPlugin(v, p, f, c.Plugins)
		case Between:
			if f.Probability != 0 || f.ProbabilitySource != "" || f.Bounds != [2]float64{} {
				v.at(p, "between-person factor %q is assigned by permuted blocks: remove probability, bounds and probability_source", f.Name)
			}
		default:
			v.at(p+".type", "factor type %q must be within or between", f.Type)
		}
	}
	validatePlugins(v, c)
	v.variables(c)
	if c.DeliveryFactor != "" {
		f, ok := c.Factor(c.DeliveryFactor)
		if !ok {
			v.at("delivery_factor", "delivery_factor %q is not a declared factor", c.DeliveryFactor)
		} else if f.Type != Within {
			v.at("delivery_factor", "delivery_factor %q must be a within-person factor", c.DeliveryFactor)
		}
	}
	for i, s := range c.Strata {
		if !stratRe.MatchString(s) {
			v.at(fmt.Sprintf("strata[%d]", i), "stratum name %q must be a lower-case identifier", s)
		}
	}
	if c.Design != nil {
		nb := len(c.FactorsOf(Between))
		switch {
		case nb == 0:
			v.at("design", "design applies to between-person factors, and the study has none")
		case c.Design.Runs == 0 && len(c.Design.Generators) == 0:
			v.at("design", "design needs runs (a minimum-aberration fraction) or generators")
		case c.Design.Runs != 0 && (c.Design.Runs < 2 || c.Design.Runs&(c.Design.Runs-1) != 0 || c.Design.Runs > 1<<nb):
			v.at("design.runs", "runs %d must be a power of two from 2 to %d (the full factorial of %d factors)", c.Design.Runs, 1<<nb, nb)
		}
	}
	onames := map[string]bool{}
	for i, o := range c.Outcomes {
		p := fmt.Sprintf("outcomes[%d]", i)
		if !nameRe.MatchString(o.Name) || onames[o.Name] {
			v.at(p+".name", "outcome name %q must be a unique lower-case identifier", o.Name)
		}
		onames[o.Name] = true
		if !outEvent[o.Event] {
			v.at(p+".event", "outcome event %q must be one of ema, engagement, context, assessment", o.Event)
		}
		if o.Event == "engagement" && o.Status == "" {
			v.at(p, "an engagement outcome needs a status (opened, completed, ...)")
		}
		if o.Event != "engagement" && o.Variable == "" {
			v.at(p, "outcome %q needs a variable", o.Name)
		}
		if o.To.Duration <= o.From.Duration {
			v.at(p+".to", "outcome window must end after it starts (from %s, to %s)", o.From.Duration, o.To.Duration)
		}
		if !outAgg[o.Aggregate] {
			v.at(p+".aggregate", "aggregate %q must be first, last, mean, any or count", o.Aggregate)
		}
	}
	if c.Burden.MaxPerDay < 0 || c.Burden.MaxPer24h < 0 || c.Burden.MinMinutesBetween < 0 {
		v.at("burden", "burden limits must not be negative")
	}
	if c.QuietHours != nil {
		if !trial.ValidClock(c.QuietHours.Start) || !trial.ValidClock(c.QuietHours.End) {
			v.at("quiet_hours", "quiet_hours start and end must be HH:MM")
		}
	}
	if strings.TrimSpace(c.Crisis.Text) == "" {
		v.at("crisis", "crisis.text is required: it is shown with every safety decision")
	}
	v.crisisByRegion(c.CrisisByRegion)
	sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
	return v.errs
}

// decisionPoints checks the decision points: unique ids, times as HH:MM,
// a time or a window for every scheduled point, and its day filters.
func (v *validator) decisionPoints(points []DecisionPoint) {
	seen := map[string]bool{}
	for i, dp := range points {
		p := fmt.Sprintf("decision_points[%d]", i)
		if !idRe.MatchString(dp.ID) {
			v.at(p+".id", "decision point id %q must be lower-case letters, digits, '-' or '_'", dp.ID)
		}
		if seen[dp.ID] {
			v.at(p+".id", "decision point %q is declared twice", dp.ID)
		}
		seen[dp.ID] = true
		if dp.Time != "" && !trial.ValidClock(dp.Time) {
			v.at(p+".time", "time %q must be HH:MM (24-hour clock)", dp.Time)
		}
		switch dp.Kind {
		case "scheduled":
			switch {
			case dp.Time == "" && dp.Window == nil:
				v.at(p, "a scheduled decision point needs a time (time: \"08:30\") or a window (window: {start: \"08:00\", end: \"10:00\"})")
			case dp.Time != "" && dp.Window != nil:
				v.at(p+".window", "decision point %q has both time and window: keep one", dp.ID)
			}
			v.window(p+".window", dp.Window)
			v.days(p+".days", dp.Days)
			v.studyDays(p+".study_days", dp.StudyDays)
		case "app":
			if dp.Window != nil || v.has(p+".days") || dp.StudyDays != nil {
				v.at(p, "window, days and study_days apply only to scheduled points: remove them from app point %q", dp.ID)
			}
		case "event":
			v.eventPoint(p, &dp)
		default:
			v.at(p+".kind", "kind %q must be scheduled, app or event", dp.Kind)
		}
		if dp.Trigger != nil && dp.Kind != "event" {
			v.at(p+".trigger", "trigger applies only to event points (kind: event): remove it from %s point %q", dp.Kind, dp.ID)
		}
	}
}

// eventPoint checks an event-triggered point: no time of day, a trigger
// with a positive window and caps that are not negative.
func (v *validator) eventPoint(p string, dp *DecisionPoint) {
	if dp.Time != "" || dp.Window != nil || v.has(p+".days") || dp.StudyDays != nil {
		v.at(p, "event point %q opens when the policy's open rule names it on an event: remove time, window, days and study_days", dp.ID)
	}
	t := dp.Trigger
	if t == nil {
		v.at(p, "event point %q needs trigger: {within: 5m, max_per_day: 2, min_minutes_between: 60}", dp.ID)
		return
	}
	if t.Within.Duration <= 0 {
		v.at(p+".trigger.within", "within must be a positive duration: how soon after the event the point is decided (e.g. 5m)")
	}
	if t.MaxPerDay < 0 {
		v.at(p+".trigger.max_per_day", "max_per_day must be at least 0 (0 = no cap)")
	}
	if t.MinMinutesBetween < 0 {
		v.at(p+".trigger.min_minutes_between", "min_minutes_between must be at least 0")
	}
}

// has reports whether the file has the key at path.
func (v *validator) has(path string) bool {
	_, ok := v.lines[path]
	return ok
}

// window checks a decision point's window: HH:MM start and end, end after
// start on the same day.
func (v *validator) window(p string, w *Window) {
	if w == nil {
		return
	}
	start, err1 := trial.ParseClock(w.Start)
	end, err2 := trial.ParseClock(w.End)
	switch {
	case err1 != nil:
		v.at(p+".start", "window start %q must be HH:MM (24-hour clock)", w.Start)
	case err2 != nil:
		v.at(p+".end", "window end %q must be HH:MM (24-hour clock)", w.End)
	case end <= start:
		v.at(p+".end", "window end %s must be after its start %s on the same day (a window cannot cross midnight)", w.End, w.Start)
	}
}

// days checks a days-of-the-week filter.
func (v *validator) days(p string, days []string) {
	if v.has(p) && len(days) == 0 {
		v.at(p, "days is empty, so the point would never fire: list days (e.g. [mon, wed, fri]) or leave days out for every day")
	}
	seen := map[string]bool{}
	for i, d := range days {
		if !validWeekday(d) {
			v.at(fmt.Sprintf("%s[%d]", p, i), "day %q must be one of mon, tue, wed, thu, fri, sat, sun", d)
		} else if seen[d] {
			v.at(fmt.Sprintf("%s[%d]", p, i), "day %q is listed twice", d)
		}
		seen[d] = true
	}
}

// studyDays checks a study-day range.
func (v *validator) studyDays(p string, r *DayRange) {
	if r == nil {
		return
	}
	if v.has(p+".from") && r.From < 1 {
		v.at(p+".from", "study_days.from %d must be at least 1 (day 1 is the day of enrolment)", r.From)
	}
	if v.has(p+".to") && r.To < max(r.From, 1) {
		v.at(p+".to", "study_days.to %d must be at least from (%d); leave it out for no last day", r.To, max(r.From, 1))
	}
}

// phases checks the study's phases: unique names, a positive length for
// every phase but an open-ended last one.
func (v *validator) phases(phases []Phase) {
	if v.has("phases") && len(phases) == 0 {
		v.at("phases", "phases is empty: list phases (e.g. [{name: active, days: 42}]) or leave phases out for one active phase without end")
	}
	seen := map[string]bool{}
	for i, ph := range phases {
		p := fmt.Sprintf("phases[%d]", i)
		switch {
		case !nameRe.MatchString(ph.Name):
			v.at(p+".name", "phase name %q must be a lower-case identifier (e.g. baseline)", ph.Name)
		case ph.Name == PhaseCompleted:
			v.at(p+".name", "phase name %q is reserved for the time after the last phase", ph.Name)
		case seen[ph.Name]:
			v.at(p+".name", "phase %q is declared twice", ph.Name)
		}
		seen[ph.Name] = true
		last := i == len(phases)-1
		if ph.Days < 0 || (ph.Days == 0 && !last) {
			v.at(p+".days", "phase %q needs days: a whole number of study days of at least 1 (only the last phase may leave days out to run without end)", ph.Name)
		}
	}
}

func validateBudget(v *validator, p string, b *BudgetConfig) {
	if b == nil {
		v.at(p, "probability_source: budget needs a budget: {per_day, lambda, availability, day_start, day_end, interval, blackout}")
		return
	}
	if !(b.PerDay > 0) {
		v.at(p+".per_day", "per_day must be a positive number of treatments a day")
	}
	if !(b.Lambda >= 0 && b.Lambda < 1) {
		v.at(p+".lambda", "lambda must be in [0, 1)")
	}
	if !(b.Availability > 0 && b.Availability <= 1) {
		v.at(p+".availability", "availability (the forecast probability of being available at a decision time) must be in (0, 1]")
	}
	start, err1 := trial.ParseClock(b.DayStart)
	end, err2 := trial.ParseClock(b.DayEnd)
	if err1 != nil || err2 != nil || end <= start {
		v.at(p+".day_start", "day_start and day_end must be HH:MM with day_end after day_start")
	}
	if b.Interval.Duration < time.Minute || b.Interval.Duration%time.Minute != 0 {
		v.at(p+".interval", "interval must be a whole number of minutes (e.g. 1m)")
	}
	if b.Blackout.Duration < 0 {
		v.at(p+".blackout", "blackout must not be negative")
	}
}
