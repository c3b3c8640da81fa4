package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/experiments/export"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// A study whose delivery factor's probability comes from a probability
// provider plugin (bandit), with two enricher plugins (gate: fallback
// defaults, sleep: fallback omit) and a notifier, which has no columns.
const plugStudy = `id: plug
name: Plugin export
timezone: Europe/London
seed: "plug-seed-0123456789"
decision_points:
  - {id: app, kind: app}
delivery_factor: prompt
factors:
  - name: prompt
    type: within
    levels: [none, deliver]
    probability: 0.4
    bounds: [0.1, 0.9]
    probability_source: plugin
    plugin: bandit
plugins:
  - {name: gate, kind: enricher, path: x, checksum_file: SUMS, fallback: defaults, defaults: {level: 0}}
  - {name: bandit, kind: probability, path: x, checksum_file: SUMS}
  - {name: sleep, kind: enricher, path: x, checksum_file: SUMS}
  - {name: alerts, kind: notifier, path: x, checksum_file: SUMS}
crisis:
  text: "Call 116 123."
`

const plugPolicy = `package jitai.policy

default level := "none"

level := l if l := input.derived.gate.level

decision := {
	"safety_reasons": [r | r := "risk_flag"; input.context.risk == true],
	"unavailable_reasons": [],
	"candidates": [{"id": id, "weight": 1} | some id in data.jitai.by_target.stress],
	"tailoring": {"level": level},
}
`

// scriptedPlugins answer as the current step says; versions are
// "<name>/2.1" unless noVersion (a plugin that has not started).
type scriptedPlugins struct {
	mu   sync.Mutex
	step plugStep
}

// plugStep is how the plugins answer one decision.
type plugStep struct {
	prob      float64
	probErr   error
	noVersion bool
	gateErr   error
	sleepErr  error
	risk      bool // a safety decision: not randomised, the provider is not asked
}

func (s *scriptedPlugins) set(st plugStep) { s.mu.Lock(); s.step = st; s.mu.Unlock() }
func (s *scriptedPlugins) get() plugStep   { s.mu.Lock(); defer s.mu.Unlock(); return s.step }

func (s *scriptedPlugins) Enricher(name string) engine.Enricher {
	if name == "gate" || name == "sleep" {
		return scriptedEnricher{s, name}
	}
	return nil
}

func (s *scriptedPlugins) ProbabilityProvider(name string) engine.ProbabilityProvider {
	if name == "bandit" {
		return scriptedProvider{s}
	}
	return nil
}

func (s *scriptedPlugins) Notifier(string) engine.Notifier { return nil }
func (s *scriptedPlugins) Close() error                    { return nil }
func (s *scriptedPlugins) Version(name string) string {
	if s.get().noVersion {
		return ""
	}
	return name + "/2.1"
}

type scriptedEnricher struct {
	s    *scriptedPlugins
	name string
}

func (e scriptedEnricher) Enrich(context.Context, decision.PluginDecision, []byte) (map[string]any, error) {
	st := e.s.get()
	if e.name == "gate" {
		return map[string]any{"level": 3.0}, st.gateErr
	}
	return map[string]any{"debt": 1.5}, st.sleepErr
}

type scriptedProvider struct{ s *scriptedPlugins }

func (p scriptedProvider) Probability(context.Context, decision.PluginDecision, engine.ProbabilityQuery) (float64, error) {
	st := p.s.get()
	return st.prob, st.probErr
}

func (scriptedProvider) Outcome(context.Context, engine.OutcomeReport) error { return nil }

// plugWant is what the export must say for one decision, worked out from
// the script (not from the record).
type plugWant struct {
	source, reason, version any // string or nil
	value, prob             any // float64 or nil
	gate, sleep             any // enricher fallback reason or nil
}

