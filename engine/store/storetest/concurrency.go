package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jitai/jitai/engine/trial"
)

func (h *harness) testConcurrency(t *testing.T) {
	s := h.store(t)
	const (
		study        = "s1"
		participants = 20
		deciders     = 8
		perDecider   = 50
		reporters    = 2
		perReporter  = 40
		maxAttempts  = 1000
	)
	pid := func(i int) string { return fmt.Sprintf("p%02d", i%participants) }
	for i := range participants {
		mustEnroll(t, s, participant(study, pid(i), []string{"a", "b"}[i%2]))
	}

	var (
		mu      sync.Mutex
		commits = map[string]int{} // participant -> committed decisions
		appends = map[string]int{} // participant -> successful AppendEvents with a new event
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	// Deciders read a snapshot and commit the next state, retrying on
	// conflict, as the engine does.
	for g := range deciders {
		wg.Go(func() {
			<-start
			for i := range perDecider {
				p := pid(g*7 + i*3)
				id := fmt.Sprintf("d-%d-%03d", g, i)
				rec := record(study, p, id, at(i))
				committed := false
				for range maxAttempts {
					snap, err := s.Snapshot(ctx(t), study, p, "")
					if err != nil {
						t.Errorf("Snapshot(%s): %v", p, err)
						return
					}
					err = s.CommitDecision(ctx(t), &trial.Commit{Record: rec, State: nextState(snap.State, id, at(i))})
					if errors.Is(err, trial.ErrConflict) {
						continue
					}
					if err != nil {
						t.Errorf("CommitDecision(%s): %v", id, err)
						return
					}
					committed = true
					break
				}
				if !committed {
					t.Errorf("CommitDecision(%s): still conflicting after %d attempts", id, maxAttempts)
					return
				}
				mu.Lock()
				commits[p]++
				mu.Unlock()
			}
		})
	}
	// Reporters send events to the same participants meanwhile; each new
	// event batch bumps the state version too.
	for r := range reporters {
		wg.Go(func() {
			<-start
			for i := range perReporter {
				p := pid(r*11 + i)
				ev := emaEvent(fmt.Sprintf("e-%d-%03d", r, i), at(i), i%11)
				n, err := s.AppendEvents(ctx(t), study, p, []trial.Event{ev}, applyEvents)
				if err != nil {
					t.Errorf("AppendEvents(%s): %v", p, err)
					return
				}
				if n != 1 {
					t.Errorf("AppendEvents(%s) = %d new, want 1", p, n)
				}
				mu.Lock()
				appends[p]++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	total := 0
	for i := range participants {
		p := pid(i)
		snap := mustSnapshot(t, s, study, p, "")
		if want := int64(commits[p] + appends[p]); snap.State.Version != want {
			t.Errorf("%s: state version %d, want %d (%d decisions, %d event batches)", p, snap.State.Version, want, commits[p], appends[p])
		}
		// No committed state was lost: each decision appended its time.
		if got := len(snap.State.Decisions); got != commits[p] {
			t.Errorf("%s: state holds %d decision times, want %d", p, got, commits[p])
		}
		if got := len(mustList(t, s, trial.DecisionQuery{Study: study, Participant: p})); got != commits[p] {
			t.Errorf("%s: %d records listed, want %d", p, got, commits[p])
		}
		total += commits[p]
	}
	if total != deciders*perDecider {
		t.Fatalf("%d decisions committed, want %d", total, deciders*perDecider)
	}
	seen := map[string]int{}
	for _, rec := range mustList(t, s, trial.DecisionQuery{Study: study}) {
		seen[rec.ID]++
	}
	if len(seen) != total {
		t.Errorf("%d distinct records listed, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("record %s listed %d times", id, n)
		}
	}
}

func (h *harness) testDurability(t *testing.T) {
	if h.reopen == nil {
		t.Skip("store is not durable across reopen")
	}
	s := h.store(t)
	var enrolled []*trial.Participant
	for _, c := range []struct{ id, stratum string }{{"p1", "a"}, {"p2", "a"}, {"p3", "b"}} {
		enrolled = append(enrolled, mustEnroll(t, s, participant("s1", c.id, c.stratum)))
	}
	events := []trial.Event{emaEvent("e1", at(1), 7), contextEvent("e2", at(2), "still")}
	if _, err := s.AppendEvents(ctx(t), "s1", "p1", events, applyEvents); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	snap := mustSnapshot(t, s, "s1", "p1", "")
	rec1 := record("s1", "p1", "d1", at(3))
	rec1.IdempotencyKey = "k1"
	entry := idem("k1", "d1", at(3))
	st := nextState(snap.State, "d1", at(3))
	mustCommit(t, s, &trial.Commit{Record: rec1, State: st, Idempotency: entry})
	rec2 := record("s1", "p2", "d2", at(4))
	mustCommit(t, s, &trial.Commit{Record: rec2})

	h.reopenStore(t, s)

	got, err := s.Participants(ctx(t), "s1")
	if err != nil {
		t.Fatalf("Participants after reopen: %v", err)
	}
	sameJSON(t, "participants after reopen", got, enrolled)
	after := mustSnapshot(t, s, "s1", "p1", "k1")
	sameJSON(t, "state after reopen", after.State, st)
	if after.State.Version != 2 {
		t.Fatalf("version after reopen %d, want 2", after.State.Version)
	}
	sameJSON(t, "replay after reopen", after.Replay, entry)
	evs, err := s.Events(ctx(t), "s1", "p1")
	if err != nil {
		t.Fatalf("Events after reopen: %v", err)
	}
	sameJSON(t, "events after reopen", evs, events)
	sameJSON(t, "record after reopen", mustDecision(t, s, "s1", "d1"), rec1)
	sameJSON(t, "listing after reopen", mustList(t, s, trial.DecisionQuery{Study: "s1"}), []*trial.Record{rec1, rec2})

	// The counters, event ids, versions and keys survived too.
	if p := mustEnroll(t, s, participant("s1", "p4", "a")); p.Seq != 2 {
		t.Fatalf("enrolment after reopen has seq %d, want 2", p.Seq)
	}
	if n, err := s.AppendEvents(ctx(t), "s1", "p1", events, applyEvents); err != nil || n != 0 {
		t.Fatalf("resending events after reopen = %d, %v; want 0 new", n, err)
	}
	stale := nextState(snap.State, "d3", at(5))
	err = s.CommitDecision(ctx(t), &trial.Commit{Record: record("s1", "p1", "d3", at(5)), State: stale})
	wantErr(t, "commit with a stale version after reopen", err, trial.ErrConflict)
	err = s.CommitDecision(ctx(t), &trial.Commit{Record: record("s1", "p1", "d4", at(5)), Idempotency: idem("k1", "d4", at(5))})
	wantErr(t, "commit with a used key after reopen", err, trial.ErrIdempotencyReplay)
}
