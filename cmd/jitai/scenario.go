package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/trial"

	"gopkg.in/yaml.v3"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/policies"
)

// Scenario files (docs/study.md, "Scenarios"): YAML cases of participant
// state, context and time with the decision the study must make, run
// through the engine's own decision pipeline (engine.Preview) without a
// store.

// scenarioFile is one file under DIR/scenarios.
type scenarioFile struct {
	// Participant gives defaults for every case's participant.
	Participant scenarioParticipant `yaml:"participant,omitempty"`
	Cases       []scenarioCase      `yaml:"cases,omitempty"`
}

type scenarioParticipant struct {
	ID         string            `yaml:"id,omitempty"`
	Timezone   string            `yaml:"timezone,omitempty"`
	EnrolledAt string            `yaml:"enrolled_at,omitempty"`
	Assignment map[string]string `yaml:"assignment,omitempty"`
	Strata     map[string]string `yaml:"strata,omitempty"`
}

type scenarioCase struct {
	Name string `yaml:"name,omitempty"`
	// Time is the decision time: RFC 3339, or YYYY-MM-DDTHH:MM in the
	// participant's zone.
	Time          string              `yaml:"time,omitempty"`
	DecisionPoint string              `yaml:"decision_point,omitempty"`
	Participant   scenarioParticipant `yaml:"participant,omitempty"`
	Context       map[string]any      `yaml:"context,omitempty"`
	Events        []scenarioEvent     `yaml:"events,omitempty"`
	Deliveries    []scenarioDelivery  `yaml:"deliveries,omitempty"`
	// Preferences is a preference event's data, applied at the decision
	// time (quiet_hours, snooze_minutes, snooze_until, opt_out).
	Preferences map[string]any `yaml:"preferences,omitempty"`
	Expect      scenarioExpect `yaml:"expect,omitempty"`
}

type scenarioEvent struct {
	Type string `yaml:"type,omitempty"`
	// Ago (a duration before the decision) or Time (as the case's time).
	Ago  string         `yaml:"ago,omitempty"`
	Time string         `yaml:"time,omitempty"`
	Data map[string]any `yaml:"data,omitempty"`
}

type scenarioDelivery struct {
	Ago          string `yaml:"ago,omitempty"`
	Time         string `yaml:"time,omitempty"`
	Intervention string `yaml:"intervention,omitempty"`
}

type scenarioExpect struct {
	Action             string            `yaml:"action,omitempty"`
	Available          *bool             `yaml:"available,omitempty"`
	Reasons            []string          `yaml:"reasons,omitempty"`
	ReasonsInclude     []string          `yaml:"reasons_include,omitempty"`
	ReasonsExclude     []string          `yaml:"reasons_exclude,omitempty"`
	Candidates         []string          `yaml:"candidates,omitempty"`
	CandidatesInclude  []string          `yaml:"candidates_include,omitempty"`
	CandidatesExclude  []string          `yaml:"candidates_exclude,omitempty"`
	Intervention       string            `yaml:"intervention,omitempty"`
	Factors            map[string]string `yaml:"factors,omitempty"`
	Tailoring          map[string]any    `yaml:"tailoring,omitempty"`
	UnavailableReasons []string          `yaml:"unavailable_reasons,omitempty"`
}

// scenarioResult is the outcome of one case.
type scenarioResult struct {
	File string
	Line int
	Name string
	// Failures are the unmet expectations (empty: passed).
	Failures []scenarioFailure
}

// scenarioFailure is one unmet expectation or a problem with the case,
// at its line.
type scenarioFailure struct {
	Line int
	Msg  string
}

func (r scenarioResult) pass() bool { return len(r.Failures) == 0 }

// scenarioPaths lists the study's scenario files.
func scenarioPaths(dir string) ([]string, error) {
	var out []string
	for _, ext := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, "scenarios", ext))
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	sort.Strings(out)
	return out, nil
}

