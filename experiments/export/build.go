package export

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/policies"
)

// builder accumulates rows participant by participant; the columns that
// depend on the data (the policy input's variables, inferred outcome types)
// are settled in finish.
type builder struct {
	cfg   *policies.Config
	now   time.Time
	names map[string]bool

	dcols []Column // study-determined decision columns
	// outcome columns: position in dcols and whether their type is inferred
	// from the values (first/last of event values).
	outIdx   []int
	outInfer []bool
	outKinds []kinds

	drows []drow
	// dynamic columns keyed by their raw name (e.g. "ema_stress").
	dyn     map[string]*dynCol
	revs    []string
	revSeen map[string]bool
	pcols   []Column
	prows   [][]any
	pnames  map[string]bool
	pinst   map[string]bool // instruments seen in assessment events
	pdistal []map[string]*distal
	histIdx int // position of prompts_today; decisions_today and minutes_since_last_prompt follow

	// factorIdx is the position of each factor's first column (its level),
	// in cfg.Factors order; a factor whose probability comes from a plugin
	// has the provider's columns after its _draw (see pluginFactor).
	factorIdx []int
	// enrichers are the study's enricher plugins, and enricherIdx the
	// position of each one's _enricher_fallback column.
	enrichers   []string
	enricherIdx []int
}

// pluginFactor says whether a factor's probability comes from a
// probability provider plugin: such a factor has 4 more columns.
func pluginFactor(f policies.Factor) bool {
	return f.Type == policies.Within && f.ProbabilitySource == policies.SourcePlugin
}

// pluginReasons are the reasons a plugin's fallback applies.
var pluginReasons = []string{trial.PluginTimeout, trial.PluginUnavailable, trial.PluginError, trial.PluginInvalid}

// Values of a plugin factor's _prob_source column.
const (
	probSourcePlugin   = "plugin"
	probSourceFallback = "fallback"
)

type drow struct {
	vals []any
	dyn  []kv
}

type kv struct {
	col *dynCol
	v   any
}

// dynCol is a column of the policy input found in the records.
type dynCol struct {
	group int // order of the groups: see dynGroups
	key   string
	kinds kinds
}

// kinds records which kinds of raw values a column holds.
type kinds struct{ num, boolean, str bool }

func (k *kinds) see(v any) {
	switch v.(type) {
	case float64:
		k.num = true
	case bool:
		k.boolean = true
	case string:
		k.str = true
	}
}

// typ is the column type for the kinds seen: strings make a string column,
// booleans alone an integer 0/1 column, anything else a double column.
func (k kinds) typ() Type {
	switch {
	case k.str:
		return String
	case k.boolean && !k.num:
		return Integer
	}
	return Double
}

// dynGroups are the prefixes of the policy-input columns, in column order.
var dynGroups = []struct{ prefix, what string }{
	{"ema_", "Latest self-report (EMA) of %q at or before the decision, as given to the policy (input.state.ema.%s.value)."},
	{"ctx_", "Context %q sent by the app with the decision request (input.context.%s)."},
	{"ctxev_", "Latest reported context variable %q at or before the decision, as given to the policy (input.state.context.%s.value)."},
	{"assess_", "Total score of the latest %q assessment at or before the decision, as given to the policy (input.state.assessment.%s.total)."},
	{"tailoring_", "Tailoring value %q recorded by the policy (the record's tailoring.%s; lists joined with ';')."},
}

func newBuilder(cfg *policies.Config, now time.Time) *builder {
	b := &builder{cfg: cfg, now: now, names: map[string]bool{}, pnames: map[string]bool{}, dyn: map[string]*dynCol{}, revSeen: map[string]bool{}, pinst: map[string]bool{}}
	b.decisionColumns()
	b.participantColumns()
	return b
}

// uniq returns name, or name with a numeric suffix if a column of the
// table already has it (a study variable named like a fixed column).
func uniq(names map[string]bool, name string) string {
	n := name
	for i := 2; names[n]; i++ {
		n = name + "_" + strconv.Itoa(i)
	}
	names[n] = true
	return n
}

