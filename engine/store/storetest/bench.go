package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// BenchState is a participant state of realistic size (a week of history),
// for store benchmarks.
func BenchState(version int64, now time.Time) *trial.State {
	st := &trial.State{
		Version: version,
		EMA: map[string]trial.Observation{
			"stress": {Value: 7.0, Time: now.Add(-20 * time.Minute)},
			"mood":   {Value: 4.0, Time: now.Add(-20 * time.Minute)},
			"sleep":  {Value: 6.5, Time: now.Add(-9 * time.Hour)},
		},
		Context: map[string]trial.Observation{
			"activity": {Value: "still", Time: now.Add(-2 * time.Minute)},
			"location": {Value: "home", Time: now.Add(-2 * time.Minute)},
		},
		Preferences: trial.Preferences{QuietHours: &trial.QuietHours{Start: "22:30", End: "07:00"}, QuietSetAt: now.Add(-72 * time.Hour)},
	}
	for i := range 20 {
		t := now.Add(-time.Duration(i) * 3 * time.Hour)
		st.Prompts = append(st.Prompts, trial.Prompt{DecisionID: fmt.Sprintf("01J%023d", i), Time: t, Intervention: "breathing-478"})
		st.Decisions = append(st.Decisions, t)
		st.Engagement = append(st.Engagement, trial.Engagement{DecisionID: fmt.Sprintf("01J%023d", i), Status: "opened", Time: t.Add(time.Minute)})
	}
	return st
}

// BenchRecord is a realistic decision record of about 1.5 KB, for store
// benchmarks.
func BenchRecord(study, participant, id string, t time.Time) *trial.Record {
	p, prop, draw := 0.6, 0.72, 0.4137792315
	return &trial.Record{
		ID: id, Study: study, Participant: participant, DecisionPoint: "scheduled",
		Time: t, LocalTime: t.Format("2006-01-02T15:04:05"), RecordedAt: t.Add(3 * time.Millisecond), ExpiresAt: t.Add(time.Hour),
		PolicyRevision: "sha256:4f2a9c", CatalogueRevision: "cat-2026-02-20",
		Action: trial.ActionDeliver, Reasons: []string{"stress_high"}, Available: true, Randomised: true,
		Factors: []trial.FactorDraw{
			{Name: "prompt", Type: "within", Level: 1, Label: "on", Probability: &p, Proposed: &prop, Source: "policy", Draw: &draw},
			{Name: "framing", Type: "between", Level: 0, Label: "gain"},
		},
		Option:    &trial.OptionDraw{ID: "breathing-478", Probability: 2.0 / 3, Draw: 0.1903},
		Tailoring: map[string]any{"stress": 7.0, "minutes_since_prompt": 184.0},
		Input: json.RawMessage(`{"now":"2026-03-02T09:00:00Z","state":{"ema":{"stress":{"v":7,"t":"2026-03-02T08:11:00Z"}}},` +
			`"between":{"framing":"gain"},"history":{"prompts_today":1,"minutes_since_prompt":184}}`),
		InputHash: "sha256:0b1c7e", LatencyMicros: 1843,
	}
}

// benchEnrol enrols participants of study s1, in stratum a.
func benchEnrol(b *testing.B, s trial.Store, now time.Time, ids ...string) {
	b.Helper()
	for _, id := range ids {
		p := &trial.Participant{Study: "s1", ID: id, Stratum: "a", Timezone: "UTC", Status: trial.StatusActive, EnrolledAt: now}
		if _, _, err := s.Enroll(context.Background(), p, func(int64) error { return nil }); err != nil {
			b.Fatalf("Enroll(%s): %v", id, err)
		}
	}
}

// benchCommit is a decision of participant p with its new state and
// idempotency entry, of the sizes the engine writes.
func benchCommit(p, id string, version int64, now time.Time) *trial.Commit {
	return &trial.Commit{
		Record:      BenchRecord("s1", p, id, now.Add(time.Duration(version)*time.Millisecond)),
		State:       BenchState(version, now),
		Idempotency: &trial.IdempotencyEntry{Key: "k" + id, RequestHash: "sha256:ab", DecisionID: id, Response: make([]byte, 600), CreatedAt: now},
	}
}

