package decision

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// Engine-owned availability reasons (docs/policy.md).
const (
	ReasonOptedOut       = "opted_out"
	ReasonBurdenDailyCap = "burden_daily_cap"
	ReasonBurden24hCap   = "burden_24h_cap"
	ReasonBurdenMinGap   = "burden_min_gap"
	ReasonNoCandidate    = "no_candidate"
	// ReasonPhaseNotRandomised: the participant's phase (e.g. a baseline)
	// records points but randomises and delivers nothing.
	ReasonPhaseNotRandomised = "phase_not_randomised"
	ReasonRandomisedNoPrompt = "randomised_no_prompt"
)

// optionKey keys the draw that chooses among candidates.
const optionKey = "_option"

// Request is one live decision to compute.
type Request struct {
	Snapshot       *trial.Snapshot
	Point          *policies.DecisionPoint
	Context        map[string]any
	Now            time.Time
	Location       *time.Location // the participant's time zone
	DecisionID     string
	IdempotencyKey string
	PolicyTimeout  time.Duration
	// Trigger is what opened the point (trial.TriggerApp when empty);
	// EventID the event that opened an event-triggered point; ScheduledAt
	// the instant a scheduled or triggered point was due (Now when zero).
	Trigger     string
	EventID     string
	ScheduledAt time.Time
	// Event is the event that opened an event point (input.event).
	Event *trial.Event
}

// Hooks are what a live decision asks of the service around it; each may be
// nil.
type Hooks struct {
	// Enrich calls the study's state enrichers: their calls and the derived
	// variables (input.derived).
	Enrich func(ctx context.Context, d PluginDecision, input map[string]any) ([]trial.PluginCall, map[string]any, error)
	// PluginProbability asks a probability provider for a plugin-sourced
	// factor's probability.
	PluginProbability func(ctx context.Context, f *policies.Factor, rec *trial.Record, inputJSON []byte) (float64, *trial.PluginCall)
	// ObservePolicy sees every policy evaluation.
	ObservePolicy func(start time.Time, out *policies.Output, err error)
}

// Decide computes one decision from a snapshot: the record (without its
// recording time and latency), the participant's next state and the
// component levels in force. It reads and writes no store.
func Decide(ctx context.Context, rt *Runtime, req Request, h Hooks) (*trial.Record, *trial.State, map[string]string, error) {
	snap, dp, now := req.Snapshot, req.Point, req.Now
	p := snap.Participant
	clock := newLocalClock(now, req.Location)
	hist := computeHistory(snap.State, now, clock)
	trigger, scheduledAt := req.Trigger, req.ScheduledAt
	if trigger == "" {
		trigger = trial.TriggerApp
	}
	if scheduledAt.IsZero() {
		scheduledAt = now
	}
	dpDoc := pointDoc(dp, trigger, scheduledAt, req.EventID)
	ph := phaseAt(rt, p, req.Location, now)
	input := buildInput(rt, snap, dpDoc, req.Context, now, clock, hist, ph, req.Event)
	var pluginCalls []trial.PluginCall
	if h.Enrich != nil {
		d := PluginDecision{Study: rt.Config.ID, Participant: p.ID, DecisionID: req.DecisionID, DecisionPoint: dp.ID, Time: now}
		var derived map[string]any
		var err error
		if pluginCalls, derived, err = h.Enrich(ctx, d, input); err != nil {
			return nil, nil, nil, err
		}
		if derived != nil {
			input["derived"] = derived
		}
	}
	out, policyErr := evaluate(ctx, rt, input, req.PolicyTimeout, h.ObservePolicy)
	if policyErr != nil && ctx.Err() != nil {
		return nil, nil, nil, policyErr // the request is gone: nothing to answer
	}
	inputJSON, err := trial.AppendJSON(make([]byte, 0, 2048), input)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encoding policy input: %w", err)
	}
	sum := sha256.Sum256(inputJSON)
	rec := &trial.Record{
		ID:                req.DecisionID,
		Study:             rt.Config.ID,
		Participant:       p.ID,
		DecisionPoint:     dp.ID,
		Trigger:           trigger,
		EventID:           req.EventID,
		Phase:             ph.phase,
		StudyDay:          ph.studyDay,
		Time:              now,
		LocalTime:         clock.t.Format(time.RFC3339),
		ExpiresAt:         now.Add(rt.Config.DecisionTTL.Duration),
		PolicyRevision:    rt.Revision,
		CatalogueRevision: rt.Catalogue.Revision(),
		Input:             inputJSON,
		InputHash:         hex.EncodeToString(sum[:]),
		IdempotencyKey:    req.IdempotencyKey,
		Plugins:           pluginCalls,
	}
	if trigger != trial.TriggerApp {
		rec.ScheduledAt = scheduledAt
	}
	if policyErr != nil {
		levels := failSafe(ctx, rt, p.Assignment, input, policyErr, req.PolicyTimeout, rec)
		return rec, nextState(snap.State, rec, now, clock.date, nil), levels, nil
	}
	fresh := *rec
	levels, budget, err := settle(rt, p.Assignment, out, clock, stateDerived{
		noRandomise:   !ph.randomise,
		engineReasons: func() []string { return engineReasons(rt, snap.State, now, clock) },
		probability:   liveProbability(ctx, rt, snap.State, out, clock, rec, inputJSON, h.PluginProbability),
	}, rec)
	if err != nil {
		// The policy's output could not be settled (e.g. an unknown
		// candidate): the fail-safe answers, as for an evaluation error.
		*rec = fresh
		levels := failSafe(ctx, rt, p.Assignment, input, &PolicyError{Study: rt.Config.ID, Err: err}, req.PolicyTimeout, rec)
		return rec, nextState(snap.State, rec, now, clock.date, nil), levels, nil
	}
	return rec, nextState(snap.State, rec, now, clock.date, budget), levels, nil
}

