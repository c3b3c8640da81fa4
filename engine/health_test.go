package engine_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// recomputeHealth is the test's own computation of what the health
// endpoint must say, from the records alone: for every within-person
// factor the randomised count, treated count, expected count and z.
type recomputed struct {
	total, today, failSafe, available int64
	actions, reasons                  map[string]int64
	randomised, treated               map[string]int64
	expected, variance                map[string]float64
	pointDecisions                    map[string]int64
	pointTreated                      map[[2]string]int64
}

func recomputeHealth(recs []*trial.Record, today string) recomputed {
	r := recomputed{actions: map[string]int64{}, reasons: map[string]int64{}, randomised: map[string]int64{}, treated: map[string]int64{},
		expected: map[string]float64{}, variance: map[string]float64{}, pointDecisions: map[string]int64{}, pointTreated: map[[2]string]int64{}}
	for _, rec := range recs {
		r.total++
		if rec.Time.UTC().Format("2006-01-02") == today {
			r.today++
		}
		r.actions[rec.Action]++
		r.pointDecisions[rec.DecisionPoint]++
		if rec.PolicyError != nil {
			r.failSafe++
		}
		if rec.Available {
			r.available++
		}
		for _, why := range rec.UnavailableReasons {
			r.reasons[why]++
		}
		for _, f := range rec.Factors {
			if !rec.Randomised || f.Type != "within" || f.Probability == nil {
				continue
			}
			p := *f.Probability
			r.randomised[f.Name]++
			r.expected[f.Name] += p
			r.variance[f.Name] += p * (1 - p)
			if f.Level == 1 {
				r.treated[f.Name]++
				r.pointTreated[[2]string{rec.DecisionPoint, f.Name}]++
			}
		}
	}
	return r
}

func checkHealth(t *testing.T, h *engine.StudyHealth, want recomputed) {
	t.Helper()
	d := h.Decisions
	if d.Total != want.total || d.Today != want.today || d.FailSafe != want.failSafe || h.Availability.Available != want.available {
		t.Fatalf("counts total %d today %d fail-safe %d available %d, recomputed %d %d %d %d", d.Total, d.Today, d.FailSafe, h.Availability.Available,
			want.total, want.today, want.failSafe, want.available)
	}
	if fmt.Sprint(d.ByAction) != fmt.Sprint(want.actions) || fmt.Sprint(h.Availability.ByReason) != fmt.Sprint(want.reasons) {
		t.Fatalf("by action %v, reasons %v; recomputed %v, %v", d.ByAction, h.Availability.ByReason, want.actions, want.reasons)
	}
	if len(h.Factors) != 2 {
		t.Fatalf("%d factors, want the study's 2 within-person factors", len(h.Factors))
	}
	for _, f := range h.Factors {
		z := (float64(want.treated[f.Name]) - want.expected[f.Name]) / math.Sqrt(want.variance[f.Name])
		if f.Randomised != want.randomised[f.Name] || f.Treated != want.treated[f.Name] ||
			math.Abs(f.Expected-want.expected[f.Name]) > 1e-6 || math.Abs(f.Z-z) > 1e-6 {
			t.Fatalf("factor %s: %+v; recomputed randomised %d treated %d expected %.6f z %.6f", f.Name, f,
				want.randomised[f.Name], want.treated[f.Name], want.expected[f.Name], z)
		}
		if f.Randomised == 0 {
			t.Fatalf("factor %s was never randomised: the run tests nothing", f.Name)
		}
	}
	for _, pt := range h.ByDecisionPoint {
		if pt.Decisions != want.pointDecisions[pt.DecisionPoint] {
			t.Fatalf("point %s: %d decisions, recomputed %d", pt.DecisionPoint, pt.Decisions, want.pointDecisions[pt.DecisionPoint])
		}
		for _, f := range pt.Factors {
			if f.Treated != want.pointTreated[[2]string{pt.DecisionPoint, f.Name}] {
				t.Fatalf("point %s factor %s: %d treated, recomputed %d", pt.DecisionPoint, f.Name, f.Treated, want.pointTreated[[2]string{pt.DecisionPoint, f.Name}])
			}
		}
	}
}