func TestExportPluginColumns(t *testing.T) {
	ctx := context.Background()
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "plug"), plugStudy, plugPolicy)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "p.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	fake := &scriptedPlugins{}
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	now := t0
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}, Now: func() time.Time { return now },
		Plugins: func(*policies.Study) (engine.StudyPlugins, error) { return fake, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })

	late := fmt.Errorf("late: %w", context.DeadlineExceeded)
	s := func(v string) any { return v }
	steps := []struct {
		plugStep
		want plugWant
	}{
		// Answered and used as given.
		{plugStep{prob: 0.3}, plugWant{source: s("plugin"), value: 0.3, prob: 0.3, version: s("bandit/2.1")}},
		// Answered above the upper bound: clipped to 0.9.
		{plugStep{prob: 0.95}, plugWant{source: s("plugin"), value: 0.95, prob: 0.9, version: s("bandit/2.1")}},
		// Answered below the lower bound: clipped to 0.1; gate timed out.
		{plugStep{prob: 0.02, gateErr: late}, plugWant{source: s("plugin"), value: 0.02, prob: 0.1, version: s("bandit/2.1"), gate: s("timeout")}},
		// The provider failed: the study's 0.4; sleep failed too.
		{plugStep{prob: 0.7, probErr: errors.New("boom"), sleepErr: errors.New("boom")}, plugWant{source: s("fallback"), reason: s("error"), prob: 0.4, version: s("bandit/2.1"), sleep: s("error")}},
		{plugStep{probErr: late}, plugWant{source: s("fallback"), reason: s("timeout"), prob: 0.4, version: s("bandit/2.1")}},
		// Out of [0, 1]: invalid, the value stays in the record only.
		{plugStep{prob: 1.5}, plugWant{source: s("fallback"), reason: s("invalid"), prob: 0.4, version: s("bandit/2.1")}},
		// Not started: no version, everything unavailable.
		{plugStep{noVersion: true, probErr: engine.ErrPluginUnavailable, gateErr: engine.ErrPluginUnavailable, sleepErr: engine.ErrPluginUnavailable},
			plugWant{source: s("fallback"), reason: s("unavailable"), prob: 0.4, gate: s("unavailable"), sleep: s("unavailable")}},
		// A safety decision: not randomised, but the enrichers were asked.
		{plugStep{prob: 0.5, risk: true, gateErr: errors.New("boom")}, plugWant{gate: s("error")}},
		{plugStep{prob: 0.5}, plugWant{source: s("plugin"), value: 0.5, prob: 0.5, version: s("bandit/2.1")}},
	}
	wants := map[string]plugWant{}
	recs := map[string]*trial.Record{}
	for _, p := range []string{"p1", "p2"} {
		now = t0 // enrolled before the decisions
		if _, _, err := eng.Enroll(ctx, "plug", engine.EnrollRequest{ParticipantID: p}); err != nil {
			t.Fatal(err)
		}
		for i, step := range steps {
			fake.set(step.plugStep)
			now = t0.Add(time.Duration(i) * 10 * time.Minute)
			var c map[string]any
			if step.risk {
				c = map[string]any{"risk": true}
			}
			ans, err := eng.Decide(ctx, "plug", p, engine.DecideRequest{DecisionPoint: "app", Time: now, Context: c})
			if err != nil {
				t.Fatal(err)
			}
			if step.risk != (ans.Record.Action == trial.ActionSafety) || (!step.risk && !ans.Record.Randomised) {
				t.Fatalf("%s step %d: action %s, randomised %v", p, i, ans.Record.Action, ans.Record.Randomised)
			}
			wants[ans.Record.ID], recs[ans.Record.ID] = step.want, ans.Record
		}
	}

	ts, err := export.Build(ctx, st, study, export.Options{Now: func() time.Time { return t0.Add(48 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	d := ts.Decisions
	x := &plugEnv{ctx: ctx, study: study, st: st, ts: ts, d: d, wants: wants, recs: recs, t0: t0}
	if len(d.Rows) != len(wants) {
		t.Fatalf("%d rows, %d decisions", len(d.Rows), len(wants))
	}

	t.Run("every value has its column's type", func(t *testing.T) { checkValueTypes(t, ts) })

	t.Run("columns in order, with their types", x.columnsInOrderWithTheirTypes)

	t.Run("values row by row, from the script and the records", x.valuesRowByRowFromTheScriptAndTheRecords)

	t.Run("CSV", x.csv)

	t.Run("Parquet", x.parquet)

	t.Run("codebook", x.codebook)
}

// plugEnv is what the subtests of TestExportPluginColumns share.
type plugEnv struct {
	ctx   context.Context
	study *policies.Study
	st    *sqlite.Store
	ts    *export.Tables
	d     *export.Table
	wants map[string]plugWant
	recs  map[string]*trial.Record
	t0    time.Time
}

// columnsInOrderWithTheirTypes: columns in order, with their types.
func (x *plugEnv) columnsInOrderWithTheirTypes(t *testing.T) {
	d := x.d
	var names []string
	for _, c := range d.Columns {
		names = append(names, c.Name)
	}
	want := []string{"prompt", "prompt_label", "prompt_prob", "prompt_draw",
		"prompt_prob_source", "prompt_provider_value", "prompt_provider_version", "prompt_fallback_reason",
		"gate_enricher_fallback", "sleep_enricher_fallback", "prompts_today"}
	i := d.Index("prompt")
	if i < 0 || i+len(want) > len(names) || !reflect.DeepEqual(names[i:i+len(want)], want) {
		t.Fatalf("columns %v, want %v from prompt on", names, want)
	}
	types := map[string]export.Type{"prompt_prob_source": export.String, "prompt_provider_value": export.Double, "prompt_provider_version": export.String,
		"prompt_fallback_reason": export.String, "gate_enricher_fallback": export.String, "sleep_enricher_fallback": export.String}
	for name, typ := range types {
		if c := d.Columns[d.Index(name)]; c.Type != typ {
			t.Errorf("%s is %s, want %s", name, c.Type, typ)
		}
	}
	if d.Index("alerts_enricher_fallback") >= 0 || d.Index("bandit_enricher_fallback") >= 0 {
		t.Errorf("a notifier or provider has an enricher column: %v", names)
	}
}

// valuesRowByRowFromTheScriptAndTheRecords: values row by row, from the script and the records.
func (x *plugEnv) valuesRowByRowFromTheScriptAndTheRecords(t *testing.T) {
	d, wants, recs := x.d, x.wants, x.recs
	for i := range d.Rows {
		id := d.Value(i, "decision_id").(string)
		w, rec := wants[id], recs[id]
		got := plugWant{source: d.Value(i, "prompt_prob_source"), reason: d.Value(i, "prompt_fallback_reason"), version: d.Value(i, "prompt_provider_version"),
			value: d.Value(i, "prompt_provider_value"), prob: d.Value(i, "prompt_prob"), gate: d.Value(i, "gate_enricher_fallback"), sleep: d.Value(i, "sleep_enricher_fallback")}
		if got != w {
			t.Errorf("row %d (%s): got %+v, want %+v", i, id, got, w)
		}
		// The same, read from the record.
		fromRec := plugWant{}
		if len(rec.Factors) == 1 {
			fd := rec.Factors[0]
			fromRec.prob = *fd.Probability
			if fd.Plugin.Fallback == "" {
				fromRec.source, fromRec.value = "plugin", *fd.Plugin.Value
			} else {
				fromRec.source, fromRec.reason = "fallback", fd.Plugin.Reason
			}
			if fd.Plugin.Version != "" {
				fromRec.version = fd.Plugin.Version
			}
		}
		for _, pc := range rec.Plugins {
			if pc.Fallback == "" {
				continue
			}
			switch pc.Name {
			case "gate":
				fromRec.gate = pc.Reason
			case "sleep":
				fromRec.sleep = pc.Reason
			}
		}
		if got != fromRec {
			t.Errorf("row %d (%s): got %+v, the record says %+v", i, id, got, fromRec)
		}
		// The clipping bound exactly when the value differs from _prob.
		if v, ok := got.value.(float64); ok && (v != got.prob) != (v < 0.1 || v > 0.9) {
			t.Errorf("row %d: provider value %v, prob %v", i, v, got.prob)
		}
	}
	// The invalid answer is in the record but not exported.
	for id, rec := range recs {
		if wants[id].reason == "invalid" && (rec.Factors[0].Plugin.Value == nil || *rec.Factors[0].Plugin.Value != 1.5) {
			t.Errorf("record %s: plugin %+v, want the invalid value 1.5 kept", id, rec.Factors[0].Plugin)
		}
	}
}

// csv: CSV.
func (x *plugEnv) csv(t *testing.T) {
	ts, wants := x.ts, x.wants
	var buf bytes.Buffer
	if err := ts.Write(&buf, export.DecisionsTable, export.CSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int {
		for j, h := range rows[0] {
			if h == name {
				return j
			}
		}
		t.Fatalf("CSV has no column %s", name)
		return -1
	}
	text := func(v any) string {
		switch x := v.(type) {
		case nil:
			return "NA"
		case float64:
			return fmt.Sprint(x)
		}
		return v.(string)
	}
	for i, r := range rows[1:] {
		w := wants[r[col("decision_id")]]
		for name, v := range map[string]any{"prompt_prob_source": w.source, "prompt_provider_value": w.value, "prompt_provider_version": w.version,
			"prompt_fallback_reason": w.reason, "gate_enricher_fallback": w.gate, "sleep_enricher_fallback": w.sleep} {
			if got := r[col(name)]; got != text(v) {
				t.Errorf("CSV row %d %s: %q, want %q", i+1, name, got, text(v))
			}
		}
	}
}

// parquet: Parquet.
func (x *plugEnv) parquet(t *testing.T) {
	ts, d, wants := x.ts, x.d, x.wants
	var buf bytes.Buffer
	if err := ts.Write(&buf, export.DecisionsTable, export.Parquet); err != nil {
		t.Fatal(err)
	}
	got, err := export.ReadParquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Columns) != len(d.Columns) || len(got.Rows) != len(d.Rows) {
		t.Fatalf("read %d columns %d rows, wrote %d %d", len(got.Columns), len(got.Rows), len(d.Columns), len(d.Rows))
	}
	for j, c := range d.Columns {
		if got.Columns[j].Name != c.Name || got.Columns[j].Type != c.Type {
			t.Errorf("column %d: read %s %s, wrote %s %s", j, got.Columns[j].Name, got.Columns[j].Type, c.Name, c.Type)
		}
	}
	for i := range d.Rows {
		w := wants[got.Value(i, "decision_id").(string)]
		g := plugWant{source: got.Value(i, "prompt_prob_source"), reason: got.Value(i, "prompt_fallback_reason"), version: got.Value(i, "prompt_provider_version"),
			value: got.Value(i, "prompt_provider_value"), prob: got.Value(i, "prompt_prob"), gate: got.Value(i, "gate_enricher_fallback"), sleep: got.Value(i, "sleep_enricher_fallback")}
		if g != w {
			t.Errorf("Parquet row %d: %+v, want %+v (nulls where missing)", i, g, w)
		}
	}
}

// codebook: codebook.
func (x *plugEnv) codebook(t *testing.T) {
	ts := x.ts
	cb := ts.Codebook(export.Parquet, nil)
	var js, md bytes.Buffer
	if err := cb.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := cb.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	var back export.Codebook
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	entries := map[string]export.Column{}
	for _, c := range back.Tables[0].Columns {
		entries[c.Name] = c
	}
	for _, tc := range []struct {
		name, typ string
		levels    []string
		desc      []string // in the description
		missing   []string // in the missing-value meaning
	}{
		{"prompt_prob_source", "string", []string{"plugin", "fallback"}, []string{"bandit", "0.4", "prompt_fallback_reason"}, []string{"not randomised", "no call of the provider"}},
		{"prompt_provider_value", "double", nil, []string{"bandit", "before clipping", "[0.1, 0.9]", "invalid"}, []string{"prompt_prob_source is fallback", "not randomised"}},
		{"prompt_provider_version", "string", nil, []string{"bandit", "reported"}, []string{"had not started", "not randomised"}},
		{"prompt_fallback_reason", "string", []string{"timeout", "unavailable", "error", "invalid"}, []string{"prompt_prob_source = fallback"}, []string{"prompt_prob_source is plugin", "not randomised"}},
		{"gate_enricher_fallback", "string", []string{"timeout", "unavailable", "error", "invalid"}, []string{"gate", "defaults", "input.derived.gate"}, []string{"the enricher answered"}},
		{"sleep_enricher_fallback", "string", []string{"timeout", "unavailable", "error", "invalid"}, []string{"sleep", "omit", "left out"}, []string{"the enricher answered"}},
	} {
		e, ok := entries[tc.name]
		if !ok {
			t.Errorf("JSON codebook lacks %s", tc.name)
			continue
		}
		if string(e.Type) != tc.typ || !reflect.DeepEqual(e.Levels, tc.levels) || e.Table != export.DecisionsTable || e.ParquetType == "" {
			t.Errorf("%s: %+v", tc.name, e)
		}
		for _, s := range tc.desc {
			if !strings.Contains(e.Description, s) {
				t.Errorf("%s description lacks %q: %s", tc.name, s, e.Description)
			}
		}
		for _, s := range tc.missing {
			if !strings.Contains(e.Missing, s) {
				t.Errorf("%s missing lacks %q: %s", tc.name, s, e.Missing)
			}
		}
		row := fmt.Sprintf("| `%s` | %s |", tc.name, tc.typ)
		if !strings.Contains(md.String(), row) || !strings.Contains(md.String(), e.Missing) {
			t.Errorf("Markdown codebook lacks the row of %s with its missing meaning", tc.name)
		}
	}
	desc := back.Tables[0].Description
	if !strings.Contains(desc, "_prob_source") || !strings.Contains(desc, "<plugin>_enricher_fallback") || !strings.Contains(md.String(), desc) {
		t.Errorf("decisions description does not tell of the plugin columns: %s", desc)
	}
}