// evaluate runs the study's policy on an input document within the policy
// timeout.
func evaluate(ctx context.Context, rt *Runtime, input map[string]any, timeout time.Duration, observe func(time.Time, *policies.Output, error)) (*policies.Output, error) {
	inputVal, err := policyInput(rt, input)
	if err != nil {
		return nil, fmt.Errorf("building policy input: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	pstart := time.Now()
	out, err := rt.Policy.Eval(pctx, inputVal)
	cancel()
	if observe != nil {
		observe(pstart, out, err)
	}
	if err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("%w after %s", ErrPolicyTimeout, timeout)
	}
	if err != nil {
		return nil, &PolicyError{Study: rt.Config.ID, Err: err}
	}
	return out, nil
}

// stateDerived is what a decision takes from the participant's state
// rather than from the policy output: the engine-owned availability reasons
// and the probabilities of state-dependent sources (budget; any source that
// depends on the state or the world, such as a plugin, belongs here too). A
// live decision computes them from the state; replay takes them from the
// logged record (replay.go).
type stateDerived struct {
	// noRandomise: the participant's phase records the point but
	// randomises and delivers nothing (safety still answers).
	noRandomise   bool
	engineReasons func() []string
	// probability gives a state-dependent factor's probability before
	// clipping; it may set fd.Source and fd.Budget, and returns the budget
	// entry the decision adds to the state (nil for none).
	probability func(f policies.Factor, fd *trial.FactorDraw) (float64, *trial.BudgetEntry)
}

// settle turns a policy output into the decision: safety, availability,
// candidates, factor levels, option and rendering. It is the part of the
// pipeline that live decisions and replay share; rec holds the identity
// fields already.
func settle(rt *Runtime, assignment map[string]string, out *policies.Output, clock localClock, sd stateDerived, rec *trial.Record) (map[string]string, []trial.BudgetEntry, error) {
	rec.SafetyReasons, rec.Conditions, rec.Tailoring = out.SafetyReasons, out.Conditions, out.Tailoring
	rec.Factors = make([]trial.FactorDraw, 0, len(rt.Config.Factors))
	levels := make(map[string]string, len(rt.Config.Factors))
	for _, f := range rt.between {
		label := assignment[f.Name]
		level := 0
		if label == f.Levels[1] {
			level = 1
		}
		levels[f.Name] = label
		rec.Factors = append(rec.Factors, trial.FactorDraw{Name: f.Name, Type: string(policies.Between), Level: level, Label: label})
	}
	var budget []trial.BudgetEntry
	switch {
	case len(out.SafetyReasons) > 0:
		rec.Action = trial.ActionSafety
		rec.Reasons = out.SafetyReasons
	default:
		if err := availability(rt, out, sd.engineReasons(), rec); err != nil {
			return nil, nil, err
		}
		if rec.Available && sd.noRandomise {
			rec.Action = trial.ActionNone
			rec.Reasons = []string{ReasonPhaseNotRandomised}
		} else if rec.Available {
			budget = randomise(rt, rec.Participant, out, levels, clock, sd.probability, rec)
		} else {
			rec.Action = trial.ActionNone
			rec.Reasons = rec.UnavailableReasons
		}
	}
	return levels, budget, nil
}

// engineReasons are the engine's hard availability rules on the state:
// opt-out and the burden caps.
func engineReasons(rt *Runtime, st *trial.State, now time.Time, clock localClock) []string {
	var reasons []string
	if st.Preferences.OptedOut {
		reasons = append(reasons, ReasonOptedOut)
	}
	return append(reasons, burdenReasons(rt.Config.Burden, st.Prompts, now, clock)...)
}

// availability combines the policy's reasons with the engine's and filters
// the candidates. It is decided before any randomisation.
func availability(rt *Runtime, out *policies.Output, engineReasons []string, rec *trial.Record) error {
	reasons := append([]string(nil), out.UnavailableReasons...)
	for _, r := range engineReasons {
		reasons = appendUnique(reasons, r)
	}
	conditions := map[string]bool{}
	for _, c := range out.Conditions {
		conditions[c] = true
	}
	var kept []trial.Candidate
	for _, c := range out.Candidates {
		iv, ok := rt.Catalogue.Get(c.ID)
		if !ok {
			return fmt.Errorf("candidate %q is not in the study's intervention catalogue", c.ID)
		}
		if contraindicated(iv, conditions) {
			rec.Contraindicated = append(rec.Contraindicated, c.ID)
			continue
		}
		kept = append(kept, c)
	}
	rec.Candidates = kept
	if len(kept) == 0 && len(reasons) == 0 {
		reasons = append(reasons, ReasonNoCandidate)
	}
	rec.UnavailableReasons = reasons
	rec.Available = len(reasons) == 0
	return nil
}

// burdenReasons checks the hard caps against every recorded delivery, also
// those recorded for a later time than this decision (a late request from
// an app that was offline, or concurrent requests committed out of order):
// a delivery now must not make any local day, any 24 hours or any gap break
// the caps.
func burdenReasons(b policies.Burden, prompts []trial.Prompt, now time.Time, clock localClock) []string {
	var reasons []string
	if b.MaxPerDay > 0 {
		n := 0
		for _, p := range prompts {
			if clock.sameDay(p.Time) {
				n++
			}
		}
		if n >= b.MaxPerDay {
			reasons = append(reasons, ReasonBurdenDailyCap)
		}
	}
	if b.MaxPer24h > 0 && exceeds24h(prompts, now, b.MaxPer24h) {
		reasons = append(reasons, ReasonBurden24hCap)
	}
	if b.MinMinutesBetween > 0 {
		gap := time.Duration(b.MinMinutesBetween) * time.Minute
		for _, p := range prompts {
			if d := now.Sub(p.Time); d < gap && d > -gap {
				reasons = append(reasons, ReasonBurdenMinGap)
				break
			}
		}
	}
	return reasons
}

// exceeds24h reports whether a delivery at now would put more than max
// deliveries into some 24-hour window: windows that could hold now start
// at now or at a delivery in the 24 hours before it.
func exceeds24h(prompts []trial.Prompt, now time.Time, max int) bool {
	const day = 24 * time.Hour
	count := func(start time.Time) int {
		n := 1 // the delivery at now
		for _, p := range prompts {
			if !p.Time.Before(start) && p.Time.Before(start.Add(day)) {
				n++
			}
		}
		return n
	}
	if count(now) > max {
		return true
	}
	for _, p := range prompts {
		if d := now.Sub(p.Time); d > 0 && d < day && count(p.Time) > max {
			return true
		}
	}
	return false
}

func contraindicated(iv *interventions.Intervention, conditions map[string]bool) bool {
	for _, c := range iv.Contraindications {
		if conditions[c] {
			return true
		}
	}
	return false
}

// randomise draws every within-person factor, then (unless the delivery
// factor said no) the option, and renders it.
func randomise(rt *Runtime, participant string, out *policies.Output, levels map[string]string, clock localClock, stateProbability func(policies.Factor, *trial.FactorDraw) (float64, *trial.BudgetEntry), rec *trial.Record) []trial.BudgetEntry {
	rec.Randomised = len(rt.within) > 0
	deliver := true
	var budget []trial.BudgetEntry
	for _, f := range rt.within {
		prob := f.Probability
		fd := trial.FactorDraw{Name: f.Name, Type: string(policies.Within), Source: f.ProbabilitySource}
		var entry *trial.BudgetEntry
		switch f.ProbabilitySource {
		case policies.SourcePolicy:
			if pp, ok := out.Probabilities[f.Name]; ok {
				proposed := pp
				fd.Proposed = &proposed
				prob = pp
			} else {
				fd.Source = policies.SourceFixed + " (policy gave none)"
			}
		case policies.SourceBudget, policies.SourcePlugin:
			prob, entry = stateProbability(f, &fd)
		}
		prob = experiments.Clip(prob, f.Bounds[0], f.Bounds[1])
		u := rt.drawer.Uniform(participant, rec.ID, f.Name)
		fd.Probability, fd.Draw = &prob, &u
		fd.Level = experiments.Level(u, prob)
		fd.Label = f.Levels[fd.Level]
		levels[f.Name] = fd.Label
		rec.Factors = append(rec.Factors, fd)
		if entry != nil {
			entry.Rho, entry.Treated = prob, fd.Level == 1
			budget = append(budget, *entry)
		}
		if f.Name == rt.Config.DeliveryFactor && fd.Level == 0 {
			deliver = false
		}
	}
	if !deliver {
		rec.Action = trial.ActionNone
		rec.Reasons = []string{ReasonRandomisedNoPrompt}
		return budget
	}
	weights := make([]float64, len(rec.Candidates))
	for i, c := range rec.Candidates {
		weights[i] = c.Weight
	}
	u := rt.drawer.Uniform(participant, rec.ID, optionKey)
	i, prob := experiments.Weighted(u, weights)
	chosen := rec.Candidates[i]
	rec.Option = &trial.OptionDraw{ID: chosen.ID, Probability: prob, Draw: u}
	iv, _ := rt.Catalogue.Get(chosen.ID)
	content := make(map[string]string, len(rt.content))
	for name := range rt.content {
		content[name] = levels[name]
	}
	target, _ := rec.Tailoring["need"].(string)
	r := iv.Render(content, interventions.Vars{TimeOfDay: timeOfDay(clock.t.Hour()), Target: target})
	rec.Intervention = &r
	rec.Action = trial.ActionDeliver
	rec.Reasons = []string{}
	if chosen.Reason != "" {
		rec.Reasons = []string{chosen.Reason}
	}
	return budget
}

// liveProbability gives the probabilities that do not come from the study
// or the policy: a budgeted factor's from the day's budget points in the
// participant's state, a plugin-sourced factor's from its probability
// provider (or its fallback). Replay takes both from the record instead.
func liveProbability(ctx context.Context, rt *Runtime, st *trial.State, out *policies.Output, clock localClock, rec *trial.Record, inputJSON []byte, plugin func(context.Context, *policies.Factor, *trial.Record, []byte) (float64, *trial.PluginCall)) func(policies.Factor, *trial.FactorDraw) (float64, *trial.BudgetEntry) {
	budget := budgetProbability(rt, st, out, clock)
	return func(f policies.Factor, fd *trial.FactorDraw) (float64, *trial.BudgetEntry) {
		if f.ProbabilitySource != policies.SourcePlugin {
			return budget(f, fd)
		}
		if plugin == nil {
			plugin = noPlugin
		}
		prob, call := plugin(ctx, &f, rec, inputJSON)
		fd.Plugin = call
		if call.Fallback == "" {
			proposed := prob
			fd.Proposed = &proposed
		} else {
			fd.Source = policies.SourceFixed + " (plugin fallback: " + call.Reason + ")"
		}
		return prob, nil
	}
}

// budgetProbability is the live probability of budgeted factors: from the
// day's budget points in the participant's state.
func budgetProbability(rt *Runtime, st *trial.State, out *policies.Output, clock localClock) func(policies.Factor, *trial.FactorDraw) (float64, *trial.BudgetEntry) {
	return func(f policies.Factor, fd *trial.FactorDraw) (float64, *trial.BudgetEntry) {
		br := rt.budgets[f.Name]
		t, inDay := br.index(clock.t.Hour()*60 + clock.t.Minute())
		if !inDay {
			fd.Source = policies.SourceFixed + " (outside the budget's day)"
			return f.Probability, nil
		}
		stratum := ""
		if br.stratum != "" {
			stratum = fmt.Sprint(out.Tailoring[br.stratum])
		}
		var past []experiments.BudgetPoint
		for _, be := range st.Budget {
			if be.Factor == f.Name && be.Date == clock.date && be.Stratum == stratum {
				past = append(past, experiments.BudgetPoint{T: be.T, Rho: be.Rho, Treated: be.Treated})
			}
		}
		rho, used, remaining := br.b.Probability(t, past)
		fd.Budget = &trial.BudgetDraw{Stratum: stratum, T: t, Used: used, Remaining: remaining}
		return rho, &trial.BudgetEntry{Factor: f.Name, Date: clock.date, Stratum: stratum, T: t}
	}
}

// nextState is the participant's state after the decision: the old state
// (never modified) with the decision, and a delivery, added to its history.
func nextState(old *trial.State, rec *trial.Record, now time.Time, today string, budget []trial.BudgetEntry) *trial.State {
	st := *old
	if len(budget) > 0 || len(old.Budget) > 0 {
		// Keep today's budget points only: the budget restarts every day.
		st.Budget = make([]trial.BudgetEntry, 0, len(old.Budget)+len(budget))
		for _, be := range old.Budget {
			if be.Date == today {
				st.Budget = append(st.Budget, be)
			}
		}
		st.Budget = append(st.Budget, budget...)
	}
	st.Version = old.Version + 1
	st.Decisions = appendBounded(old.Decisions, now, trial.KeepDecisions, func(t time.Time) bool { return now.Sub(t) > trial.DecisionWindow })
	if rec.Action == trial.ActionDeliver {
		st.Prompts = appendBounded(old.Prompts, trial.Prompt{DecisionID: rec.ID, Time: now, Intervention: rec.Option.ID}, trial.KeepPrompts,
			func(p trial.Prompt) bool { return now.Sub(p.Time) > trial.HistoryWindow })
	}
	return &st
}

// appendBounded returns a new slice: old without its expired head, plus v,
// at most keep long. old is never modified.
func appendBounded[T any](old []T, v T, keep int, expired func(T) bool) []T {
	cut := 0
	for cut < len(old) && (len(old)-cut >= keep || expired(old[cut])) {
		cut++
	}
	out := make([]T, 0, len(old)-cut+1)
	out = append(out, old[cut:]...)
	return append(out, v)
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// policyInput converts the input document to the AST value the policy
// evaluates; the constant input.study is converted once per study version
// (ast.InterfaceToValue takes an ast.Value as it is).
func policyInput(rt *Runtime, input map[string]any) (ast.Value, error) {
	study, ok := input["study"]
	if ok && rt.studyValue != nil {
		input["study"] = rt.studyValue
		defer func() { input["study"] = study }()
	}
	return ast.InterfaceToValue(input)
}

// noPlugin answers for a probability provider when the caller runs no
// plugins (offline tools): the factor's fixed probability, as the
// fallback of an unavailable plugin.
func noPlugin(_ context.Context, f *policies.Factor, _ *trial.Record, _ []byte) (float64, *trial.PluginCall) {
	return f.Probability, &trial.PluginCall{Name: f.Plugin, Kind: policies.PluginProbability, Fallback: policies.FallbackDefaultProbability, Reason: "unavailable"}
}

// PluginDecision identifies the decision a plugin call is made for.
type PluginDecision struct {
	Study         string    `json:"study"`
	Participant   string    `json:"participant"`
	DecisionID    string    `json:"decision_id"`
	DecisionPoint string    `json:"decision_point"`
	Time          time.Time `json:"time"`
}

// UnmarshalJSON also reads the field names written before the JSON tags
// existed ("DecisionID", "DecisionPoint"), as in older notifier spool and
// dead-letter files.
func (d *PluginDecision) UnmarshalJSON(b []byte) error {
	type plain PluginDecision
	var v struct {
		plain
		OldDecisionID    string `json:"DecisionID"`
		OldDecisionPoint string `json:"DecisionPoint"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = PluginDecision(v.plain)
	if d.DecisionID == "" {
		d.DecisionID = v.OldDecisionID
	}
	if d.DecisionPoint == "" {
		d.DecisionPoint = v.OldDecisionPoint
	}
	return nil
}

// ErrPolicyTimeout: the study's policy did not finish within the policy
// timeout. It arrives wrapped in a PolicyError.
var ErrPolicyTimeout = errors.New("policy evaluation timed out")

// PolicyError is a failure of the study's policy (evaluation error or an
// output that breaks the contract); nothing is recorded.
type PolicyError struct {
	Study string
	Err   error
}

func (e *PolicyError) Error() string { return fmt.Sprintf("policy of study %s: %v", e.Study, e.Err) }
func (e *PolicyError) Unwrap() error { return e.Err }
