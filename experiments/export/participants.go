package export

import (
	"fmt"
	"time"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// participantRow is the data of one row of the participants table.
type participantRow struct {
	p     *trial.Participant
	index int64 // 1-based, in enrolment order
	// Counts of the participant's decisions: all, available, delivered, safety.
	decisions, available, delivered, safety int64
	distal                                  map[string]*distal // by instrument
}

// distal is a participant's assessments of one instrument.
type distal struct {
	first, last     float64
	firstAt, lastAt time.Time
	n               int64
}

// distalInstruments are always exported; other instruments seen in
// assessment events follow, sorted by name.
var distalInstruments = []string{"phq9", "gad7"}

// participantTable is the registry of the participants table: enrolment,
// strata, between-person factors, counts of decisions, then the distal
// outcomes of each instrument of insts.
func participantTable(cfg *policies.Config, insts []string) *registry[*participantRow] {
	r := newRegistry[*participantRow](ParticipantsTable)
	add(r, "participant_id", about{desc: "Pseudonymous participant id.", missing: never},
		func(x *participantRow) (string, bool) { return x.p.ID, true })
	add(r, "enrolment_index", about{desc: "Position in enrolment order (1-based).", missing: never},
		func(x *participantRow) (int64, bool) { return x.index, true })
	add(r, "enrolled_at", about{unit: "UTC", desc: "Time of enrolment (RFC 3339, UTC).", missing: never},
		func(x *participantRow) (time.Time, bool) { return x.p.EnrolledAt.UTC(), true })
	add(r, "timezone", about{desc: "The participant's IANA time zone.", missing: never},
		func(x *participantRow) (string, bool) { return x.p.Timezone, true })
	add(r, "stratum", about{desc: "Stratum key of between-person assignment, in study.yaml strata order (e.g. site=a); empty when the study declares no strata.", missing: never},
		func(x *participantRow) (string, bool) { return x.p.Stratum, true })
	for _, s := range cfg.Strata {
		add(r, s, about{desc: fmt.Sprintf("Stratum variable %s given at enrolment.", s), missing: never},
			func(x *participantRow) (string, bool) { v, ok := x.p.Strata[s]; return v, ok })
	}
	between := cfg.FactorsOf(policies.Between)
	missingRow := never
	if len(between) == 0 {
		missingRow = "always: the study has no between-person factors"
	}
	add(r, "design_row", about{desc: "Row of the between-person design assigned at enrolment (1-based, in the design's standard order).", missing: missingRow},
		func(x *participantRow) (int64, bool) { return int64(x.p.Row + 1), len(between) > 0 })
	add(r, "status", about{levels: []string{trial.StatusActive, trial.StatusWithdrawn}, desc: "Enrolment status at the time of the export.", missing: never},
		func(x *participantRow) (string, bool) { return x.p.Status, true })
	for _, f := range between {
		// assigned is the participant's level of f and its label, if any.
		assigned := func(x *participantRow) (int, string, bool) {
			label, ok := x.p.Assignment[f.Name]
			lv := levelOf(f, label)
			return lv, label, ok && lv >= 0
		}
		add(r, f.Name, about{levels: coded(f.Levels), desc: fmt.Sprintf("Level of between-person factor %s assigned at enrolment (0 = %s, 1 = %s).", f.Name, f.Levels[0], f.Levels[1]), missing: "when the enrolment holds no level of the factor"},
			func(x *participantRow) (int64, bool) { lv, _, ok := assigned(x); return int64(lv), ok })
		add(r, f.Name+"_label", about{levels: f.Levels, desc: fmt.Sprintf("Label of the level of %s.", f.Name), missing: "as " + f.Name},
			func(x *participantRow) (string, bool) { _, label, ok := assigned(x); return label, ok })
	}
	add(r, "n_decisions", about{unit: "decisions", desc: "Number of decisions recorded (rows of the decisions table).", missing: never},
		func(x *participantRow) (int64, bool) { return x.decisions, true })
	add(r, "n_available", about{unit: "decisions", desc: "Number of decisions at which the participant was available.", missing: never},
		func(x *participantRow) (int64, bool) { return x.available, true })
	add(r, "n_delivered", about{unit: "decisions", desc: "Number of decisions that delivered an intervention.", missing: never},
		func(x *participantRow) (int64, bool) { return x.delivered, true })
	add(r, "n_safety", about{unit: "decisions", desc: "Number of safety decisions.", missing: never},
		func(x *participantRow) (int64, bool) { return x.safety, true })
	for _, in := range insts {
		distalColumns(r, in)
	}
	return r
}

// distalColumns adds the first and last total score of an instrument's
// assessments, their times, and how many there were.
func distalColumns(r *registry[*participantRow], in string) {
	up := instrumentName(in)
	none := fmt.Sprintf("when the participant reported no %s assessment", up)
	add(r, in+"_total_first", about{unit: "total score", desc: fmt.Sprintf("Total score of the participant's first %s assessment (baseline).", up), missing: none},
		fromDistal(in, func(d *distal) int64 { return int64(d.first) }))
	add(r, in+"_time_first", about{unit: "UTC", desc: fmt.Sprintf("Time of the first %s assessment.", up), missing: none},
		fromDistal(in, func(d *distal) time.Time { return d.firstAt.UTC() }))
	add(r, in+"_total_last", about{unit: "total score", desc: fmt.Sprintf("Total score of the participant's last %s assessment (distal outcome).", up), missing: none},
		fromDistal(in, func(d *distal) int64 { return int64(d.last) }))
	add(r, in+"_time_last", about{unit: "UTC", desc: fmt.Sprintf("Time of the last %s assessment.", up), missing: none},
		fromDistal(in, func(d *distal) time.Time { return d.lastAt.UTC() }))
	add(r, in+"_n", about{unit: "assessments", desc: fmt.Sprintf("Number of %s assessments reported.", up), missing: never + " (0 when none)"},
		func(x *participantRow) (int64, bool) {
			if d := x.distal[in]; d != nil {
				return d.n, true
			}
			return 0, true
		})
}

// fromDistal reads a field of a participant's assessments of an
// instrument; missing when there were none.
func fromDistal[V cellValue](in string, field func(*distal) V) func(*participantRow) (V, bool) {
	return func(x *participantRow) (V, bool) {
		if d := x.distal[in]; d != nil {
			return field(d), true
		}
		var zero V
		return zero, false
	}
}
