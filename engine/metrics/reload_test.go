package metrics_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/metrics"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

const reloadStudy = `id: r
name: Reload metrics
timezone: Europe/London
seed: "r-seed-0123456789"
decision_points:
  - {id: app, kind: app}
crisis:
  text: "Call 116 123."
`

func reloadPolicy(reason string) string {
	return `package jitai.policy

decision := {"safety_reasons": [], "unavailable_reasons": ["` + reason + `"], "candidates": []}
`
}

// Every reload attempt the engine makes is counted by its outcome.
func TestStudyReloads(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "r")
	write := func(name, src string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("study.yaml", reloadStudy)
	write("policy/p.rego", reloadPolicy("a"))
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := policies.LoadStudy(context.Background(), dir, cat)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	eng, err := engine.New(engine.Components{Store: memstore.New(), Studies: []*policies.Study{s}, Observer: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := eng.ReloadStudy(ctx, "r"); err != nil { // unchanged
		t.Fatal(err)
	}
	write("policy/p.rego", reloadPolicy("b"))
	if _, err := eng.ReloadStudy(ctx, "r"); err != nil { // loaded
		t.Fatal(err)
	}
	write("policy/p.rego", "package jitai.policy\n\ndecision := {")
	if _, err := eng.ReloadStudy(ctx, "r"); err == nil { // failed
		t.Fatal("a policy that does not parse was loaded")
	}
	eng.WaitRetired()
	out, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	timed := 0
	for _, f := range out {
		if f.GetName() == "jitai_study_reload_duration_seconds" {
			for _, mt := range f.GetMetric() {
				timed += int(mt.GetHistogram().GetSampleCount())
			}
		}
		if f.GetName() != "jitai_study_reloads_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["study"]+"/"+labels["outcome"]] = mt.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"r/unchanged": 1, "r/loaded": 1, "r/failed": 1}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all %v)", k, got[k], v, got)
		}
	}
	if timed != 2 {
		t.Errorf("%d timed reloads, want 2 (the loaded and the failed one)", timed)
	}
}