func col(table, name string, t Type, unit string, levels []string, desc, missing string) Column {
	return Column{Name: name, Table: table, Type: t, ParquetType: parquetTypeName(t), Unit: unit, Levels: levels, Description: desc, Missing: missing}
}

func coded(levels []string) []string {
	return []string{"0 = " + levels[0], "1 = " + levels[1]}
}

const never = "never"

func (b *builder) addD(name string, t Type, unit string, levels []string, desc, missing string) int {
	b.dcols = append(b.dcols, col(DecisionsTable, uniq(b.names, name), t, unit, levels, desc, missing))
	return len(b.dcols) - 1
}

// Positions of the fixed decision columns.
const (
	dParticipant = iota
	dDecision
	dPoint
	dTime
	dLocal
	dDay
	dIndex
	dRevision
	dAction
	dIntervention
	dAvailable
	dReasons
	dSafety
	dSafetyReasons
	dFixed
)

func (b *builder) decisionColumns() {
	cfg := b.cfg
	var points []string
	for _, dp := range cfg.DecisionPoints {
		points = append(points, dp.ID)
	}
	b.addD("participant_id", String, "", nil, "Pseudonymous participant id (the id used at enrolment).", never)
	b.addD("decision_id", String, "", nil, "Id of the decision record (a ULID; sorts by time).", never)
	b.addD("decision_point", String, "", points, "Decision point of the day (study.yaml decision_points).", never)
	b.addD("time", Timestamp, "UTC", nil, "Decision time (RFC 3339, UTC).", never)
	b.addD("local_time", String, "participant-local", nil, "Decision time in the participant's time zone (RFC 3339 with offset).", never)
	b.addD("day_in_study", Integer, "days", nil, "Participant-local calendar days since enrolment (0 = the day of enrolment), as given to the policy.", "when the record's policy input has no participant.day_in_study")
	b.addD("decision_index", Integer, "", nil, "Position of the decision among the participant's decisions (1-based, time order).", never)
	b.addD("policy_revision", String, "", nil, "Revision (sha256) of study.yaml and the policy that made the decision.", never)
	b.addD("action", String, "", []string{trial.ActionDeliver, trial.ActionNone, trial.ActionSafety}, "What the engine answered: deliver an intervention, none, or safety (crisis signposting, which pre-empts everything).", never)
	b.addD("intervention_id", String, "", nil, "Catalogue id of the intervention delivered.", "when nothing was delivered (action none or safety)")
	b.addD("available", Integer, "", []string{"0 = unavailable", "1 = available"}, "Availability for randomisation: 1 when no unavailability reason applied and the decision was not a safety decision. Use as MRTAnalysis's availability.", never)
	b.addD("unavailable_reasons", String, "", nil, "Reasons the participant was unavailable, joined with ';' (policy reasons such as quiet_hours, driving; engine reasons such as burden_daily_cap, burden_min_gap, opted_out, no_candidate). Empty when available or on a safety decision.", never)
	b.addD("safety", Integer, "", []string{"0 = no", "1 = safety decision"}, "1 when the policy raised a safety reason and the engine answered with crisis signposting; such rows are unavailable (available = 0).", never)
	b.addD("safety_reasons", String, "", nil, "Safety reasons, joined with ';' (e.g. phq9_item9, risk_flag). Empty when safety = 0.", never)

	for _, f := range cfg.Factors {
		lv := f.Levels
		b.factorIdx = append(b.factorIdx, len(b.dcols))
		if f.Type == policies.Within {
			src := "the study's fixed probability"
			if f.ProbabilitySource == policies.SourcePolicy {
				src = "the policy's probability (the study's fixed probability when the policy gave none)"
			}
			if f.ProbabilitySource == policies.SourcePlugin {
				src = fmt.Sprintf("the probability provider plugin %s's value (the study's fixed probability when the plugin failed or missed its deadline; %s_prob_source says which)", f.Plugin, f.Name)
			}
			b.addD(f.Name, Integer, "", coded(lv), fmt.Sprintf("Level of within-person factor %s, micro-randomised at every available decision point (0 = %s, 1 = %s). 0 on rows that were not randomised (unavailable or safety), where nothing of the factor was shown. Use as MRTAnalysis's treatment.", f.Name, lv[0], lv[1]), "never (0 when not randomised)")
			b.addD(f.Name+"_label", String, "", lv, fmt.Sprintf("Label of the level of %s.", f.Name), "when not randomised (unavailable or safety)")
			b.addD(f.Name+"_prob", Double, "probability", nil, fmt.Sprintf("Probability of level 1 (%s) used for the draw: %s, clipped to the bounds [%s, %s]. Use as MRTAnalysis's rand_prob.", lv[1], src, fmtFloat(f.Bounds[0]), fmtFloat(f.Bounds[1])), "when not randomised (unavailable or safety); MRTAnalysis needs a value on every row: fill any value in (0, 1), the weight of an unavailable row is 0")
			b.addD(f.Name+"_draw", Double, "", nil, fmt.Sprintf("Uniform [0, 1) draw (HMAC of the study seed, participant, decision id and factor): level 1 when draw < %s_prob.", f.Name), "when not randomised (unavailable or safety)")
			if pluginFactor(f) {
				b.pluginFactorColumns(f)
			}
			continue
		}
		b.addD(f.Name, Integer, "", coded(lv), fmt.Sprintf("Level of between-person factor %s, assigned at enrolment by permuted blocks (0 = %s, 1 = %s).", f.Name, lv[0], lv[1]), "when the record holds no level of the factor (the factor was added to the study after the decision)")
		b.addD(f.Name+"_label", String, "", lv, fmt.Sprintf("Label of the level of %s.", f.Name), "as "+f.Name)
		b.addD(f.Name+"_prob", Double, "probability", nil, "Always missing: a between-person factor is assigned at enrolment, not drawn at each decision.", "always")
		b.addD(f.Name+"_draw", Double, "", nil, "Always missing: a between-person factor is assigned at enrolment, not drawn at each decision.", "always")
	}

	for _, pc := range cfg.Plugins {
		if pc.Kind != policies.PluginEnricher {
			continue
		}
		what := "input.derived." + pc.Name + " was left out of the policy input"
		if pc.Fallback == policies.FallbackDefaults {
			what = "input.derived." + pc.Name + " held the plugin's declared defaults"
		}
		b.enrichers = append(b.enrichers, pc.Name)
		b.enricherIdx = append(b.enricherIdx, b.addD(pc.Name+"_enricher_fallback", String, "", pluginReasons,
			fmt.Sprintf("Why the enricher plugin %s's fallback (%s) applied at the decision: timeout (it missed its deadline), unavailable (not running), error (it returned an error) or invalid (its answer was not a JSON object); then %s. From the record's plugins[].reason. Enrichers are asked at every decision, randomised or not.", pc.Name, pc.Fallback, what),
			"when the enricher answered (its derived values were used), or when the record holds no call of it (a decision made under a policy revision that did not declare it)"))
	}

	for _, o := range cfg.Outcomes {
		t, infer := Double, false
		switch {
		case o.Aggregate == "any" || o.Aggregate == "count":
			t = Integer
		case o.Aggregate == "mean":
			t = Double
		case o.Event == "ema" || o.Event == "context":
			infer = true
		}
		desc := strings.TrimSpace(o.Describe)
		if desc != "" && !strings.HasSuffix(desc, ".") {
			desc += "."
		}
		if desc != "" {
			desc += " "
		}
		if o.Primary {
			desc += "Primary proximal outcome. "
		}
		desc += "Definition: " + outcomeDefinition(o)
		var levels []string
		if o.Aggregate == "any" {
			levels = []string{"0 = no", "1 = yes"}
		}
		unit := ""
		if o.Event == "assessment" {
			unit = "total score"
		}
		b.outIdx = append(b.outIdx, b.addD(o.Name, t, unit, levels, desc, outcomeMissing(o)))
		b.outInfer = append(b.outInfer, infer)
		b.outKinds = append(b.outKinds, kinds{})
	}

	b.histIdx = b.addD("prompts_today", Integer, "prompts", nil, "Prompts delivered earlier on the participant-local day, as given to the policy (input.history.prompts_today).", "when the record's policy input lacks it")
	b.addD("decisions_today", Integer, "decisions", nil, "Decisions earlier on the participant-local day, as given to the policy (input.history.decisions_today).", "when the record's policy input lacks it")
	b.addD("minutes_since_last_prompt", Integer, "minutes", nil, "Whole minutes since the last delivered prompt, as given to the policy (input.history.minutes_since_last_prompt).", "when no prompt was delivered in the 8 days before")
}

