package memstore_test

import (
	"testing"

	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/store/storetest"
)

func BenchmarkSnapshot(b *testing.B) { storetest.BenchSnapshot(b, memstore.New()) }

// BenchmarkCommitDecisionParallel: one participant per goroutine, as in
// the other stores' benchmarks; the cost is mostly encoding the record.
func BenchmarkCommitDecisionParallel(b *testing.B) { storetest.BenchCommitParallel(b, memstore.New()) }

func BenchmarkAppendEvents(b *testing.B) { storetest.BenchAppendEvents(b, memstore.New()) }

func BenchmarkClaimDue(b *testing.B) { storetest.BenchClaimDue(b, memstore.New()) }
