package decision

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/policies"
)

// Explanation says, in a designer's words, why a logged decision came out
// as it did: which rules of the policy fired and the input values they
// read, why the person was unavailable, which factor levels were drawn with
// what probability, which option was chosen among which candidates.
type Explanation struct {
	DecisionID    string    `json:"decision_id"`
	Study         string    `json:"study"`
	Participant   string    `json:"participant_id"`
	DecisionPoint string    `json:"decision_point"`
	Time          time.Time `json:"time"`
	LocalTime     string    `json:"local_time"`
	Action        string    `json:"action"`
	Reasons       []string  `json:"reasons"`
	// PolicyRevision is the revision the decision was made with;
	// LoadedRevision the one loaded now. Rules are shown only when they
	// are the same (PolicyEvaluated).
	PolicyRevision  string `json:"policy_revision"`
	LoadedRevision  string `json:"loaded_revision"`
	PolicyEvaluated bool   `json:"policy_evaluated"`
	// Anonymised says the record was anonymised by an erasure: its input
	// is gone, so the policy is not evaluated again.
	Anonymised bool `json:"anonymised,omitempty"`
	// Missed: a scheduled point the engine did not decide within its window
	// (engine_unavailable); no policy was evaluated for it.
	Missed bool `json:"missed,omitempty"`
	// CatalogueRevision and LoadedCatalogue are the same for the
	// intervention catalogue the policy reads (data.jitai.catalogue): the
	// policy is evaluated only when both revisions are the same.
	CatalogueRevision string `json:"catalogue_revision"`
	LoadedCatalogue   string `json:"loaded_catalogue_revision"`
	// Safety lists the safety reasons that pre-empted the
	Safety    []ReasonExplanation `json:"safety,omitempty"`
	Available bool                `json:"available"`
	// Unavailable lists each availability reason with where it came from.
	Unavailable []ReasonExplanation `json:"unavailable,omitempty"`
	Factors     []FactorExplanation `json:"factors,omitempty"`
	Option      *OptionExplanation  `json:"option,omitempty"`
	// Rules are the policy's rules whose bodies succeeded for the logged
	// input (constants left out), with the input values they read.
	Rules []RuleExplanation `json:"rules,omitempty"`
	// Reproduced says whether re-evaluating gives the logged decision
	// (only when PolicyEvaluated); Differences lists what differs.
	Reproduced  *bool        `json:"reproduced,omitempty"`
	Differences []Difference `json:"differences,omitempty"`
	// Summary is the explanation as sentences.
	Summary []string `json:"summary"`
}

// ReasonExplanation is one safety or availability reason.
type ReasonExplanation struct {
	Reason string `json:"reason"`
	// Source is "policy" (the study's Rego) or "engine" (the engine's own
	// rules on the participant's state: opt-out, burden caps, no candidate).
	Source string `json:"source"`
	// Rules locate the policy rules that produced the reason (file:line).
	Rules  []string `json:"rules,omitempty"`
	Detail string   `json:"detail"`
}

// FactorExplanation is one factor's level in the
type FactorExplanation struct {
	Name        string            `json:"name"`
	Type        string            `json:"type"`
	Level       int               `json:"level"`
	Label       string            `json:"label"`
	Probability *float64          `json:"probability,omitempty"`
	Proposed    *float64          `json:"proposed,omitempty"`
	Draw        *float64          `json:"draw,omitempty"`
	Source      string            `json:"source,omitempty"`
	Budget      *trial.BudgetDraw `json:"budget,omitempty"`
	Detail      string            `json:"detail"`
}

// OptionExplanation is how the intervention was chosen.
type OptionExplanation struct {
	Chosen      string                 `json:"chosen"`
	Probability float64                `json:"probability"`
	Draw        float64                `json:"draw"`
	Candidates  []CandidateExplanation `json:"candidates"`
	// Contraindicated are candidates removed for the conditions in force.
	Contraindicated []string `json:"contraindicated,omitempty"`
	Conditions      []string `json:"conditions,omitempty"`
}

// CandidateExplanation is one candidate with its chance of being chosen.
type CandidateExplanation struct {
	ID          string  `json:"id"`
	Weight      float64 `json:"weight"`
	Probability float64 `json:"probability"`
	Reason      string  `json:"reason,omitempty"`
	Chosen      bool    `json:"chosen,omitempty"`
}

