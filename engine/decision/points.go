package decision

import (
	"context"
	"time"

	"github.com/jitai/jitai/engine/schedule"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// Occurrences lists participant p's scheduled points in [from, to) with the
// study's keyed draw for window points (schedule.Occurrences).
func (rt *Runtime) Occurrences(p *trial.Participant, loc *time.Location, from, to time.Time) []schedule.Point {
	return schedule.Occurrences(rt.Config, rt.drawer, p, loc, from, to)
}

// Missed is the record of a scheduled point whose window closed before the
// engine decided it: unavailable for reason engine_unavailable, never
// randomised, nothing delivered. The export keeps one row per scheduled
// point, so a trial can tell "unavailable" from "lost".
func Missed(rt *Runtime, p *trial.Participant, pt schedule.Point, loc *time.Location, decisionID string) *trial.Record {
	rec := &trial.Record{
		ID:                 decisionID,
		Study:              rt.Config.ID,
		Participant:        p.ID,
		DecisionPoint:      pt.DecisionPoint,
		Trigger:            trial.TriggerScheduled,
		ScheduledAt:        pt.At,
		Phase:              pt.Phase,
		StudyDay:           pt.StudyDay,
		Time:               pt.At,
		LocalTime:          pt.At.In(loc).Format(time.RFC3339),
		PolicyRevision:     rt.Revision,
		CatalogueRevision:  rt.Catalogue.Revision(),
		Action:             trial.ActionNone,
		Reasons:            []string{trial.ReasonEngineUnavailable},
		UnavailableReasons: []string{trial.ReasonEngineUnavailable},
		Input:              []byte("null"),
	}
	if dp, ok := rt.Config.DecisionPoint(pt.DecisionPoint); ok {
		rec.ExpiresAt = pt.At.Add(TTL(rt, dp))
	}
	rec.Factors = make([]trial.FactorDraw, 0, len(rt.between))
	for _, f := range rt.between {
		label := p.Assignment[f.Name]
		level := 0
		if label == f.Levels[1] {
			level = 1
		}
		rec.Factors = append(rec.Factors, trial.FactorDraw{Name: f.Name, Type: string(policies.Between), Level: level, Label: label})
	}
	return rec
}

// IsMissed reports whether rec records a point the engine missed.
func IsMissed(rec *trial.Record) bool {
	return !rec.Available && len(rec.UnavailableReasons) == 1 && rec.UnavailableReasons[0] == trial.ReasonEngineUnavailable
}

// TTL is the window in which a point may still be decided: an event
// point's trigger.within, else the study's decision_ttl.
func TTL(rt *Runtime, dp *policies.DecisionPoint) time.Duration {
	if dp != nil && dp.Trigger != nil {
		return dp.Trigger.Within.Duration
	}
	return rt.Config.DecisionTTL.Duration
}

// Open evaluates the policy's open rule on an input document (OpenInput):
// the ids of the event points the event opens.
func Open(ctx context.Context, rt *Runtime, input map[string]any) ([]string, error) {
	v, err := policyInput(rt, input)
	if err != nil {
		return nil, err
	}
	ids, err := rt.Policy.Open(ctx, v)
	if err != nil {
		return nil, &PolicyError{Study: rt.Config.ID, Err: err}
	}
	return ids, nil
}

// OpenInput is the input document of the policy's open rule for an event
// that just arrived: the decision input of an event point at now, with the
// participant's state after the event, and input.event.
func OpenInput(rt *Runtime, snap *trial.Snapshot, loc *time.Location, ev *trial.Event, now time.Time) map[string]any {
	clock := newLocalClock(now, loc)
	hist := computeHistory(snap.State, now, clock)
	dp := &policies.DecisionPoint{Kind: "event"}
	return buildInput(rt, snap, pointDoc(dp, trial.TriggerEvent, now, ev.ID), nil, now, clock, hist, phaseAt(rt, snap.Participant, loc, now), ev)
}