// pluginFactorColumns adds the columns of a factor whose probability comes
// from a probability provider plugin: where the probability came from, the
// provider's unclipped value, its version and the fallback's reason.
func (b *builder) pluginFactorColumns(f policies.Factor) {
	noCall := "when not randomised (unavailable or safety), or when the record holds no call of the provider (a decision made under a policy revision where the factor's probability did not come from a plugin)"
	b.addD(f.Name+"_prob_source", String, "", []string{probSourcePlugin, probSourceFallback},
		fmt.Sprintf("Where %s_prob came from: plugin (the probability provider plugin %s's answer, clipped) or fallback (the study's fixed probability %s, because the provider failed, missed its deadline or gave an invalid answer; %s_fallback_reason says why). From the record's factors[].plugin. Exclude fallback rows for a sensitivity analysis of the provider's probabilities; the analysis with every row stays valid, as %s_prob is always the probability used.", f.Name, f.Plugin, fmtFloat(f.Probability), f.Name, f.Name),
		noCall)
	b.addD(f.Name+"_provider_value", Double, "probability", nil,
		fmt.Sprintf("The probability provider plugin %s's value, before clipping to the bounds [%s, %s]: %s_prob differs from it exactly when clipping changed it. From the record's factors[].plugin.value. Missing after a fallback, even when the provider answered a value out of [0, 1] (fallback reason invalid; the decision record keeps that value).", f.Plugin, fmtFloat(f.Bounds[0]), fmtFloat(f.Bounds[1]), f.Name),
		"when "+f.Name+"_prob_source is fallback, or "+noCall)
	b.addD(f.Name+"_provider_version", String, "", nil,
		fmt.Sprintf("Version the probability provider plugin %s reported when it started (also on fallback rows: the version that failed). From the record's factors[].plugin.version.", f.Plugin),
		"when the provider had not started (it reported no version; then the fallback applied with reason unavailable), or "+noCall)
	b.addD(f.Name+"_fallback_reason", String, "", pluginReasons,
		fmt.Sprintf("Why the fallback applied (%s_prob_source = fallback): timeout (the provider missed its deadline), unavailable (not running: crashed, restarting or not started), error (it returned an error) or invalid (a value outside [0, 1], NaN or infinite). From the record's factors[].plugin.reason.", f.Name),
		"when "+f.Name+"_prob_source is plugin (the provider answered), or "+noCall)
}

