package export

import (
	"fmt"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// engagementStatuses are the engagement statuses with a flag and a time in
// the engagement table, in column order (rated has the rating columns).
var engagementStatuses = []string{"delivered", "opened", "completed", "dismissed"}

// engagementRow is the data of one row of the engagement table: a
// delivered decision and what the app reported of it.
type engagementRow struct {
	d *decision
	// first is the time of the first event of each of engagementStatuses
	// (zero when none).
	first   [4]time.Time
	rating  *float64
	ratedAt time.Time
}

// newEngagementRow gathers the engagement events of a delivered decision
// (evs, in time order).
func newEngagementRow(d *decision, evs []engEvent) *engagementRow {
	row := &engagementRow{d: d}
	for _, e := range evs {
		for k, s := range engagementStatuses {
			if e.status == s && row.first[k].IsZero() {
				row.first[k] = e.t
			}
		}
		if e.rating != nil {
			row.rating, row.ratedAt = e.rating, e.t
		}
	}
	return row
}

// engagementTable is the registry of the engagement table: the decision,
// then a 0/1 flag and the first time of each engagement status, then the
// rating.
func engagementTable() *registry[*engagementRow] {
	r := newRegistry[*engagementRow](EngagementTable)
	add(r, "participant_id", about{desc: "Pseudonymous participant id.", missing: never},
		func(x *engagementRow) (string, bool) { return x.d.participant, true })
	add(r, "decision_id", about{desc: "Id of the decision that delivered the intervention (decision_id of the decisions table).", missing: never},
		func(x *engagementRow) (string, bool) { return x.d.id, true })
	add(r, "decision_point", about{desc: "Decision point of the decision.", missing: never},
		func(x *engagementRow) (string, bool) { return x.d.point, true })
	add(r, "time", about{unit: "UTC", desc: "Decision time (RFC 3339, UTC).", missing: never},
		func(x *engagementRow) (time.Time, bool) { return x.d.time.UTC(), true })
	add(r, "intervention_id", about{desc: "Catalogue id of the intervention delivered.", missing: "when the record names no option"},
		func(x *engagementRow) (string, bool) {
			if x.d.option == nil {
				return "", false
			}
			return x.d.option.ID, true
		})
	for k, s := range engagementStatuses {
		add(r, s, about{levels: []string{"0 = not reported", "1 = reported"}, desc: fmt.Sprintf("1 when the app reported an engagement event with status %s for the decision (data.decision_id), at any time before the export.", s), missing: never},
			func(x *engagementRow) (int64, bool) { return boolInt(!x.first[k].IsZero()), true })
		add(r, s+"_at", about{unit: "UTC", desc: fmt.Sprintf("Time of the first %s event of the decision (RFC 3339, UTC).", s), missing: fmt.Sprintf("when %s = 0", s)},
			func(x *engagementRow) (time.Time, bool) { return x.first[k].UTC(), !x.first[k].IsZero() })
	}
	add(r, "rating", about{desc: "The participant's rating of the intervention: the rating of the latest engagement event of the decision that has one (status rated, or any status with a rating).", missing: "when no engagement event of the decision has a rating"},
		func(x *engagementRow) (float64, bool) {
			if x.rating == nil {
				return 0, false
			}
			return *x.rating, true
		})
	add(r, "rated_at", about{unit: "UTC", desc: "Time of the event that gave the rating (RFC 3339, UTC).", missing: "as rating"},
		func(x *engagementRow) (time.Time, bool) { return x.ratedAt.UTC(), x.rating != nil })
	return r
}

// delivered says whether a record delivered an intervention (a row of the
// engagement table).
func delivered(rec *trial.Record) bool { return rec.Action == trial.ActionDeliver }
