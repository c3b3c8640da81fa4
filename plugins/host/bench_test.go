package host_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/policies/policytest"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/policies"
)

// benchStudy is one study with a micro-randomised delivery factor, with or
// without an enricher (whose value the policy reads) and a probability
// provider for the factor.
func benchStudy(b *testing.B, id string, withPlugins bool) *policies.Study {
	exe, sum := testPlugin(b)
	factor := `delivery_factor: prompt
factors:
  - name: prompt
    type: within
    levels: [none, deliver]
    probability: 0.5
    bounds: [0.1, 0.9]
`
	extra := factor
	if withPlugins {
		extra = factor + `    probability_source: plugin
    plugin: bandit
plugins:
` + pluginYAML("gate", "enricher", exe, sum, "config: {derived: {block: false, level: 3}}") +
			pluginYAML("bandit", "probability", exe, sum, "config: {probability: 0.6}")
	}
	return policytest.WriteStudy(b, filepath.Join(b.TempDir(), id), studyYAML(id, extra), gatePolicy)
}

// BenchmarkDecision is a whole decision (state read, enrichment, policy,
// randomisation, durable record in the embedded store) without plugins and
// with one enricher and one probability provider: the difference is the
// cost of two plugin calls.
func BenchmarkDecision(b *testing.B) {
	for _, withPlugins := range []bool{false, true} {
		name := "plugins=none"
		if withPlugins {
			name = "plugins=enricher+provider"
		}
		b.Run(name, func(b *testing.B) {
			s := benchStudy(b, "bench", withPlugins)
			r := newRig(b, host.Options{}, s)
			const participants = 200
			for i := 0; i < participants; i++ {
				r.enroll(b, "bench", fmt.Sprintf("p%03d", i))
			}
			base := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				at := base.Add(time.Duration(i/participants) * time.Minute)
				ans, err := r.eng.Decide(ctx, "bench", fmt.Sprintf("p%03d", i%participants), engine.DecideRequest{DecisionPoint: "app", Time: at})
				if err != nil {
					b.Fatal(err)
				}
				if withPlugins && (len(ans.Record.Plugins) != 1 || ans.Record.Plugins[0].Fallback != "" || ans.Record.Factors[0].Plugin.Fallback != "") {
					b.Fatalf("a plugin fell back: %+v %+v", ans.Record.Plugins, ans.Record.Factors[0].Plugin)
				}
			}
		})
	}
}

// BenchmarkPluginCall is one call through the host to a running plugin
// process (gRPC over a Unix socket with mutual TLS), with a policy input of
// the size the engine sends.
func BenchmarkPluginCall(b *testing.B) {
	s := benchStudy(b, "calls", true)
	set, err := host.Start(s, host.Options{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	input := []byte(`{"context":{},"decision_point":{"id":"app","kind":"app"},"history":{"decisions_today":3,"engagement":{"completed":2,"delivered":5,"dismissed":1,"open_rate":0.6,"opened":3,"prompts":5},"prompts_24h":1,"prompts_today":1,"recent_interventions":["box-breathing","thought-record"]},"local":{"date":"2026-11-02","hour":14,"minute":30,"minute_of_day":870,"time":"2026-11-02T14:30:00Z","timezone":"Europe/London","weekday":"Monday"},"now":"2026-11-02T14:30:00Z","now_ns":1793629800000000000,"participant":{"assignment":{},"day_in_study":5,"enrolled_at":"2026-10-28T10:00:00Z","id":"p-7f3a","strata":{}},"state":{"assessment":{},"context":{},"ema":{"energy":{"age_minutes":40,"time":"2026-11-02T13:50:00Z","value":6},"mood":{"age_minutes":40,"time":"2026-11-02T13:50:00Z","value":6},"stress":{"age_minutes":40,"time":"2026-11-02T13:50:00Z","value":5}},"preferences":{"opted_out":false,"snoozed":false}},"study":{"burden":{"max_per_day":4,"max_per_24h":0,"min_minutes_between":90},"factors":{"prompt":{"bounds":[0.1,0.9],"levels":["none","deliver"],"probability":0.5,"probability_source":"plugin","type":"within"}},"id":"calls"}}`)
	d := decision.PluginDecision{Study: "calls", Participant: "p1", DecisionID: "d1", DecisionPoint: "app", Time: time.Now()}
	ctx := context.Background()
	b.Run("enrich", func(b *testing.B) {
		en := set.Enricher("gate")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := en.Enrich(ctx, d, input); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("probability", func(b *testing.B) {
		pp := set.ProbabilityProvider("bandit")
		q := engine.ProbabilityQuery{Factor: "prompt", Bounds: [2]float64{0.1, 0.9}, Default: 0.5, Input: input}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pp.Probability(ctx, d, q); err != nil {
				b.Fatal(err)
			}
		}
	})
}
