package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/jitai/jitai/engine/trial"
)

// errAssign is what a failing assign returns.
var errAssign = errors.New("design has no rows for this stratum")

func (h *harness) testEnroll(t *testing.T) {
	t.Run("New", h.testEnrollNew)

	t.Run("SeqPerStratum", h.testEnrollSeqPerStratum)

	t.Run("Existing", h.testEnrollExisting)

	t.Run("AssignError", h.testEnrollAssignError)

	t.Run("Concurrent", h.testEnrollConcurrent)
}

func (h *harness) testEnrollNew(t *testing.T) {
	s := h.store(t)
	p := participant("s1", "p-a1", "site-a")
	var seqs []int64
	assign := assignBySeq(p)
	got, created, err := s.Enroll(ctx(t), p, func(seq int64) error {
		seqs = append(seqs, seq)
		return assign(seq)
	})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	if !created {
		t.Fatal("created = false, want true")
	}
	if !slices.Equal(seqs, []int64{0}) {
		t.Fatalf("assign called with %v, want [0]", seqs)
	}
	if got.Seq != 0 || got.Assignment["framing"] != "gain" {
		t.Fatalf("returned participant has seq %d and assignment %v, want seq 0 and the assignment", got.Seq, got.Assignment)
	}
	stored, err := s.Participant(ctx(t), "s1", "p-a1")
	if err != nil {
		t.Fatalf("Participant: %v", err)
	}
	sameJSON(t, "stored participant", stored, got)
}

func (h *harness) testEnrollSeqPerStratum(t *testing.T) {
	s := h.store(t)
	// Enrolments interleave strata and studies; each (study, stratum)
	// counts from 0 on its own.
	steps := []struct {
		study, id, stratum string
		seq                int64
	}{
		{"s1", "p1", "a", 0},
		{"s1", "p2", "b", 0},
		{"s1", "p3", "a", 1},
		{"s2", "p1", "a", 0}, // same id and stratum, other study
		{"s1", "p4", "a", 2},
		{"s1", "p5", "b", 1},
		{"s2", "p2", "a", 1},
		{"s1", "p6", "", 0}, // an unstratified enrolment is its own stratum
	}
	for _, st := range steps {
		p := participant(st.study, st.id, st.stratum)
		calls := 0
		assign := assignBySeq(p)
		got, created, err := s.Enroll(ctx(t), p, func(seq int64) error {
			calls++
			if seq != st.seq {
				t.Errorf("%s/%s: assign seq = %d, want %d", st.study, st.id, seq, st.seq)
			}
			return assign(seq)
		})
		if err != nil || !created || calls != 1 {
			t.Fatalf("%s/%s: Enroll = created %v, err %v, %d assign calls; want created, no error, 1 call", st.study, st.id, created, err, calls)
		}
		if got.Seq != st.seq || got.Row != int(st.seq%4) {
			t.Fatalf("%s/%s: seq %d row %d, want %d and %d", st.study, st.id, got.Seq, got.Row, st.seq, st.seq%4)
		}
	}
}

func (h *harness) testEnrollExisting(t *testing.T) {
	s := h.store(t)
	first := mustEnroll(t, s, participant("s1", "p1", "a"))
	again := participant("s1", "p1", "b")
	again.Timezone = "America/Chicago"
	got, created, err := s.Enroll(ctx(t), again, func(int64) error {
		t.Error("assign called for an existing participant")
		return nil
	})
	if err != nil {
		t.Fatalf("second Enroll: %v", err)
	}
	if created {
		t.Fatal("second Enroll: created = true")
	}
	sameJSON(t, "participant returned by second Enroll", got, first)
	// The stratum of the second request consumed nothing.
	p := mustEnroll(t, s, participant("s1", "p2", "b"))
	if p.Seq != 0 {
		t.Fatalf("first enrolment in stratum b has seq %d, want 0", p.Seq)
	}
}

func (h *harness) testEnrollAssignError(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	_, _, err := s.Enroll(ctx(t), participant("s1", "p2", "a"), func(seq int64) error {
		if seq != 1 {
			t.Errorf("assign seq = %d, want 1", seq)
		}
		return errAssign
	})
	wantErr(t, "Enroll with failing assign", err, errAssign)
	_, err = s.Participant(ctx(t), "s1", "p2")
	wantErr(t, "Participant after failed Enroll", err, trial.ErrNotFound)
	if _, err := s.Snapshot(ctx(t), "s1", "p2", ""); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Snapshot after failed Enroll: error = %v, want ErrNotFound", err)
	}
	// The sequence number was not consumed.
	p := mustEnroll(t, s, participant("s1", "p3", "a"))
	if p.Seq != 1 {
		t.Fatalf("enrolment after a failed one has seq %d, want 1", p.Seq)
	}
	// And the failed id can enrol later.
	p = mustEnroll(t, s, participant("s1", "p2", "a"))
	if p.Seq != 2 {
		t.Fatalf("retried enrolment has seq %d, want 2", p.Seq)
	}
}