// runScenarios runs every case of the study's scenario files through the
// engine's decision pipeline. name is how the study folder is shown.
func runScenarios(ctx context.Context, s *policies.Study, name string) ([]scenarioResult, error) {
	paths, err := scenarioPaths(s.Dir)
	if err != nil || len(paths) == 0 {
		return nil, err
	}
	eng, rt, err := previewEngine(s)
	if err != nil {
		return nil, err
	}
	var out []scenarioResult
	var errs policies.ConfigErrors
	for _, p := range paths {
		shown := filepath.Join(name, "scenarios", filepath.Base(p))
		res, err := runScenarioFile(ctx, eng, rt, p, shown)
		if err != nil {
			var ce policies.ConfigErrors
			if errors.As(err, &ce) {
				errs = append(errs, ce...)
				continue
			}
			return nil, err
		}
		out = append(out, res...)
	}
	if len(errs) > 0 {
		return out, errs
	}
	return out, nil
}

// previewEngine is an engine serving only s, for previews (scenarios, study
// check): it needs a store to be built, and Preview never uses it.
func previewEngine(s *policies.Study) (*engine.Engine, *engine.StudyRuntime, error) {
	eng, err := engine.New(engine.Components{Store: noStore{}, Studies: []*policies.Study{s}})
	if err != nil {
		return nil, nil, err
	}
	rt, _ := eng.Study(s.Config.ID)
	return eng, rt, nil
}

// noStore is the store of a preview-only engine: any use but reading a
// pin is a bug. A preview has no enrolled participants, so no design is
// pinned.
type noStore struct{ trial.Store }

// Pinned reports that nothing is pinned (trial.Pins).
func (noStore) Pinned(_ context.Context, study, name string) ([]byte, error) {
	return nil, fmt.Errorf("%s of study %s: %w", name, study, trial.ErrNotFound)
}

func runScenarioFile(ctx context.Context, eng *engine.Engine, rt *engine.StudyRuntime, path, shown string) ([]scenarioResult, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, policies.ConfigErrors{scenarioYAMLError(shown, err)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var f scenarioFile
	if err := dec.Decode(&f); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			var ce policies.ConfigErrors
			for _, m := range te.Errors {
				ce = append(ce, scenarioYAMLError(shown, errors.New(m)))
			}
			return nil, ce
		}
		return nil, policies.ConfigErrors{scenarioYAMLError(shown, err)}
	}
	if len(f.Cases) == 0 {
		return nil, policies.ConfigErrors{{File: shown, Msg: "no cases: a scenario file is {participant?, cases: [...]}"}}
	}
	caseNodes := casesNodes(&root)
	var out []scenarioResult
	for i, c := range f.Cases {
		lines := map[string]int{}
		line := 0
		if i < len(caseNodes) {
			line = caseNodes[i].Line
			indexKeys(caseNodes[i], "", lines)
		}
		res := scenarioResult{File: shown, Line: line, Name: c.Name}
		if res.Name == "" {
			res.Name = fmt.Sprintf("case %d", i+1)
		}
		at := func(key string) int {
			if l, ok := lines[key]; ok {
				return l
			}
			return line
		}
		rec, err := runCase(ctx, eng, rt, &f.Participant, &c, at)
		var ce *caseErr
		switch {
		case errors.As(err, &ce):
			res.Failures = []scenarioFailure{{Line: ce.line, Msg: ce.msg}}
		case err != nil:
			res.Failures = []scenarioFailure{{Line: line, Msg: err.Error()}}
		default:
			res.Failures = compareExpect(&c.Expect, rec, at)
		}
		out = append(out, res)
	}
	return out, nil
}

func scenarioYAMLError(file string, err error) *policies.ConfigError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.Index(msg, " in type main."); i >= 0 {
		msg = msg[:i] + " (docs/study.md lists the scenario keys)"
	}
	var n int
	if _, e := fmt.Sscanf(msg, "line %d:", &n); e == nil {
		_, rest, _ := strings.Cut(msg, ": ")
		return &policies.ConfigError{File: file, Line: n, Msg: rest}
	}
	return &policies.ConfigError{File: file, Msg: msg}
}

// casesNodes returns the mapping nodes of the cases, in order.
func casesNodes(root *yaml.Node) []*yaml.Node {
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "cases" && m.Content[i+1].Kind == yaml.SequenceNode {
			return m.Content[i+1].Content
		}
	}
	return nil
}

