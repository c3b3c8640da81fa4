package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// A policy failure study check finds on a generated input is reported as a
// scenario the designer pastes into the study's scenario files: the
// participant state, context and time that make the policy fail, expecting
// what the study must decide then (no policy error). The scenario is run
// through the engine's pipeline before it is shown, so it is shown only if
// it fails the same way; otherwise the raw input is shown.

// failureScenario turns a generated policy input on which the policy fails
// into a scenario file (YAML) that reproduces the failure, or "" when the
// parts of the input a scenario can set do not reproduce it.
// eng is a preview engine of the study (previewEngine).
func failureScenario(ctx context.Context, eng *engine.Engine, rt *engine.StudyRuntime, doc map[string]any, kind string) string {
	c, p := scenarioOfInput(rt.Study, doc)
	c.Name = "study check: the policy fails here (" + kind + ")"
	c.Expect.ReasonsExclude = []string{trial.ReasonPolicyError, trial.ReasonSafetyUnknown}
	fails := func(c *scenarioCase) bool {
		rec, err := runCase(ctx, eng, rt, &p, c, func(string) int { return 0 })
		return err == nil && rec.PolicyError != nil
	}
	if !fails(&c) {
		return ""
	}
	minimise(&c, fails)
	out, err := yaml.Marshal(scenarioFile{Participant: p, Cases: []scenarioCase{c}})
	if err != nil {
		return ""
	}
	return string(out)
}

// minimise drops what the failure does not need, one part at a time (each
// event, each context value, the preferences, the deliveries), keeping a
// drop only while the case still fails.
func minimise(c *scenarioCase, fails func(*scenarioCase) bool) {
	for i := len(c.Events) - 1; i >= 0; i-- {
		try := *c
		try.Events = slices.Delete(slices.Clone(c.Events), i, i+1)
		if fails(&try) {
			*c = try
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Context)) {
		try := *c
		try.Context = maps.Clone(c.Context)
		delete(try.Context, k)
		if len(try.Context) == 0 {
			try.Context = nil
		}
		if fails(&try) {
			*c = try
		}
	}
	for _, drop := range []func(*scenarioCase){
		func(t *scenarioCase) { t.Preferences = nil },
		func(t *scenarioCase) { t.Deliveries = nil },
	} {
		try := *c
		drop(&try)
		if fails(&try) {
			*c = try
		}
	}
}

// scenarioOfInput maps what a scenario can set from a policy input: the
// local time and zone, the decision point, the app's context, the latest
// self-reports and context values (with their ages), the PHQ-9 and GAD-7,
// the preferences, and the deliveries behind the history counts.
func scenarioOfInput(s *policies.Study, doc map[string]any) (scenarioCase, scenarioParticipant) {
	p := scenarioParticipant{Timezone: s.Config.Timezone, EnrolledAt: "2026-11-02T09:00"}
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil {
		loc = time.UTC
	}
	at := time.Date(2026, 11, 18, 14, 30, 0, 0, loc)
	local, _ := doc["local"].(map[string]any)
	if h, ok := wholeIn(local["hour"], 0, 23); ok {
		at = time.Date(2026, 11, 18, h, at.Minute(), 0, 0, loc)
	}
	if m, ok := wholeIn(local["minute"], 0, 59); ok {
		at = time.Date(2026, 11, 18, at.Hour(), m, 0, 0, loc)
	}
	c := scenarioCase{Time: at.Format("2006-01-02T15:04"), DecisionPoint: s.Config.DecisionPoints[0].ID}
	if dp, _ := doc["decision_point"].(map[string]any); dp != nil {
		if id, _ := dp["id"].(string); slices.ContainsFunc(s.Config.DecisionPoints, func(d policies.DecisionPoint) bool { return d.ID == id }) {
			c.DecisionPoint = id
		}
	}
	if ctx, _ := doc["context"].(map[string]any); len(ctx) > 0 {
		c.Context = ctx
	}
	state, _ := doc["state"].(map[string]any)
	for _, src := range []string{trial.EventEMA, trial.EventContext} {
		vars, _ := state[src].(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(vars)) {
			v, _ := vars[name].(map[string]any)
			if v == nil || v["value"] == nil {
				continue
			}
			ago := "10m"
			if m, ok := wholeIn(v["age_minutes"], 0, 60*24*30); ok {
				ago = fmt.Sprintf("%dm", m)
			}
			c.Events = append(c.Events, scenarioEvent{Type: src, Ago: ago, Data: map[string]any{name: v["value"]}})
		}
	}
	assess, _ := state["assessment"].(map[string]any)
	for _, inst := range []string{"phq9", "gad7"} {
		a, _ := assess[inst].(map[string]any)
		if items, ok := a["items"].([]any); ok {
			c.Events = append(c.Events, scenarioEvent{Type: trial.EventAssessment, Ago: "24h", Data: map[string]any{"instrument": inst, "items": items}})
		}
	}
	if prefs, _ := state["preferences"].(map[string]any); prefs != nil {
		pr := map[string]any{}
		if q, ok := prefs["quiet_hours"].(map[string]any); ok {
			pr["quiet_hours"] = q
		}
		if b, _ := prefs["opted_out"].(bool); b {
			pr["opt_out"] = true
		}
		if b, _ := prefs["snoozed"].(bool); b {
			pr["snooze_minutes"] = 60
		}
		if len(pr) > 0 {
			c.Preferences = pr
		}
	}
	hist, _ := doc["history"].(map[string]any)
	if n, ok := wholeIn(hist["prompts_today"], 1, 24); ok {
		gap := 10
		if m, ok := wholeIn(hist["minutes_since_last_prompt"], 1, 60); ok {
			gap = m
		}
		for i := range min(n, at.Hour()*60/max(gap, 1)) {
			c.Deliveries = append(c.Deliveries, scenarioDelivery{Ago: fmt.Sprintf("%dm", gap*(i+1))})
		}
	}
	return c, p
}

// wholeIn reads a whole number in [lo, hi] from a decoded JSON value.
func wholeIn(v any, lo, hi int) (int, bool) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case int:
		f = float64(n)
	case json.Number:
		x, err := n.Float64()
		if err != nil {
			return 0, false
		}
		f = x
	default:
		return 0, false
	}
	if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, false
	}
	return int(f), true
}

// indentBlock indents every line of s by prefix.
func indentBlock(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}
