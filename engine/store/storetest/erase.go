package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

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
			c.Delivery = delivery("s1", p, id, at(10+i))
			if err := s.CommitDecision(ctx(t), c); err != nil {
				t.Fatal(err)
			}
		}
		seedClock(t, s, p)
	}
}

// seedClock gives p a device, a schedule entry and a failed delivery (of
// its second decision; the first one's is queued).
func seedClock(t *testing.T, s trial.Store, p string) {
	t.Helper()
	if err := s.PutDevice(ctx(t), "s1", p, device(p+"-phone", "fcm", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx(t), "s1", p, at(40), at(0)); err != nil {
		t.Fatal(err)
	}
	dl := mustDelivery(t, s, "s1", p, p+"-d2")
	dl.Status, dl.FailedAt, dl.Error = trial.DeliveryFailed, at(12), "apns: BadDeviceToken"
	if err := s.SaveDelivery(ctx(t), dl); err != nil {
		t.Fatal(err)
	}
}

// clockErased checks that p1's devices, schedule entry and deliveries are
// gone and p2's are kept.
func clockErased(t *testing.T, s trial.Store) {
	t.Helper()
	if ds := mustDevices(t, s, "s1", "p1"); len(ds) != 0 {
		t.Errorf("devices after erasure: %v", ds)
	}
	if _, err := s.ScheduleEntry(ctx(t), "s1", "p1"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("schedule entry after erasure: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"p1-d1", "p1-d2"} {
		if _, err := s.Delivery(ctx(t), "s1", "p1", id); !errors.Is(err, trial.ErrNotFound) {
			t.Errorf("delivery %s after erasure: %v, want ErrNotFound", id, err)
		}
	}
	dead, err := s.DeadLetters(ctx(t), "s1", 10)
	if err != nil || !slices.Equal(deliveryIDs(dead), []string{"dl-p2-d2"}) {
		t.Errorf("dead letters after erasure %v (%v), want p2's only", deliveryIDs(dead), err)
	}
	if len(mustDevices(t, s, "s1", "p2")) != 1 {
		t.Error("p2's device went with p1's erasure")
	}
	wantEntry(t, s, "s1", "p2", at(40), at(0))
	if ds := mustClaimDeliveries(t, s, at(1000), time.Minute, 10); !slices.Equal(deliveryIDs(ds), []string{"dl-p2-d1"}) {
		t.Errorf("claimable after erasure %v, want p2's queued delivery only", deliveryIDs(ds))
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
	// The clock fires no more points for them; their deliveries and
	// devices are kept.
	if _, err := s.ScheduleEntry(ctx(t), "s1", "p1"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("schedule entry after withdrawal: %v, want ErrNotFound", err)
	}
	wantEntry(t, s, "s1", "p2", at(40), at(0))
	mustDelivery(t, s, "s1", "p1", "p1-d1")
	if len(mustDevices(t, s, "s1", "p1")) != 1 {
		t.Error("devices went with withdrawal")
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
	clockErased(t, s)
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