func outcomeDefinition(o policies.Outcome) string {
	win := fmt.Sprintf("[t + %s, t + %s] after the decision time t (both ends included)", fmtDur(o.From.Duration), fmtDur(o.To.Duration))
	var what string
	switch o.Event {
	case "engagement":
		what = fmt.Sprintf("engagement events with status %q that refer to this decision (data.decision_id)", o.Status)
	case "assessment":
		what = fmt.Sprintf("total scores of %s assessments", assessmentInstrument(o.Variable))
	default:
		what = fmt.Sprintf("values of %s variable %q", o.Event, o.Variable)
	}
	var agg string
	switch o.Aggregate {
	case "first":
		agg = "the earliest of the"
	case "last":
		agg = "the latest of the"
	case "mean":
		agg = "the mean of the numeric"
	case "any":
		agg = "1 if any of the"
	case "count":
		agg = "the number of"
	}
	s := fmt.Sprintf("%s %s in %s", agg, what, win)
	switch {
	case o.Aggregate == "any" && o.Event == "engagement":
		s += " exist, else 0"
	case o.Aggregate == "any":
		s += " is true or non-zero, else 0"
	}
	if o.Event == "engagement" && (o.Aggregate == "first" || o.Aggregate == "last" || o.Aggregate == "mean") {
		s += " (an event's value is its rating when it has one, else 1)"
	}
	return s + "."
}

