package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

const seamStudy = `id: seam
name: Seam
timezone: Europe/London
seed: "seam-seed-0123456789"
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
  - {name: bandit, kind: probability, path: x, checksum_file: SUMS, outcome: stress_90m}
outcomes:
  - name: stress_90m
    event: ema
    variable: stress
    from: 30m
    to: 90m
    aggregate: first
    primary: true
crisis:
  text: "Call 116 123."
# VERSION
`

type seamPlugins struct {
	name      string
	closed    atomic.Bool
	entered   chan struct{} // if set, an outcome report sends on it before it waits for block
	block     chan struct{}
	afterShut atomic.Int32
	calls     atomic.Int32
}

func (s *seamPlugins) Enricher(string) engine.Enricher { return nil }
func (s *seamPlugins) ProbabilityProvider(n string) engine.ProbabilityProvider {
	if n == "bandit" {
		return seamProv{s}
	}
	return nil
}
func (s *seamPlugins) Notifier(string) engine.Notifier { return nil }
func (s *seamPlugins) Version(string) string           { return s.name }
func (s *seamPlugins) Close() error                    { s.closed.Store(true); return nil }

type seamProv struct{ s *seamPlugins }

func (p seamProv) Probability(context.Context, decision.PluginDecision, engine.ProbabilityQuery) (float64, error) {
	return 0.9, nil
}
func (p seamProv) Outcome(ctx context.Context, o engine.OutcomeReport) error {
	if p.s.entered != nil {
		p.s.entered <- struct{}{}
	}
	<-p.s.block
	p.s.calls.Add(1)
	if p.s.closed.Load() {
		p.s.afterShut.Add(1)
	}
	return nil
}

func writeSeam(t *testing.T, dir, version string) *policies.Study {
	t.Helper()
	return policytest.WriteStudy(t, dir, seamStudy+"# "+version+"\n", pluginPolicy)
}

