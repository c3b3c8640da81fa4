package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// testDecisionTimeRange: decisions anywhere in the years the API accepts
// (trial.MinYear to trial.MaxYear: 2000-01-01 to 2200-01-01) are listed in
// time order and filtered by since and by the cursor exactly, at both ends
// of the range (times past 2262 overflowed int64 nanoseconds).
func (h *harness) testDecisionTimeRange(t *testing.T) {
	s := h.store(t)
	p := participant("s1", "p1", "a")
	p.EnrolledAt = time.Date(trial.MinYear, 1, 1, 0, 0, 0, 0, time.UTC)
	mustEnroll(t, s, p)
	first := time.Date(trial.MinYear, 1, 1, 0, 0, 0, 0, time.UTC)
	last := time.Date(trial.MaxYear+1, 1, 1, 0, 0, 0, 0, time.UTC).Add(-time.Microsecond)
	if trial.CheckTime("time", first) != nil || trial.CheckTime("time", last) != nil || trial.CheckTime("time", last.Add(time.Microsecond)) == nil {
		t.Fatalf("the range's ends %s and %s are not the ends trial.CheckTime accepts", first, last)
	}
	commits := []struct {
		id string
		t  time.Time
	}{
		{"d2199", last},
		{"d2000", first},
		{"d2150", time.Date(2150, 6, 1, 12, 0, 0, 0, time.UTC)},
		{"d2100", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"d2026", at(1)},
	}
	for _, c := range commits {
		mustCommit(t, s, &trial.Commit{Record: record("s1", "p1", c.id, c.t)})
	}
	cases := []struct {
		name string
		q    trial.DecisionQuery
		want []string
	}{
		{"All", trial.DecisionQuery{Study: "s1"}, []string{"d2000", "d2026", "d2100", "d2150", "d2199"}},
		{"Since2100", trial.DecisionQuery{Study: "s1", Since: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"d2100", "d2150", "d2199"}},
		{"Since2199", trial.DecisionQuery{Study: "s1", Since: time.Date(2199, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"d2199"}},
		{"SinceLast", trial.DecisionQuery{Study: "s1", Participant: "p1", Since: last}, []string{"d2199"}},
		{"SinceFirst", trial.DecisionQuery{Study: "s1", Since: first}, []string{"d2000", "d2026", "d2100", "d2150", "d2199"}},
		{"After2150", trial.DecisionQuery{Study: "s1", AfterTime: time.Date(2150, 6, 1, 12, 0, 0, 0, time.UTC), AfterID: "d2150"}, []string{"d2199"}},
		{"AfterFirst", trial.DecisionQuery{Study: "s1", AfterTime: first, AfterID: "d2000", Limit: 2}, []string{"d2026", "d2100"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := mustList(t, s, c.q)
			if !slices.Equal(recordIDs(got), c.want) {
				t.Fatalf("ListDecisions(%+v) = %v, want %v", c.q, recordIDs(got), c.want)
			}
			for _, rec := range got {
				if want := mustDecision(t, s, "s1", rec.ID).Time; !rec.Time.Equal(want) {
					t.Errorf("%s listed at %s, stored at %s", rec.ID, rec.Time, want)
				}
			}
		})
	}
}
