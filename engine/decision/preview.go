package decision

import (
	"fmt"
	"sort"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// PreviewParticipant is a participant for a preview: enrolled with the
// given assignment and strata.
type PreviewParticipant struct {
	ID         string
	Timezone   string
	EnrolledAt time.Time
	Assignment map[string]string
	Strata     map[string]string
}

// PreviewSnapshot builds the snapshot of a participant whose history is
// the given events (validated and applied as Ingest does, in time order)
// and past deliveries. now is the time of the decision to preview.
func PreviewSnapshot(rt *Runtime, p PreviewParticipant, events []trial.Event, deliveries []trial.Prompt, now time.Time) (*trial.Snapshot, error) {
	part := &trial.Participant{
		Study: rt.Config.ID, ID: p.ID, Timezone: p.Timezone, Strata: p.Strata,
		Assignment: map[string]string{}, EnrolledAt: p.EnrolledAt.UTC(), Status: trial.StatusActive,
	}
	if part.ID == "" {
		part.ID = "preview"
	}
	if part.Timezone == "" {
		part.Timezone = rt.Config.Timezone
	}
	if _, err := time.LoadLocation(part.Timezone); err != nil || part.Timezone == "Local" {
		return nil, trial.InputErrorf("timezone", "%q is not an IANA time zone such as Europe/London", part.Timezone)
	}
	if part.EnrolledAt.IsZero() {
		part.EnrolledAt = now.UTC()
	}
	part.Stratum = rt.StratumKey(p.Strata)
	for _, f := range rt.between {
		label, ok := p.Assignment[f.Name]
		if !ok {
			label = f.Levels[0]
		}
		if label != f.Levels[0] && label != f.Levels[1] {
			return nil, trial.InputErrorf("assignment."+f.Name, "level %q is not one of %v", label, f.Levels)
		}
		part.Assignment[f.Name] = label
	}
	for name := range p.Assignment {
		if _, ok := part.Assignment[name]; !ok {
			return nil, trial.InputErrorf("assignment."+name, "study %s has no between-person factor %q", rt.Config.ID, name)
		}
	}
	st := &trial.State{}
	seen := map[string]bool{}
	sorted := append([]trial.Event(nil), events...)
	for i := range sorted {
		ev := &sorted[i]
		field := fmt.Sprintf("events[%d]", i)
		if err := trial.ValidateEvent(field, ev, now); err != nil {
			return nil, err
		}
		if seen[ev.ID] {
			return nil, trial.InputErrorf(field+".id", "event id %q appears twice", ev.ID)
		}
		seen[ev.ID] = true
		ev.Time = ev.Time.UTC().Truncate(time.Microsecond)
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	for i := range sorted {
		trial.ApplyEvent(st, &sorted[i])
	}
	ps := append([]trial.Prompt(nil), deliveries...)
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Time.Before(ps[j].Time) })
	for i := range ps {
		ps[i].Time = ps[i].Time.UTC().Truncate(time.Microsecond)
		if ps[i].DecisionID == "" {
			ps[i].DecisionID = fmt.Sprintf("delivery-%d", i+1)
		}
		if _, ok := rt.Catalogue.Get(ps[i].Intervention); !ok && ps[i].Intervention != "" {
			return nil, trial.InputErrorf(fmt.Sprintf("deliveries[%d].intervention", i), "%q is not in the study's catalogue", ps[i].Intervention)
		}
		st.Prompts = append(st.Prompts, ps[i])
		st.Decisions = append(st.Decisions, ps[i].Time)
	}
	return &trial.Snapshot{Participant: part, State: st}, nil
}