// An outcome report in flight when a reload retires its version never
// reaches the retired version's plugins after they are closed.
func TestOutcomeReportHoldsItsVersion(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seam")
	s1 := writeSeam(t, dir, "v1")
	var mu sync.Mutex
	var sets []*seamPlugins
	block, entered := make(chan struct{}), make(chan struct{}, 1)
	factory := func(s *policies.Study) (engine.StudyPlugins, error) {
		mu.Lock()
		defer mu.Unlock()
		p := &seamPlugins{name: s.Revision[:8], entered: entered, block: block}
		sets = append(sets, p)
		return p, nil
	}
	clk := newTestClock(pluginT0) // enrolment and decision at pluginT0, the outcome an hour later
	eng, err := engine.New(engine.Components{Store: memstore.New(), Studies: []*policies.Study{s1}, Plugins: factory, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := eng.Enroll(ctx, "seam", engine.EnrollRequest{ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}
	ans, err := eng.Decide(ctx, "seam", "p1", engine.DecideRequest{DecisionPoint: "app", Time: pluginT0})
	if err != nil {
		t.Fatal(err)
	}
	if !ans.Record.Randomised {
		t.Fatalf("decision not randomised: %+v", ans.Record)
	}
	clk.Set(pluginT0.Add(time.Hour))
	_, _, err = eng.Ingest(ctx, "seam", "p1", []trial.Event{{ID: "e1", Type: trial.EventEMA, Time: pluginT0.Add(45 * time.Minute), Data: []byte(`{"stress": 3}`)}})
	if err != nil {
		t.Fatal(err)
	}
	// The report is in flight, on the serving version's plugin: wait for
	// it to reach the plugin rather than hoping it has.
	select {
	case <-entered:
	case <-time.After(time.Minute):
		t.Fatal("no outcome report reached the plugin within a minute")
	}
	// Reload while the outcome report is in flight: the retired version
	// stays open until the report is done. The pause gives a wrong early
	// close the time to happen; with a correct engine nothing happens in
	// it, so it cannot fail a correct engine on a slow machine.
	if _, err := eng.Swap(writeSeam(t, dir, "v2")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	closedEarly := sets[0].closed.Load()
	mu.Unlock()
	if closedEarly {
		t.Error("the retired version's plugins were closed while an outcome report was using them")
	}
	close(block)
	eng.WaitRetired()
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n0, n1 := sets[0].calls.Load(), sets[1].calls.Load(); n0 != 1 || n1 != 0 || sets[0].afterShut.Load() > 0 || !sets[0].closed.Load() {
		t.Errorf("outcome reports %d to the retired version, %d to the new (want 1, 0), %d after the retired plugins closed (want 0), retired plugins closed %v",
			n0, n1, sets[0].afterShut.Load(), sets[0].closed.Load())
	}
}

// Engine.Close racing with a reload: the plugins the reload started are
// closed too, and the closed engine serves nothing new.
func TestCloseRacingAReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seam")
	s1 := writeSeam(t, dir, "v1")
	s2 := writeSeam(t, dir, "v2")
	var mu sync.Mutex
	var sets []*seamPlugins
	gate := make(chan struct{})
	started := make(chan struct{}, 2)
	factory := func(s *policies.Study) (engine.StudyPlugins, error) {
		p := &seamPlugins{name: s.Revision[:8], block: make(chan struct{})}
		mu.Lock()
		sets = append(sets, p)
		n := len(sets)
		mu.Unlock()
		if n == 2 {
			started <- struct{}{}
			<-gate // the reload's plugins are starting while the server shuts down
		}
		return p, nil
	}
	eng, err := engine.New(engine.Components{Store: memstore.New(), Studies: []*policies.Study{s1}, Plugins: factory})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _, _ = eng.Swap(s2); close(done) }()
	<-started
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	close(gate)
	<-done
	eng.WaitRetired()
	mu.Lock()
	defer mu.Unlock()
	if !sets[0].closed.Load() || !sets[1].closed.Load() {
		t.Errorf("plugins closed: serving %v, started by the racing reload %v; want both (no leaked plugin processes)",
			sets[0].closed.Load(), sets[1].closed.Load())
	}
	if rt, ok := eng.Study("seam"); !ok || rt.Revision != s1.Revision {
		t.Errorf("a reload racing Close swapped in a new version")
	}
}

// A record kept anonymised after its participant's erasure has no input:
// explain says so and explains it from the record; replay refuses it with
// ErrAnonymised, which the replay command counts instead of failing.
func TestExplainAndReplayAnonymised(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "seam")
	st := memstore.New()
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{writeSeam(t, dir, "v1")}, Now: func() time.Time { return pluginT0 }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := eng.Enroll(ctx, "seam", engine.EnrollRequest{ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}
	ans, err := eng.Decide(ctx, "seam", "p1", engine.DecideRequest{DecisionPoint: "app", Time: pluginT0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Erase(ctx, "seam", "p1", true); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Decision(ctx, "seam", ans.Record.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !decision.Anonymised(rec) || decision.Anonymised(ans.Record) {
		t.Fatalf("Anonymised: erased record %v, live record %v", decision.Anonymised(rec), decision.Anonymised(ans.Record))
	}
	rt, _ := eng.Study("seam")
	ex, err := decision.Explain(ctx, rt.Runtime, rec)
	if err != nil {
		t.Fatalf("explaining an anonymised record: %v", err)
	}
	if !ex.Anonymised || ex.PolicyEvaluated || len(ex.Factors) != 1 || !strings.Contains(strings.Join(ex.Summary, " "), "erased") {
		t.Errorf("explanation of an anonymised record: %+v", ex)
	}
	if _, err := decision.Replay(ctx, rt.Runtime, rec); !errors.Is(err, decision.ErrAnonymised) {
		t.Errorf("replaying an anonymised record: %v, want ErrAnonymised", err)
	}
}
