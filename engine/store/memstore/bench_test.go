package memstore_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/store/storetest"
)

func enrol(b *testing.B, s *memstore.Store, id string) {
	b.Helper()
	p := &trial.Participant{Study: "s1", ID: id, Timezone: "UTC", EnrolledAt: time.Now().UTC(), Status: trial.StatusActive}
	if _, _, err := s.Enroll(context.Background(), p, func(int64) error { return nil }); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkSnapshot(b *testing.B) { storetest.BenchSnapshot(b, memstore.New()) }

// BenchmarkCommitDecisionParallel: one participant per goroutine, as in
// the SQLite store's benchmark; the cost is mostly encoding the record.
func BenchmarkCommitDecisionParallel(b *testing.B) {
	s := memstore.New()
	ctx := context.Background()
	goroutines := 8 * runtime.GOMAXPROCS(0)
	for i := range goroutines {
		enrol(b, s, fmt.Sprintf("p%03d", i))
	}
	now := time.Now().UTC()
	var next, seq atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		p := fmt.Sprintf("p%03d", next.Add(1)-1)
		var version int64
		for pb.Next() {
			version++
			id := fmt.Sprintf("d%012d", seq.Add(1))
			err := s.CommitDecision(ctx, &trial.Commit{
				Record: storetest.BenchRecord("s1", p, id, now.Add(time.Duration(version)*time.Millisecond)),
				State:  storetest.BenchState(version, now),
			})
			if err != nil {
				b.Errorf("CommitDecision: %v", err)
				return
			}
		}
	})
}

func BenchmarkAppendEvents(b *testing.B) {
	s := memstore.New()
	ctx := context.Background()
	enrol(b, s, "p1")
	now := time.Now().UTC()
	if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "d1", now), State: storetest.BenchState(1, now)}); err != nil {
		b.Fatal(err)
	}
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