// RuleExplanation is a rule that fired, its value and what it read.
type RuleExplanation struct {
	policies.FiredRule
	// Value is the rule's value in this decision; omitted (ValueOmitted)
	// when it is large, such as the catalogue.
	Value        any          `json:"value,omitempty"`
	ValueOmitted bool         `json:"value_omitted,omitempty"`
	Inputs       []InputValue `json:"inputs,omitempty"`
	// RuleValues are the values of the other rules this one used.
	RuleValues []InputValue `json:"rule_values,omitempty"`
}

// InputValue is an input reference and its value in the logged input.
type InputValue struct {
	Ref     string `json:"ref"`
	Value   any    `json:"value,omitempty"`
	Defined bool   `json:"defined"`
	// Omitted says a large rule value (the catalogue) is left out.
	Omitted bool `json:"omitted,omitempty"`
}

// maxRuleValue is the longest rule value (as JSON) an explanation shows.
const maxRuleValue = 400

// Explain explains a logged  rt is the study as loaded now; when
// its policy revision is not the record's, the explanation says so and
// shows what the record holds, without evaluating the wrong policy.
func Explain(ctx context.Context, rt *Runtime, rec *trial.Record) (*Explanation, error) {
	ex := &Explanation{
		DecisionID: rec.ID, Study: rec.Study, Participant: rec.Participant, DecisionPoint: rec.DecisionPoint,
		Time: rec.Time, LocalTime: rec.LocalTime, Action: rec.Action, Reasons: nonNil(rec.Reasons),
		PolicyRevision: rec.PolicyRevision, LoadedRevision: rt.Revision, Available: rec.Available,
		CatalogueRevision: rec.CatalogueRevision, LoadedCatalogue: rt.Catalogue.Revision(),
	}
	ex.Anonymised = Anonymised(rec)
	ex.Missed = IsMissed(rec)
	var doc map[string]any
	if !ex.Anonymised && !ex.Missed {
		var err error
		if doc, err = DecodeInput(rec); err != nil {
			return nil, err
		}
	}
	var fired []policies.FiredRule
	if !ex.Anonymised && !ex.Missed && rec.PolicyRevision == rt.Revision && rec.CatalogueRevision == ex.LoadedCatalogue {
		ex.PolicyEvaluated = true
		inputVal, err := ast.InterfaceToValue(doc)
		if err != nil {
			return nil, fmt.Errorf("converting the logged input: %w", err)
		}
		res, err := Replay(ctx, rt, rec)
		if err != nil {
			return nil, err
		}
		ok := len(res.Differences) == 0
		ex.Reproduced, ex.Differences = &ok, res.Differences
		in, err := policies.NewInspector(ctx, rt.Policy)
		if err != nil {
			return nil, err
		}
		if fired, err = in.Fired(ctx, inputVal); err != nil {
			return nil, err
		}
		values, err := in.Rules(ctx, inputVal)
		if err != nil {
			return nil, err
		}
		for _, f := range fired {
			if f.Constant && len(f.Reads) == 0 {
				continue
			}
			re := RuleExplanation{FiredRule: f}
			if v, ok := values[f.Name]; ok {
				if raw, err := json.Marshal(v); err == nil && len(raw) <= maxRuleValue {
					re.Value = v
				} else {
					re.ValueOmitted = true
				}
			}
			for _, ref := range f.Reads {
				v, ok := valueAt(doc, ref)
				re.Inputs = append(re.Inputs, InputValue{Ref: ref, Value: v, Defined: ok})
			}
			for _, ref := range f.Uses {
				v, ok := valueAt(values, ref)
				iv := InputValue{Ref: ref, Value: v, Defined: ok}
				if raw, err := json.Marshal(v); err != nil || len(raw) > maxRuleValue {
					iv.Value, iv.Omitted = nil, true
				}
				re.RuleValues = append(re.RuleValues, iv)
			}
			ex.Rules = append(ex.Rules, re)
		}
	}
	// rulesFor finds the "contains" rules that added a reason, and says
	// what they read.
	rulesFor := func(reason string) ([]string, string) {
		var locs, read []string
		for _, r := range ex.Rules {
			if s, ok := r.Key.(string); ok && s == reason && strings.Contains(r.Head, " contains ") {
				locs = append(locs, fmt.Sprintf("%s:%d", r.File, r.Line))
				for _, v := range append(append([]InputValue(nil), r.Inputs...), r.RuleValues...) {
					read = append(read, v.text())
				}
			}
		}
		detail := "a rule of the policy"
		if len(read) > 0 {
			detail += ", which read " + strings.Join(read, ", ")
		}
		return locs, detail
	}
	for _, r := range rec.SafetyReasons {
		locs, detail := rulesFor(r)
		ex.Safety = append(ex.Safety, ReasonExplanation{Reason: r, Source: "policy", Rules: locs,
			Detail: detail + ": a safety decision pre-empts everything else, shows the crisis signposting and is never randomised"})
	}
	for _, r := range rec.UnavailableReasons {
		re := ReasonExplanation{Reason: r, Source: "policy"}
		if engineOwned(r) || r == ReasonNoCandidate || r == trial.ReasonEngineUnavailable {
			re.Source = "engine"
			re.Detail = reasonDetail(rt, rec, doc, r)
		} else if locs, detail := rulesFor(r); len(locs) > 0 {
			re.Rules, re.Detail = locs, detail
		} else {
			re.Detail = reasonDetail(rt, rec, doc, r)
		}
		ex.Unavailable = append(ex.Unavailable, re)
	}
	for _, f := range rec.Factors {
		ex.Factors = append(ex.Factors, FactorExplanation{Name: f.Name, Type: f.Type, Level: f.Level, Label: f.Label,
			Probability: f.Probability, Proposed: f.Proposed, Draw: f.Draw, Source: f.Source, Budget: f.Budget,
			Detail: factorDetail(rt, f)})
	}
	if rec.Option != nil {
		oe := &OptionExplanation{Chosen: rec.Option.ID, Probability: rec.Option.Probability, Draw: rec.Option.Draw,
			Contraindicated: rec.Contraindicated, Conditions: rec.Conditions}
		total := 0.0
		for _, c := range rec.Candidates {
			if c.Weight > 0 {
				total += c.Weight
			}
		}
		for _, c := range rec.Candidates {
			p := 0.0
			if total > 0 && c.Weight > 0 {
				p = c.Weight / total
			}
			oe.Candidates = append(oe.Candidates, CandidateExplanation{ID: c.ID, Weight: c.Weight, Probability: p, Reason: c.Reason, Chosen: c.ID == rec.Option.ID})
		}
		ex.Option = oe
	}
	ex.Summary = summarise(ex, rec)
	return ex, nil
}

