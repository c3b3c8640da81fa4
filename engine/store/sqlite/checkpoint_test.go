package sqlite

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine/store/storetest"
)

// Committed pages are copied back into the database file by the background
// checkpointer, not by a commit: after writes stop, the log is checkpointed
// at a later tick (within a minute even on a loaded machine), and the data
// reads back after a reopen.
func TestBackgroundCheckpoint(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := t.Context()
	enrol(t, s, "s1", "p1")
	for i := range 200 {
		id := fmt.Sprintf("d%03d", i)
		rec := storetest.BenchRecord("s1", "p1", id, time.Date(2026, 3, 2, 9, 0, i, 0, time.UTC))
		if err := s.CommitDecision(ctx, &trial.Commit{Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
	const limit = time.Minute
	deadline := time.Now().Add(limit)
	for s.Stats().CheckpointedPages == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no background checkpoint within %s of the last write (one is due every %s)", limit, checkpointEvery)
		}
		time.Sleep(50 * time.Millisecond)
	}
	db, err := os.Stat(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if db.Size() < 8192*4 {
		t.Errorf("database file is %d bytes after the checkpoint: pages were not copied back", db.Size())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(s.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	recs, err := r.ListDecisions(ctx, trial.DecisionQuery{Study: "s1"})
	if err != nil || len(recs) != 200 {
		t.Fatalf("after reopening: %d records, %v; want 200", len(recs), err)
	}
}
