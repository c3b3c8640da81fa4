package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// delivery returns the delivery log of decision id of participant p,
// queued for next.
func delivery(study, p, id string, next time.Time) *trial.Delivery {
	return &trial.Delivery{
		ID:            "dl-" + id,
		Study:         study,
		Participant:   p,
		DecisionID:    id,
		DecisionPoint: "evening",
		Status:        trial.DeliveryQueued,
		NextAttempt:   next,
		ScheduledAt:   next.Add(-2 * time.Second),
		DecidedAt:     next.Add(-time.Second),
		QueuedAt:      next.Add(-time.Second + 17*time.Microsecond),
		ExpiresAt:     next.Add(time.Hour),
	}
}

// commitWithDelivery commits decision id of p (enrolled in dl.Study) at
// at(i) with the next state and the delivery dl.
func commitWithDelivery(t *testing.T, s trial.Store, p, id string, i int, dl *trial.Delivery) error {
	t.Helper()
	snap := mustSnapshot(t, s, dl.Study, p, "")
	return s.CommitDecision(ctx(t), &trial.Commit{Record: record(dl.Study, p, id, at(i)), State: nextState(snap.State, id, at(i)), Delivery: dl})
}

// mustDelivery reads a delivery log and fails the test on error.
func mustDelivery(t *testing.T, s trial.Clock, study, p, id string) *trial.Delivery {
	t.Helper()
	d, err := s.Delivery(ctx(t), study, p, id)
	if err != nil {
		t.Fatalf("Delivery(%s/%s/%s): %v", study, p, id, err)
	}
	return d
}

// mustClaimDeliveries claims deliveries and fails the test on error.
func mustClaimDeliveries(t *testing.T, s trial.Clock, now time.Time, lease time.Duration, limit int) []*trial.Delivery {
	t.Helper()
	ds, err := s.ClaimDeliveries(ctx(t), now, lease, limit)
	if err != nil {
		t.Fatalf("ClaimDeliveries(%v): %v", now, err)
	}
	return ds
}

func deliveryIDs(ds []*trial.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

func (h *harness) testOutbox(t *testing.T) {
	t.Run("RoundTrip", h.testOutboxRoundTrip)
	t.Run("RefusedCommit", h.testOutboxRefusedCommit)
	t.Run("Terminal", h.testOutboxTerminal)
	t.Run("DeadLetters", h.testOutboxDeadLetters)
	t.Run("Requeue", h.testOutboxRequeue)
	t.Run("ClaimExclusive", h.testOutboxClaimExclusive)
}

func (h *harness) testOutboxRoundTrip(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	if _, err := s.Delivery(ctx(t), "s1", "p1", "d1"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Delivery before the commit: %v, want ErrNotFound", err)
	}
	dl := delivery("s1", "p1", "d1", at(10))
	if err := commitWithDelivery(t, s, "p1", "d1", 10, dl); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "stored delivery", mustDelivery(t, s, "s1", "p1", "d1"), dl)
	if ds := mustClaimDeliveries(t, s, at(9), time.Minute, 10); len(ds) != 0 {
		t.Fatalf("claimed %v before it was due", deliveryIDs(ds))
	}
	now, lease := at(11), 30*time.Second
	ds := mustClaimDeliveries(t, s, now, lease, 10)
	if len(ds) != 1 {
		t.Fatalf("claimed %v, want dl-d1", deliveryIDs(ds))
	}
	sameJSON(t, "claimed delivery (as stored before the claim)", ds[0], dl)
	if got := mustDelivery(t, s, "s1", "p1", "d1"); !got.NextAttempt.Equal(now.Add(lease)) {
		t.Errorf("stored NextAttempt after the claim %v, want now+lease %v", got.NextAttempt, now.Add(lease))
	}
	if ds := mustClaimDeliveries(t, s, now.Add(lease-time.Millisecond), lease, 10); len(ds) != 0 {
		t.Fatalf("claimed %v again within the lease", deliveryIDs(ds))
	}
	// A failed attempt: due again at its NextAttempt.
	retry := *dl
	retry.Attempts, retry.NextAttempt, retry.Error = 1, at(20), "webhook: 503"
	if err := s.SaveDelivery(ctx(t), &retry); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "saved delivery", mustDelivery(t, s, "s1", "p1", "d1"), &retry)
	if ds := mustClaimDeliveries(t, s, at(19), lease, 10); len(ds) != 0 {
		t.Fatalf("claimed %v before the retry was due", deliveryIDs(ds))
	}
	ds = mustClaimDeliveries(t, s, at(20), lease, 10)
	if len(ds) != 1 {
		t.Fatalf("claimed %v at the retry, want dl-d1", deliveryIDs(ds))
	}
	sameJSON(t, "claimed retry", ds[0], &retry)
	// Sent: it leaves the outbox and stays as the log.
	sent := retry
	sent.Status, sent.Attempts, sent.SentAt, sent.Channel, sent.MessageID, sent.Error = trial.DeliverySent, 2, at(21), "webhook", "msg-1", ""
	if err := s.SaveDelivery(ctx(t), &sent); err != nil {
		t.Fatal(err)
	}
	if ds := mustClaimDeliveries(t, s, at(1000), lease, 10); len(ds) != 0 {
		t.Fatalf("claimed a sent delivery: %v", deliveryIDs(ds))
	}
	sameJSON(t, "sent delivery", mustDelivery(t, s, "s1", "p1", "d1"), &sent)
	// Saving a delivery the store does not hold (its participant was
	// erased meanwhile) does not create it.
	ghost := delivery("s1", "p1", "ghost", at(10))
	if err := s.SaveDelivery(ctx(t), ghost); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("SaveDelivery of an unknown delivery: %v, want ErrNotFound", err)
	}
	if _, err := s.Delivery(ctx(t), "s1", "p1", "ghost"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("Delivery after a refused save: %v, want ErrNotFound", err)
	}
}

