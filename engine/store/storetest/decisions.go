package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// mustDecision reads one record and fails the test on error.
func mustDecision(t *testing.T, s trial.Store, study, id string) *trial.Record {
	t.Helper()
	rec, err := s.Decision(ctx(t), study, id)
	if err != nil {
		t.Fatalf("Decision(%s, %s): %v", study, id, err)
	}
	return rec
}

// mustList lists records and fails the test on error.
func mustList(t *testing.T, s trial.Store, q trial.DecisionQuery) []*trial.Record {
	t.Helper()
	recs, err := s.ListDecisions(ctx(t), q)
	if err != nil {
		t.Fatalf("ListDecisions(%+v): %v", q, err)
	}
	return recs
}

// recordIDs lists the records' ids.
func recordIDs(recs []*trial.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func (h *harness) testCommitDecision(t *testing.T) {
	t.Run("StoresRecordAndState", h.testCommitDecisionStoresRecordAndState)

	t.Run("RecordVariants", h.testCommitDecisionRecordVariants)

	t.Run("Conflict", h.testCommitDecisionConflict)

	t.Run("UnknownParticipant", h.testCommitDecisionUnknownParticipant)

	t.Run("Idempotency", h.testCommitDecisionIdempotency)

	t.Run("NilState", h.testCommitDecisionNilState)

	t.Run("DecisionNotFound", h.testCommitDecisionDecisionNotFound)
}

func (h *harness) testCommitDecisionStoresRecordAndState(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	snap := mustSnapshot(t, s, "s1", "p1", "")
	rec := record("s1", "p1", "d1", at(10))
	st := nextState(snap.State, "d1", at(10))
	mustCommit(t, s, &trial.Commit{Record: rec, State: st})

	sameJSON(t, "stored record", mustDecision(t, s, "s1", "d1"), rec)
	sameJSON(t, "stored state", mustSnapshot(t, s, "s1", "p1", "").State, st)

	// A second decision builds on the first.
	st2 := nextState(st, "d2", at(20))
	mustCommit(t, s, &trial.Commit{Record: record("s1", "p1", "d2", at(20)), State: st2})
	got := mustSnapshot(t, s, "s1", "p1", "").State
	sameJSON(t, "state after second commit", got, st2)
	if got.Version != 2 {
		t.Fatalf("version %d, want 2", got.Version)
	}
}

func (h *harness) testCommitDecisionRecordVariants(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	unavailable := record("s1", "p1", "d-unavail", at(1))
	unavailable.Action, unavailable.Available, unavailable.Randomised = trial.ActionNone, false, false
	unavailable.UnavailableReasons = []string{"driving", "quiet_hours"}
	unavailable.Factors = []trial.FactorDraw{{Name: "prompt", Type: "within", Level: 0, Label: "off"}}
	unavailable.Candidates, unavailable.Option, unavailable.Reasons = nil, nil, nil
	safety := record("s1", "p1", "d-safety", at(2))
	safety.Action, safety.Randomised = trial.ActionSafety, false
	safety.SafetyReasons = []string{"phq9_item9_positive"}
	safety.Reasons = []string{"safety"}
	safety.Contraindicated = []string{"worry-time"}
	safety.Conditions = []string{"risk"}
	safety.Tailoring = map[string]any{"phq9_item9": 2.0, "nested": map[string]any{"a": []any{1.0, "b", nil}}}
	for _, rec := range []*trial.Record{unavailable, safety} {
		mustCommit(t, s, &trial.Commit{Record: rec})
		sameJSON(t, "record "+rec.ID, mustDecision(t, s, "s1", rec.ID), rec)
	}
}

func (h *harness) testCommitDecisionConflict(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	st1 := nextState(mustSnapshot(t, s, "s1", "p1", "").State, "d1", at(1))
	mustCommit(t, s, &trial.Commit{Record: record("s1", "p1", "d1", at(1)), State: st1})

	cases := []struct {
		name    string
		version int64
	}{
		{"Stale", 1}, // read version 0, but it is 1 now
		{"SameAsStored", st1.Version},
		{"TooFarAhead", st1.Version + 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, key := "d-"+c.name, "k-"+c.name
			st := nextState(st1, id, at(2))
			st.Version = c.version
			rec := record("s1", "p1", id, at(2))
			rec.IdempotencyKey = key
			err := s.CommitDecision(ctx(t), &trial.Commit{Record: rec, State: st, Idempotency: idem(key, id, at(2))})
			wantErr(t, "CommitDecision with version "+fmt.Sprint(c.version), err, trial.ErrConflict)
			// Nothing of the commit was stored.
			_, err = s.Decision(ctx(t), "s1", id)
			wantErr(t, "Decision after conflict", err, trial.ErrNotFound)
			snap := mustSnapshot(t, s, "s1", "p1", key)
			if snap.Replay != nil {
				t.Fatalf("idempotency entry stored despite conflict: %+v", snap.Replay)
			}
			sameJSON(t, "state after conflict", snap.State, st1)
			if got := recordIDs(mustList(t, s, trial.DecisionQuery{Study: "s1"})); !slices.Equal(got, []string{"d1"}) {
				t.Fatalf("listed %v after conflict, want [d1]", got)
			}
		})
	}
}

