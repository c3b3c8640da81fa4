package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/store/storetest"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

const benchParticipants = 1000

// benchEngine is an engine on the stress-mrt example with a real embedded
// store and enrolled participants who report EMA twice a day (07:30 and
// 13:00) for the given number of days, so that every day of the workload
// has the same mix of fresh and stale self-reports.
func benchEngine(b *testing.B, days int) (*engine.Engine, *sqlite.Store, *policies.Study, time.Time) {
	b.Helper()
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	study, err := policies.LoadStudy(ctx, "../policies/examples/stress-mrt", cat)
	if err != nil {
		b.Fatal(err)
	}
	linger, _ := time.ParseDuration(os.Getenv("JITAI_BENCH_LINGER"))
	store, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Linger: linger}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	// Participants enrol at base, before every decision; their reports are
	// stored and the decisions made with the clock at the end of the days,
	// the workload's decisions (in parallel, over all the days) with the
	// skew check off.
	clk := newTestClock(base)
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now, MaxClockSkew: -1, Observer: benchObserver})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchParticipants; i++ {
		id := fmt.Sprintf("p%04d", i)
		clk.Set(base)
		if _, _, err := eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: id}); err != nil {
			b.Fatal(err)
		}
		clk.Set(base.AddDate(0, 0, days))
		var evs []trial.Event
		for d := 0; d < days; d++ {
			for j, at := range []time.Duration{7*time.Hour + 30*time.Minute, 13 * time.Hour} {
				k := i + 7*d + 3*j
				evs = append(evs, trial.Event{ID: fmt.Sprintf("ema-%d-%d", d, j), Type: trial.EventEMA, Time: base.AddDate(0, 0, d).Add(at),
					Data: json.RawMessage(fmt.Sprintf(`{"stress":%d,"mood":%d,"energy":%d,"sleep_quality":%d,"loneliness":%d}`, k%11, (k/3)%11, (k/7)%11, (k/2)%11, (k/5)%11))})
			}
		}
		if _, _, err := eng.Ingest(ctx, "stress-mrt", id, evs); err != nil {
			b.Fatal(err)
		}
	}
	return eng, store, study, base
}

// perDay is the number of decisions in one day of the workload.
const perDay = benchParticipants * 5

// slot spreads decision n over participants, days and the five decision
// points, so the mix of available, capped and randomised points is realistic.
func slot(study *policies.Study, base time.Time, n int64) (string, string, time.Time) {
	p := n % benchParticipants
	k := n / benchParticipants
	day, s := k/5, int(k%5)
	dp := study.Config.DecisionPoints[s]
	minute, _ := trial.ParseClock(dp.Time)
	t := base.AddDate(0, 0, int(day)).Add(time.Duration(minute) * time.Minute)
	return fmt.Sprintf("p%04d", p), dp.ID, t
}

// BenchmarkDecide measures the whole in-process decision path: state read,
// input, Rego, randomisation, rendering and the durable record.
func BenchmarkDecide(b *testing.B) { benchDecide(b, false) }

// BenchmarkDecideWithKey is BenchmarkDecide with a fresh Idempotency-Key on
// every request, as apps (and the HTTP load test) send them.
func BenchmarkDecideWithKey(b *testing.B) { benchDecide(b, true) }

func benchDecide(b *testing.B, withKey bool) {
	eng, store, study, base := benchEngine(b, b.N/perDay+1)
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	cpu := storetest.ReportCPU(b)
	b.ResetTimer()
	before := store.Stats()
	b.Cleanup(func() {
		after := store.Stats()
		if tx := after.Transactions - before.Transactions; tx > 0 {
			b.ReportMetric(float64(after.Ops-before.Ops)/float64(tx), "ops/tx")
		}
	})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) - 1
			p, dp, t := slot(study, base, i)
			req := engine.DecideRequest{DecisionPoint: dp, Time: t}
			if withKey {
				req.IdempotencyKey = "k" + strconv.FormatInt(i, 10)
			}
			if _, err := eng.Decide(ctx, "stress-mrt", p, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cpu()
}

// BenchmarkPolicyEval measures the bare prepared-query evaluation of the
// same policy on the inputs the engine built for one full day of the same
// workload as BenchmarkDecide.
func BenchmarkPolicyEval(b *testing.B) {
	eng, _, study, base := benchEngine(b, 1)
	ctx := context.Background()
	var inputs []map[string]any
	for i := int64(0); i < perDay; i++ {
		p, dp, t := slot(study, base, i)
		ans, err := eng.Decide(ctx, "stress-mrt", p, engine.DecideRequest{DecisionPoint: dp, Time: t})
		if err != nil {
			b.Fatal(err)
		}
		var in map[string]any
		dec := json.NewDecoder(bytes.NewReader(ans.Record.Input))
		dec.UseNumber() // keep integers integers, as the engine passes them
		if err := dec.Decode(&in); err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, in)
	}
	pq := study.Policy.PreparedQuery()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in := inputs[(n.Add(1)-1)%int64(len(inputs))]
			rs, err := pq.Eval(ctx, rego.EvalInput(in))
			if err != nil || len(rs) == 0 {
				b.Errorf("eval: %v (%d results)", err, len(rs))
				return
			}
		}
	})
}

// BenchmarkPolicyEvaluators compares the study's policy evaluators on the
// same inputs as BenchmarkPolicyEval, through policies.Policy (input as an
// AST value, output decoded), serially.
func BenchmarkPolicyEvaluators(b *testing.B) {
	eng, _, study, base := benchEngine(b, 1)
	ctx := context.Background()
	var inputs []ast.Value
	for i := int64(0); i < perDay; i++ {
		p, dp, t := slot(study, base, i)
		ans, err := eng.Decide(ctx, "stress-mrt", p, engine.DecideRequest{DecisionPoint: dp, Time: t})
		if err != nil {
			b.Fatal(err)
		}
		v, err := ast.ValueFromReader(bytes.NewReader(ans.Record.Input))
		if err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, v)
	}
	if ev, err := study.Policy.Evaluator(); ev != policies.EvaluatorIR {
		b.Fatalf("the policy runs on %s: %v", ev, err)
	}
	for _, bc := range []struct {
		name string
		eval func(context.Context, ast.Value) (*policies.Output, error)
	}{{"ir", study.Policy.Eval}, {"topdown", study.Policy.EvalTopdown}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := bc.eval(ctx, inputs[i%len(inputs)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