// fmtDur writes a duration as in study.yaml: 30m, 1h30m, 0s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// instrumentName is an instrument's usual name (PHQ-9 for phq9).
func instrumentName(in string) string {
	up := strings.ToUpper(in)
	if i := strings.IndexAny(up, "0123456789"); i > 0 && up[i-1] != '-' {
		up = up[:i] + "-" + up[i:]
	}
	return up
}

func outcomeMissing(o policies.Outcome) string {
	open := "when the window had not closed at the time of the export"
	switch {
	case o.Event == "engagement" && (o.Aggregate == "any" || o.Aggregate == "count"):
		return open + " (0, not missing, when no event: also when nothing was delivered)"
	case o.Aggregate == "count":
		return open + " (0, not missing, when no event)"
	}
	return "when no event in the window reported it, or " + open
}

func assessmentInstrument(v string) string {
	v = strings.TrimSuffix(v, ".total")
	return strings.TrimSuffix(v, "_total")
}

func (b *builder) addP(name string, t Type, unit string, levels []string, desc, missing string) int {
	b.pcols = append(b.pcols, col(ParticipantsTable, uniq(b.pnames, name), t, unit, levels, desc, missing))
	return len(b.pcols) - 1
}

func (b *builder) participantColumns() {
	cfg := b.cfg
	b.addP("participant_id", String, "", nil, "Pseudonymous participant id.", never)
	b.addP("enrolment_index", Integer, "", nil, "Position in enrolment order (1-based).", never)
	b.addP("enrolled_at", Timestamp, "UTC", nil, "Time of enrolment (RFC 3339, UTC).", never)
	b.addP("timezone", String, "", nil, "The participant's IANA time zone.", never)
	b.addP("stratum", String, "", nil, "Stratum key of between-person assignment, in study.yaml strata order (e.g. site=a); empty when the study declares no strata.", never)
	for _, s := range cfg.Strata {
		b.addP(s, String, "", nil, fmt.Sprintf("Stratum variable %s given at enrolment.", s), never)
	}
	between := cfg.FactorsOf(policies.Between)
	missingRow := never
	if len(between) == 0 {
		missingRow = "always: the study has no between-person factors"
	}
	b.addP("design_row", Integer, "", nil, "Row of the between-person design assigned at enrolment (1-based, in the design's standard order).", missingRow)
	b.addP("status", String, "", []string{trial.StatusActive, trial.StatusWithdrawn}, "Enrolment status at the time of the export.", never)
	for _, f := range between {
		b.addP(f.Name, Integer, "", coded(f.Levels), fmt.Sprintf("Level of between-person factor %s assigned at enrolment (0 = %s, 1 = %s).", f.Name, f.Levels[0], f.Levels[1]), "when the enrolment holds no level of the factor")
		b.addP(f.Name+"_label", String, "", f.Levels, fmt.Sprintf("Label of the level of %s.", f.Name), "as "+f.Name)
	}
	b.addP("n_decisions", Integer, "decisions", nil, "Number of decisions recorded (rows of the decisions table).", never)
	b.addP("n_available", Integer, "decisions", nil, "Number of decisions at which the participant was available.", never)
	b.addP("n_delivered", Integer, "decisions", nil, "Number of decisions that delivered an intervention.", never)
	b.addP("n_safety", Integer, "decisions", nil, "Number of safety decisions.", never)
}

// distalInstruments are always exported; other instruments seen in
// assessment events follow, sorted by name.
var distalInstruments = []string{"phq9", "gad7"}

type distal struct {
	first, last     float64
	firstAt, lastAt time.Time
	n               int64
}

