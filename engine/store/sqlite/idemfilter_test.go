package sqlite

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/store/storetest"
)

// The filter never forgets a key, also across its growth, and rarely
// claims one it has not seen.
func TestIdemFilterLevels(t *testing.T) {
	f := newIdemFilter()
	if !f.mayContain("s1", "p1", "k") {
		t.Fatal("a filter that is not loaded must send every lookup to the database")
	}
	f.ready.Store(true)
	const n = 5 * bloomFirstKeys // three levels
	for i := range n {
		f.add(f.hashString("s1", fmt.Sprintf("p%d", i%100), fmt.Sprintf("k%d", i)))
	}
	if got := len(*f.levels.Load()); got != 3 {
		t.Errorf("%d keys in %d levels, want 3", n, got)
	}
	for i := range n {
		if !f.mayContain("s1", fmt.Sprintf("p%d", i%100), fmt.Sprintf("k%d", i)) {
			t.Fatalf("key %d was added but the filter says it is unused", i)
		}
	}
	fp := 0
	const fresh = 100000
	for i := range fresh {
		if f.mayContain("s1", fmt.Sprintf("p%d", i%100), fmt.Sprintf("fresh%d", i)) {
			fp++
		}
	}
	if rate := float64(fp) / fresh; rate > 0.01 {
		t.Errorf("false-positive rate %.4f, want under 1%%", rate)
	}
	if f.hash([]byte("s"), []byte("p"), []byte("k")) != f.hashString("s", "p", "k") {
		t.Error("the loader's hash differs from the lookup's")
	}
}

// waitLoaded waits until the store's idempotency filter answers.
func waitLoaded(t *testing.T, s *Store) {
	t.Helper()
	select {
	case <-s.idem.loaded:
	case <-time.After(time.Minute):
		t.Fatal("the idempotency keys did not load within a minute")
	}
	if !s.idem.ready.Load() {
		t.Fatal("the idempotency keys loaded but the filter is not ready")
	}
}

func commitWithKey(t *testing.T, s *Store, participant, decision, key string, version int64) {
	t.Helper()
	now := time.Now().UTC()
	err := s.CommitDecision(t.Context(), &trial.Commit{
		Record:      storetest.BenchRecord("s1", participant, decision, now),
		State:       storetest.BenchState(version, now),
		Idempotency: &trial.IdempotencyEntry{Key: key, RequestHash: "h-" + decision, DecisionID: decision, Response: []byte(`{"decision_id":"` + decision + `"}`), CreatedAt: now},
	})
	if err != nil {
		t.Fatalf("CommitDecision %s: %v", decision, err)
	}
}

// snapshotReplay reads the snapshot for key and returns the decision id it
// replays ("" for none) and whether the lookup was skipped.
func snapshotReplay(t *testing.T, s *Store, participant, key string) (string, bool) {
	t.Helper()
	before := s.Stats().IdempotencyQueriesSkipped
	snap, err := s.Snapshot(t.Context(), "s1", participant, key)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	skipped := s.Stats().IdempotencyQueriesSkipped > before
	if snap.Replay == nil {
		return "", skipped
	}
	return snap.Replay.DecisionID, skipped
}

// A fresh key is answered from memory; a used one, committed in this
// process or before a restart, is still replayed.
func TestIdempotencyFilter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jitai.db")
	s, err := Open(path, Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	enrol(t, s, "s1", "p1")
	commitWithKey(t, s, "p1", "d1", "k1", 1)
	waitLoaded(t, s)
	commitWithKey(t, s, "p1", "d2", "k2", 2) // after loading: added by the writer

	for _, c := range []struct {
		key, want   string
		wantSkipped bool
	}{{"k1", "d1", false}, {"k2", "d2", false}, {"k3", "", true}} {
		got, skipped := snapshotReplay(t, s, "p1", c.key)
		if got != c.want || skipped != c.wantSkipped {
			t.Errorf("key %s: replay %q, skipped %v; want %q, %v", c.key, got, skipped, c.want, c.wantSkipped)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Whether or not the keys have loaded yet, the used ones replay.
	if got, _ := snapshotReplay(t, s, "p1", "k1"); got != "d1" {
		t.Errorf("right after reopening: k1 replays %q, want d1", got)
	}
	waitLoaded(t, s)
	for _, c := range []struct {
		key, want   string
		wantSkipped bool
	}{{"k1", "d1", false}, {"k2", "d2", false}, {"k3", "", true}} {
		got, skipped := snapshotReplay(t, s, "p1", c.key)
		if got != c.want || skipped != c.wantSkipped {
			t.Errorf("after reopening, key %s: replay %q, skipped %v; want %q, %v", c.key, got, skipped, c.want, c.wantSkipped)
		}
	}
	// A duplicate commit is still refused by the database.
	err = s.CommitDecision(t.Context(), &trial.Commit{
		Record:      storetest.BenchRecord("s1", "p1", "d9", time.Now()),
		Idempotency: &trial.IdempotencyEntry{Key: "k1", RequestHash: "x", DecisionID: "d9"},
	})
	if !errors.Is(err, trial.ErrIdempotencyReplay) {
		t.Errorf("committing k1 again: %v, want ErrIdempotencyReplay", err)
	}
}

// After erasure the participant's keys are unused again, as before the
// filter: a re-enrolled participant gets fresh decisions for them.
func TestIdempotencyFilterAfterErasure(t *testing.T) {
	s := openTemp(t, Options{})
	waitLoaded(t, s)
	enrol(t, s, "s1", "p1")
	commitWithKey(t, s, "p1", "d1", "k1", 1)
	if _, err := s.Erase(t.Context(), "s1", "p1", false); err != nil {
		t.Fatal(err)
	}
	enrol(t, s, "s1", "p1")
	if got, _ := snapshotReplay(t, s, "p1", "k1"); got != "" {
		t.Fatalf("after erasure k1 replays %q, want nothing", got)
	}
	commitWithKey(t, s, "p1", "d2", "k1", 1)
	if got, _ := snapshotReplay(t, s, "p1", "k1"); got != "d2" {
		t.Fatalf("k1 committed again after erasure replays %q, want d2", got)
	}
}