func (h *harness) testEnrollConcurrent(t *testing.T) {
	s := h.store(t)
	const goroutines, ids = 50, 10
	var (
		mu      sync.Mutex
		created = map[string]int{}
		assigns = map[string][]int64{} // stratum -> seqs
		results = make([]*trial.Participant, goroutines)
		wg      sync.WaitGroup
		start   = make(chan struct{})
	)
	for g := range goroutines {
		wg.Go(func() {
			id := fmt.Sprintf("p%02d", g%ids)
			stratum := []string{"a", "b"}[g%ids%2]
			p := participant("s1", id, stratum)
			assign := assignBySeq(p)
			<-start
			got, ok, err := s.Enroll(ctx(t), p, func(seq int64) error {
				mu.Lock()
				assigns[stratum] = append(assigns[stratum], seq)
				mu.Unlock()
				return assign(seq)
			})
			if err != nil {
				t.Errorf("Enroll(%s): %v", id, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				created[id]++
			}
			results[g] = got
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range ids {
		if id := fmt.Sprintf("p%02d", i); created[id] != 1 {
			t.Errorf("%s created %d times, want once", id, created[id])
		}
	}
	for stratum, seqs := range assigns {
		slices.Sort(seqs)
		if want := []int64{0, 1, 2, 3, 4}; !slices.Equal(seqs, want) {
			t.Errorf("stratum %s: assign called with seqs %v, want %v", stratum, seqs, want)
		}
	}
	all, err := s.Participants(ctx(t), "s1")
	if err != nil {
		t.Fatalf("Participants: %v", err)
	}
	if len(all) != ids {
		t.Fatalf("Participants lists %d, want %d", len(all), ids)
	}
	seqs := map[string][]int64{}
	stored := map[string]*trial.Participant{}
	for _, p := range all {
		seqs[p.Stratum] = append(seqs[p.Stratum], p.Seq)
		stored[p.ID] = p
	}
	for stratum, got := range seqs {
		slices.Sort(got)
		if want := []int64{0, 1, 2, 3, 4}; !slices.Equal(got, want) {
			t.Errorf("stratum %s: stored seqs %v, want %v", stratum, got, want)
		}
	}
	// Every caller got the stored participant, winner or not.
	for _, got := range results {
		sameJSON(t, "participant returned to a concurrent Enroll", got, stored[got.ID])
	}
}

func (h *harness) testParticipants(t *testing.T) {
	s := h.store(t)
	order := []struct{ id, stratum string }{{"zeta", "a"}, {"alpha", "b"}, {"mu", "a"}, {"beta", "b"}, {"omega", "a"}}
	var want []*trial.Participant
	for _, o := range order {
		want = append(want, mustEnroll(t, s, participant("s1", o.id, o.stratum)))
	}
	mustEnroll(t, s, participant("s2", "alpha", "a"))

	t.Run("Participant", func(t *testing.T) {
		for _, w := range want {
			got, err := s.Participant(ctx(t), "s1", w.ID)
			if err != nil {
				t.Fatalf("Participant(%s): %v", w.ID, err)
			}
			sameJSON(t, "participant "+w.ID, got, w)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		for _, c := range []struct{ study, id string }{{"s1", "nobody"}, {"s2", "zeta"}, {"s3", "alpha"}} {
			_, err := s.Participant(ctx(t), c.study, c.id)
			wantErr(t, fmt.Sprintf("Participant(%s, %s)", c.study, c.id), err, trial.ErrNotFound)
		}
	})
	t.Run("EnrolmentOrder", func(t *testing.T) {
		got, err := s.Participants(ctx(t), "s1")
		if err != nil {
			t.Fatalf("Participants: %v", err)
		}
		sameJSON(t, "Participants(s1)", got, want)
	})
	t.Run("EmptyStudy", func(t *testing.T) {
		got, err := s.Participants(ctx(t), "s3")
		if err != nil {
			t.Fatalf("Participants of a study without enrolments: %v", err)
		}
		if len(got) != 0 {
			t.Fatalf("Participants of a study without enrolments lists %d", len(got))
		}
	})
}
