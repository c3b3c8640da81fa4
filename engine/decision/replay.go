package decision

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/policies"
)

// Replay re-evaluates logged decisions (docs/replay.md).
//
// A replay is a per-decision counterfactual: it evaluates a policy on the
// input document the decision logged, verbatim, and repeats the rest of the
// pipeline with the code live decisions use (settle). What the pipeline
// takes from the participant's state rather than from the policy is taken
// from the record: the engine-owned availability reasons (opted_out and the
// burden caps) and the probabilities of state-dependent sources (budget).
// Nothing cascades: a decision that the new policy would not have delivered
// does not change the history (prompts today, minutes since the last
// prompt, budget) that later decisions logged.
//
// Draws are reproduced from their keys (study seed, participant, decision
// id, factor name; "_option" for the option), so a replay changes only
// what the policy (or the study's factors and seed) changes.

// ReplayResult is one replayed
type ReplayResult struct {
	// Logged is the record as given; Replayed is the record the replay
	// produced (identity fields copied from Logged, revision from the
	// runtime).
	Logged, Replayed *trial.Record
	// Output is the policy's decision document on the logged input.
	Output *policies.Output
	// Differences lists every field in which Replayed differs from Logged,
	// in a fixed order; none means the decision is reproduced.
	Differences []Difference
	// Notes say where the replay had to approximate (state the log does
	// not hold).
	Notes []string
}

// Difference is one field that differs between a logged decision and its
// replay.
type Difference struct {
	Field string `json:"field"`
	Old   any    `json:"old"`
	New   any    `json:"new"`
}

// String renders the difference as "field: old -> new".
func (d Difference) String() string {
	return fmt.Sprintf("%s: %s -> %s", d.Field, compactJSON(d.Old), compactJSON(d.New))
}

// ErrInputHash says that a record's input does not match its input hash:
// the record was changed after it was made.
var ErrInputHash = errors.New("the logged input does not match its input_hash")

// ErrMissed says that a record is a scheduled point the engine missed
// (engine_unavailable): no policy was evaluated, so there is nothing to
// evaluate again.
var ErrMissed = errors.New("the record is a scheduled point the engine missed (engine_unavailable): no policy was evaluated for it")

// ErrAnonymised says that a record was anonymised when its participant's
// data was erased (AnonymiseRecord): its input is gone, so the policy
// cannot be evaluated on it again.
var ErrAnonymised = errors.New("the record was anonymised when its participant's data was erased: its logged input is gone, so it cannot be evaluated again")

// Anonymised reports whether rec was anonymised by an erasure.
func Anonymised(rec *trial.Record) bool {
	return rec.InputHash == "" && (len(rec.Input) == 0 || string(bytes.TrimSpace(rec.Input)) == "{}")
}

// DecodeInput decodes a record's logged input document, checking it against
// the record's input hash. Numbers stay json.Number, as the engine wrote them.
func DecodeInput(rec *trial.Record) (map[string]any, error) {
	if Anonymised(rec) {
		return nil, ErrAnonymised
	}
	if IsMissed(rec) {
		return nil, ErrMissed
	}
	if len(rec.Input) == 0 {
		return nil, errors.New("the record holds no input document")
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Input))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("the logged input is not a JSON object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("the logged input has data after its JSON object")
	}
	if rec.InputHash != "" {
		// Re-encode canonically: the record may have been re-encoded on its
		// way here (an API answer escapes <, > and &), the document not.
		canon, err := trial.AppendJSON(nil, doc)
		if err != nil {
			return nil, fmt.Errorf("re-encoding the logged input: %w", err)
		}
		sum := sha256.Sum256(canon)
		if hex.EncodeToString(sum[:]) != rec.InputHash {
			return nil, ErrInputHash
		}
	}
	return doc, nil
}

// Replay re-evaluates a logged decision with rt's policy and compares the
// result with the log. An error means the decision could not be replayed at
// all (an unreadable input, a policy error); differences are not errors.
func Replay(ctx context.Context, rt *Runtime, rec *trial.Record) (*ReplayResult, error) {
	doc, err := DecodeInput(rec)
	if err != nil {
		return nil, err
	}
	inputVal, err := ast.InterfaceToValue(doc)
	if err != nil {
		return nil, fmt.Errorf("converting the logged input: %w", err)
	}
	out, err := rt.Policy.Eval(ctx, inputVal)
	if err != nil && IsFailSafe(rec) {
		// Logged as a fail-safe decision: the policy failing again is the
		// decision reproduced.
		return &ReplayResult{Logged: rec, Replayed: rec, Notes: []string{"the policy failed again, as when the decision was made (" +
			rec.PolicyError.Kind + "): the study's fail-safe (on_policy_error) made the decision"}}, nil
	}
	if err != nil {
		return nil, &PolicyError{Study: rt.Config.ID, Err: err}
	}
	return replayOutput(rt, rec, doc, out, false)
}

