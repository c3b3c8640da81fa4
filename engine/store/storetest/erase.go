package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jitai/jitai/engine/trial"
)

// RunEraser tests a store's trial.Eraser: withdrawal, and erasure with
// records removed and with records anonymised. open returns a fresh store.
func RunEraser(t *testing.T, open func(t *testing.T) trial.Store) {
	t.Helper()
	t.Run("Withdraw", func(t *testing.T) { testWithdraw(t, open(t)) })
	t.Run("EraseRemove", func(t *testing.T) { testErase(t, open(t), false) })
	t.Run("EraseAnonymise", func(t *testing.T) { testErase(t, open(t), true) })
}

func eraser(t *testing.T, s trial.Store) trial.Eraser {
	t.Helper()
	er, ok := s.(trial.Eraser)
	if !ok {
		t.Fatalf("%T is not an trial.Eraser", s)
	}
	return er
}

// seed enrols p1 (and p2, who must be untouched) with events, two decisions
// each and an idempotency entry.
func seed(t *testing.T, s trial.Store) {
	t.Helper()
	for _, p := range []string{"p1", "p2"} {
		mustEnroll(t, s, participant("s1", p, "a"))
		if _, err := s.AppendEvents(ctx(t), "s1", p, []trial.Event{emaEvent(p+"-e1", at(1), 5), contextEvent(p+"-e2", at(2), "still")}, applyEvents); err != nil {
			t.Fatal(err)
		}
		for i, id := range []string{p + "-d1", p + "-d2"} {
			snap, err := s.Snapshot(ctx(t), "s1", p, "")
			if err != nil {
				t.Fatal(err)
			}
			c := &trial.Commit{Record: record("s1", p, id, at(10+i)), State: nextState(snap.State, id, at(10+i))}
			if i == 0 {
				c.Idempotency = idem("k-"+p, id, at(10))
			}
			if err := s.CommitDecision(ctx(t), c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testWithdraw(t *testing.T, s trial.Store) {
	defer s.Close()
	seed(t, s)
	er := eraser(t, s)
	if _, err := er.Withdraw(ctx(t), "s1", "nobody"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("Withdraw(nobody): %v, want ErrNotFound", err)
	}
	before, err := s.Snapshot(ctx(t), "s1", "p1", "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := er.Withdraw(ctx(t), "s1", "p1")
	if err != nil || p.Status != trial.StatusWithdrawn {
		t.Fatalf("Withdraw: %+v, %v", p, err)
	}
	snap, err := s.Snapshot(ctx(t), "s1", "p1", "")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Participant.Status != trial.StatusWithdrawn {
		t.Errorf("snapshot status %q after withdrawal", snap.Participant.Status)
	}
	if snap.State.Version <= before.State.Version {
		t.Errorf("state version %d not bumped (was %d): an in-flight decision would not notice", snap.State.Version, before.State.Version)
	}
	// A decision that read the state before the withdrawal conflicts.
	err = s.CommitDecision(ctx(t), &trial.Commit{Record: record("s1", "p1", "late", at(30)), State: nextState(before.State, "late", at(30))})
	if !errors.Is(err, trial.ErrConflict) {
		t.Errorf("commit after withdrawal with the old version: %v, want ErrConflict", err)
	}
	got, err := s.Participant(ctx(t), "s1", "p1")
	if err != nil || got.Status != trial.StatusWithdrawn {
		t.Errorf("Participant after withdrawal: %+v, %v", got, err)
	}
	// Data are kept.
	if evs, _ := s.Events(ctx(t), "s1", "p1"); len(evs) != 2 {
		t.Errorf("%d events after withdrawal, want 2", len(evs))
	}
	if recs := mustList(t, s, trial.DecisionQuery{Study: "s1", Participant: "p1", Limit: 10}); len(recs) != 2 {
		t.Errorf("%d records after withdrawal, want 2", len(recs))
	}
}

func testErase(t *testing.T, s trial.Store, anonymise bool) {
	defer s.Close()
	seed(t, s)
	er := eraser(t, s)
	if _, err := er.Erase(ctx(t), "s1", "nobody", anonymise); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("Erase(nobody): %v, want ErrNotFound", err)
	}
	res, err := er.Erase(ctx(t), "s1", "p1", anonymise)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if res.Records != 2 || res.Events != 2 || res.Anonymised != anonymise {
		t.Errorf("Erase result %+v", res)
	}
	if _, err := s.Participant(ctx(t), "s1", "p1"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("Participant after erasure: %v, want ErrNotFound", err)
	}
	if _, err := s.Snapshot(ctx(t), "s1", "p1", "k-p1"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("Snapshot after erasure: %v, want ErrNotFound", err)
	}
	if ps, _ := s.Participants(ctx(t), "s1"); len(ps) != 1 || ps[0].ID != "p2" {
		t.Errorf("participants after erasure: %v", ps)
	}
	if evs, _ := s.Events(ctx(t), "s1", "p1"); len(evs) != 0 {
		t.Errorf("%d events after erasure", len(evs))
	}
	if recs := mustList(t, s, trial.DecisionQuery{Study: "s1", Participant: "p1", Limit: 10}); len(recs) != 0 {
		t.Errorf("%d records still under the participant id", len(recs))
	}
	// Re-enrolling the same id finds no idempotency entry, state or events.
	mustEnroll(t, s, participant("s1", "p1", "a"))
	snap, err := s.Snapshot(ctx(t), "s1", "p1", "k-p1")
	if err != nil {
		t.Fatal(err)
	}
	if snap.Replay != nil {
		t.Error("the idempotency entry survived erasure")
	}
	if len(snap.State.EMA) != 0 || len(snap.State.Prompts) != 0 {
		t.Errorf("state survived erasure: %+v", snap.State)
	}
	all := mustList(t, s, trial.DecisionQuery{Study: "s1", Limit: 100})
	var ids []string
	surrogates := map[string]bool{}
	for _, r := range all {
		ids = append(ids, r.ID)
		if strings.HasPrefix(r.ID, "p1-") {
			if r.Participant == "p1" || string(r.Input) != "{}" || r.Tailoring != nil || r.IdempotencyKey != "" || r.InputHash != "" {
				t.Errorf("record %s not anonymised: participant %q input %s", r.ID, r.Participant, r.Input)
			}
			surrogates[r.Participant] = true
			one := mustDecision(t, s, "s1", r.ID)
			if one.Participant != r.Participant {
				t.Errorf("Decision(%s) participant %q, listing %q", r.ID, one.Participant, r.Participant)
			}
		}
	}
	want := []string{"p2-d1", "p2-d2"}
	if anonymise {
		want = []string{"p1-d1", "p1-d2", "p2-d1", "p2-d2"}
		if len(surrogates) != 1 {
			t.Errorf("%d surrogates, want one for all the participant's records", len(surrogates))
		}
	} else {
		for _, id := range []string{"p1-d1", "p1-d2"} {
			if _, err := s.Decision(ctx(t), "s1", id); !errors.Is(err, trial.ErrNotFound) {
				t.Errorf("Decision(%s) after erasure with remove: %v", id, err)
			}
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		t.Errorf("study records after erasure %v, want %v", ids, want)
	}
	// p2 is untouched.
	if evs, _ := s.Events(ctx(t), "s1", "p2"); len(evs) != 2 {
		t.Errorf("p2 has %d events, want 2", len(evs))
	}
	if snap, err := s.Snapshot(ctx(t), "s1", "p2", "k-p2"); err != nil || snap.Replay == nil {
		t.Errorf("p2's idempotency entry: %v", err)
	}
}