func (b *builder) addParticipant(p *trial.Participant, recs []*trial.Record, evs []trial.Event) error {
	idx := newEventIndex(evs)
	var nAvail, nDeliver, nSafety int64
	for i, rec := range recs {
		if !b.revSeen[rec.PolicyRevision] {
			b.revSeen[rec.PolicyRevision] = true
			b.revs = append(b.revs, rec.PolicyRevision)
		}
		r, err := b.decisionRow(p, rec, i, idx)
		if err != nil {
			return err
		}
		b.drows = append(b.drows, r)
		if rec.Available {
			nAvail++
		}
		switch rec.Action {
		case trial.ActionDeliver:
			nDeliver++
		case trial.ActionSafety:
			nSafety++
		}
	}

	row := []any{p.ID, int64(len(b.prows) + 1), p.EnrolledAt.UTC(), p.Timezone, p.Stratum}
	for _, s := range b.cfg.Strata {
		if v, ok := p.Strata[s]; ok {
			row = append(row, v)
		} else {
			row = append(row, nil)
		}
	}
	between := b.cfg.FactorsOf(policies.Between)
	if len(between) > 0 {
		row = append(row, int64(p.Row+1))
	} else {
		row = append(row, nil)
	}
	row = append(row, p.Status)
	for _, f := range between {
		label, ok := p.Assignment[f.Name]
		lv := levelOf(f, label)
		if !ok || lv < 0 {
			row = append(row, nil, nil)
			continue
		}
		row = append(row, int64(lv), label)
	}
	row = append(row, int64(len(recs)), nAvail, nDeliver, nSafety)
	b.prows = append(b.prows, row)

	d := map[string]*distal{}
	for _, a := range idx.assess {
		b.pinst[a.instrument] = true
		x := d[a.instrument]
		if x == nil {
			x = &distal{first: a.total, firstAt: a.t}
			d[a.instrument] = x
		}
		x.last, x.lastAt = a.total, a.t
		x.n++
	}
	b.pdistal = append(b.pdistal, d)
	return nil
}

func levelOf(f policies.Factor, label string) int {
	for i, l := range f.Levels {
		if l == label {
			return i
		}
	}
	return -1
}

func joinReasons(rs []string) string { return strings.Join(rs, ";") }

func (b *builder) decisionRow(p *trial.Participant, rec *trial.Record, i int, idx *eventIndex) (drow, error) {
	vals := make([]any, len(b.dcols))
	vals[dParticipant] = rec.Participant
	vals[dDecision] = rec.ID
	vals[dPoint] = rec.DecisionPoint
	vals[dTime] = rec.Time.UTC()
	vals[dLocal] = rec.LocalTime
	vals[dIndex] = int64(i + 1)
	vals[dRevision] = rec.PolicyRevision
	vals[dAction] = rec.Action
	if rec.Action == trial.ActionDeliver && rec.Option != nil {
		vals[dIntervention] = rec.Option.ID
	}
	vals[dAvailable] = boolInt(rec.Available)
	vals[dReasons] = joinReasons(rec.UnavailableReasons)
	vals[dSafety] = boolInt(rec.Action == trial.ActionSafety)
	vals[dSafetyReasons] = joinReasons(rec.SafetyReasons)

	for k, f := range b.cfg.Factors {
		c := b.factorIdx[k]
		var fd *trial.FactorDraw
		for k := range rec.Factors {
			if rec.Factors[k].Name == f.Name {
				fd = &rec.Factors[k]
				break
			}
		}
		switch {
		case fd != nil:
			vals[c] = int64(fd.Level)
			vals[c+1] = fd.Label
			if fd.Probability != nil {
				vals[c+2] = *fd.Probability
			}
			if fd.Draw != nil {
				vals[c+3] = *fd.Draw
			}
		case f.Type == policies.Within:
			vals[c] = int64(0)
		}
		if pluginFactor(f) && fd != nil && fd.Plugin != nil {
			pluginValues(vals[c+4:c+8], fd.Plugin)
		}
	}
	for k, name := range b.enrichers {
		for _, call := range rec.Plugins {
			if call.Name == name && call.Kind == policies.PluginEnricher {
				if call.Fallback != "" {
					vals[b.enricherIdx[k]] = call.Reason
				}
				break
			}
		}
	}

	for k, o := range b.cfg.Outcomes {
		v := b.outcome(o, rec, idx)
		if b.outInfer[k] {
			b.outKinds[k].see(v)
		}
		vals[b.outIdx[k]] = v
	}

	var in policyInput
	if len(rec.Input) > 0 {
		if err := json.Unmarshal(rec.Input, &in); err != nil {
			return drow{}, fmt.Errorf("decoding the policy input of decision %s: %w", rec.ID, err)
		}
	}
	vals[dDay] = intOrNil(in.Participant.DayInStudy)
	h := b.histIdx
	vals[h] = intOrNil(in.History.PromptsToday)
	vals[h+1] = intOrNil(in.History.DecisionsToday)
	vals[h+2] = intOrNil(in.History.MinutesSinceLastPrompt)

	r := drow{vals: vals}
	add := func(group int, key string, raw any) {
		v := scalar(raw)
		if v == nil {
			return
		}
		name := dynGroups[group].prefix + key
		dc := b.dyn[name]
		if dc == nil {
			dc = &dynCol{group: group, key: key}
			b.dyn[name] = dc
		}
		dc.kinds.see(v)
		r.dyn = append(r.dyn, kv{dc, v})
	}
	for k, o := range in.State.EMA {
		add(0, k, o.Value)
	}
	for k, v := range in.Context {
		add(1, k, v)
	}
	for k, o := range in.State.Context {
		add(2, k, o.Value)
	}
	for k, a := range in.State.Assessment {
		if a.Total != nil {
			add(3, k+"_total", *a.Total)
		}
	}
	for k, v := range rec.Tailoring {
		add(4, k, v)
	}
	return r, nil
}

