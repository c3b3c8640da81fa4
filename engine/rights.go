package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments/export"
	"github.com/jitai/jitai/policies"
	"go.uber.org/zap"
)

// ErrNotSupported: the configured store cannot do what was asked (withdraw
// or erase participants).
var ErrNotSupported = errors.New("not supported by this store")

// ErrPluginErasure: the participant's data held by the study's plugins could
// not all be erased (a plugin is down or failed); repeating the request
// finishes the erasure.
var ErrPluginErasure = errors.New("plugin erasure failed")

// Erased is what an erasure did.
type Erased struct {
	// Mode is the study's erasure setting: delete or anonymise.
	Mode string
	trial.Erasure
}

func (e *Engine) eraser() (trial.Eraser, error) {
	er, ok := e.store.(trial.Eraser)
	if !ok {
		return nil, fmt.Errorf("withdrawing or erasing participants: %w", ErrNotSupported)
	}
	return er, nil
}

// Withdraw marks a participant withdrawn: no more decisions, data kept.
func (e *Engine) Withdraw(ctx context.Context, study, participant string) (*trial.Participant, error) {
	if _, ok := e.Study(study); !ok {
		return nil, ErrUnknownStudy
	}
	er, err := e.eraser()
	if err != nil {
		return nil, err
	}
	p, err := er.Withdraw(ctx, study, participant)
	if errors.Is(err, trial.ErrNotFound) {
		return nil, ErrUnknownParticipant
	}
	return p, err
}

// Erase deletes a participant's state, events, identifiers and idempotency
// entries, and what the study's plugins keep about them; their decision
// records are removed or kept anonymised as the study's erasure setting
// says. The mode is known (in the result) even when the erasure fails.
func (e *Engine) Erase(ctx context.Context, study, participant string) (Erased, error) {
	rt, ok := e.Study(study)
	if !ok {
		return Erased{}, ErrUnknownStudy
	}
	res := Erased{Mode: rt.Config.Erasure}
	if res.Mode == "" {
		res.Mode = policies.ErasureAnonymise
	}
	er, err := e.eraser()
	if err != nil {
		return res, err
	}
	erased, err := er.Erase(ctx, study, participant, res.Mode == policies.ErasureAnonymise)
	if erased != nil {
		res.Erasure = *erased
	}
	if err == nil || errors.Is(err, trial.ErrNotFound) {
		// What the study's plugins keep (pending notifications, plugin
		// state) goes too, also when a repeated request finds the store's
		// part already erased: a failed plugin erasure can be retried.
		if perr := rt.ErasePluginData(ctx, participant); perr != nil {
			e.log.Error("erasing plugin-held participant data failed", zap.String("study", study), zap.Error(perr))
			return res, ErrPluginErasure
		}
	}
	if errors.Is(err, trial.ErrNotFound) {
		return res, ErrUnknownParticipant
	}
	return res, err
}

// Ready reports whether the store answers and can write (a store on a
// nearly full or read-only disk answers a *trial.UnavailableError).
func (e *Engine) Ready(ctx context.Context) error { return e.store.Ping(ctx) }

// Participant returns an enrolled participant, or ErrUnknownParticipant.
func (e *Engine) Participant(ctx context.Context, study, id string) (*trial.Participant, error) {
	p, err := e.store.Participant(ctx, study, id)
	if errors.Is(err, trial.ErrNotFound) {
		return nil, ErrUnknownParticipant
	}
	return p, err
}

// Decision returns one decision record, or an error wrapping
// trial.ErrNotFound.
func (e *Engine) Decision(ctx context.Context, study, id string) (*trial.Record, error) {
	return e.store.Decision(ctx, study, id)
}

// ListDecisions lists decision records.
func (e *Engine) ListDecisions(ctx context.Context, q trial.DecisionQuery) ([]*trial.Record, error) {
	// The bounds are in the range every store orders and filters exactly.
	if !q.Since.IsZero() {
		if err := trial.CheckTime("since", q.Since); err != nil {
			return nil, err
		}
	}
	if !q.AfterTime.IsZero() {
		if err := trial.CheckTime("cursor", q.AfterTime); err != nil {
			return nil, err
		}
	}
	return e.store.ListDecisions(ctx, q)
}

// Export builds the study's analysis-ready tables from the store.
func (e *Engine) Export(ctx context.Context, study string, opts export.Options) (*export.Tables, error) {
	rt, ok := e.Study(study)
	if !ok {
		return nil, ErrUnknownStudy
	}
	return export.Build(ctx, e.store, rt.Study, opts)
}
