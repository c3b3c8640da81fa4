package engine_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/policies/policytest"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/policies"
)

// BenchmarkExplain explains one budgeted decision: a replay, a traced
// evaluation, the package's rule values and compiling the inspector.
func BenchmarkExplain(b *testing.B) {
	ctx := context.Background()
	study := policytest.WriteStudy(b, filepath.Join(b.TempDir(), "budget"), budgetStudy, budgetPolicyWithGaps)
	store, err := sqlite.Open(filepath.Join(b.TempDir(), "b.db"), sqlite.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: func() time.Time { return at }})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, "budget", engine.EnrollRequest{ParticipantID: "p"}); err != nil {
		b.Fatal(err)
	}
	ans, err := eng.Decide(ctx, "budget", "p", engine.DecideRequest{DecisionPoint: "app", Time: at, Context: map[string]any{"stress": 8.0}})
	if err != nil {
		b.Fatal(err)
	}
	rt, _ := eng.Study("budget")
	b.ReportAllocs()
	for b.Loop() {
		ex, err := decision.Explain(ctx, rt.Runtime, ans.Record)
		if err != nil || !ex.PolicyEvaluated || len(ex.Rules) == 0 {
			b.Fatal(err, ex)
		}
	}
}
