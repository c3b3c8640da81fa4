package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments/export"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// A study with a data dictionary of every source and type: its export's
// policy-input columns come from the dictionary, not from the data.
const dictStudy = `id: dict
name: Dictionary export
timezone: Europe/London
seed: "dict-seed-0123456789"
decision_points:
  - {id: app, kind: app}
delivery_factor: prompt
factors:
  - {name: prompt, type: within, levels: [none, deliver], probability: 0.5, bounds: [0.1, 0.9]}
plugins:
  - {name: sleep, kind: enricher, path: x, checksum_file: SUMS}
outcomes:
  - {name: stress_next, event: ema, variable: stress, from: 1m, to: 1h, aggregate: first}
crisis:
  text: "Call 116 123."
variables:
  - {name: stress, source: ema, type: number, min: 0, max: 10, unit: "0-10", label: "Stress right now", current_for: 2h}
  - {name: cups, source: ema, type: integer, min: 0}
  - {name: driving, source: context, type: boolean}
  - {name: location, source: context, type: category, levels: [home, work]}
  - {name: phq9, source: assessment, type: integer, min: 0, max: 27}
  - {name: debt_hours, source: derived, plugin: sleep, type: number, min: 0, unit: hours}
`

const dictPolicy = `package jitai.policy

decision := {
	"safety_reasons": [],
	"unavailable_reasons": [r | r := "driving"; input.context.driving == true],
	"candidates": [{"id": id, "weight": 1} | some id in data.jitai.by_target.stress],
}
`

// dictData is what one run reports: EMA and context events, the request's
// context, what the enricher derives and a later EMA (the outcome).
type dictData struct {
	ema, ctxEvent, later string
	request              map[string]any
	derived              map[string]any
}

// The values that used to change column types, or that do not fit the
// dictionary: strings in numbers and booleans, out of range, a fraction in
// an integer, a number in a category, a level that is not declared.
var (
	cleanData = dictData{ema: `{"stress": 4, "cups": 2}`, ctxEvent: `{"driving": false, "location": "home"}`, later: `{"stress": 6}`,
		request: map[string]any{"driving": false, "location": "work"}, derived: map[string]any{"debt_hours": 1.5}}
	adversarialData = dictData{ema: `{"stress": -50, "cups": 2.5}`, ctxEvent: `{"driving": "yes", "location": 7}`, later: `{"stress": "high"}`,
		request: map[string]any{"driving": "yes", "location": "gym"}, derived: map[string]any{"debt_hours": "lots"}}
)

// The declared variables' columns, in dictionary order.
var declaredColumns = []string{"ema_stress", "ema_cups", "ctx_driving", "ctx_location", "ctxev_driving", "ctxev_location", "assess_phq9_total", "derived_sleep_debt_hours"}

type fixedEnricher map[string]any

func (e fixedEnricher) Enrich(context.Context, decision.PluginDecision, []byte) (map[string]any, error) {
	return e, nil
}

type dictPlugins struct{ sleep fixedEnricher }

func (p dictPlugins) Enricher(name string) engine.Enricher {
	if name == "sleep" {
		return p.sleep
	}
	return nil
}
func (dictPlugins) ProbabilityProvider(string) engine.ProbabilityProvider { return nil }
func (dictPlugins) Notifier(string) engine.Notifier                       { return nil }
func (dictPlugins) Close() error                                          { return nil }
func (dictPlugins) Version(string) string                                 { return "" }