// replayOutput is Replay after the policy evaluation. With estimateCaps the
// engine's own availability rules (opt-out, burden caps) are computed from
// doc (a candidate study's caps on the logged history counts) instead of
// taken from the record.
func replayOutput(rt *Runtime, rec *trial.Record, doc map[string]any, out *policies.Output, estimateCaps bool) (*ReplayResult, error) {
	res := &ReplayResult{Logged: rec, Output: out}
	local, _ := path(doc, "local").(map[string]any)
	tz, _ := local["timezone"].(string)
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		return nil, fmt.Errorf("the logged input names no loadable time zone (local.timezone %q)", tz)
	}
	clock := newLocalClock(rec.Time, loc)
	assignment := map[string]string{}
	if m, ok := path(doc, "participant", "assignment").(map[string]any); ok {
		for k, v := range m {
			if s, ok := v.(string); ok {
				assignment[k] = s
			}
		}
	}
	r := &trial.Record{
		ID:                rec.ID,
		Study:             rec.Study,
		Participant:       rec.Participant,
		DecisionPoint:     rec.DecisionPoint,
		Time:              rec.Time,
		LocalTime:         rec.LocalTime,
		RecordedAt:        rec.RecordedAt,
		ExpiresAt:         rec.ExpiresAt,
		PolicyRevision:    rt.Revision,
		CatalogueRevision: rt.Catalogue.Revision(),
		Input:             rec.Input,
		InputHash:         rec.InputHash,
		IdempotencyKey:    rec.IdempotencyKey,
		LatencyMicros:     rec.LatencyMicros,
		Trigger:           rec.Trigger,
		EventID:           rec.EventID,
		ScheduledAt:       rec.ScheduledAt,
		Phase:             rec.Phase,
		StudyDay:          rec.StudyDay,
	}
	sd := stateDerived{
		noRandomise: !phaseRandomises(rt, rec.Phase),
		engineReasons: func() []string {
			reasons, note := loggedEngineReasons(rec, doc, estimateCaps)
			if note != "" {
				res.Notes = append(res.Notes, note)
			}
			return reasons
		},
		probability: func(f policies.Factor, fd *trial.FactorDraw) (float64, *trial.BudgetEntry) {
			if old := loggedFactor(rec, f.Name); old != nil && old.Probability != nil && old.Type == string(policies.Within) {
				// Budgeted and plugin-given probabilities came from the
				// state or the world at the time: the logged ones stand.
				fd.Source, fd.Budget, fd.Proposed, fd.Plugin = old.Source, old.Budget, old.Proposed, old.Plugin
				return *old.Probability, nil
			}
			res.Notes = append(res.Notes, fmt.Sprintf("factor %s: its probability (source %s) depends on the participant's state and the logged decision drew none; the replay used the study's probability %s",
				f.Name, f.ProbabilitySource, strconv.FormatFloat(f.Probability, 'g', -1, 64)))
			fd.Source = f.ProbabilitySource + " (not logged: study probability)"
			return f.Probability, nil
		},
	}
	if _, _, err := settle(rt, assignment, out, clock, sd, r); err != nil {
		return nil, &PolicyError{Study: rt.Config.ID, Err: err}
	}
	res.Replayed = r
	res.Differences = Compare(rec, r)
	return res, nil
}

// engineOwned says whether an availability reason is one the engine adds
// from the participant's state (not from the policy output).
func engineOwned(reason string) bool {
	switch reason {
	case ReasonOptedOut, ReasonBurdenDailyCap, ReasonBurden24hCap, ReasonBurdenMinGap, trial.ReasonEngineUnavailable:
		return true
	}
	return false
}