func (h *harness) testCommitDecisionUnknownParticipant(t *testing.T) {
	s := h.store(t)
	err := s.CommitDecision(ctx(t), &trial.Commit{Record: record("s1", "nobody", "d1", at(1)), State: &trial.State{Version: 1}})
	wantErr(t, "CommitDecision with a state for an unknown participant", err, trial.ErrNotFound)
	if _, err := s.Decision(ctx(t), "s1", "d1"); err == nil {
		t.Fatal("record stored although the commit failed")
	}
}

func (h *harness) testCommitDecisionIdempotency(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	mustEnroll(t, s, participant("s1", "p2", "a"))
	mustEnroll(t, s, participant("s2", "p1", "a"))
	snap := mustSnapshot(t, s, "s1", "p1", "key-1")
	entry := idem("key-1", "d1", at(3))
	rec := record("s1", "p1", "d1", at(3))
	rec.IdempotencyKey = "key-1"
	st := nextState(snap.State, "d1", at(3))
	mustCommit(t, s, &trial.Commit{Record: rec, State: st, Idempotency: entry})

	replay := mustSnapshot(t, s, "s1", "p1", "key-1").Replay
	if replay == nil {
		t.Fatal("no replay after committing with an idempotency key")
	}
	sameJSON(t, "replay", replay, entry)
	if string(replay.Response) != string(entry.Response) {
		t.Fatalf("replayed response = %q, want %q", replay.Response, entry.Response)
	}

	// A concurrent request with the same key, which read the same
	// snapshot, loses: nothing of it is stored.
	dup := record("s1", "p1", "d1-dup", at(3).Add(time.Millisecond))
	dup.IdempotencyKey = "key-1"
	dupEntry := idem("key-1", "d1-dup", at(4))
	dupEntry.Response = []byte(`{"decision_id":"d1-dup"}`)
	for _, c := range []struct {
		name  string
		state *trial.State
	}{
		{"WithState", nextState(st, "d1-dup", at(4))},
		{"WithoutState", nil},
	} {
		err := s.CommitDecision(ctx(t), &trial.Commit{Record: dup, State: c.state, Idempotency: dupEntry})
		wantErr(t, "second commit with the same key ("+c.name+")", err, trial.ErrIdempotencyReplay)
		_, err = s.Decision(ctx(t), "s1", "d1-dup")
		wantErr(t, "Decision of the losing commit", err, trial.ErrNotFound)
		after := mustSnapshot(t, s, "s1", "p1", "key-1")
		sameJSON(t, "replay after losing commit", after.Replay, entry)
		sameJSON(t, "state after losing commit", after.State, st)
	}

	// Keys are scoped by study and participant.
	for _, c := range []struct{ study, participant string }{{"s1", "p2"}, {"s2", "p1"}} {
		id := "d-" + c.study + "-" + c.participant
		r := record(c.study, c.participant, id, at(5))
		r.IdempotencyKey = "key-1"
		mustCommit(t, s, &trial.Commit{Record: r, Idempotency: idem("key-1", id, at(5))})
		got := mustSnapshot(t, s, c.study, c.participant, "key-1").Replay
		if got == nil || got.DecisionID != id {
			t.Fatalf("%s/%s: replay = %+v, want decision %s", c.study, c.participant, got, id)
		}
	}
	if got := mustSnapshot(t, s, "s1", "p1", "key-1").Replay; got.DecisionID != "d1" {
		t.Fatalf("replay of s1/p1 changed to %s", got.DecisionID)
	}
}

func (h *harness) testCommitDecisionNilState(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	st := nextState(mustSnapshot(t, s, "s1", "p1", "").State, "d1", at(1))
	mustCommit(t, s, &trial.Commit{Record: record("s1", "p1", "d1", at(1)), State: st})
	// No state: no version check, no change.
	mustCommit(t, s, &trial.Commit{Record: record("s1", "p1", "d2", at(2))})
	mustCommit(t, s, &trial.Commit{Record: record("s1", "p1", "d3", at(3)), Idempotency: idem("k3", "d3", at(3))})
	snap := mustSnapshot(t, s, "s1", "p1", "k3")
	sameJSON(t, "state after commits without state", snap.State, st)
	if snap.Replay == nil || snap.Replay.DecisionID != "d3" {
		t.Fatalf("replay = %+v, want d3", snap.Replay)
	}
	for _, id := range []string{"d1", "d2", "d3"} {
		mustDecision(t, s, "s1", id)
	}
}

func (h *harness) testCommitDecisionDecisionNotFound(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	mustCommit(t, s, &trial.Commit{Record: record("s1", "p1", "d1", at(1))})
	for _, c := range []struct{ study, id string }{{"s1", "d2"}, {"s2", "d1"}} {
		_, err := s.Decision(ctx(t), c.study, c.id)
		wantErr(t, fmt.Sprintf("Decision(%s, %s)", c.study, c.id), err, trial.ErrNotFound)
	}
}

