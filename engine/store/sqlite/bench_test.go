package sqlite

import (
	"testing"

	"github.com/jitai/jitai/engine/store/storetest"
)

func BenchmarkSnapshot(b *testing.B) { storetest.BenchSnapshot(b, openTemp(b, Options{})) }

// BenchmarkCommitDecisionParallel also reports how many commits share a
// transaction (ops/tx).
func BenchmarkCommitDecisionParallel(b *testing.B) {
	for _, durability := range []string{DurabilityProcess, DurabilityPower} {
		b.Run(durability, func(b *testing.B) {
			s := openTemp(b, Options{Durability: durability})
			before := s.Stats()
			storetest.BenchCommitParallel(b, s)
			st := s.Stats()
			if txs := st.Transactions - before.Transactions; txs > 0 {
				b.ReportMetric(float64(st.Ops-before.Ops)/float64(txs), "ops/tx")
			}
		})
	}
}

func BenchmarkAppendEvents(b *testing.B) { storetest.BenchAppendEvents(b, openTemp(b, Options{})) }

func BenchmarkClaimDue(b *testing.B) { storetest.BenchClaimDue(b, openTemp(b, Options{})) }