// runDict records data for two participants through the real engine and
// exports it with the study. The events are ingested by the study without
// its dictionary, as records made before it was declared (ingestion would
// refuse the adversarial ones now); nil data records nothing.
func runDict(t *testing.T, study *policies.Study, data *dictData) *export.Tables {
	t.Helper()
	ctx := context.Background()
	st := memstore.New()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if data != nil {
		before := *study
		cfg := *study.Config
		cfg.Variables = nil
		before.Config = &cfg
		now := t0
		eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{&before}, Now: func() time.Time { return now },
			Plugins: func(*policies.Study) (engine.StudyPlugins, error) {
				return dictPlugins{fixedEnricher(data.derived)}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = eng.Close() })
		for _, p := range []string{"p1", "p2"} {
			now = t0
			if _, _, err := eng.Enroll(ctx, "dict", engine.EnrollRequest{ParticipantID: p}); err != nil {
				t.Fatal(err)
			}
			now = t0.Add(10 * time.Minute)
			evs := []trial.Event{
				{ID: p + "-ema", Type: trial.EventEMA, Time: t0.Add(time.Minute), Data: json.RawMessage(data.ema)},
				{ID: p + "-ctx", Type: trial.EventContext, Time: t0.Add(time.Minute), Data: json.RawMessage(data.ctxEvent)},
				{ID: p + "-phq", Type: trial.EventAssessment, Time: t0.Add(time.Minute), Data: json.RawMessage(`{"instrument": "phq9", "items": [1, 1, 1, 0, 0, 0, 0, 0, 0]}`)},
			}
			if _, _, err := eng.Ingest(ctx, "dict", p, evs); err != nil {
				t.Fatal(err)
			}
			if _, err := eng.Decide(ctx, "dict", p, engine.DecideRequest{DecisionPoint: "app", Time: now, Context: data.request}); err != nil {
				t.Fatal(err)
			}
			now = t0.Add(30 * time.Minute)
			later := trial.Event{ID: p + "-later", Type: trial.EventEMA, Time: now, Data: json.RawMessage(data.later)}
			if _, _, err := eng.Ingest(ctx, "dict", p, []trial.Event{later}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ts, err := export.Build(ctx, st, study, export.Options{Now: func() time.Time { return t0.Add(48 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	checkValueTypes(t, ts)
	return ts
}

// shape is everything about an export's decisions table that must not
// depend on the data: the CSV header, the codebook's columns (name, type,
// unit, levels, dictionary entry) and the Parquet schema.
func shape(t *testing.T, ts *export.Tables) (header string, codebook []string, schema string) {
	t.Helper()
	var csv bytes.Buffer
	if err := ts.Write(&csv, export.DecisionsTable, export.CSV); err != nil {
		t.Fatal(err)
	}
	header, _, _ = strings.Cut(csv.String(), "\n")
	for _, tb := range ts.Codebook(export.CSV, nil).Tables {
		for _, c := range tb.Columns {
			js, err := json.Marshal(struct {
				Name, Type, Unit string
				Levels           []string
				Variable         *export.Variable
			}{c.Name, string(c.Type), c.Unit, c.Levels, c.Variable})
			if err != nil {
				t.Fatal(err)
			}
			codebook = append(codebook, tb.Name+": "+string(js))
		}
	}
	var pq bytes.Buffer
	if err := ts.Write(&pq, export.DecisionsTable, export.Parquet); err != nil {
		t.Fatal(err)
	}
	got, err := export.ReadParquet(bytes.NewReader(pq.Bytes()), int64(pq.Len()))
	if err != nil {
		t.Fatal(err)
	}
	return header, codebook, got.Schema().String()
}

// TestExportDictionaryFixesColumnTypes: an export of a study with a data
// dictionary has the same columns, of the same types, whatever the data:
// clean, adversarial (values that do not fit) or none at all. Values that
// do not fit are missing; clean ones are exported as reported.
func TestExportDictionaryFixesColumnTypes(t *testing.T) {
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "dict"), dictStudy, dictPolicy)
	clean := runDict(t, study, &cleanData)
	bad := runDict(t, study, &adversarialData)
	empty := runDict(t, study, nil)

	h0, cb0, pq0 := shape(t, clean)
	for name, ts := range map[string]*export.Tables{"adversarial": bad, "empty": empty} {
		h, cb, pq := shape(t, ts)
		if h != h0 {
			t.Errorf("%s data: CSV header\n%s\nclean data:\n%s", name, h, h0)
		}
		if !reflect.DeepEqual(cb, cb0) {
			t.Errorf("%s data: codebook columns\n%s\nclean data:\n%s", name, strings.Join(cb, "\n"), strings.Join(cb0, "\n"))
		}
		if pq != pq0 {
			t.Errorf("%s data: Parquet schema\n%s\nclean data:\n%s", name, pq, pq0)
		}
	}

	d := clean.Decisions
	want := map[string]export.Type{"ema_stress": export.Double, "ema_cups": export.Integer, "ctx_driving": export.Integer, "ctx_location": export.String,
		"ctxev_driving": export.Integer, "ctxev_location": export.String, "assess_phq9_total": export.Integer, "derived_sleep_debt_hours": export.Double, "stress_next": export.Double}
	first := d.Index(declaredColumns[0])
	for k, name := range declaredColumns {
		if j := d.Index(name); j != first+k {
			t.Errorf("column %s at %d, want %d (dictionary order)", name, j, first+k)
		}
	}
	for name, typ := range want {
		if j := d.Index(name); j < 0 || d.Columns[j].Type != typ {
			t.Errorf("column %s: index %d, want type %s", name, j, typ)
		}
	}
	if len(d.Rows) != 2 || len(bad.Decisions.Rows) != 2 || len(empty.Decisions.Rows) != 0 {
		t.Fatalf("rows: clean %d, adversarial %d, empty %d", len(d.Rows), len(bad.Decisions.Rows), len(empty.Decisions.Rows))
	}
	wantClean := map[string]any{"ema_stress": 4.0, "ema_cups": int64(2), "ctx_driving": int64(0), "ctx_location": "work",
		"ctxev_driving": int64(0), "ctxev_location": "home", "assess_phq9_total": int64(3), "derived_sleep_debt_hours": 1.5, "stress_next": 6.0}
	for i := range d.Rows {
		for name, w := range wantClean {
			if got := d.Value(i, name); got != w {
				t.Errorf("clean row %d: %s = %#v, want %#v", i, name, got, w)
			}
			// The assessment is scored by the engine, so it always fits.
			if got := bad.Decisions.Value(i, name); name != "assess_phq9_total" && got != nil {
				t.Errorf("adversarial row %d: %s = %#v, want missing", i, name, got)
			}
		}
	}
	cb := clean.Codebook(export.CSV, nil)
	var md bytes.Buffer
	if err := cb.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "| `ema_stress` | double | numeric | float64 | 0-10; range 0 to 10 | Stress right now. Latest self-report") ||
		!strings.Contains(md.String(), "A report is current for 2h") {
		t.Errorf("codebook lacks the dictionary's label, unit, range or current_for of ema_stress:\n%s", md.String())
	}
}

// TestExportWithoutDictionaryTypesByData: the same adversarial data
// exported for the study without its dictionary gets the columns and types
// the values make, as before dictionaries existed: a string turns the
// boolean ctx_driving and the number ema_stress into string columns.
func TestExportWithoutDictionaryTypesByData(t *testing.T) {
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "dict"), dictStudy, dictPolicy)
	cfg := *study.Config
	cfg.Variables = nil
	study.Config = &cfg
	bad := runDict(t, study, &adversarialData)
	d := bad.Decisions
	for name, typ := range map[string]export.Type{"ctx_driving": export.String, "ctx_location": export.String, "ctxev_driving": export.String, "ema_stress": export.Double, "ema_cups": export.Double} {
		if j := d.Index(name); j < 0 || d.Columns[j].Type != typ {
			t.Errorf("column %s: index %d, want type %s", name, j, typ)
		}
	}
	if j := d.Index("derived_sleep_debt_hours"); j >= 0 {
		t.Errorf("undeclared derived values exported as column %d", j)
	}
	if got := fmt.Sprint(d.Value(0, "ctx_driving")); got != "yes" {
		t.Errorf("ctx_driving = %s, want yes", got)
	}
}

// TestExportKeepsUndeclaredAfterDeclared: an undeclared variable kept at
// ingestion (unknown_variables: keep) has a column after the declared ones
// of its group, typed by its values, and the codebook says it is not in
// the dictionary.
func TestExportKeepsUndeclaredAfterDeclared(t *testing.T) {
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "dict"), dictStudy, dictPolicy)
	kept := cleanData
	kept.ema = `{"stress": 4, "cups": 2, "alertness": 3}`
	d := runDict(t, study, &kept).Decisions
	j := d.Index("ema_alertness")
	if j < 0 || j != d.Index("ema_cups")+1 || d.Columns[j].Type != export.Double {
		t.Fatalf("ema_alertness at %d (ema_cups at %d), want right after it, a double: %+v", j, d.Index("ema_cups"), d.Columns)
	}
	if c := d.Columns[j]; c.Variable != nil || !strings.Contains(c.Description, "Not in the study's data dictionary") {
		t.Errorf("codebook of an undeclared variable: %+v", c)
	}
	if got := d.Value(0, "ema_alertness"); got != 3.0 {
		t.Errorf("ema_alertness = %v, want 3", got)
	}
}
