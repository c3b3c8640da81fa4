package redisstore

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/store/storetest"
)

// benchStore opens a store with a fresh prefix whose keys are deleted when
// b ends.
func benchStore(b *testing.B, url string) *Store {
	b.Helper()
	prefix := uniquePrefix("bench")
	s, err := Open(context.Background(), url, Options{KeyPrefix: prefix}, zap.NewNop())
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() {
		s.Close()
		deleteKeys(b, url, prefix)
	})
	return s
}

func BenchmarkSnapshot(b *testing.B) { storetest.BenchSnapshot(b, benchStore(b, singleURL(b))) }

func BenchmarkCommitDecisionParallel(b *testing.B) {
	b.Run("Single", func(b *testing.B) { benchCommitParallel(b, singleURL(b)) })
	b.Run("Cluster", func(b *testing.B) { benchCommitParallel(b, startCluster(b).url()) })
}

func benchCommitParallel(b *testing.B, url string) {
	s := benchStore(b, url)
	ctx := context.Background()
	// RunParallel starts 8*GOMAXPROCS goroutines; each owns one
	// participant, so that commits do not conflict.
	goroutines := 8 * runtime.GOMAXPROCS(0)
	for i := range goroutines {
		enrol(b, s, "s1", fmt.Sprintf("p%03d", i))
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
}
