package redisstore

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine/store/storetest"
)

// TestTwoReplicas runs two stores over the same keys, as two engine
// replicas would: decisions, idempotent retries and event batches for the
// same participants from both, concurrently. No state change is lost, each
// idempotency key yields one record, and neither store's decode cache
// serves a state the other has replaced.
func TestTwoReplicas(t *testing.T) {
	t.Parallel()
	url := singleURL(t)
	a := openAt(t, url, Options{})
	defer a.Close()
	b := openAt(t, url, Options{KeyPrefix: a.opts.KeyPrefix})
	defer b.Close()
	stores := []*Store{a, b}
	ctx := t.Context()
	const participants, workers, perWorker = 4, 3, 30
	for i := range participants {
		enrol(t, a, "s1", fmt.Sprintf("p%d", i))
	}
	// The cache must not hide the other replica's write.
	if _, err := a.Snapshot(ctx, "s1", "p0", ""); err != nil {
		t.Fatal(err)
	}
	if err := b.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p0", "first", time.Now()), State: &trial.State{Version: 1, Decisions: []time.Time{time.Now().UTC()}}}); err != nil {
		t.Fatal(err)
	}
	if snap, err := a.Snapshot(ctx, "s1", "p0", ""); err != nil || snap.State.Version != 1 {
		t.Fatalf("replica a after replica b's commit: %+v, %v; want version 1", snap, err)
	}

	var (
		mu      sync.Mutex
		commits = map[string]int{"p0": 1}
		appends = map[string]int{}
		winners = map[string]int{} // idempotency key -> successful commits
		wg      sync.WaitGroup
	)
	for si, s := range stores {
		for w := range workers {
			wg.Go(func() {
				for i := range perWorker {
					p := fmt.Sprintf("p%d", (w+i)%participants)
					if i%5 == 4 {
						ev := trial.Event{ID: fmt.Sprintf("e-%d-%d-%d", si, w, i), Type: trial.EventEMA, Time: time.Now().UTC()}
						if _, err := s.AppendEvents(ctx, "s1", p, []trial.Event{ev}, nil); err != nil {
							t.Errorf("AppendEvents: %v", err)
							return
						}
						mu.Lock()
						appends[p]++
						mu.Unlock()
						continue
					}
					// Both replicas answer retries of the same request: one
					// key per (worker, i), shared across the two stores.
					key := fmt.Sprintf("k-%s-%d-%d", p, w, i)
					id := fmt.Sprintf("d-%d-%d-%d", si, w, i)
					for attempt := 0; ; attempt++ {
						snap, err := s.Snapshot(ctx, "s1", p, key)
						if err != nil {
							t.Errorf("Snapshot: %v", err)
							return
						}
						if snap.Replay != nil {
							break
						}
						st := *snap.State
						st.Version++
						st.Decisions = append(append([]time.Time(nil), snap.State.Decisions...), time.Now().UTC())
						err = s.CommitDecision(ctx, &trial.Commit{
							Record:      storetest.BenchRecord("s1", p, id, time.Now().UTC()),
							State:       &st,
							Idempotency: &trial.IdempotencyEntry{Key: key, DecisionID: id, Response: []byte(`{}`)},
						})
						if errors.Is(err, trial.ErrConflict) || errors.Is(err, trial.ErrIdempotencyReplay) {
							if attempt > 1000 {
								t.Errorf("still conflicting after %d attempts", attempt)
								return
							}
							continue
						}
						if err != nil {
							t.Errorf("CommitDecision: %v", err)
							return
						}
						mu.Lock()
						commits[p]++
						winners[key]++
						mu.Unlock()
						break
					}
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	total := 0
	for i := range participants {
		p := fmt.Sprintf("p%d", i)
		snap, err := b.Snapshot(ctx, "s1", p, "")
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(commits[p] + appends[p]); snap.State.Version != want {
			t.Errorf("%s: version %d, want %d", p, snap.State.Version, want)
		}
		if len(snap.State.Decisions) != commits[p] {
			t.Errorf("%s: %d decision times in the state, want %d", p, len(snap.State.Decisions), commits[p])
		}
		total += commits[p]
	}
	for key, n := range winners {
		if n != 1 {
			t.Errorf("key %s committed %d times", key, n)
		}
	}
	recs, err := a.ListDecisions(ctx, trial.DecisionQuery{Study: "s1"})
	if err != nil || len(recs) != total {
		t.Fatalf("listed %d records, %v; want %d", len(recs), err, total)
	}
}
