package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	if dp.Kind == "scheduled" {
		req.trigger, req.scheduledAt = trial.TriggerScheduled, req.Time
	}
	sum := sha256.Sum256([]byte(rt.Config.ID + "\x00" + snap.Participant.ID + "\x00" + dp.ID + "\x00" + req.Time.Format(time.RFC3339Nano)))
	id := "preview-" + hex.EncodeToString(sum[:8])
	rec, _, _, err := e.decide(ctx, rt, dp, snap, &req, id, start)
	return rec, err
}
