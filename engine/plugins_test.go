package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// The engine's side of plugins, with in-process fakes of the plugin
// interfaces (plugins/host's tests run real plugin processes).

const pluginStudy = `id: fake
name: Plugins
timezone: Europe/London
seed: "fake-seed-0123456789"
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
  - {name: alerts, kind: notifier, path: x, checksum_file: SUMS, notify: [safety, policy_error]}
crisis:
  text: "Call 116 123."
`

const pluginPolicy = `package jitai.policy

default level := "none"

level := l if l := input.derived.gate.level

# A designer's mistake: with context boom, level has two values (a conflict).
level := "boom" if input.context.boom == true

decision := {
	"safety_reasons": [r | r := "risk_flag"; input.context.risk == true],
	"unavailable_reasons": [],
	"candidates": [{"id": id, "weight": 1} | some id in data.jitai.by_target.stress],
	"tailoring": {"level": level},
}
`

type fakePlugins struct {
	derived map[string]any
	enErr   error
	prob    float64
	probErr error
	mu      sync.Mutex
	notes   []engine.Notification
	closed  int
}

func (f *fakePlugins) Enricher(name string) engine.Enricher {
	if name == "gate" {
		return fakeEnricher{f}
	}
	return nil
}

func (f *fakePlugins) ProbabilityProvider(name string) engine.ProbabilityProvider {
	if name == "bandit" {
		return fakeProvider{f}
	}
	return nil
}

func (f *fakePlugins) Notifier(name string) engine.Notifier {
	if name == "alerts" {
		return fakeNotifier{f}
	}
	return nil
}

func (f *fakePlugins) Version(name string) string { return name + "/9" }
func (f *fakePlugins) Close() error               { f.closed++; return nil }

type fakeEnricher struct{ f *fakePlugins }

func (e fakeEnricher) Enrich(context.Context, decision.PluginDecision, []byte) (map[string]any, error) {
	return e.f.derived, e.f.enErr
}

type fakeProvider struct{ f *fakePlugins }

func (p fakeProvider) Probability(context.Context, decision.PluginDecision, engine.ProbabilityQuery) (float64, error) {
	return p.f.prob, p.f.probErr
}

func (p fakeProvider) Outcome(context.Context, engine.OutcomeReport) error { return nil }

type fakeNotifier struct{ f *fakePlugins }

func (n fakeNotifier) Notify(note engine.Notification) {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	n.f.notes = append(n.f.notes, note)
}

func pluginEngine(t *testing.T, fake *fakePlugins) *engine.Engine {
	t.Helper()
	if fake == nil {
		return pluginEngineWith(t, nil)
	}
	return pluginEngineWith(t, func(*policies.Study) (engine.StudyPlugins, error) { return fake, nil })
}

