package sqlite

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine/store/storetest"
)

func BenchmarkSnapshot(b *testing.B) { storetest.BenchSnapshot(b, openTemp(b, Options{})) }

func BenchmarkCommitDecisionParallel(b *testing.B) {
	for _, durability := range []string{DurabilityProcess, DurabilityPower} {
		b.Run(durability, func(b *testing.B) {
			s := openTemp(b, Options{Durability: durability})
			ctx := context.Background()
			// RunParallel starts 8*GOMAXPROCS goroutines; each owns one
			// participant, so that commits do not conflict.
			goroutines := 8 * runtime.GOMAXPROCS(0)
			for i := range goroutines {
				enrol(b, s, "s1", fmt.Sprintf("p%03d", i))
			}
			now := time.Now().UTC()
			var next, seq atomic.Int64
			before := s.Stats()
			b.SetParallelism(8)
			b.ReportAllocs()
			cpu := storetest.ReportCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				p := fmt.Sprintf("p%03d", next.Add(1)-1)
				var version int64
				for pb.Next() {
					version++
					id := fmt.Sprintf("d%012d", seq.Add(1))
					err := s.CommitDecision(ctx, &trial.Commit{
						Record:      storetest.BenchRecord("s1", p, id, now.Add(time.Duration(version)*time.Millisecond)),
						State:       storetest.BenchState(version, now),
						Idempotency: &trial.IdempotencyEntry{Key: "k" + id, RequestHash: "sha256:ab", DecisionID: id, Response: make([]byte, 600), CreatedAt: now},
					})
					if err != nil {
						b.Errorf("CommitDecision: %v", err)
						return
					}
				}
			})
			b.StopTimer()
			cpu()
			st := s.Stats()
			if txs := st.Transactions - before.Transactions; txs > 0 {
				b.ReportMetric(float64(st.Ops-before.Ops)/float64(txs), "ops/tx")
			}
		})
	}
}
