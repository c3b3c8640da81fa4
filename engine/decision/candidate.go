package decision

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// A candidate is another version of a study (a new policy, a new
// study.yaml, or both) that logged decisions are evaluated with, to see what
// it would change: `jitai replay --policy` offline, and shadowing on live
// traffic (docs/replay.md, docs/study.md "Shadowing a candidate").
//
// A decision is evaluated with the candidate as Replay evaluates it, with
// one difference: the candidate's study settings (input.study: burden caps,
// quiet hours, factors) replace the logged ones, and when its burden caps
// differ the engine's own caps are computed again on the logged history
// counts. Everything the participant's state gave stays as logged, and the
// draws are the logged decision's (same keys), so only what the candidate
// changes can change.

// Candidate evaluates decisions of a serving study with a candidate version.
type Candidate struct {
	// RT is the candidate's runtime.
	RT *Runtime
	// serving and cand inspect the rules of each version.
	serving, cand *policies.Inspector
	// study is the candidate's input.study, decoded as a logged input is
	// (numbers as json.Number), so both documents compare alike.
	study any
	// newCaps: the candidate's burden caps differ from the serving ones.
	newCaps bool
}

// NewCandidate prepares cand for comparisons with decisions made by serving.
func NewCandidate(ctx context.Context, serving, cand *Runtime) (*Candidate, error) {
	si, err := policies.NewInspector(ctx, serving.Policy)
	if err != nil {
		return nil, err
	}
	ci, err := policies.NewInspector(ctx, cand.Policy)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(cand.studyInput)
	if err != nil {
		return nil, fmt.Errorf("candidate %s: encoding its study settings: %w", cand.Config.ID, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var study any
	if err := dec.Decode(&study); err != nil {
		return nil, fmt.Errorf("candidate %s: decoding its study settings: %w", cand.Config.ID, err)
	}
	return &Candidate{RT: cand, serving: si, cand: ci, study: study,
		newCaps: !sameJSON(serving.studyInput["burden"], cand.studyInput["burden"])}, nil
}

// Outcome is one logged decision evaluated with a candidate.
type Outcome struct {
	*ReplayResult
	// Changes names what really changes for the participant (RealChanges);
	// none means the candidate decides the same.
	Changes []string
	// Rules are the rules whose values differ between the logged decision
	// and the candidate's (set only when something changes).
	Rules []string
}

// Evaluate evaluates a logged decision with the candidate. An error means
// it could not be evaluated (an unreadable or anonymised input, a missed
// point, the candidate's policy failing on it).
func (c *Candidate) Evaluate(ctx context.Context, rec *trial.Record) (*Outcome, error) {
	doc, err := DecodeInput(rec)
	if err != nil {
		return nil, err
	}
	cf := maps.Clone(doc)
	cf["study"] = c.study
	curVal, err := ast.InterfaceToValue(cf)
	if err != nil {
		return nil, fmt.Errorf("converting the input: %w", err)
	}
	out, err := c.RT.Policy.Eval(ctx, curVal)
	if err != nil {
		return nil, &PolicyError{Study: c.RT.Config.ID, Err: err}
	}
	res, err := replayOutput(c.RT, rec, cf, out, c.newCaps)
	if err != nil {
		return nil, err
	}
	o := &Outcome{ReplayResult: res, Changes: RealChanges(rec, res.Replayed)}
	if len(o.Changes) == 0 {
		return o, nil
	}
	oldVal, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, fmt.Errorf("converting the logged input: %w", err)
	}
	if o.Rules, err = policies.ChangedRuleValuesOn(ctx, c.serving, oldVal, c.cand, curVal); err != nil {
		return nil, err
	}
	return o, nil
}

// What RealChanges reports.
const (
	ChangeAction  = "action"
	ChangeReasons = "reasons"
	ChangeOption  = "option"
)

// RealChanges says what differs between two decisions for the participant:
// the action, the reasons (the decision's, safety's and availability's, as
// sets), or the option (the intervention chosen, the option drawn, a
// factor's level). Probabilities, draws, candidates, tailoring values and
// revisions are not changes on their own: they change nothing the
// participant receives unless one of these does.
func RealChanges(old, cur *trial.Record) []string {
	var out []string
	if old.Action != cur.Action {
		out = append(out, ChangeAction)
	}
	if !sameSet(old.Reasons, cur.Reasons) || !sameSet(old.SafetyReasons, cur.SafetyReasons) || !sameSet(old.UnavailableReasons, cur.UnavailableReasons) {
		out = append(out, ChangeReasons)
	}
	if OptionOf(old) != OptionOf(cur) || !sameLevels(old, cur) {
		out = append(out, ChangeOption)
	}
	return out
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// OptionOf is what a decision chose to deliver: the intervention, else
// the option drawn ("" for none).
func OptionOf(r *trial.Record) string {
	switch {
	case r.Intervention != nil:
		return r.Intervention.ID
	case r.Option != nil:
		return r.Option.ID
	}
	return ""
}

func sameLevels(a, b *trial.Record) bool {
	if len(a.Factors) != len(b.Factors) {
		return false
	}
	for i := range a.Factors {
		f := loggedFactor(b, a.Factors[i].Name)
		if f == nil || f.Level != a.Factors[i].Level {
			return false
		}
	}
	return true
}