// benchDecided enrols participant p1 and commits its decision d1 (state
// version 1, idempotency key kd1); it returns the time it used.
func benchDecided(b *testing.B, s trial.Store) time.Time {
	b.Helper()
	now := time.Now().UTC()
	benchEnrol(b, s, now, "p1")
	if err := s.CommitDecision(context.Background(), benchCommit("p1", "d1", 1, now)); err != nil {
		b.Fatal(err)
	}
	return now
}

// BenchSnapshot benchmarks Snapshot of one participant with a committed
// decision: without an idempotency key, with a key not yet used (Miss) and
// with the committed one (Replay). s must be empty.
func BenchSnapshot(b *testing.B, s trial.Store) {
	ctx := context.Background()
	benchDecided(b, s)
	for _, bc := range []struct{ name, key string }{{"NoKey", ""}, {"Miss", "kd2"}, {"Replay", "kd1"}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				snap, err := s.Snapshot(ctx, "s1", "p1", bc.key)
				if err != nil || snap.State.Version != 1 {
					b.Fatalf("Snapshot = %v, %v", snap, err)
				}
			}
		})
	}
}

// BenchCommitParallel benchmarks CommitDecision (record, state and
// idempotency entry) from RunParallel's 8*GOMAXPROCS goroutines, each
// deciding for a participant of its own so that commits do not conflict,
// and reports cpu-ns/op as ReportCPU does. s must be empty. The timer is
// stopped when it returns, so the caller may read the store's own
// statistics and report them.
func BenchCommitParallel(b *testing.B, s trial.Store) {
	ctx := context.Background()
	now := time.Now().UTC()
	goroutines := 8 * runtime.GOMAXPROCS(0)
	for i := range goroutines {
		benchEnrol(b, s, now, fmt.Sprintf("p%03d", i))
	}
	var next, seq atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	cpu := ReportCPU(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := fmt.Sprintf("p%03d", next.Add(1)-1)
		var version int64
		for pb.Next() {
			version++
			if err := s.CommitDecision(ctx, benchCommit(p, fmt.Sprintf("d%012d", seq.Add(1)), version, now)); err != nil {
				b.Errorf("CommitDecision: %v", err)
				return
			}
		}
	})
	b.StopTimer()
	cpu()
}

// BenchAppendEvents benchmarks AppendEvents of one new event for a
// participant with a realistic state, applied to the state. s must be
// empty.
func BenchAppendEvents(b *testing.B, s trial.Store) {
	ctx := context.Background()
	now := benchDecided(b, s)
	apply := func(st *trial.State, fresh []trial.Event) error {
		st.EMA["stress"] = trial.Observation{Value: 5.0, Time: fresh[0].Time}
		return nil
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		ev := trial.Event{ID: fmt.Sprint("e", i), Type: trial.EventEMA, Time: now.Add(time.Duration(i) * time.Second), Data: []byte(`{"stress":5}`)}
		if _, err := s.AppendEvents(ctx, "s1", "p1", []trial.Event{ev}, apply); err != nil {
			b.Fatal(err)
		}
	}
}

// ReportCPU starts counting the process's CPU time; the function it returns
// reports it per operation as the metric cpu-ns/op. Call it after the setup
// and the returned function when the measured loop has ended. On a machine
// shared with other work, cpu-ns/op varies less than ns/op, and it counts
// what an operation costs on every core (writer, readers, garbage
// collector), not only the waiting.
func ReportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if end := processCPU(); start >= 0 && end >= 0 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchClaimDue benchmarks ClaimDue of 100 entries out of 100,000 due ones
// (of 4 studies); once all are claimed, the next claims come after the
// lease, when they are due again. s must be empty and implement
// trial.Clock.
func BenchClaimDue(b *testing.B, s trial.Clock) {
	ctx := context.Background()
	const entries, limit = 100_000, 100
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range entries {
		if err := s.Touch(ctx, fmt.Sprintf("s%d", i%4), fmt.Sprintf("p%06d", i), start.Add(time.Duration(i)*time.Millisecond), start); err != nil {
			b.Fatal(err)
		}
	}
	now, lease := start.Add(time.Hour), time.Hour
	b.ReportAllocs()
	cpu := ReportCPU(b)
	b.ResetTimer()
	for b.Loop() {
		ds, err := s.ClaimDue(ctx, now, lease, limit)
		if err != nil {
			b.Fatal(err)
		}
		if len(ds) < limit {
			now = now.Add(lease)
		}
	}
	b.StopTimer()
	cpu()
}