// indexKeys records the line of every mapping key by dotted path.
func indexKeys(n *yaml.Node, path string, out map[string]int) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p := n.Content[i].Value
		if path != "" {
			p = path + "." + p
		}
		out[p] = n.Content[i].Line
		indexKeys(n.Content[i+1], p, out)
	}
}

// caseErr is a problem with a case itself (not a failed expectation).
type caseErr struct {
	line int
	msg  string
}

// Error returns "line N: message".
func (e *caseErr) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

func caseError(line int, format string, args ...any) error {
	return &caseErr{line: line, msg: fmt.Sprintf(format, args...)}
}

func runCase(ctx context.Context, eng *engine.Engine, rt *engine.StudyRuntime, def *scenarioParticipant, c *scenarioCase, at func(string) int) (*trial.Record, error) {
	p := *def
	if c.Participant.ID != "" {
		p.ID = c.Participant.ID
	}
	if c.Participant.Timezone != "" {
		p.Timezone = c.Participant.Timezone
	}
	if c.Participant.EnrolledAt != "" {
		p.EnrolledAt = c.Participant.EnrolledAt
	}
	if c.Participant.Assignment != nil {
		p.Assignment = c.Participant.Assignment
	}
	if c.Participant.Strata != nil {
		p.Strata = c.Participant.Strata
	}
	tz := p.Timezone
	if tz == "" {
		tz = rt.Config.Timezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, caseError(at("participant.timezone"), "timezone %q is not an IANA zone", tz)
	}
	now, err := scenarioTime(c.Time, loc)
	if err != nil {
		return nil, caseError(at("time"), "time: %v", err)
	}
	var enrolled time.Time
	if p.EnrolledAt != "" {
		if enrolled, err = scenarioTime(p.EnrolledAt, loc); err != nil {
			return nil, caseError(at("participant.enrolled_at"), "enrolled_at: %v", err)
		}
	}
	when := func(key, ago, abs string) (time.Time, error) {
		switch {
		case ago != "" && abs != "":
			return time.Time{}, caseError(at(key), "give ago or time, not both")
		case ago != "":
			d, err := time.ParseDuration(ago)
			if err != nil || d < 0 {
				return time.Time{}, caseError(at(key), "ago %q is not a duration such as 30m", ago)
			}
			return now.Add(-d), nil
		case abs != "":
			t, err := scenarioTime(abs, loc)
			if err != nil {
				return time.Time{}, caseError(at(key), "time: %v", err)
			}
			return t, nil
		}
		return now, nil
	}
	var events []trial.Event
	for i, ev := range c.Events {
		t, err := when("events", ev.Ago, ev.Time)
		if err != nil {
			return nil, err
		}
		data, err := json.Marshal(ev.Data)
		if err != nil {
			return nil, caseError(at("events"), "events[%d].data: %v", i, err)
		}
		e := trial.Event{ID: fmt.Sprintf("scenario-%d", i+1), Type: ev.Type, Time: t, Data: data}
		// As the API checks it: a scenario holds only what an app can send.
		if err := rt.Config.CheckEvent(fmt.Sprintf("events[%d]", i), &e); err != nil {
			return nil, caseError(at("events"), "%v", err)
		}
		events = append(events, e)
	}
	if c.Preferences != nil {
		data, err := json.Marshal(c.Preferences)
		if err != nil {
			return nil, caseError(at("preferences"), "preferences: %v", err)
		}
		events = append(events, trial.Event{ID: "scenario-preferences", Type: trial.EventPreference, Time: now, Data: data})
	}
	var deliveries []trial.Prompt
	for _, d := range c.Deliveries {
		t, err := when("deliveries", d.Ago, d.Time)
		if err != nil {
			return nil, err
		}
		deliveries = append(deliveries, trial.Prompt{Time: t, Intervention: d.Intervention})
	}
	snap, err := decision.PreviewSnapshot(rt.Runtime, decision.PreviewParticipant{ID: p.ID, Timezone: tz, EnrolledAt: enrolled, Assignment: p.Assignment, Strata: p.Strata}, events, deliveries, now)
	if err != nil {
		return nil, caseError(at("events"), "%v", err)
	}
	rec, err := eng.Preview(ctx, rt.Config.ID, snap, engine.DecideRequest{DecisionPoint: c.DecisionPoint, Time: now, Context: normaliseContext(c.Context)})
	if err != nil {
		return nil, caseError(at("decision_point"), "the decision failed: %v", err)
	}
	return rec, nil
}