// text renders the value as "ref = value".
func (v InputValue) text() string {
	if !v.Defined {
		return v.Ref + " undefined"
	}
	if v.Omitted {
		return v.Ref + " (large)"
	}
	raw, err := json.Marshal(v.Value)
	if err != nil || len(raw) > 80 {
		return v.Ref + " (see below)"
	}
	return v.Ref + " = " + string(raw)
}

// valueAt looks up a reference (input.a.b[0], or rule.a for a map of rule
// values) in a decoded JSON document: the reference's head names the root.
func valueAt(root map[string]any, ref string) (any, bool) {
	r, err := ast.ParseRef(ref)
	if err != nil || len(r) == 0 {
		// A bare name ("need") is not a ref to the parser.
		v, ok := root[ref]
		return v, ok
	}
	var cur any = root
	terms := r[1:]
	if !r.HasPrefix(ast.InputRootRef) {
		name, ok := r[0].Value.(ast.Var)
		if !ok {
			return nil, false
		}
		// A rule: its name is the first key.
		terms = append([]*ast.Term{ast.StringTerm(string(name))}, r[1:]...)
	}
	for _, t := range terms {
		switch k := t.Value.(type) {
		case ast.String:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, false
			}
			if cur, ok = m[string(k)]; !ok {
				return nil, false
			}
		case ast.Number:
			a, ok := cur.([]any)
			i, isInt := k.Int()
			if !ok || !isInt || i < 0 || i >= len(a) {
				return nil, false
			}
			cur = a[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func reasonDetail(rt *Runtime, rec *trial.Record, doc map[string]any, reason string) string {
	b := rt.Config.Burden
	hist := func(key string) string {
		v := path(doc, "history", key)
		if v == nil {
			return "none"
		}
		return fmt.Sprint(v)
	}
	switch reason {
	case ReasonOptedOut:
		return "the participant has opted out of prompts (engine rule on their preferences)"
	case ReasonBurdenDailyCap:
		return fmt.Sprintf("engine burden cap: at most %d prompts per local day (burden.max_per_day); %s had been delivered today before this decision point", b.MaxPerDay, hist("prompts_today"))
	case ReasonBurden24hCap:
		return fmt.Sprintf("engine burden cap: at most %d prompts in any 24 hours (burden.max_per_24h); %s had been delivered in the 24 hours before", b.MaxPer24h, hist("prompts_24h"))
	case ReasonBurdenMinGap:
		return fmt.Sprintf("engine burden cap: at least %d minutes between prompts (burden.min_minutes_between); minutes since the last prompt: %s", b.MinMinutesBetween, hist("minutes_since_last_prompt"))
	case ReasonNoCandidate:
		if len(rec.Contraindicated) > 0 {
			return "the policy offered no intervention that may be given now: " + strings.Join(rec.Contraindicated, ", ") + " were contraindicated by the conditions " + strings.Join(rec.Conditions, ", ")
		}
		return "the policy offered no candidate intervention"
	case trial.ReasonEngineUnavailable:
		return fmt.Sprintf("the trial clock did not decide this scheduled point within its window (decision_ttl %s), so it was recorded as missed: no policy was evaluated and nothing was randomised or delivered", rt.Config.DecisionTTL.Duration)
	case "policy_unavailable":
		return "the policy said available = false without a reason"
	}
	return "a rule of the policy"
}

func factorDetail(rt *Runtime, f trial.FactorDraw) string {
	if f.Type == string(policies.Between) {
		return fmt.Sprintf("%s: %s, assigned once at enrolment (between-person factor)", f.Name, f.Label)
	}
	if f.Probability == nil || f.Draw == nil {
		return fmt.Sprintf("%s: %s", f.Name, f.Label)
	}
	p, u := *f.Probability, *f.Draw
	var levels [2]string
	var bounds []float64
	for _, cf := range rt.Config.Factors {
		if cf.Name == f.Name {
			levels = [2]string{cf.Levels[0], cf.Levels[1]}
			bounds = cf.Bounds[:]
		}
	}
	cmp := "below"
	if u >= p {
		cmp = "not below"
	}
	var src string
	switch {
	case f.Budget != nil:
		src = fmt.Sprintf("budgeted: decision time %d of the day, %s treatments used so far, %s available times expected to remain", f.Budget.T, num(f.Budget.Used), num(f.Budget.Remaining))
		if f.Budget.Stratum != "" {
			src += ", stratum " + f.Budget.Stratum
		}
	case f.Proposed != nil && *f.Proposed != p:
		src = fmt.Sprintf("proposed by the policy as %s and clipped to the bounds", num(*f.Proposed))
		if len(bounds) == 2 {
			src += fmt.Sprintf(" [%s, %s]", num(bounds[0]), num(bounds[1]))
		}
	case f.Proposed != nil:
		src = "given by the policy"
	case strings.HasPrefix(f.Source, policies.SourceFixed) && f.Source != policies.SourceFixed:
		src = "fixed by the study" + strings.TrimPrefix(f.Source, policies.SourceFixed)
	default:
		src = "fixed by the study"
	}
	level1 := ""
	if levels[1] != "" {
		level1 = " (" + levels[1] + ")"
	}
	return fmt.Sprintf("%s: %s (level %d), drawn with probability %s of level 1%s, %s; the draw %s was %s %s",
		f.Name, f.Label, f.Level, num(p), level1, src, strconv.FormatFloat(u, 'f', 4, 64), cmp, num(p))
}

func num(x float64) string { return strconv.FormatFloat(x, 'g', 4, 64) }

func summarise(ex *Explanation, rec *trial.Record) []string {
	var s []string
	s = append(s, fmt.Sprintf("Decision %s for participant %s at decision point %s, %s local time: %s%s.",
		ex.DecisionID, ex.Participant, ex.DecisionPoint, ex.LocalTime, ex.Action, reasonsText(ex.Reasons)))
	if ex.Missed {
		s = append(s, "The engine did not decide this scheduled point within its window (it was down or behind), so it was recorded as missed when the engine caught up: nothing was evaluated, randomised or delivered.")
	} else if ex.Anonymised {
		s = append(s, "The participant's data was erased and this record kept anonymised: its input is gone, so the policy cannot be evaluated again; what follows is what the record holds.")
	} else if ex.PolicyEvaluated {
		s = append(s, fmt.Sprintf("It was made with policy revision %s, the one loaded now, so the policy was evaluated again on the logged input.", short(ex.PolicyRevision)))
		if ex.Reproduced != nil && !*ex.Reproduced {
			var d []string
			for _, x := range ex.Differences {
				d = append(d, x.String())
			}
			s = append(s, "Re-evaluating does NOT give the logged decision, which is a bug to report: "+strings.Join(d, "; ")+".")
		}
	} else if ex.PolicyRevision != ex.LoadedRevision {
		s = append(s, fmt.Sprintf("It was made with policy revision %s, but revision %s is loaded: which rules fired cannot be shown without that revision's policy; what follows is what the record holds.", short(ex.PolicyRevision), short(ex.LoadedRevision)))
	} else {
		s = append(s, fmt.Sprintf("It was made with policy revision %s, the one loaded now, but with intervention catalogue revision %s, and %s is loaded: the policy reads the catalogue, so which rules fired cannot be shown; what follows is what the record holds.", short(ex.PolicyRevision), short(ex.CatalogueRevision), short(ex.LoadedCatalogue)))
	}
	if len(ex.Safety) > 0 {
		var r []string
		for _, x := range ex.Safety {
			r = append(r, x.Reason+ruleLocs(x.Rules))
		}
		s = append(s, "Safety pre-empted everything else: "+strings.Join(r, ", ")+". The crisis signposting was shown and nothing was randomised.")
	}
	if len(ex.Unavailable) > 0 {
		s = append(s, "The person was unavailable, so nothing was randomised:")
		for _, x := range ex.Unavailable {
			s = append(s, fmt.Sprintf("- %s (from the %s%s): %s.", x.Reason, x.Source, ruleLocs(x.Rules), x.Detail))
		}
	}
	for _, f := range ex.Factors {
		s = append(s, "Factor "+f.Detail+".")
	}
	if o := ex.Option; o != nil {
		var c []string
		for _, x := range o.Candidates {
			c = append(c, fmt.Sprintf("%s (weight %s, probability %s)", x.ID, num(x.Weight), num(x.Probability)))
		}
		line := fmt.Sprintf("Option %s was chosen with probability %s (draw %s) among %d candidate(s): %s.", o.Chosen, num(o.Probability), strconv.FormatFloat(o.Draw, 'f', 4, 64), len(o.Candidates), strings.Join(c, ", "))
		if len(o.Contraindicated) > 0 {
			line += " Removed as contraindicated (" + strings.Join(o.Conditions, ", ") + "): " + strings.Join(o.Contraindicated, ", ") + "."
		}
		s = append(s, line)
	} else if rec.Action == trial.ActionNone && len(rec.Reasons) == 1 && rec.Reasons[0] == ReasonRandomisedNoPrompt {
		s = append(s, "The delivery factor drew \"no prompt\", so no option was chosen.")
	}
	if len(ex.Rules) > 0 {
		var r []string
		for _, x := range ex.Rules {
			r = append(r, fmt.Sprintf("%s (%s:%d)", x.Head, x.File, x.Line))
		}
		s = append(s, "Rules that fired: "+strings.Join(r, "; ")+".")
	}
	return s
}

func reasonsText(r []string) string {
	if len(r) == 0 {
		return ""
	}
	return " (" + strings.Join(r, ", ") + ")"
}

func ruleLocs(r []string) string {
	if len(r) == 0 {
		return ""
	}
	return ", rule " + strings.Join(r, ", ")
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