// TestHealthEqualsRecomputation: 600 real decisions (some while driving,
// so unavailable) on an SQLite file; the health the engine keeps at each
// commit equals a recomputation from the records; then a fresh engine on
// the same file (a restart) rebuilds the same health from the log, and
// keeps counting the decisions it makes itself.
func TestHealthEqualsRecomputation(t *testing.T) {
	ctx := context.Background()
	study := policytest.Load(t, "../policies/examples/stress-mrt")
	path := filepath.Join(t.TempDir(), "jitai.db")
	st, err := sqlite.Open(path, sqlite.Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	clk := newTestClock(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	newEngine := func(st trial.Store) *engine.Engine {
		eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}, Now: clk.Now, Rand: rand.NewChaCha8([32]byte{3})})
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	eng := newEngine(st)
	// The first call loads the (empty) log; every later decision is
	// counted by the commit hook.
	if h, err := eng.Health(ctx, "stress-mrt"); err != nil || h.Decisions.Total != 0 {
		t.Fatalf("health of an empty study: %+v, %v", h, err)
	}
	for i := range 20 {
		if _, _, err := eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: fmt.Sprintf("p%02d", i), Timezone: "Europe/London"}); err != nil {
			t.Fatal(err)
		}
	}
	decide := func(eng *engine.Engine, from, n int) {
		at := clk.Now()
		for i := from; i < from+n; i++ {
			at = at.Add(23 * time.Minute)
			clk.Set(at)
			req := engine.DecideRequest{DecisionPoint: "on_demand", Time: at}
			if i%5 == 0 {
				req.Context = map[string]any{"driving": true}
			}
			if _, err := eng.Decide(ctx, "stress-mrt", fmt.Sprintf("p%02d", i%20), req); err != nil {
				t.Fatalf("decision %d: %v", i, err)
			}
		}
	}
	decide(eng, 0, 600)
	check := func(eng *engine.Engine) {
		t.Helper()
		recs, err := st.ListDecisions(ctx, trial.DecisionQuery{Study: "stress-mrt", Limit: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		h, err := eng.Health(ctx, "stress-mrt")
		if err != nil {
			t.Fatal(err)
		}
		checkHealth(t, h, recomputeHealth(recs, clk.Now().UTC().Format("2006-01-02")))
	}
	check(eng)
	_ = eng.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = sqlite.Open(path, sqlite.Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng = newEngine(st)
	defer eng.Close()
	check(eng)
	decide(eng, 600, 100)
	check(eng)
}

// commitDraws writes n randomised records of the prompt factor, logged at
// probability p, of which treated are at level 1.
func commitDraws(t *testing.T, st trial.Store, study string, n, treated int, p float64) {
	t.Helper()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range n {
		prob, level := p, 0
		if i < treated {
			level = 1
		}
		rec := &trial.Record{ID: fmt.Sprintf("d%06d", i), Study: study, Participant: fmt.Sprintf("p%d", i%40), DecisionPoint: "on_demand",
			Time: at.Add(time.Duration(i) * time.Minute), RecordedAt: at.Add(time.Duration(i) * time.Minute), Action: trial.ActionNone,
			Available: true, Randomised: true, Factors: []trial.FactorDraw{{Name: "prompt", Type: "within", Level: level, Probability: &prob}}}
		if err := st.CommitDecision(context.Background(), &trial.Commit{Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHealthSampleRatioFlags: records realising 0.7 against 0.6 intended
// over 1,000 points are red (z = 100/sqrt(240) = 6.45); 0.62 is within
// chance (z = 1.29, ok); 0.64 is not quite (z = 2.58, amber).
func TestHealthSampleRatioFlags(t *testing.T) {
	study := policytest.Load(t, "../policies/examples/stress-mrt")
	for _, tc := range []struct {
		treated int
		flag    string
	}{{700, engine.FlagRed}, {620, engine.FlagOK}, {641, engine.FlagAmber}} {
		st, err := sqlite.Open(filepath.Join(t.TempDir(), "jitai.db"), sqlite.Options{}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		commitDraws(t, st, "stress-mrt", 1000, tc.treated, 0.6)
		eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}})
		if err != nil {
			t.Fatal(err)
		}
		h, err := eng.Health(context.Background(), "stress-mrt")
		if err != nil {
			t.Fatal(err)
		}
		f := h.Factors[0]
		if f.Name != "prompt" || f.Randomised != 1000 || f.Treated != int64(tc.treated) || math.Abs(f.Expected-600) > 1e-6 || f.Flag != tc.flag {
			t.Errorf("%d of 1000 treated at 0.6: %+v, want flag %s", tc.treated, f, tc.flag)
		}
		_ = eng.Close()
		_ = st.Close()
	}
}

func TestSampleRatio(t *testing.T) {
	for _, tc := range []struct {
		treated            int64
		expected, variance float64
		p                  float64
		flag               string
	}{
		{0, 0, 0, 1, engine.FlagOK},
		{10, 10, 0, 1, engine.FlagOK},
		{11, 10, 0, 0, engine.FlagRed},
		{600, 600, 240, 1, engine.FlagOK},
		// z = 1.96: p = 0.05.
		{630, 630 - 1.959963984540054*10, 100, 0.05, engine.FlagOK},
		// z = -3: p = 0.0026998.
		{570, 600, 100, 0.0026997960632601866, engine.FlagAmber},
		{640, 600, 100, 0.00006334248366623996, engine.FlagRed},
	} {
		_, p, flag := engine.SampleRatio(tc.treated, tc.expected, tc.variance)
		if math.Abs(p-tc.p) > 1e-9 || flag != tc.flag {
			t.Errorf("SampleRatio(%d, %g, %g) = p %g %s, want %g %s", tc.treated, tc.expected, tc.variance, p, flag, tc.p, tc.flag)
		}
	}
}

// healthBenchEngine is an engine of the example study on an empty SQLite file,
// its health aggregates loaded.
func healthBenchEngine(b *testing.B) *engine.Engine {
	b.Helper()
	study := policytest.Load(b, "../policies/examples/stress-mrt")
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "jitai.db"), sqlite.Options{}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = eng.Close() })
	if _, err := eng.Health(context.Background(), "stress-mrt"); err != nil {
		b.Fatal(err)
	}
	return eng
}

// BenchmarkHealth1M answers the health of a study with 1,000,000 decisions
// (aggregates in memory, kept by the commit hook).
func BenchmarkHealth1M(b *testing.B) {
	ctx := context.Background()
	eng := healthBenchEngine(b)
	engine.FeedHealth(eng, 1_000_000, "stress-mrt")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h, err := eng.Health(ctx, "stress-mrt")
		if err != nil || h.Decisions.Total != 1_000_000 {
			b.Fatal(h, err)
		}
	}
}

// BenchmarkHealthCommitHook is what the health aggregates add to each
// committed decision (compare with BenchmarkDecide).
func BenchmarkHealthCommitHook(b *testing.B) {
	eng := healthBenchEngine(b)
	p, q := 0.6, 0.5
	rec := &trial.Record{ID: "d", Study: "stress-mrt", DecisionPoint: "on_demand", Time: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC),
		Action: trial.ActionDeliver, Available: true, Randomised: true,
		Factors: []trial.FactorDraw{{Name: "prompt", Type: "within", Level: 1, Probability: &p}, {Name: "framing", Type: "within", Probability: &q}}}
	b.ReportAllocs()
	for b.Loop() {
		engine.RecordHealth(eng, rec)
	}
}