// testOutboxRefusedCommit: a refused commit stores nothing of its
// delivery; and a claimed delivery that is never saved is claimable again
// when its lease ends.
func (h *harness) testOutboxRefusedCommit(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	snap := mustSnapshot(t, s, "s1", "p1", "")
	first := delivery("s1", "p1", "d1", at(10))
	mustCommit(t, s, &trial.Commit{Record: record("s1", "p1", "d1", at(10)), State: nextState(snap.State, "d1", at(10)), Idempotency: idem("k1", "d1", at(10)), Delivery: first})
	// A stale version and a replayed idempotency key: neither stores its
	// delivery.
	stale := &trial.Commit{Record: record("s1", "p1", "d2", at(11)), State: nextState(snap.State, "d2", at(11)), Delivery: delivery("s1", "p1", "d2", at(11))}
	wantErr(t, "commit with a stale version", s.CommitDecision(ctx(t), stale), trial.ErrConflict)
	cur := mustSnapshot(t, s, "s1", "p1", "").State
	replay := &trial.Commit{Record: record("s1", "p1", "d3", at(12)), State: nextState(cur, "d3", at(12)), Idempotency: idem("k1", "d3", at(12)), Delivery: delivery("s1", "p1", "d3", at(12))}
	wantErr(t, "commit with a used key", s.CommitDecision(ctx(t), replay), trial.ErrIdempotencyReplay)
	for _, id := range []string{"d2", "d3"} {
		if _, err := s.Delivery(ctx(t), "s1", "p1", id); !errors.Is(err, trial.ErrNotFound) {
			t.Errorf("delivery of the refused commit %s: %v, want ErrNotFound", id, err)
		}
	}
	now, lease := at(20), time.Minute
	ds := mustClaimDeliveries(t, s, now, lease, 10)
	if got := deliveryIDs(ds); !slices.Equal(got, []string{"dl-d1"}) {
		t.Fatalf("claimed %v, want only dl-d1", got)
	}
	// The claimer died: the delivery is claimable again when the lease ends.
	ds = mustClaimDeliveries(t, s, now.Add(lease), lease, 10)
	if got := deliveryIDs(ds); !slices.Equal(got, []string{"dl-d1"}) {
		t.Fatalf("after the lease claimed %v, want dl-d1", got)
	}
	if !ds[0].NextAttempt.Equal(now.Add(lease)) {
		t.Errorf("reclaimed delivery's NextAttempt %v, want the first lease's end %v", ds[0].NextAttempt, now.Add(lease))
	}
}