func (h *harness) testListDecisions(t *testing.T) {
	s := h.store(t)
	for _, p := range []string{"p1", "p2"} {
		mustEnroll(t, s, participant("s1", p, "a"))
	}
	mustEnroll(t, s, participant("s2", "p1", "a"))
	// Committed out of order; d3a and d3b share a time, as do d5a and d5b
	// of different participants.
	commits := []struct {
		participant, id string
		t               time.Time
	}{
		{"p1", "d4", at(4)},
		{"p2", "d1", at(1)},
		{"p1", "d3b", at(3)},
		{"p1", "d3a", at(3)},
		{"p2", "d2", at(2)},
		{"p2", "d5b", at(5)},
		{"p1", "d5a", at(5)},
		{"p1", "d6", at(6)},
	}
	for _, c := range commits {
		mustCommit(t, s, &trial.Commit{Record: record("s1", c.participant, c.id, c.t)})
	}
	mustCommit(t, s, &trial.Commit{Record: record("s2", "p1", "d0", at(0))})

	cases := []struct {
		name string
		q    trial.DecisionQuery
		want []string
	}{
		{"All", trial.DecisionQuery{Study: "s1"}, []string{"d1", "d2", "d3a", "d3b", "d4", "d5a", "d5b", "d6"}},
		{"OtherStudy", trial.DecisionQuery{Study: "s2"}, []string{"d0"}},
		{"NoStudy", trial.DecisionQuery{Study: "s3"}, nil},
		{"Participant", trial.DecisionQuery{Study: "s1", Participant: "p1"}, []string{"d3a", "d3b", "d4", "d5a", "d6"}},
		{"UnknownParticipant", trial.DecisionQuery{Study: "s1", Participant: "p9"}, nil},
		{"SinceInclusive", trial.DecisionQuery{Study: "s1", Since: at(3)}, []string{"d3a", "d3b", "d4", "d5a", "d5b", "d6"}},
		{"SinceBetween", trial.DecisionQuery{Study: "s1", Since: at(3).Add(time.Microsecond)}, []string{"d4", "d5a", "d5b", "d6"}},
		{"SinceParticipant", trial.DecisionQuery{Study: "s1", Participant: "p2", Since: at(2)}, []string{"d2", "d5b"}},
		{"AfterSameTime", trial.DecisionQuery{Study: "s1", AfterTime: at(3), AfterID: "d3a"}, []string{"d3b", "d4", "d5a", "d5b", "d6"}},
		{"AfterLastOfTime", trial.DecisionQuery{Study: "s1", AfterTime: at(5), AfterID: "d5b"}, []string{"d6"}},
		{"AfterLast", trial.DecisionQuery{Study: "s1", AfterTime: at(6), AfterID: "d6"}, nil},
		{"AfterParticipant", trial.DecisionQuery{Study: "s1", Participant: "p1", AfterTime: at(3), AfterID: "d3b"}, []string{"d4", "d5a", "d6"}},
		{"SinceAndAfter", trial.DecisionQuery{Study: "s1", Since: at(4), AfterTime: at(2), AfterID: "d2"}, []string{"d4", "d5a", "d5b", "d6"}},
		{"Limit", trial.DecisionQuery{Study: "s1", Limit: 3}, []string{"d1", "d2", "d3a"}},
		{"LimitAfter", trial.DecisionQuery{Study: "s1", AfterTime: at(3), AfterID: "d3b", Limit: 2}, []string{"d4", "d5a"}},
		{"LimitAboveCount", trial.DecisionQuery{Study: "s1", Participant: "p2", Limit: 100}, []string{"d1", "d2", "d5b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mustList(t, s, c.q)
			if !slices.Equal(recordIDs(got), c.want) {
				t.Fatalf("ListDecisions(%+v) = %v, want %v", c.q, recordIDs(got), c.want)
			}
		})
	}

	t.Run("Contents", func(t *testing.T) {
		for _, rec := range mustList(t, s, trial.DecisionQuery{Study: "s1"}) {
			sameJSON(t, "listed record "+rec.ID, rec, mustDecision(t, s, "s1", rec.ID))
		}
		got := mustList(t, s, trial.DecisionQuery{Study: "s2"})
		sameJSON(t, "listed record", got[0], record("s2", "p1", "d0", at(0)))
	})

	t.Run("Paging", func(t *testing.T) {
		for _, limit := range []int{1, 2, 3} {
			var got []string
			q := trial.DecisionQuery{Study: "s1", Limit: limit}
			for range 20 {
				page := mustList(t, s, q)
				if len(page) > limit {
					t.Fatalf("page of %d with limit %d", len(page), limit)
				}
				if len(page) == 0 {
					break
				}
				got = append(got, recordIDs(page)...)
				last := page[len(page)-1]
				q.AfterTime, q.AfterID = last.Time, last.ID
			}
			if want := cases[0].want; !slices.Equal(got, want) {
				t.Fatalf("paging by %d gave %v, want %v", limit, got, want)
			}
		}
	})
}