// pluginValues fills a plugin factor's _prob_source, _provider_value,
// _provider_version and _fallback_reason from the provider's call.
func pluginValues(vals []any, call *trial.PluginCall) {
	if call.Fallback != "" {
		vals[0] = probSourceFallback
		vals[3] = call.Reason
	} else {
		vals[0] = probSourcePlugin
		if call.Value != nil {
			vals[1] = *call.Value
		}
	}
	if call.Version != "" {
		vals[2] = call.Version
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func intOrNil(f *float64) any {
	if f == nil {
		return nil
	}
	return int64(*f)
}

// finish settles the inferred and dynamic columns and assembles the tables.
func (b *builder) finish() (*Tables, error) {
	cols := append([]Column(nil), b.dcols...)
	for k, i := range b.outIdx {
		if b.outInfer[k] {
			t := b.outKinds[k].typ()
			cols[i].Type, cols[i].ParquetType = t, parquetTypeName(t)
		}
	}
	dyn := make([]*dynCol, 0, len(b.dyn))
	for _, dc := range b.dyn {
		dyn = append(dyn, dc)
	}
	sort.Slice(dyn, func(i, j int) bool {
		if dyn[i].group != dyn[j].group {
			return dyn[i].group < dyn[j].group
		}
		return dyn[i].key < dyn[j].key
	})
	pos := make(map[*dynCol]int, len(dyn))
	for _, dc := range dyn {
		g := dynGroups[dc.group]
		t := dc.kinds.typ()
		key := dc.key
		if dc.group == 3 {
			key = strings.TrimSuffix(key, "_total")
		}
		desc := fmt.Sprintf(g.what, key, key)
		unit := ""
		var levels []string
		if t == Integer {
			levels = []string{"0 = false", "1 = true"}
		}
		missing := "when the policy input of the decision did not hold it"
		if dc.group == 4 {
			missing = "when the policy did not record it for the decision"
		}
		pos[dc] = len(cols)
		cols = append(cols, col(DecisionsTable, uniq(b.names, g.prefix+dc.key), t, unit, levels, desc, missing))
	}
	rows := make([][]any, len(b.drows))
	for i, r := range b.drows {
		row := make([]any, len(cols))
		copy(row, r.vals)
		for k, j := range b.outIdx {
			if b.outInfer[k] {
				row[j] = convert(row[j], cols[j].Type)
			}
		}
		for _, e := range r.dyn {
			j := pos[e.col]
			row[j] = convert(e.v, cols[j].Type)
		}
		rows[i] = row
	}

	// Distal outcomes: the fixed instruments, then others seen, sorted.
	insts := append([]string(nil), distalInstruments...)
	var extra []string
	for in := range b.pinst {
		if !contains(distalInstruments, in) {
			extra = append(extra, in)
		}
	}
	sort.Strings(extra)
	insts = append(insts, extra...)
	pcols := append([]Column(nil), b.pcols...)
	names := b.pnames
	for _, in := range insts {
		up := instrumentName(in)
		none := fmt.Sprintf("when the participant reported no %s assessment", up)
		for _, c := range []Column{
			col(ParticipantsTable, in+"_total_first", Integer, "total score", nil, fmt.Sprintf("Total score of the participant's first %s assessment (baseline).", up), none),
			col(ParticipantsTable, in+"_time_first", Timestamp, "UTC", nil, fmt.Sprintf("Time of the first %s assessment.", up), none),
			col(ParticipantsTable, in+"_total_last", Integer, "total score", nil, fmt.Sprintf("Total score of the participant's last %s assessment (distal outcome).", up), none),
			col(ParticipantsTable, in+"_time_last", Timestamp, "UTC", nil, fmt.Sprintf("Time of the last %s assessment.", up), none),
			col(ParticipantsTable, in+"_n", Integer, "assessments", nil, fmt.Sprintf("Number of %s assessments reported.", up), never+" (0 when none)"),
		} {
			c.Name = uniq(names, c.Name)
			pcols = append(pcols, c)
		}
	}
	prows := make([][]any, len(b.prows))
	for i, r := range b.prows {
		row := append(make([]any, 0, len(pcols)), r...)
		for _, in := range insts {
			d := b.pdistal[i][in]
			if d == nil {
				row = append(row, nil, nil, nil, nil, int64(0))
				continue
			}
			row = append(row, int64(d.first), d.firstAt.UTC(), int64(d.last), d.lastAt.UTC(), d.n)
		}
		prows[i] = row
	}
	return &Tables{
		Study:           b.cfg.ID,
		PolicyRevisions: b.revs,
		GeneratedAt:     b.now,
		Decisions:       &Table{Name: DecisionsTable, Columns: cols, Rows: rows},
		Participants:    &Table{Name: ParticipantsTable, Columns: pcols, Rows: prows},
		pluginNote:      b.pluginNote(),
	}, nil
}

// pluginNote describes the plugin columns of the decisions table, if the
// study has any.
func (b *builder) pluginNote() string {
	var fs []string
	for _, f := range b.cfg.Factors {
		if pluginFactor(f) {
			fs = append(fs, f.Name)
		}
	}
	if len(fs) == 0 && len(b.enrichers) == 0 {
		return ""
	}
	var s []string
	if len(fs) > 0 {
		s = append(s, fmt.Sprintf("The probability of %s comes from a probability provider plugin: after the factor's _draw come _prob_source (plugin or fallback), _provider_value (the provider's unclipped value), _provider_version and _fallback_reason.", strings.Join(fs, ", ")))
	}
	if len(b.enrichers) > 0 {
		s = append(s, "After the factors, each enricher plugin's <plugin>_enricher_fallback (study.yaml order) says why its fallback applied (missing when it answered).")
	}
	return strings.Join(s, " ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// convert turns a raw value (float64, bool or string) into the column type.
func convert(v any, t Type) any {
	if v == nil {
		return nil
	}
	switch t {
	case String:
		return formatRaw(v)
	case Integer:
		switch x := v.(type) {
		case bool:
			return boolInt(x)
		case float64:
			return int64(x)
		case int64:
			return x
		}
	case Double:
		switch x := v.(type) {
		case bool:
			return float64(boolInt(x))
		case float64:
			return x
		case int64:
			return float64(x)
		}
	}
	return nil
}

// formatRaw formats a raw value as text: numbers in full precision.
func formatRaw(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmtFloat(x)
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
