package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// TestSimulatedTrialRecoversEffect runs a stress-mrt trial through the real
// engine (40 participants, 30 days, 5 decision points a day) in which a
// delivered prompt lowers the next stress report by trueEffect, exports it
// with `jitai export` and checks that `jitai analyze wcls` recovers the
// effect within its 95% confidence interval.
func TestSimulatedTrialRecoversEffect(t *testing.T) {
	if testing.Short() {
		t.Skip("simulated trial: not in -short")
	}
	const (
		participants = 40
		days         = 30
		trueEffect   = -1.2 // on the 0-10 stress scale
	)
	ctx := context.Background()
	data := t.TempDir()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	studies, err := policies.LoadStudies(ctx, "../../policies/examples", cat)
	if err != nil {
		t.Fatal(err)
	}
	var study *policies.Study
	for _, s := range studies {
		if s.Config.ID == "stress-mrt" {
			study = s
		}
	}
	store, err := sqlite.Open(filepath.Join(data, "jitai.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // London is on UTC in March before the 29th
	now := start
	// Seeded ids make the draws, and so the whole trial, reproducible.
	ids := rand.NewChaCha8([32]byte{'j', 'i', 't', 'a', 'i'})
	eng, err := engine.New(engine.Components{Store: store, Studies: studies, Now: func() time.Time { return now }, Rand: ids})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	base := make([]float64, participants)
	for i := range base {
		base[i] = 3.5 + 3*rng.Float64() // each person's usual stress
		if _, _, err := eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: fmt.Sprintf("sim-%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	delivered, decisions := 0, 0
	for d := 0; d < days; d++ {
		// Stay clear of the clock change on 29 March: the test is about
		// estimation, not zones.
		day := start.AddDate(0, 0, d)
		for _, dp := range study.Config.DecisionPoints {
			minute, _ := trial.ParseClock(dp.Time)
			at := day.Add(time.Duration(minute) * time.Minute)
			now = at
			for i := 0; i < participants; i++ {
				pid := fmt.Sprintf("sim-%02d", i)
				ans, err := eng.Decide(ctx, "stress-mrt", pid, engine.DecideRequest{DecisionPoint: dp.ID, Time: at})
				if err != nil {
					t.Fatal(err)
				}
				decisions++
				a := 0.0
				if ans.Record.Action == trial.ActionDeliver {
					a = 1
					delivered++
				}
				// The proximal outcome: a stress report 45 minutes later.
				// Reported on the 0-10 scale the data dictionary declares.
				stress := min(10, max(0, base[i]+trueEffect*a+rng.NormFloat64()*1.5))
				ev := trial.Event{ID: fmt.Sprintf("ema-%d-%s", d, dp.ID), Type: trial.EventEMA, Time: at.Add(45 * time.Minute),
					Data: json.RawMessage(fmt.Sprintf(`{"stress":%.3f}`, stress))}
				now = at.Add(45 * time.Minute)
				if _, _, err := eng.Ingest(ctx, "stress-mrt", pid, []trial.Event{ev}); err != nil {
					t.Fatal(err)
				}
				now = at
			}
		}
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d decisions, %d deliveries", decisions, delivered)

	out := filepath.Join(t.TempDir(), "stress.csv")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"export", "--study", "stress-mrt", "--studies", "../../policies/examples", "--data", data, "--format", "csv", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	args := []string{"analyze", "wcls", "--csv", out, "--id", "participant_id", "--outcome", "stress_90m",
		"--treatment", "prompt", "--rand-prob", "prompt_prob", "--availability", "available", "--json"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("analyze: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	var res struct {
		NParticipants int `json:"n_participants"`
		Effects       []struct {
			Term   string  `json:"term"`
			Est    float64 `json:"estimate"`
			SE     float64 `json:"std_err"`
			Lo     float64 `json:"ci_low"`
			Hi     float64 `json:"ci_high"`
			PValue float64 `json:"p_value"`
		} `json:"effects"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if res.NParticipants != participants || len(res.Effects) != 1 {
		t.Fatalf("result %s", stdout.String())
	}
	e := res.Effects[0]
	t.Logf("estimated effect %.3f (se %.3f, 95%% CI %.3f to %.3f), true %.1f", e.Est, e.SE, e.Lo, e.Hi, trueEffect)
	if !(e.Lo <= trueEffect && trueEffect <= e.Hi) {
		t.Errorf("true effect %.2f outside the 95%% CI [%.3f, %.3f]", trueEffect, e.Lo, e.Hi)
	}
	if e.PValue > 1e-6 {
		t.Errorf("an effect of %.1f with %d decisions should be detected; p = %g", trueEffect, decisions, e.PValue)
	}

	// The same export as Parquet gives the same analysis, to the byte.
	fromCSV := stdout.String()
	pq := filepath.Join(t.TempDir(), "stress.parquet")
	if code := run([]string{"export", "--study", "stress-mrt", "--studies", "../../policies/examples", "--data", data, "--format", "parquet", "--out", pq}, &stdout, &stderr); code != 0 {
		t.Fatalf("export parquet: exit %d\n%s", code, stderr.String())
	}
	stdout.Reset()
	args[3] = pq
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("analyze parquet: exit %d\n%s", code, stderr.String())
	}
	if stdout.String() != fromCSV {
		t.Fatalf("the Parquet export analyses differently:\n%s\nCSV:\n%s", stdout.String(), fromCSV)
	}
}