func (h *harness) testOutboxTerminal(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	dl := delivery("s1", "p1", "d1", at(10))
	dl.Status, dl.NextAttempt, dl.QueuedAt = trial.DeliveryAnswered, time.Time{}, time.Time{}
	if err := commitWithDelivery(t, s, "p1", "d1", 10, dl); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "answered delivery", mustDelivery(t, s, "s1", "p1", "d1"), dl)
	if ds := mustClaimDeliveries(t, s, at(1000), time.Minute, 10); len(ds) != 0 {
		t.Fatalf("claimed an answered delivery: %v", deliveryIDs(ds))
	}
	if err := s.Requeue(ctx(t), "s1", "p1", "d1"); err != nil {
		t.Fatalf("Requeue of a terminal delivery: %v", err)
	}
	// Queued without a NextAttempt: due at once.
	again := mustDelivery(t, s, "s1", "p1", "d1")
	again.Status, again.NextAttempt = trial.DeliveryQueued, time.Time{}
	if err := s.SaveDelivery(ctx(t), again); err != nil {
		t.Fatal(err)
	}
	ds := mustClaimDeliveries(t, s, at(0), time.Minute, 10)
	if len(ds) != 1 {
		t.Fatalf("claimed %v, want the delivery queued without a NextAttempt", deliveryIDs(ds))
	}
	sameJSON(t, "claimed delivery queued without a NextAttempt", ds[0], again)
	// Failed without a FailedAt: a dead letter all the same.
	dl.Status, dl.FailedAt = trial.DeliveryFailed, time.Time{}
	if err := s.SaveDelivery(ctx(t), dl); err != nil {
		t.Fatal(err)
	}
	if dead, err := s.DeadLetters(ctx(t), "s1", 0); err != nil || !slices.Equal(deliveryIDs(dead), []string{dl.ID}) {
		t.Errorf("dead letters %v (%v), want %s", deliveryIDs(dead), err, dl.ID)
	}
	if ds := mustClaimDeliveries(t, s, at(1000), time.Minute, 10); len(ds) != 0 {
		t.Fatalf("claimed an answered delivery after Requeue: %v", deliveryIDs(ds))
	}
}

func (h *harness) testOutboxDeadLetters(t *testing.T) {
	s := h.store(t)
	for _, p := range []string{"p1", "p2"} {
		mustEnroll(t, s, participant("s1", p, "a"))
		mustEnroll(t, s, participant("s2", p, "a"))
	}
	type dead struct {
		study, p, id, status string
		failed               int
	}
	all := []dead{
		{"s1", "p1", "b", trial.DeliveryFailed, 30},
		{"s1", "p2", "c", trial.DeliveryExpired, 20},
		{"s1", "p1", "a", trial.DeliveryFailed, 30},
		{"s1", "p2", "sent", trial.DeliverySent, 0},
		{"s1", "p2", "queued", trial.DeliveryQueued, 0},
		{"s2", "p1", "other", trial.DeliveryFailed, 10},
	}
	for i, d := range all {
		dl := delivery(d.study, d.p, d.id, at(5))
		if err := commitWithDelivery(t, s, d.p, d.id, i, dl); err != nil {
			t.Fatal(err)
		}
		if d.status == trial.DeliveryQueued {
			continue
		}
		dl.Status, dl.Attempts = d.status, 3
		if d.failed > 0 {
			dl.FailedAt, dl.Error = at(d.failed), "fcm: UNREGISTERED"
		} else {
			dl.SentAt = at(6)
		}
		if err := s.SaveDelivery(ctx(t), dl); err != nil {
			t.Fatal(err)
		}
	}
	list := func(study string, limit int) []string {
		t.Helper()
		ds, err := s.DeadLetters(ctx(t), study, limit)
		if err != nil {
			t.Fatalf("DeadLetters(%s): %v", study, err)
		}
		for _, d := range ds {
			if d.Study != study || d.FailedAt.IsZero() {
				t.Errorf("dead letter %+v", d)
			}
		}
		return deliveryIDs(ds)
	}
	if got := list("s1", 10); !slices.Equal(got, []string{"dl-c", "dl-a", "dl-b"}) {
		t.Errorf("dead letters of s1 %v, want dl-c dl-a dl-b (by failure time, then id)", got)
	}
	if got := list("s1", 2); !slices.Equal(got, []string{"dl-c", "dl-a"}) {
		t.Errorf("first two dead letters of s1 %v, want dl-c dl-a", got)
	}
	if got := list("s2", 10); !slices.Equal(got, []string{"dl-other"}) {
		t.Errorf("dead letters of s2 %v", got)
	}
	if got := list("s3", 10); len(got) != 0 {
		t.Errorf("dead letters of an empty study %v", got)
	}
	if ds := mustClaimDeliveries(t, s, at(1000), time.Minute, 10); !slices.Equal(deliveryIDs(ds), []string{"dl-queued"}) {
		t.Errorf("claimable %v, want only dl-queued", deliveryIDs(ds))
	}
}