// normaliseContext gives YAML numbers the type JSON decoding gives them.
func normaliseContext(c map[string]any) map[string]any {
	if c == nil {
		return nil
	}
	out := make(map[string]any, len(c))
	for k, v := range c {
		switch n := v.(type) {
		case int:
			out[k] = float64(n)
		default:
			out[k] = v
		}
	}
	return out
}

// scenarioTime parses RFC 3339, or a participant-local YYYY-MM-DDTHH:MM.
func scenarioTime(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("required (RFC 3339, or YYYY-MM-DDTHH:MM in the participant's zone)")
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DDTHH:MM", s)
}

// compareExpect lists the expectations the record does not meet, each at
// its line as "what: want ..., got ...".
func compareExpect(x *scenarioExpect, rec *trial.Record, at func(string) int) []scenarioFailure {
	var out []scenarioFailure
	fail := func(key, format string, args ...any) {
		out = append(out, scenarioFailure{Line: at("expect." + key), Msg: key + ": " + fmt.Sprintf(format, args...)})
	}
	if x.Action != "" && x.Action != rec.Action {
		fail("action", "want %s, got %s (reasons %v)", x.Action, rec.Action, rec.Reasons)
	}
	if x.Available != nil && *x.Available != rec.Available {
		fail("available", "want %v, got %v (unavailable reasons %v)", *x.Available, rec.Available, rec.UnavailableReasons)
	}
	sameSet := func(key string, want, got []string) {
		if want != nil && !slices.Equal(sorted(want), sorted(got)) {
			fail(key, "want %v, got %v", sorted(want), sorted(got))
		}
	}
	include := func(key string, want, got []string) {
		var missing []string
		for _, w := range want {
			if !slices.Contains(got, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) > 0 {
			fail(key, "want %v among them, got %v", missing, sorted(got))
		}
	}
	exclude := func(key string, unwanted, got []string) {
		var present []string
		for _, u := range unwanted {
			if slices.Contains(got, u) {
				present = append(present, u)
			}
		}
		if len(present) > 0 {
			fail(key, "want none of %v, got %v", present, sorted(got))
		}
	}
	sameSet("reasons", x.Reasons, rec.Reasons)
	include("reasons_include", x.ReasonsInclude, rec.Reasons)
	exclude("reasons_exclude", x.ReasonsExclude, rec.Reasons)
	sameSet("unavailable_reasons", x.UnavailableReasons, rec.UnavailableReasons)
	var cands []string
	for _, c := range rec.Candidates {
		cands = append(cands, c.ID)
	}
	sameSet("candidates", x.Candidates, cands)
	include("candidates_include", x.CandidatesInclude, cands)
	exclude("candidates_exclude", x.CandidatesExclude, cands)
	if x.Intervention != "" {
		got := ""
		if rec.Option != nil {
			got = rec.Option.ID
		}
		if got != x.Intervention {
			fail("intervention", "want %s, got %q (action %s)", x.Intervention, got, rec.Action)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(x.Factors)) {
		got := ""
		for _, f := range rec.Factors {
			if f.Name == name {
				got = f.Label
			}
		}
		if got != x.Factors[name] {
			fail("factors."+name, "want %s, got %q", x.Factors[name], got)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(x.Tailoring)) {
		want, _ := json.Marshal(normaliseContext(map[string]any{"v": x.Tailoring[name]})["v"])
		got, _ := json.Marshal(rec.Tailoring[name])
		if string(want) != string(got) {
			fail("tailoring."+name, "want %s, got %s", want, got)
		}
	}
	return out
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}
