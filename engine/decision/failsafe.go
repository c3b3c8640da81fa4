package decision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// failSafe makes rec the study's fail-safe decision after its policy failed
// with err: never randomised, recorded with the problem for designers, and
// answered 200 to the phone. The safety rule is asked alone: its reasons
// still give the crisis signposting; if it fails too (or there is none), the
// study's on_policy_error.safety decides: signpost (reason safety_unknown)
// or none. It returns the between-person levels in force.
func failSafe(ctx context.Context, rt *Runtime, assignment map[string]string, input map[string]any, err error, timeout time.Duration, rec *trial.Record) map[string]string {
	prob := problemOf(err)
	levels := map[string]string{}
	rec.Factors = make([]trial.FactorDraw, 0, len(rt.between))
	for _, f := range rt.between {
		label := assignment[f.Name]
		level := 0
		if label == f.Levels[1] {
			level = 1
		}
		levels[f.Name] = label
		rec.Factors = append(rec.Factors, trial.FactorDraw{Name: f.Name, Type: string(policies.Between), Level: level, Label: label})
	}
	reasons, serr := safetyAlone(ctx, rt, input, timeout)
	switch {
	case serr == nil && len(reasons) > 0:
		prob.Safety = "evaluated"
		rec.Action, rec.SafetyReasons, rec.Reasons = trial.ActionSafety, reasons, reasons
	case serr == nil:
		prob.Safety = "evaluated"
		rec.Action = trial.ActionNone
		rec.Reasons = []string{trial.ReasonPolicyError}
		rec.UnavailableReasons = []string{trial.ReasonPolicyError}
	case rt.Config.OnPolicyError.Safety == policies.FailSignpost:
		prob.Safety = "unknown"
		rec.Action = trial.ActionSafety
		rec.SafetyReasons = []string{trial.ReasonSafetyUnknown}
		rec.Reasons = []string{trial.ReasonSafetyUnknown, trial.ReasonPolicyError}
	default:
		prob.Safety = "unknown"
		rec.Action = trial.ActionNone
		rec.Reasons = []string{trial.ReasonPolicyError}
		rec.UnavailableReasons = []string{trial.ReasonPolicyError}
	}
	rec.Available, rec.Randomised = false, false
	rec.PolicyError = prob
	return levels
}

// safetyAlone evaluates the study's safety rule alone within the timeout.
func safetyAlone(ctx context.Context, rt *Runtime, input map[string]any, timeout time.Duration) ([]string, error) {
	v, err := policyInput(rt, input)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return rt.Policy.Safety(sctx, v)
}

// problemOf describes a policy failure for the record.
func problemOf(err error) *trial.PolicyProblem {
	p := &trial.PolicyProblem{Kind: "error", Message: err.Error()}
	var te *topdown.Error
	switch {
	case errors.Is(err, ErrPolicyTimeout):
		p.Kind = "timeout"
	case errors.As(err, &te):
		if te.Code == topdown.ConflictErr {
			p.Kind = "conflict"
		}
		if te.Location != nil {
			p.Location = fmt.Sprintf("%s:%d", te.Location.File, te.Location.Row)
		}
	case strings.Contains(err.Error(), "conflict"):
		p.Kind = "conflict"
	}
	return p
}

// IsFailSafe reports whether rec is a fail-safe decision (its policy failed).
func IsFailSafe(rec *trial.Record) bool { return rec.PolicyError != nil }
