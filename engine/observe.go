package engine

import (
	"context"
	"errors"
	"time"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/policies"
)

// Observer receives the engine's measurements (engine/metrics implements it
// with Prometheus). Its methods are called on the decision path, so they
// must be cheap and safe for concurrent use. Labels it derives must never
// hold participant ids: study is always the id of a loaded study (or "" for
// an unknown one), action and outcome are fixed enums.
type Observer interface {
	// Decision is called once per Decide call with its outcome (see
	// DecisionOutcome) and the action ("" unless outcome is ok or replayed).
	Decision(study, action, outcome string, took time.Duration)
	// PolicyEval is called after every policy evaluation (also failed ones).
	PolicyEval(study string, took time.Duration, err error)
	// StoreOp is called after every store snapshot and commit on the
	// decision path; op is StoreOpSnapshot or StoreOpCommit.
	StoreOp(op string, took time.Duration, err error)
}

// ReloadObserver is an optional interface of an Observer: it receives
// every study reload attempt with its outcome (ReloadLoaded, ReloadAdded,
// ReloadUnchanged or ReloadFailed).
type ReloadObserver interface {
	StudyReload(study, outcome string, took time.Duration)
}

// EvaluatorObserver is an optional interface of an Observer: it is told of
// every policy evaluation the planned IR could not make and topdown made
// instead (see docs/policy.md).
type EvaluatorObserver interface {
	PolicyFallback(study string)
}

// Store operations reported to an Observer.
const (
	StoreOpSnapshot = "snapshot"
	StoreOpCommit   = "commit"
)

// Decision outcomes reported to an Observer.
const (
	OutcomeOK                  = "ok"
	OutcomeReplayed            = "replayed"
	OutcomeInvalidInput        = "invalid_input"
	OutcomeUnknownStudy        = "unknown_study"
	OutcomeUnknownParticipant  = "unknown_participant"
	OutcomeWithdrawn           = "withdrawn"
	OutcomeIdempotencyMismatch = "idempotency_mismatch"
	OutcomePolicyError         = "policy_error"
	OutcomeConflict            = "conflict"
	OutcomeStoreUnavailable    = "store_unavailable"
	OutcomeTimeout             = "timeout"
	OutcomeCanceled            = "canceled"
	OutcomeError               = "error"
	// OutcomeFailSafe: the policy failed and the study's fail-safe
	// answered (200 to the phone, recorded with the problem).
	OutcomeFailSafe = "fail_safe"
)

// DecisionOutcome classifies Decide's error into one of the Outcome* enums.
func DecisionOutcome(err error) string {
	if err == nil {
		return OutcomeOK
	}
	return errorOutcome(err)
}

// errorOutcome is DecisionOutcome for an error (apart, so that the targets
// of errors.As are allocated only on the error path).
func errorOutcome(err error) string {
	var ie *trial.InputError
	var pe *decision.PolicyError
	switch {
	case errors.As(err, &ie):
		return OutcomeInvalidInput
	case errors.Is(err, ErrUnknownStudy):
		return OutcomeUnknownStudy
	case errors.Is(err, ErrUnknownParticipant):
		return OutcomeUnknownParticipant
	case errors.Is(err, ErrWithdrawn):
		return OutcomeWithdrawn
	case errors.Is(err, ErrIdempotencyMismatch):
		return OutcomeIdempotencyMismatch
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	case errors.As(err, &pe):
		return OutcomePolicyError
	case errors.Is(err, trial.ErrConflict):
		return OutcomeConflict
	case errors.Is(err, trial.ErrUnavailable):
		return OutcomeStoreUnavailable
	}
	return OutcomeError
}

// observeDecision reports one Decide call (a no-op without an Observer).
func (e *Engine) observeDecision(study string, ans *Answer, err error, start time.Time) {
	if e.obs == nil {
		return
	}
	action, outcome := "", DecisionOutcome(err)
	if err == nil && ans != nil {
		if ans.Replayed {
			outcome = OutcomeReplayed
		} else if ans.Record != nil {
			action = ans.Record.Action
			if ans.Record.PolicyError != nil {
				outcome = OutcomeFailSafe
			}
		}
	}
	if _, ok := e.Study(study); !ok {
		study = "" // never a label value a client chose
	}
	e.obs.Decision(study, action, outcome, time.Since(start))
}

func (e *Engine) observeStore(op string, start time.Time, err error) {
	if e.obs != nil {
		e.obs.StoreOp(op, time.Since(start), err)
	}
}

func (e *Engine) observePolicy(study string, start time.Time, out *policies.Output, err error) {
	if e.obs != nil {
		e.obs.PolicyEval(study, time.Since(start), err)
		if out != nil && out.FellBack() {
			if eo, ok := e.obs.(EvaluatorObserver); ok {
				eo.PolicyFallback(study)
			}
		}
	}
}