func (h *harness) testOutboxRequeue(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	if err := s.Requeue(ctx(t), "s1", "p1", "nothing"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("Requeue of an unknown delivery: %v, want ErrNotFound", err)
	}
	if err := commitWithDelivery(t, s, "p1", "d1", 10, delivery("s1", "p1", "d1", at(10))); err != nil {
		t.Fatal(err)
	}
	// Queued and in the outbox: Requeue changes nothing, not even a claim's
	// lease.
	if err := s.Requeue(ctx(t), "s1", "p1", "d1"); err != nil {
		t.Fatal(err)
	}
	now, lease := at(11), time.Minute
	if ds := mustClaimDeliveries(t, s, now, lease, 10); len(ds) != 1 {
		t.Fatalf("claimed %v, want dl-d1 once", deliveryIDs(ds))
	}
	if err := s.Requeue(ctx(t), "s1", "p1", "d1"); err != nil {
		t.Fatal(err)
	}
	if ds := mustClaimDeliveries(t, s, now, lease, 10); len(ds) != 0 {
		t.Fatalf("Requeue of a claimed delivery made it claimable within the lease: %v", deliveryIDs(ds))
	}
	if ds := mustClaimDeliveries(t, s, now.Add(lease), lease, 10); len(ds) != 1 {
		t.Fatalf("after the lease claimed %v, want dl-d1", deliveryIDs(ds))
	}
}

// testOutboxClaimExclusive: delivery workers racing over many queued
// deliveries of several studies claim each exactly once within a lease.
func (h *harness) testOutboxClaimExclusive(t *testing.T) {
	s := h.store(t)
	const (
		participants = 24
		perP         = 10
		claimers     = 8
		limit        = 7
	)
	for i := range participants {
		study, p := fmt.Sprintf("s%d", i%3), fmt.Sprintf("p%02d", i)
		mustEnroll(t, s, participant(study, p, "a"))
		for j := range perP {
			id := fmt.Sprintf("%s-d%d", p, j)
			if err := commitWithDelivery(t, s, p, id, j, delivery(study, p, id, at(j))); err != nil {
				t.Fatal(err)
			}
		}
	}
	now, lease := at(100), time.Hour
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
	)
	for range claimers {
		wg.Go(func() {
			for {
				ds, err := s.ClaimDeliveries(ctx(t), now, lease, limit)
				if err != nil {
					t.Errorf("ClaimDeliveries: %v", err)
					return
				}
				if len(ds) == 0 {
					return
				}
				if len(ds) > limit {
					t.Errorf("claimed %d deliveries with limit %d", len(ds), limit)
				}
				mu.Lock()
				for _, id := range deliveryIDs(ds) {
					claimed[id]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != participants*perP {
		t.Errorf("%d deliveries claimed, want %d", len(claimed), participants*perP)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Errorf("%s claimed %d times within one lease", id, c)
		}
	}
}
