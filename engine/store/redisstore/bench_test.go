package redisstore

import (
	"context"
	"testing"

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
	b.Run("Single", func(b *testing.B) { storetest.BenchCommitParallel(b, benchStore(b, singleURL(b))) })
	b.Run("Cluster", func(b *testing.B) { storetest.BenchCommitParallel(b, benchStore(b, startCluster(b).url())) })
}

func BenchmarkAppendEvents(b *testing.B) { storetest.BenchAppendEvents(b, benchStore(b, singleURL(b))) }

// BenchmarkClaimDue: 100 of 100,000 due entries of 4 studies per claim
// (counting every shard, then claiming from those with due entries).
func BenchmarkClaimDue(b *testing.B) { storetest.BenchClaimDue(b, benchStore(b, singleURL(b))) }
