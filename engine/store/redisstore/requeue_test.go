package redisstore

import (
	"errors"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/store/storetest"
	"github.com/jitai/jitai/engine/trial"
)

// TestRequeueRepairsIndex: a decision committed without its study-wide
// index and log entry (on Cluster, an engine that died between the two
// writes) is found by Decision, listed and in the log once Requeue has run
// (the trial clock calls it when its retry of the point replays the
// decision), so that its delivery finds it. Requeue is idempotent.
func TestRequeueRepairsIndex(t *testing.T) {
	t.Parallel()
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	enrol(t, s, "s1", "p0001")
	s.testSkipIndex = func(rec *trial.Record) bool { return rec.ID == "lost" }
	at := time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)
	rec := storetest.BenchRecord("s1", "p0001", "lost", at)
	d := &trial.Delivery{ID: "lost", Study: "s1", Participant: "p0001", DecisionID: "lost", Status: trial.DeliveryQueued,
		DecidedAt: at, QueuedAt: at, NextAttempt: at, ExpiresAt: at.Add(time.Hour)}
	if err := s.CommitDecision(ctx, &trial.Commit{Record: rec, State: &trial.State{Version: 1}, Delivery: d}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decision(ctx, "s1", "lost"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Decision before the repair: %v, want ErrNotFound (the index was never written)", err)
	}
	before, _ := s.LogLen(ctx, "s1")
	for range 2 {
		if err := s.Requeue(ctx, "s1", "p0001", "lost"); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Decision(ctx, "s1", "lost"); err != nil || got.ID != "lost" {
		t.Fatalf("Decision after Requeue: %v, %v", got, err)
	}
	recs, err := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1", Limit: 10})
	if err != nil || len(recs) != 1 || recs[0].ID != "lost" {
		t.Fatalf("study-wide listing after Requeue: %v, %v", recs, err)
	}
	if n, _ := s.LogLen(ctx, "s1"); n != before+1 {
		t.Fatalf("the log has %d entries after two Requeues, want %d (the decision appended once)", n, before+1)
	}
	ds, err := s.ClaimDeliveries(ctx, at, time.Minute, 10)
	if err != nil || len(ds) != 1 || ds[0].DecisionID != "lost" {
		t.Fatalf("ClaimDeliveries after Requeue: %v, %v", ds, err)
	}
	// A decision that was never committed is not indexed.
	if err := s.Requeue(ctx, "s1", "p0001", "never"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Requeue of an uncommitted decision: %v, want ErrNotFound", err)
	}
	if _, err := s.Decision(ctx, "s1", "never"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Decision of an uncommitted decision after Requeue: %v", err)
	}
}
