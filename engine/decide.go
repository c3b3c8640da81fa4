package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// decide computes one decision from a snapshot: the record, the new state and
// the answer body. It writes nothing.
func (e *Engine) decide(ctx context.Context, rt *StudyRuntime, dp *policies.DecisionPoint, snap *trial.Snapshot, req *DecideRequest, decisionID string, start time.Time) (*trial.Record, *trial.State, []byte, error) {
	loc, err := e.zones.load(snap.Participant.Timezone)
	if err != nil {
		loc = rt.Location
	}
	rec, st, levels, err := decision.Decide(ctx, rt.Runtime, decision.Request{
		Snapshot:       snap,
		Point:          dp,
		Context:        req.Context,
		Now:            req.Time,
		Location:       loc,
		DecisionID:     decisionID,
		IdempotencyKey: req.IdempotencyKey,
		PolicyTimeout:  e.policyTimeout,
		Trigger:        req.trigger,
		EventID:        req.eventID,
		ScheduledAt:    req.scheduledAt,
		Event:          req.event,
	}, rt.hooks)
	if err != nil {
		return nil, nil, nil, err
	}
	rec.RecordedAt = e.now().UTC().Truncate(time.Microsecond)
	rec.LatencyMicros = time.Since(start).Microseconds()
	if pe := rec.PolicyError; pe != nil {
		// The alert: the phone gets the fail-safe; designers must know.
		e.log.Error("policy failed: the study's fail-safe answered", zap.String("study", rt.Config.ID), zap.String("revision", rt.Revision),
			zap.String("decision_id", rec.ID), zap.String("kind", pe.Kind), zap.String("location", pe.Location), zap.String("safety", pe.Safety), zap.String("action", rec.Action))
	}
	body, err := e.answerBody(rt, rec, levels, snap.Participant.Region)
	if err != nil {
		return nil, nil, nil, err
	}
	return rec, st, body, nil
}

// hooks are the service's parts of a live decision: the study's plugins
// and the metrics of policy evaluation.
func (e *Engine) hooks(rt *StudyRuntime) decision.Hooks {
	h := decision.Hooks{
		ObservePolicy: func(start time.Time, out *policies.Output, err error) { e.observePolicy(rt.Config.ID, start, out, err) },
	}
	h.PluginProbability = func(ctx context.Context, f *policies.Factor, rec *trial.Record, inputJSON []byte) (float64, *trial.PluginCall) {
		return e.pluginProbability(ctx, rt, f, rec, inputJSON)
	}
	if len(rt.Config.Plugins) > 0 {
		h.Enrich = func(ctx context.Context, d decision.PluginDecision, input map[string]any) ([]trial.PluginCall, map[string]any, error) {
			return e.enrich(ctx, rt, d, input)
		}
	}
	return h
}

// answerBody is the JSON answer to the app for a recorded decision; a
// safety decision carries the crisis resources of the participant's region.
func (e *Engine) answerBody(rt *StudyRuntime, rec *trial.Record, levels map[string]string, region string) ([]byte, error) {
	resp := Response{
		DecisionID:    rec.ID,
		Study:         rec.Study,
		ParticipantID: rec.Participant,
		DecisionPoint: rec.DecisionPoint,
		Time:          rec.Time,
		Action:        rec.Action,
		Reasons:       rec.Reasons,
		ExpiresAt:     rec.ExpiresAt,
		Revision:      rec.PolicyRevision,
	}
	if rec.Intervention != nil {
		resp.Intervention = rec.Intervention
	}
	if rec.Action == trial.ActionSafety {
		crisis := e.crisisFor(rt, region)
		resp.Signposting = &crisis
	}
	if rec.Action != trial.ActionSafety && len(levels) > 0 {
		resp.Components = levels
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encoding answer: %w", err)
	}
	return body, nil
}

// crisisFor is the crisis resources of a participant's region. A study that
// declares regional resources and a participant without a region get the
// study default; that is logged once per study.
func (e *Engine) crisisFor(rt *StudyRuntime, region string) policies.Crisis {
	cr, regional := rt.Config.CrisisFor(region)
	if !regional && len(rt.Config.CrisisByRegion) > 0 {
		if _, seen := e.regionWarned.LoadOrStore(rt.Config.ID+"\x00"+region, true); !seen {
			e.log.Warn("safety decision for a participant whose region has no crisis resources of its own: the study default was shown; set the participant's region at enrolment or with PATCH",
				zap.String("study", rt.Config.ID), zap.String("region", region))
		}
	}
	return cr
}
