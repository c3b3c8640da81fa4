package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

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
	body, err := answerBody(rt, rec, levels)
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

// answerBody is the JSON answer to the app for a recorded decision.
func answerBody(rt *StudyRuntime, rec *trial.Record, levels map[string]string) ([]byte, error) {
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
		crisis := rt.Config.Crisis
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
