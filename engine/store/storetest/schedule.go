package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// mustEntry reads a schedule entry and fails the test on error.
func mustEntry(t *testing.T, s trial.Clock, study, participant string) *trial.Due {
	t.Helper()
	e, err := s.ScheduleEntry(ctx(t), study, participant)
	if err != nil {
		t.Fatalf("ScheduleEntry(%s/%s): %v", study, participant, err)
	}
	return e
}

// wantEntry fails the test unless the stored entry has at and from (UTC,
// to the nanosecond).
func wantEntry(t *testing.T, s trial.Clock, study, participant string, at, from time.Time) *trial.Due {
	t.Helper()
	e := mustEntry(t, s, study, participant)
	if e.Study != study || e.Participant != participant || !e.At.Equal(at) || !e.From.Equal(from) || e.At.Location() != time.UTC {
		t.Fatalf("entry %s/%s = %+v, want At %v From %v", study, participant, e, at, from)
	}
	return e
}

// mustClaim claims due entries and fails the test on error.
func mustClaim(t *testing.T, s trial.Clock, now time.Time, lease time.Duration, limit int) []trial.Due {
	t.Helper()
	ds, err := s.ClaimDue(ctx(t), now, lease, limit)
	if err != nil {
		t.Fatalf("ClaimDue(%v): %v", now, err)
	}
	return ds
}

func dueNames(ds []trial.Due) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Study + "/" + d.Participant
	}
	return out
}

func (h *harness) testSchedule(t *testing.T) {
	t.Run("Touch", h.testScheduleTouch)
	t.Run("Claim", h.testScheduleClaim)
	t.Run("Complete", h.testScheduleComplete)
	t.Run("CompleteTouched", h.testScheduleCompleteTouched)
	t.Run("Unschedule", h.testScheduleUnschedule)
	t.Run("ClaimExclusive", h.testScheduleClaimExclusive)
}

func (h *harness) testScheduleTouch(t *testing.T) {
	s := h.store(t)
	if _, err := s.ScheduleEntry(ctx(t), "s1", "p1"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("ScheduleEntry of an unscheduled participant: %v, want ErrNotFound", err)
	}
	if err := s.Touch(ctx(t), "s1", "p1", at(10), at(0)); err != nil {
		t.Fatal(err)
	}
	if e := wantEntry(t, s, "s1", "p1", at(10), at(0)); !e.Lease.IsZero() {
		t.Errorf("unclaimed entry has a lease: %+v", e)
	}
	// Later: nothing changes.
	if err := s.Touch(ctx(t), "s1", "p1", at(20), at(5)); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, s, "s1", "p1", at(10), at(0))
	// Earlier: At is lowered, From is kept.
	if err := s.Touch(ctx(t), "s1", "p1", at(4), at(3)); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, s, "s1", "p1", at(4), at(0))
	// Another study's entry for the same participant id is its own.
	if err := s.Touch(ctx(t), "s2", "p1", at(30), at(1)); err != nil {
		t.Fatal(err)
	}
	wantEntry(t, s, "s2", "p1", at(30), at(1))
	wantEntry(t, s, "s1", "p1", at(4), at(0))
}

