package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/sqlite"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

const benchParticipants = 1000

// benchEngine is an engine on the stress-mrt example with a real embedded
// store and enrolled participants who have reported some EMA.
func benchEngine(b *testing.B) (*engine.Engine, *policies.Study, time.Time) {
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
	store, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	base := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: func() time.Time { return base }})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchParticipants; i++ {
		id := fmt.Sprintf("p%04d", i)
		if _, _, err := eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: id}); err != nil {
			b.Fatal(err)
		}
		ev := engine.Event{ID: "ema-1", Type: engine.EventEMA, Time: base.Add(8 * time.Hour),
			Data: json.RawMessage(fmt.Sprintf(`{"stress":%d,"mood":%d,"energy":%d,"sleep_quality":6,"loneliness":%d}`, i%11, (i/3)%11, (i/7)%11, (i/5)%11))}
		if _, _, err := eng.Ingest(ctx, "stress-mrt", id, []engine.Event{ev}); err != nil {
			b.Fatal(err)
		}
	}
	return eng, study, base
}

// slot spreads decision n over participants, days and the five decision
// points, so the mix of available, capped and randomised points is realistic.
func slot(study *policies.Study, base time.Time, n int64) (string, string, time.Time) {
	p := n % benchParticipants
	k := n / benchParticipants
	day, s := k/5, int(k%5)
	dp := study.Config.DecisionPoints[s]
	minute, _ := policies.ParseClock(dp.Time)
	t := base.AddDate(0, 0, int(day)).Add(time.Duration(minute) * time.Minute)
	return fmt.Sprintf("p%04d", p), dp.ID, t
}

// BenchmarkDecide measures the whole in-process decision path: state read,
// input, Rego, randomisation, rendering and the durable record.
func BenchmarkDecide(b *testing.B) {
	eng, study, base := benchEngine(b)
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, dp, t := slot(study, base, n.Add(1)-1)
			if _, err := eng.Decide(ctx, "stress-mrt", p, engine.DecideRequest{DecisionPoint: dp, Time: t}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPolicyEval measures the bare prepared-query evaluation of the
// same policy on the inputs the engine actually built for real decisions.
func BenchmarkPolicyEval(b *testing.B) {
	eng, study, base := benchEngine(b)
	ctx := context.Background()
	var inputs []map[string]any
	for i := int64(0); i < 2000; i++ {
		p, dp, t := slot(study, base, i)
		ans, err := eng.Decide(ctx, "stress-mrt", p, engine.DecideRequest{DecisionPoint: dp, Time: t})
		if err != nil {
			b.Fatal(err)
		}
		var in map[string]any
		if err := json.Unmarshal(ans.Record.Input, &in); err != nil {
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
