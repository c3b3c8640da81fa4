// Package storetest is the conformance suite every trial.Store
// implementation runs: the embedded SQLite store and the Redis store pass the
// same tests, so the engine can rely on the behaviour documented in
// engine/trial/store.go and engine/trial/clock.go whichever backend is
// configured.
//
// A store under test must return times in UTC with the precision it was
// given (the suite uses microsecond-precise times), keep JSON documents
// intact, and honour the error sentinels of package engine. Beyond what
// engine/store.go spells out, the suite also expects that:
//   - Enroll sets p.Seq to the sequence number it passes to assign;
//   - AppendEvents does not call apply, nor bump the state version, when no
//     event is new;
//   - CommitDecision with a state for an unknown participant fails with
//     ErrNotFound, and a key already committed fails with
//     ErrIdempotencyReplay even when the state version is stale too;
//   - Events of an unknown participant are empty (or ErrNotFound);
//   - DecisionQuery.Limit <= 0 means no limit.
//
// Of the trial clock's contract (trial.Clock) it also expects that:
//   - Complete of an entry that was removed meanwhile (Unschedule) leaves
//     it removed, and Unschedule of no entry succeeds;
//   - claims span every study of the store, and their order is checked
//     only as far as the store can keep it (not across shards);
//   - SaveDelivery and Requeue of a delivery the store does not hold fail
//     with ErrNotFound and create nothing (its participant may have been
//     erased meanwhile);
//   - PutDevice for a participant who is not enrolled fails with
//     ErrNotFound; Devices of one is empty (or ErrNotFound);
//   - DeadLetters with limit <= 0 lists them all, a zero FailedAt first;
//   - Withdraw removes the participant's schedule entry, and Erase their
//     devices, schedule entry and deliveries (in both modes).
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/jitai/jitai/engine/trial"
)

// Run runs the conformance suite. open returns a fresh, empty store for one
// subtest; the suite closes it. reopen, when not nil, closes old and returns
// a store over the same data (for stores durable across restarts); the suite
// closes the returned store.
func Run(t *testing.T, open func(t *testing.T) trial.Store, reopen func(t *testing.T, old trial.Store) trial.Store) {
	t.Helper()
	h := &harness{open: open, reopen: reopen}
	t.Run("Enroll", h.testEnroll)
	t.Run("Participants", h.testParticipants)
	t.Run("Snapshot", h.testSnapshot)
	t.Run("AppendEvents", h.testAppendEvents)
	t.Run("CommitDecision", h.testCommitDecision)
	t.Run("ListDecisions", h.testListDecisions)
	t.Run("DecisionTimeRange", h.testDecisionTimeRange)
	t.Run("Concurrency", h.testConcurrency)
	t.Run("Durability", h.testDurability)
	t.Run("Pins", h.testPins)
	t.Run("ServerPins", h.testServerPins)
	t.Run("Schedule", h.testSchedule)
	t.Run("Outbox", h.testOutbox)
	t.Run("Devices", h.testDevices)
	t.Run("UpdateParticipant", h.testUpdateParticipant)
	t.Run("ClockDurability", h.testClockDurability)
}

// harness holds the constructors and opens stores that are closed when the
// subtest ends.
type harness struct {
	open   func(t *testing.T) trial.Store
	reopen func(t *testing.T, old trial.Store) trial.Store
}

// storeRef is an open store that may be swapped by reopen.
type storeRef struct {
	trial.Store
}

// store opens a fresh store and closes it (or its reopened successor) when t
// ends.
func (h *harness) store(t *testing.T) *storeRef {
	t.Helper()
	ref := &storeRef{Store: h.open(t)}
	t.Cleanup(func() {
		if err := ref.Close(); err != nil {
			t.Errorf("closing store: %v", err)
		}
	})
	return ref
}

// reopenStore replaces ref's store with a reopened one.
func (h *harness) reopenStore(t *testing.T, ref *storeRef) {
	t.Helper()
	ref.Store = h.reopen(t, ref.Store)
	if ref.Store == nil {
		t.Fatal("reopen returned a nil store")
	}
}

// ctx returns the test's context.
func ctx(t *testing.T) context.Context { return t.Context() }

// mustEnroll enrols p with an assignment derived from its sequence number and
// fails the test on error.
func mustEnroll(t *testing.T, s trial.Store, p *trial.Participant) *trial.Participant {
	t.Helper()
	got, created, err := s.Enroll(ctx(t), p, assignBySeq(p))
	if err != nil {
		t.Fatalf("Enroll(%s/%s): %v", p.Study, p.ID, err)
	}
	if !created {
		t.Fatalf("Enroll(%s/%s): created = false for a new participant", p.Study, p.ID)
	}
	return got
}

// mustSnapshot reads a snapshot and fails the test on error.
func mustSnapshot(t *testing.T, s trial.Store, study, participant, key string) *trial.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(ctx(t), study, participant, key)
	if err != nil {
		t.Fatalf("Snapshot(%s/%s, %q): %v", study, participant, key, err)
	}
	if snap == nil || snap.Participant == nil || snap.State == nil {
		t.Fatalf("Snapshot(%s/%s, %q) = %+v: participant and state must not be nil", study, participant, key, snap)
	}
	return snap
}

// mustCommit commits c and fails the test on error.
func mustCommit(t *testing.T, s trial.Store, c *trial.Commit) {
	t.Helper()
	if err := s.CommitDecision(ctx(t), c); err != nil {
		t.Fatalf("CommitDecision(%s): %v", c.Record.ID, err)
	}
}

// wantErr fails the test unless errors.Is(err, want).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
}

// jsonOf marshals v for comparison; two values are equal for the suite when
// their JSON encodings are (maps encode with sorted keys, times with their
// full precision and zone offset).
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshalling %T: %v", v, err)
	}
	return string(b)
}

// sameJSON fails the test unless got and want encode to the same JSON.
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
		t.Fatalf("%s differs:\n got: %s\nwant: %s", what, g, w)
	}
}