func (h *harness) testScheduleClaim(t *testing.T) {
	s := h.store(t)
	for _, e := range []struct {
		study, p string
		at       int
	}{{"s1", "p1", 5}, {"s2", "p2", 8}, {"s1", "p3", 30}, {"s1", "p4", 7}} {
		if err := s.Touch(ctx(t), e.study, e.p, at(e.at), at(0)); err != nil {
			t.Fatal(err)
		}
	}
	if ds := mustClaim(t, s, at(4), time.Minute, 10); len(ds) != 0 {
		t.Fatalf("claimed %v before anything was due", dueNames(ds))
	}
	now, lease := at(10), 90*time.Second
	ds := mustClaim(t, s, now, lease, 2)
	if len(ds) != 2 {
		t.Fatalf("claimed %v with limit 2", dueNames(ds))
	}
	ds = append(ds, mustClaim(t, s, now, lease, 10)...)
	// In At order as far as the store can: sorted here.
	slices.SortFunc(ds, func(a, b trial.Due) int { return a.At.Compare(b.At) })
	if got := dueNames(ds); !slices.Equal(got, []string{"s1/p1", "s1/p4", "s2/p2"}) {
		t.Fatalf("claimed %v in all, want s1/p1 s1/p4 s2/p2 (every study, not s1/p3)", got)
	}
	for i, want := range []time.Time{at(5), at(7), at(8)} {
		d := ds[i]
		if !d.At.Equal(want) || !d.Lease.Equal(now.Add(lease)) || !d.From.Equal(at(0)) {
			t.Errorf("claimed %+v, want At %v (as it was), Lease %v", d, want, now.Add(lease))
		}
		e := mustEntry(t, s, d.Study, d.Participant)
		if !e.At.Equal(now.Add(lease)) || !e.Lease.Equal(now.Add(lease)) {
			t.Errorf("stored entry after the claim %+v, want At = Lease = %v", e, now.Add(lease))
		}
	}
	// Claimed entries are not claimed again during the lease...
	if ds := mustClaim(t, s, now.Add(lease-time.Millisecond), lease, 10); len(ds) != 0 {
		t.Fatalf("claimed %v again within the lease", dueNames(ds))
	}
	// ...and are claimable again when it ends (an engine died holding them).
	later := now.Add(lease)
	again := mustClaim(t, s, later, time.Minute, 10)
	slices.SortFunc(again, func(a, b trial.Due) int { return cmp.Compare(a.Study+"/"+a.Participant, b.Study+"/"+b.Participant) })
	if got := dueNames(again); !slices.Equal(got, []string{"s1/p1", "s1/p4", "s2/p2"}) {
		t.Fatalf("after the lease claimed %v", got)
	}
	if !again[0].At.Equal(now.Add(lease)) || !again[0].Lease.Equal(later.Add(time.Minute)) {
		t.Errorf("reclaimed %+v", again[0])
	}
}

