package engine

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/schedule"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// openPoints asks the study's open rule, for each event of an ingest, which
// event points it opens, and decides each one now (trigger event, with the
// event's id) within its trigger caps. Events already stored are asked about
// again: the point's key (from the event id) makes a retried request
// resolve to the same record, so a crash between storing the events and
// deciding loses nothing when the app retries. A failure here never fails
// the ingest: the events are stored; it is logged and counted.
func (e *Engine) openPoints(ctx context.Context, study, participant string, events []trial.Event) {
	rt, release, ok := e.acquire(study)
	defer release()
	if !ok || !rt.Policy.Opens() || !hasEventPoints(rt.Config) {
		return
	}
	if err := e.openPointsOf(ctx, rt, participant, events); err != nil {
		e.log.Warn("event points: not opened", zap.String("study", study), zap.Error(err))
		e.observeOpenFailure(study)
	}
}

func (e *Engine) openPointsOf(ctx context.Context, rt *StudyRuntime, participant string, events []trial.Event) error {
	snap, err := e.store.Snapshot(ctx, rt.Config.ID, participant, "")
	if err != nil {
		return fmt.Errorf("reading participant state: %w", err)
	}
	p := snap.Participant
	if p.Status == trial.StatusWithdrawn {
		return nil
	}
	loc := e.location(rt, p)
	now := e.now().UTC().Truncate(time.Microsecond)
	for i := range events {
		ev := &events[i]
		ids, err := decision.Open(ctx, rt.Runtime, decision.OpenInput(rt.Runtime, snap, loc, ev, now))
		if err != nil {
			return err
		}
		for _, id := range ids {
			dp, ok := rt.Config.DecisionPoint(id)
			if !ok || dp.Kind != "event" {
				return fmt.Errorf("the open rule named %q, which is not an event point of the study (kind: event)", id)
			}
			if !now.Before(ev.Time.Add(dp.Trigger.Within.Duration)) {
				continue // reported too late to act on
			}
			capped, err := e.triggerCapped(ctx, rt, p, dp, ev, now, loc)
			if err != nil {
				return err
			}
			if capped {
				continue
			}
			phase, day, _ := schedule.PhaseAt(rt.Config, p, loc, now)
			pt := schedule.Point{DecisionPoint: dp.ID, LocalDate: "event:" + ev.ID, At: now, StudyDay: day, Phase: phase}
			if _, err := e.firePointOf(ctx, rt, p, loc, pt, now, nil, ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// triggerCapped reports whether the event point may not open again now:
// its max_per_day on the participant-local day, or its min_minutes_between
// since the last one. A point this event already opened is not capped (it
// resolves to its record).
func (e *Engine) triggerCapped(ctx context.Context, rt *StudyRuntime, p *trial.Participant, dp *policies.DecisionPoint, ev *trial.Event, now time.Time, loc *time.Location) (bool, error) {
	t := dp.Trigger
	if t.MaxPerDay == 0 && t.MinMinutesBetween == 0 {
		return false, nil
	}
	recs, err := e.store.ListDecisions(ctx, trial.DecisionQuery{Study: rt.Config.ID, Participant: p.ID, Since: now.Add(-48 * time.Hour), Limit: 10000})
	if err != nil {
		return false, fmt.Errorf("reading decisions for trigger caps: %w", err)
	}
	today := now.In(loc).Format(time.DateOnly)
	n := 0
	for _, r := range recs {
		if r.DecisionPoint != dp.ID || r.Trigger != trial.TriggerEvent {
			continue
		}
		if r.EventID == ev.ID {
			return false, nil
		}
		if r.Time.In(loc).Format(time.DateOnly) == today {
			n++
		}
		if t.MinMinutesBetween > 0 && now.Sub(r.Time) < time.Duration(t.MinMinutesBetween)*time.Minute {
			return true, nil
		}
	}
	return t.MaxPerDay > 0 && n >= t.MaxPerDay, nil
}

// hasEventPoints reports whether the study has event points.
func hasEventPoints(cfg *policies.Config) bool {
	for i := range cfg.DecisionPoints {
		if cfg.DecisionPoints[i].Kind == "event" {
			return true
		}
	}
	return false
}

func (e *Engine) observeOpenFailure(study string) {
	if co, ok := e.obs.(ClockObserver); ok {
		co.PointRecorded(study, trial.TriggerEvent, "open_failed")
	}
}