// loggedEngineReasons are the engine-owned availability reasons of a logged
//
//	A safety decision never computed them; for it they are
//
// estimated from the logged input (opt-out, and the caps on the history
// counts the input holds), and the note says so.
func loggedEngineReasons(rec *trial.Record, doc map[string]any, estimate bool) ([]string, string) {
	if rec.Action != trial.ActionSafety && !estimate {
		var out []string
		for _, r := range rec.UnavailableReasons {
			if engineOwned(r) {
				out = append(out, r)
			}
		}
		return out, ""
	}
	var out []string
	if b, _ := path(doc, "state", "preferences", "opted_out").(bool); b {
		out = append(out, ReasonOptedOut)
	}
	capAt := func(limit, count []string, reason string, atLeast bool) {
		l, lok := number(path(doc, limit...))
		c, cok := number(path(doc, count...))
		if !lok || !cok || l <= 0 {
			return
		}
		if (atLeast && c >= l) || (!atLeast && c < l) {
			out = append(out, reason)
		}
	}
	capAt([]string{"study", "burden", "max_per_day"}, []string{"history", "prompts_today"}, ReasonBurdenDailyCap, true)
	capAt([]string{"study", "burden", "max_per_24h"}, []string{"history", "prompts_24h"}, ReasonBurden24hCap, true)
	capAt([]string{"study", "burden", "min_minutes_between"}, []string{"history", "minutes_since_last_prompt"}, ReasonBurdenMinGap, false)
	if estimate {
		return out, "the candidate's burden caps differ: the engine's own availability rules (opt-out, burden caps) were computed from the logged history counts"
	}
	return out, "the logged decision was a safety decision, so the engine's own availability rules (opt-out, burden caps) were not applied then; the replay estimated them from the logged history counts"
}

func loggedFactor(rec *trial.Record, name string) *trial.FactorDraw {
	for i := range rec.Factors {
		if rec.Factors[i].Name == name {
			return &rec.Factors[i]
		}
	}
	return nil
}

// path looks up a nested key of a decoded JSON document (nil if absent).
func path(doc map[string]any, keys ...string) any {
	var cur any = doc
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

// Compare lists the fields in which two records of the same decision
// differ: action, reasons, safety, availability, candidates, every
// factor's level, probability, draw and source, the option and the
// rendered intervention, the tailoring values and conditions. Identity
// fields, revisions, times of recording and latency are not compared.
func Compare(old, cur *trial.Record) []Difference {
	var d []Difference
	add := func(field string, a, b any) {
		if !sameJSON(a, b) {
			d = append(d, Difference{Field: field, Old: a, New: b})
		}
	}
	add("action", old.Action, cur.Action)
	add("reasons", nonNil(old.Reasons), nonNil(cur.Reasons))
	add("safety_reasons", nonNil(old.SafetyReasons), nonNil(cur.SafetyReasons))
	add("available", old.Available, cur.Available)
	add("unavailable_reasons", nonNil(old.UnavailableReasons), nonNil(cur.UnavailableReasons))
	add("randomised", old.Randomised, cur.Randomised)
	add("candidates", old.Candidates, cur.Candidates)
	add("contraindicated", nonNil(old.Contraindicated), nonNil(cur.Contraindicated))
	add("conditions", nonNil(old.Conditions), nonNil(cur.Conditions))
	add("tailoring", old.Tailoring, cur.Tailoring)
	names := []string{}
	for _, f := range old.Factors {
		names = append(names, f.Name)
	}
	for _, f := range cur.Factors {
		if !slices.Contains(names, f.Name) {
			names = append(names, f.Name)
		}
	}
	for _, n := range names {
		a, b := loggedFactor(old, n), loggedFactor(cur, n)
		switch {
		case a == nil:
			add("factors."+n, nil, b)
		case b == nil:
			add("factors."+n, a, nil)
		default:
			add("factors."+n+".type", a.Type, b.Type)
			add("factors."+n+".level", a.Level, b.Level)
			add("factors."+n+".label", a.Label, b.Label)
			add("factors."+n+".probability", a.Probability, b.Probability)
			add("factors."+n+".proposed", a.Proposed, b.Proposed)
			add("factors."+n+".draw", a.Draw, b.Draw)
			add("factors."+n+".source", a.Source, b.Source)
			add("factors."+n+".budget", a.Budget, b.Budget)
		}
	}
	add("option", old.Option, cur.Option)
	var oldIV, curIV any
	if old.Intervention != nil {
		oldIV = old.Intervention.ID
	}
	if cur.Intervention != nil {
		curIV = cur.Intervention.ID
	}
	add("intervention.id", oldIV, curIV)
	if oldIV != nil && oldIV == curIV {
		add("intervention", old.Intervention, cur.Intervention)
	}
	return d
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sameJSON compares two values as JSON documents, so that numbers compare
// by value whether they came from the policy (json.Number) or from a log
// file (float64).
func sameJSON(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	return reflect.DeepEqual(normalJSON(a), normalJSON(b))
}

func normalJSON(v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return v
	}
	return out
}

func compactJSON(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(raw)
}