func (h *harness) testScheduleComplete(t *testing.T) {
	s := h.store(t)
	for _, p := range []string{"p1", "p2"} {
		if err := s.Touch(ctx(t), "s1", p, at(5), at(0)); err != nil {
			t.Fatal(err)
		}
	}
	ds := mustClaim(t, s, at(10), time.Minute, 10)
	if len(ds) != 2 {
		t.Fatalf("claimed %v", dueNames(ds))
	}
	byP := map[string]trial.Due{ds[0].Participant: ds[0], ds[1].Participant: ds[1]}
	if err := s.Complete(ctx(t), byP["p1"], at(9), at(40)); err != nil {
		t.Fatal(err)
	}
	if e := wantEntry(t, s, "s1", "p1", at(40), at(9)); !e.Lease.IsZero() {
		t.Errorf("completed entry keeps a lease: %+v", e)
	}
	// No more points: the entry goes.
	if err := s.Complete(ctx(t), byP["p2"], at(9), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ScheduleEntry(ctx(t), "s1", "p2"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("entry completed with no next point: %v, want ErrNotFound", err)
	}
	if ds := mustClaim(t, s, at(39), time.Minute, 10); len(ds) != 0 {
		t.Errorf("claimed %v before the next point", dueNames(ds))
	}
	if ds := mustClaim(t, s, at(40), time.Minute, 10); len(ds) != 1 || ds[0].Participant != "p1" || !ds[0].From.Equal(at(9)) {
		t.Errorf("at the next point claimed %+v, want p1 from %v", ds, at(9))
	}
}

func (h *harness) testScheduleCompleteTouched(t *testing.T) {
	s := h.store(t)
	for _, p := range []string{"p1", "p2", "p3"} {
		if err := s.Touch(ctx(t), "s1", p, at(5), at(0)); err != nil {
			t.Fatal(err)
		}
	}
	ds := mustClaim(t, s, at(10), time.Hour, 10)
	if len(ds) != 3 {
		t.Fatalf("claimed %v", dueNames(ds))
	}
	byP := map[string]trial.Due{}
	for _, d := range ds {
		byP[d.Participant] = d
	}
	// Touched while claimed (an event opened a point): the touch wins over a
	// later next, a earlier next wins over the touch, and a zero next does
	// not remove the entry.
	for _, p := range []string{"p1", "p2", "p3"} {
		if err := s.Touch(ctx(t), "s1", p, at(20), at(19)); err != nil {
			t.Fatal(err)
		}
		wantEntry(t, s, "s1", p, at(20), at(0))
	}
	for p, next := range map[string]time.Time{"p1": at(40), "p2": at(15), "p3": {}} {
		if err := s.Complete(ctx(t), byP[p], at(9), next); err != nil {
			t.Fatal(err)
		}
	}
	wantEntry(t, s, "s1", "p1", at(20), at(9))
	wantEntry(t, s, "s1", "p2", at(15), at(9))
	wantEntry(t, s, "s1", "p3", at(20), at(9))
}

func (h *harness) testScheduleUnschedule(t *testing.T) {
	s := h.store(t)
	if err := s.Unschedule(ctx(t), "s1", "nobody"); err != nil {
		t.Errorf("Unschedule of an unscheduled participant: %v", err)
	}
	for _, p := range []string{"p1", "p2"} {
		if err := s.Touch(ctx(t), "s1", p, at(5), at(0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Unschedule(ctx(t), "s1", "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ScheduleEntry(ctx(t), "s1", "p1"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("entry after Unschedule: %v, want ErrNotFound", err)
	}
	ds := mustClaim(t, s, at(10), time.Minute, 10)
	if got := dueNames(ds); !slices.Equal(got, []string{"s1/p2"}) {
		t.Fatalf("claimed %v, want s1/p2", got)
	}
	// Unscheduled while claimed: completing the claim does not bring the
	// entry back.
	if err := s.Unschedule(ctx(t), "s1", "p2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx(t), ds[0], at(9), at(40)); err != nil {
		t.Fatalf("Complete of an unscheduled entry: %v", err)
	}
	if _, err := s.ScheduleEntry(ctx(t), "s1", "p2"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("entry after Unschedule and Complete: %v, want ErrNotFound", err)
	}
}

// testScheduleClaimExclusive: claimers racing over many due entries claim
// each exactly once within a lease, and all of them again once it ends.
func (h *harness) testScheduleClaimExclusive(t *testing.T) {
	s := h.store(t)
	const (
		entries  = 2000
		claimers = 8
		limit    = 37
	)
	name := func(i int) (string, string) { return fmt.Sprintf("s%d", i%3), fmt.Sprintf("p%04d", i) }
	for i := range entries {
		study, p := name(i)
		if err := s.Touch(ctx(t), study, p, at(i%50), at(0)); err != nil {
			t.Fatal(err)
		}
	}
	now, lease := at(60), time.Hour
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
	)
	for range claimers {
		wg.Go(func() {
			for {
				ds, err := s.ClaimDue(ctx(t), now, lease, limit)
				if err != nil {
					t.Errorf("ClaimDue: %v", err)
					return
				}
				if len(ds) == 0 {
					return
				}
				if len(ds) > limit {
					t.Errorf("claimed %d entries with limit %d", len(ds), limit)
				}
				mu.Lock()
				for _, n := range dueNames(ds) {
					claimed[n]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != entries {
		t.Errorf("%d entries claimed, want %d", len(claimed), entries)
	}
	for n, c := range claimed {
		if c != 1 {
			t.Errorf("%s claimed %d times within one lease", n, c)
		}
	}
	// When the lease ends, every entry is claimable again.
	seen := map[string]bool{}
	for {
		ds := mustClaim(t, s, now.Add(lease), lease, 500)
		if len(ds) == 0 {
			break
		}
		for _, n := range dueNames(ds) {
			if seen[n] {
				t.Fatalf("%s claimed twice after the lease", n)
			}
			seen[n] = true
		}
	}
	if len(seen) != entries {
		t.Errorf("%d entries claimable after the lease, want %d", len(seen), entries)
	}
}