func pluginEngineWith(t *testing.T, factory engine.PluginFactory) *engine.Engine {
	t.Helper()
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "fake"), pluginStudy, pluginPolicy)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "p.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// Enrolled at pluginT0; the tests decide at pluginT0 and minutes after
	// (decideFake), some concurrently, so the clock stays at pluginT0 and
	// the skew check (tested in clock_test.go) is off.
	c := engine.Components{Store: store, Studies: []*policies.Study{study}, Plugins: factory,
		Now: func() time.Time { return pluginT0 }, MaxClockSkew: -1}
	eng, err := engine.New(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Enroll(context.Background(), "fake", engine.EnrollRequest{ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}
	return eng
}

var pluginT0 = time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

func decideFake(t *testing.T, eng *engine.Engine, i int, ctx map[string]any, key string) *engine.Answer {
	t.Helper()
	ans, err := eng.Decide(context.Background(), "fake", "p1", engine.DecideRequest{DecisionPoint: "app", Time: pluginT0.Add(time.Duration(i) * time.Minute), Context: ctx, IdempotencyKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

func TestPluginAnswersAreUsedClippedAndRecorded(t *testing.T) {
	fake := &fakePlugins{derived: map[string]any{"level": 4.0}, prob: 0.95}
	eng := pluginEngine(t, fake)
	rec := decideFake(t, eng, 0, nil, "").Record
	if rec.Tailoring["level"] != 4.0 && rec.Tailoring["level"] != json.Number("4") {
		t.Errorf("tailoring %v, want the enricher's level 4", rec.Tailoring)
	}
	if len(rec.Plugins) != 1 || rec.Plugins[0].Version != "gate/9" || rec.Plugins[0].Fallback != "" {
		t.Errorf("enricher record %+v", rec.Plugins)
	}
	fd := rec.Factors[0]
	if *fd.Probability != 0.9 || *fd.Proposed != 0.95 || *fd.Plugin.Value != 0.95 || fd.Plugin.Version != "bandit/9" || fd.Source != policies.SourcePlugin {
		t.Errorf("factor draw %+v plugin %+v", fd, fd.Plugin)
	}
	if !strings.Contains(string(rec.Input), `"derived":{"gate":{"level":4}}`) {
		t.Errorf("recorded input lacks derived: %s", rec.Input)
	}
	if err := eng.Close(); err != nil || fake.closed != 1 {
		t.Errorf("Close: %v, plugins closed %d times", err, fake.closed)
	}
}

func TestPluginFallbacks(t *testing.T) {
	cases := []struct {
		name       string
		fake       *fakePlugins
		enReason   string
		probReason string
	}{
		{"no plugin host", nil, trial.PluginUnavailable, trial.PluginUnavailable},
		{"errors", &fakePlugins{enErr: errors.New("boom"), probErr: errors.New("boom")}, trial.PluginError, trial.PluginError},
		{"timeouts", &fakePlugins{enErr: fmt.Errorf("late: %w", context.DeadlineExceeded), probErr: fmt.Errorf("late: %w", context.DeadlineExceeded)}, trial.PluginTimeout, trial.PluginTimeout},
		{"down", &fakePlugins{enErr: engine.ErrPluginUnavailable, probErr: engine.ErrPluginUnavailable}, trial.PluginUnavailable, trial.PluginUnavailable},
		{"out of range", &fakePlugins{derived: map[string]any{}, prob: 1.5}, "", trial.PluginInvalid},
		{"NaN", &fakePlugins{derived: map[string]any{}, prob: math.NaN()}, "", trial.PluginInvalid},
		{"infinite", &fakePlugins{derived: map[string]any{}, prob: math.Inf(1)}, "", trial.PluginInvalid},
		{"no object", &fakePlugins{derived: nil, prob: 0.5}, trial.PluginInvalid, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := decideFake(t, pluginEngine(t, tc.fake), 0, nil, "").Record
			en := rec.Plugins[0]
			if en.Reason != tc.enReason {
				t.Errorf("enricher reason %q, want %q", en.Reason, tc.enReason)
			}
			if tc.enReason != "" {
				if en.Fallback != policies.FallbackDefaults || (rec.Tailoring["level"] != json.Number("0") && rec.Tailoring["level"] != 0.0) {
					t.Errorf("enricher fallback %q, tailoring %v; want the declared defaults (level 0)", en.Fallback, rec.Tailoring)
				}
			}
			fd := rec.Factors[0]
			if fd.Plugin.Reason != tc.probReason {
				t.Errorf("provider reason %q, want %q", fd.Plugin.Reason, tc.probReason)
			}
			if tc.probReason != "" {
				if fd.Plugin.Fallback != policies.FallbackDefaultProbability || *fd.Probability != 0.4 || fd.Proposed != nil ||
					fd.Source != "fixed (plugin fallback: "+tc.probReason+")" {
					t.Errorf("provider fallback %+v, probability %v, source %q; want the factor's 0.4", fd.Plugin, *fd.Probability, fd.Source)
				}
				if (*fd.Draw < 0.4) != (fd.Level == 1) {
					t.Errorf("level %d with draw %v at probability 0.4", fd.Level, *fd.Draw)
				}
			}
		})
	}
}

func TestNotifiersGetCommittedSafetyDecisionsOnce(t *testing.T) {
	fake := &fakePlugins{derived: map[string]any{}, prob: 0.5}
	eng := pluginEngine(t, fake)
	safety := decideFake(t, eng, 0, map[string]any{"risk": true}, "k1")
	decideFake(t, eng, 0, map[string]any{"risk": true}, "k1") // a retry: replayed, not notified again
	decideFake(t, eng, 1, nil, "")                            // not a safety decision
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.notes) != 1 {
		t.Fatalf("%d notifications, want 1: %+v", len(fake.notes), fake.notes)
	}
	n := fake.notes[0]
	if n.Action != trial.ActionSafety || n.Decision.DecisionID != safety.Record.ID || n.ID != safety.Record.ID+"/alerts" || n.Reasons[0] != "risk_flag" {
		t.Errorf("notification %+v", n)
	}
}

// TestNotifiersGetTheFailSafeAlert: a notifier that lists policy_error is
// handed every fail-safe decision (the policy failed; the phone got the
// study's fallback), once, with the problem's kind and Rego location and
// nothing of the input.
func TestNotifiersGetTheFailSafeAlert(t *testing.T) {
	fake := &fakePlugins{derived: map[string]any{"level": 4.0}, prob: 0.5}
	eng := pluginEngine(t, fake)
	failed := decideFake(t, eng, 0, map[string]any{"boom": true}, "k1")
	decideFake(t, eng, 0, map[string]any{"boom": true}, "k1") // a retry: replayed, not alerted again
	decideFake(t, eng, 1, nil, "")                            // the policy works
	// The safety rule is part of the conflicting document here, so it fails
	// too: the study's default signposts (action safety, safety_unknown),
	// and the notifier also gets that safety decision.
	if failed.Record.PolicyError == nil || failed.Record.PolicyError.Safety != "unknown" || failed.Record.Action != trial.ActionSafety {
		t.Fatalf("the conflicting decision: action %s, problem %+v", failed.Record.Action, failed.Record.PolicyError)
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	var alerts []engine.Notification
	for _, n := range fake.notes {
		if n.Action == policies.NotifyPolicyError {
			alerts = append(alerts, n)
		}
	}
	if len(alerts) != 1 || len(fake.notes) != 2 {
		t.Fatalf("%d notifications, want the alert and the safety decision: %+v", len(fake.notes), fake.notes)
	}
	n := alerts[0]
	if n.Action != policies.NotifyPolicyError || n.Decision.DecisionID != failed.Record.ID || len(n.Reasons) != 2 || n.Reasons[0] != "conflict" || !strings.Contains(n.Reasons[1], ".rego:") {
		t.Errorf("alert %+v", n)
	}
}

// A decision whose enricher and probability provider answered (or fell
// back) replays exactly from its record, without calling any plugin: the
// derived values are in the logged input, the provider's probability in the
// logged factor draw.
func TestPluginDecisionsReplayFromTheRecord(t *testing.T) {
	fake := &fakePlugins{derived: map[string]any{"level": 4.0}, prob: 0.95}
	eng := pluginEngine(t, fake)
	var recs []*trial.Record
	for i := range 40 {
		if i == 20 { // the provider goes down: the fallback is logged
			fake.mu.Lock()
			fake.probErr = engine.ErrPluginUnavailable
			fake.mu.Unlock()
		}
		recs = append(recs, decideFake(t, eng, i, nil, "").Record)
	}
	rt, _ := eng.Study("fake")
	// The provider now answers differently: a replay that asked it again
	// would draw with another probability.
	fake.mu.Lock()
	fake.prob, fake.probErr = 0.11, nil
	fake.mu.Unlock()
	levels := map[int]int{}
	for _, rec := range recs {
		res, err := decision.Replay(context.Background(), rt.Runtime, rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Differences) > 0 {
			t.Fatalf("decision %s: replay differs: %+v", rec.ID, res.Differences)
		}
		fd := res.Replayed.Factors[0]
		if *fd.Probability != *rec.Factors[0].Probability || fd.Source != rec.Factors[0].Source {
			t.Fatalf("replayed draw %+v, logged %+v", fd, rec.Factors[0])
		}
		levels[fd.Level]++
	}
	if levels[0] == 0 || levels[1] == 0 {
		t.Errorf("levels %v: the test should see both", levels)
	}
	if src := recs[25].Factors[0].Source; !strings.Contains(src, "plugin fallback") {
		t.Errorf("decision after the provider went down has source %q", src)
	}
}

// erasingPlugins are fakePlugins that can erase (engine.PluginEraser).
type erasingPlugins struct {
	*fakePlugins
	erased []string
}

func (e *erasingPlugins) EraseParticipant(_ context.Context, study, participant string) error {
	e.erased = append(e.erased, study+"/"+participant)
	return nil
}

// TestErasePluginDataReachesPluginsThatCanErase: a study's plugins that
// implement engine.PluginEraser are asked to erase; plugins that do not
// are skipped without an error.
func TestErasePluginDataReachesPluginsThatCanErase(t *testing.T) {
	fake := &erasingPlugins{fakePlugins: &fakePlugins{prob: 0.5}}
	eng := pluginEngineWith(t, func(*policies.Study) (engine.StudyPlugins, error) { return fake, nil })
	rt, _ := eng.Study("fake")
	if err := rt.ErasePluginData(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	if len(fake.erased) != 1 || fake.erased[0] != "fake/p1" {
		t.Errorf("erasures %v, want fake/p1", fake.erased)
	}
	plain := pluginEngine(t, &fakePlugins{prob: 0.5})
	rt, _ = plain.Study("fake")
	if err := rt.ErasePluginData(context.Background(), "p1"); err != nil {
		t.Errorf("plugins without erasure: %v", err)
	}
}

// TestPluginDecisionJSON: snake_case field names, and the names written
// before there were tags (old notifier spool and dead-letter files) still read.
func TestPluginDecisionJSON(t *testing.T) {
	d := decision.PluginDecision{Study: "s", Participant: "p1", DecisionID: "d1", DecisionPoint: "app", Time: pluginT0}
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"study":"s","participant":"p1","decision_id":"d1","decision_point":"app","time":"2026-11-02T12:00:00Z"}`; string(raw) != want {
		t.Errorf("JSON %s, want %s", raw, want)
	}
	for _, in := range []string{string(raw), `{"Study":"s","Participant":"p1","DecisionID":"d1","DecisionPoint":"app","Time":"2026-11-02T12:00:00Z"}`} {
		var back decision.PluginDecision
		if err := json.Unmarshal([]byte(in), &back); err != nil || back != d {
			t.Errorf("%s read as %+v (%v), want %+v", in, back, err, d)
		}
	}
}
