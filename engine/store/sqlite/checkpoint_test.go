package sqlite

import (
	"fmt"
	"os"
	"strings"
	"sync"
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
	var ids []string
	for i := range 200 {
		id := fmt.Sprintf("d%03d", i)
		ids = append(ids, id)
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
	checkAnswered(t, s, ids)
}

// Under readers that never stop, PASSIVE checkpoints cannot restart the
// log; the writer's TRUNCATE checkpoints past wal_limit_bytes keep it
// bounded: under twice the limit plus one transaction, however the reads
// fall (without readers, under the limit plus one transaction: see
// TestDiskFullTmpfs).
func TestWALBoundedUnderReads(t *testing.T) {
	const limit = 1 << 20
	s := openTemp(t, Options{WALLimit: limit})
	ctx := t.Context()
	enrol(t, s, "s1", "p1")
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1", Limit: 50}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var maxWAL int64
	for i := range 1500 {
		rec := storetest.BenchRecord("s1", "p1", fmt.Sprintf("d%05d", i), time.Date(2026, 3, 2, 9, 0, 0, i, time.UTC))
		rec.Input = []byte(fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 4000)))
		if err := s.CommitDecision(ctx, &trial.Commit{Record: rec}); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(s.path + "-wal"); err == nil {
			maxWAL = max(maxWAL, fi.Size())
		}
	}
	close(stop)
	readers.Wait()
	t.Logf("1500 decisions of 4 KB under constant reads: largest WAL %d bytes (limit %d), %d truncations", maxWAL, limit, s.Stats().WALTruncations)
	if maxWAL > 2*limit+256<<10 {
		t.Errorf("WAL reached %d bytes, over twice the limit %d plus one transaction", maxWAL, limit)
	}
	if s.Stats().WALTruncations == 0 {
		t.Error("no truncating checkpoint: the bound was never exercised")
	}
}
