package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// Preview computes the decision the engine would make for a participant in
// the given snapshot, with the same pipeline as Decide (policy, safety,
// availability and burden caps, randomisation, rendering) but without a
// store: it reads nothing and writes nothing. The decision id, which keys
// the randomisation draws, is derived from the study, participant,
// decision point and time, so a preview is reproducible. Scenario tests
// (jitai study test) and tools use it.
func (e *Engine) Preview(ctx context.Context, study string, snap *trial.Snapshot, req DecideRequest) (*trial.Record, error) {
	rt, release, ok := e.acquire(study)
	defer release()
	if !ok {
		return nil, ErrUnknownStudy
	}
	return e.PreviewWith(ctx, rt, snap, req)
}

// PreviewWith is Preview with a given version of a study (for example one
// from StudyAt).
func (e *Engine) PreviewWith(ctx context.Context, rt *StudyRuntime, snap *trial.Snapshot, req DecideRequest) (*trial.Record, error) {
	start := time.Now()
	if snap == nil || snap.Participant == nil || snap.State == nil {
		return nil, fmt.Errorf("preview needs a snapshot with a participant and a state")
	}
	dp, ok := rt.Config.DecisionPoint(req.DecisionPoint)
	if !ok {
		return nil, trial.InputErrorf("decision_point", "study %s has no decision point %q", rt.Config.ID, req.DecisionPoint)
	}
	if req.Time.IsZero() {
		return nil, trial.InputErrorf("time", "time is required")
	}
	if err := checkContext(req.Context); err != nil {
		return nil, err
	}
	req.Time = req.Time.UTC().Truncate(time.Microsecond)
	sum := sha256.Sum256([]byte(rt.Config.ID + "\x00" + snap.Participant.ID + "\x00" + dp.ID + "\x00" + req.Time.Format(time.RFC3339Nano)))
	id := "preview-" + hex.EncodeToString(sum[:8])
	rec, _, _, err := e.decide(ctx, rt, dp, snap, &req, id, start)
	return rec, err
}

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
func PreviewSnapshot(rt *StudyRuntime, p PreviewParticipant, events []trial.Event, deliveries []trial.Prompt, now time.Time) (*trial.Snapshot, error) {
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
