package export

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// decision is the data of one row of the decisions table: the parts of
// the record that columns read, the decision's position among the
// participant's decisions, its proximal outcomes and its policy input.
type decision struct {
	participant, id, point     string
	revision, action           string
	trigger, phase, eventID    string
	time, scheduledAt          time.Time
	local                      time.Time // in the participant's offset; zero when unknown
	studyDay                   int
	delivery                   *trial.Delivery   // the delivery log; nil when none
	option                     *trial.OptionDraw // the option delivered; nil unless action is deliver
	available                  bool
	unavailable, safetyReasons []string
	factors                    []trial.FactorDraw
	plugins                    []trial.PluginCall
	index                      int64 // 1-based, in time order
	outcomes                   []any // raw values, in cfg.Outcomes order
	day                        *float64
	history                    inputHistory
	dyn                        []kv // policy-input values, any order
}

// draw is the record's draw of the named factor, or nil.
func (d *decision) draw(name string) *trial.FactorDraw {
	for k := range d.factors {
		if d.factors[k].Name == name {
			return &d.factors[k]
		}
	}
	return nil
}

// providerCall is the probability provider's call of the named factor,
// or nil (not randomised, or no plugin call recorded).
func (d *decision) providerCall(name string) *trial.PluginCall {
	if fd := d.draw(name); fd != nil {
		return fd.Plugin
	}
	return nil
}

// dynValue is the decision's value of a policy-input column, or nil.
func (d *decision) dynValue(dc *dynCol) any {
	for _, e := range d.dyn {
		if e.col == dc {
			return e.v
		}
	}
	return nil
}

// decisionTable is the registry of the decisions table: the fixed
// columns, each factor, each enricher's fallback, each proximal outcome,
// the policy's history input, then the policy-input columns (dyn, in
// column order). outTypes are the outcomes' settled types.
func decisionTable(cfg *policies.Config, outTypes []Type, dyn []*dynCol) *registry[*decision] {
	r := newRegistry[*decision](DecisionsTable)
	fixedDecisionColumns(r, cfg)
	for _, f := range cfg.Factors {
		if f.Type == policies.Within {
			withinFactorColumns(r, f)
			if pluginFactor(f) {
				pluginFactorColumns(r, f)
			}
			continue
		}
		betweenFactorColumns(r, f)
	}
	for _, pc := range cfg.Plugins {
		if pc.Kind == policies.PluginEnricher {
			enricherColumn(r, pc)
		}
	}
	for k, o := range cfg.Outcomes {
		outcomeColumn(r, k, o, outTypes[k])
	}
	if cfg.Delivery != nil {
		deliveryColumns(r)
	}
	historyColumns(r)
	for _, dc := range dyn {
		dynColumn(r, dc)
	}
	return r
}

func fixedDecisionColumns(r *registry[*decision], cfg *policies.Config) {
	var points []string
	for _, dp := range cfg.DecisionPoints {
		points = append(points, dp.ID)
	}
	add(r, "participant_id", about{desc: "Pseudonymous participant id (the id used at enrolment).", missing: never},
		func(d *decision) (string, bool) { return d.participant, true })
	add(r, "decision_id", about{desc: "Id of the decision record (a ULID; sorts by time).", missing: never},
		func(d *decision) (string, bool) { return d.id, true })
	add(r, "decision_point", about{levels: points, desc: "Decision point of the day (study.yaml decision_points).", missing: never},
		func(d *decision) (string, bool) { return d.point, true })
	add(r, "time", about{unit: "UTC", desc: "Decision time (RFC 3339, UTC).", missing: never},
		func(d *decision) (time.Time, bool) { return d.time.UTC(), true })
	noLocal := "when the record's local time has no offset and the participant's time zone is unknown"
	add(r, "local_time", about{unit: "participant-local", desc: "Decision time in the participant's time zone: RFC 3339 with the numeric offset in force (always +hh:mm or -hh:mm, +00:00 for UTC, never Z), e.g. 2026-03-02T08:30:00+00:00 in winter and 2026-04-06T08:30:00+01:00 in summer in Europe/London.", missing: noLocal},
		func(d *decision) (string, bool) { return d.local.Format(localLayout), !d.local.IsZero() })
	add(r, "local_hour", about{unit: "hour (0-23)", desc: "Hour of the day of local_time (0-23), participant-local.", missing: noLocal},
		func(d *decision) (int64, bool) { return int64(d.local.Hour()), !d.local.IsZero() })
	add(r, "weekday", about{levels: weekdays, desc: "Day of the week of local_time, participant-local (Monday to Sunday).", missing: noLocal},
		func(d *decision) (string, bool) { return d.local.Weekday().String(), !d.local.IsZero() })
	add(r, "trigger", about{levels: []string{trial.TriggerApp, trial.TriggerScheduled, trial.TriggerEvent}, desc: "What opened the decision point: scheduled (the trial clock's schedule; also when the app asked for a scheduled point), app (an app-requested point), event (the policy's open rule on an event). Records made before the trial clock existed say app.", missing: never},
		func(d *decision) (string, bool) {
			if d.trigger == "" {
				return trial.TriggerApp, true
			}
			return d.trigger, true
		})
	add(r, "scheduled_at", about{unit: "UTC", desc: "When a scheduled or event point was due (RFC 3339, UTC); a scheduled point's decision time equals it.", missing: "for app-requested points"},
		func(d *decision) (time.Time, bool) { return d.scheduledAt.UTC(), !d.scheduledAt.IsZero() })
	add(r, "event_id", about{desc: "The event that opened an event point.", missing: "unless trigger = event"},
		func(d *decision) (string, bool) { return d.eventID, d.eventID != "" })
	add(r, "phase", about{desc: "The participant's phase on the day of the decision (study.yaml phases; active when the study declares none). Points in a phase with randomise: false are recorded but never randomised.", missing: "for records made before phases existed"},
		func(d *decision) (string, bool) { return d.phase, d.phase != "" })
	add(r, "study_day", about{unit: "days", desc: "Study day of the decision: 1 on the participant-local day of enrolment.", missing: "for records made before study days existed"},
		func(d *decision) (int64, bool) { return int64(d.studyDay), d.studyDay > 0 })
	add(r, "day_in_study", about{unit: "days", desc: "Participant-local calendar days since enrolment (0 = the day of enrolment), as given to the policy.", missing: "when the record's policy input has no participant.day_in_study"},
		func(d *decision) (int64, bool) { return whole(d.day) })
	add(r, "decision_index", about{desc: "Position of the decision among the participant's decisions (1-based, time order).", missing: never},
		func(d *decision) (int64, bool) { return d.index, true })
	add(r, "policy_revision", about{desc: "Revision (sha256) of study.yaml and the policy that made the decision.", missing: never},
		func(d *decision) (string, bool) { return d.revision, true })
	add(r, "action", about{levels: []string{trial.ActionDeliver, trial.ActionNone, trial.ActionSafety}, desc: "What the engine answered: deliver an intervention, none, or safety (crisis signposting, which pre-empts everything).", missing: never},
		func(d *decision) (string, bool) { return d.action, true })
	add(r, "intervention_id", about{desc: "Catalogue id of the intervention delivered.", missing: "when nothing was delivered (action none or safety)"},
		func(d *decision) (string, bool) {
			if d.option == nil {
				return "", false
			}
			return d.option.ID, true
		})
	add(r, "available", about{levels: []string{"0 = unavailable", "1 = available"}, desc: "Availability for randomisation: 1 when no unavailability reason applied and the decision was not a safety decision. Use as MRTAnalysis's availability.", missing: never},
		func(d *decision) (int64, bool) { return boolInt(d.available), true })
	add(r, "unavailable_reasons", about{desc: "Reasons the participant was unavailable, joined with ';' (policy reasons such as quiet_hours, driving; engine reasons such as burden_daily_cap, burden_min_gap, opted_out, no_candidate). Empty when available or on a safety decision.", missing: never},
		func(d *decision) (string, bool) { return joinReasons(d.unavailable), true })
	add(r, "safety", about{levels: []string{"0 = no", "1 = safety decision"}, desc: "1 when the policy raised a safety reason and the engine answered with crisis signposting; such rows are unavailable (available = 0).", missing: never},
		func(d *decision) (int64, bool) { return boolInt(d.action == trial.ActionSafety), true })
	add(r, "safety_reasons", about{desc: "Safety reasons, joined with ';' (e.g. phq9_item9, risk_flag). Empty when safety = 0.", missing: never},
		func(d *decision) (string, bool) { return joinReasons(d.safetyReasons), true })
}

// localLayout is RFC 3339 with a numeric offset (never Z) and
// microseconds when they are not zero.
const localLayout = "2006-01-02T15:04:05.999999-07:00"

// weekdays are the levels of the weekday column.
var weekdays = []string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

// localTime is a record's local time: its local_time (RFC 3339) with the
// offset it holds; the decision time in loc when local_time has no offset
// (records made by older engines); zero when neither is known.
func localTime(rec *trial.Record, loc *time.Location) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, rec.LocalTime); err == nil {
		return t
	}
	if loc == nil || rec.Time.IsZero() {
		return time.Time{}
	}
	return rec.Time.In(loc)
}

func coded(levels []string) []string {
	return []string{"0 = " + levels[0], "1 = " + levels[1]}
}

const never = "never"

// withinFactorColumns adds a within-person factor's level, label,
// probability and draw.
func withinFactorColumns(r *registry[*decision], f policies.Factor) {
	lv, name := f.Levels, f.Name
	src := "the study's fixed probability"
	switch f.ProbabilitySource {
	case policies.SourcePolicy:
		src = "the policy's probability (the study's fixed probability when the policy gave none)"
	case policies.SourcePlugin:
		src = fmt.Sprintf("the probability provider plugin %s's value (the study's fixed probability when the plugin failed or missed its deadline; %s_prob_source says which)", f.Plugin, name)
	}
	notRandomised := "when not randomised (unavailable or safety)"
	add(r, name, about{levels: coded(lv), desc: fmt.Sprintf("Level of within-person factor %s, micro-randomised at every available decision point (0 = %s, 1 = %s). 0 on rows that were not randomised (unavailable or safety), where nothing of the factor was shown. Use as MRTAnalysis's treatment.", name, lv[0], lv[1]), missing: "never (0 when not randomised)"},
		func(d *decision) (int64, bool) {
			if fd := d.draw(name); fd != nil {
				return int64(fd.Level), true
			}
			return 0, true
		})
	add(r, name+"_label", about{levels: lv, desc: fmt.Sprintf("Label of the level of %s.", name), missing: notRandomised}, drawLabel(name))
	add(r, name+"_prob", about{unit: "probability", desc: fmt.Sprintf("Probability of level 1 (%s) used for the draw: %s, clipped to the bounds [%s, %s]. Use as MRTAnalysis's rand_prob.", lv[1], src, fmtFloat(f.Bounds[0]), fmtFloat(f.Bounds[1])), missing: notRandomised + "; MRTAnalysis needs a value on every row: fill any value in (0, 1), the weight of an unavailable row is 0"},
		drawNumber(name, func(fd *trial.FactorDraw) *float64 { return fd.Probability }))
	add(r, name+"_draw", about{desc: fmt.Sprintf("Uniform [0, 1) draw (HMAC of the study seed, participant, decision id and factor): level 1 when draw < %s_prob.", name), missing: notRandomised},
		drawNumber(name, func(fd *trial.FactorDraw) *float64 { return fd.Draw }))
}

// betweenFactorColumns adds a between-person factor's level and label, and
// its _prob and _draw, always missing, so that every factor has the same
// four columns.
func betweenFactorColumns(r *registry[*decision], f policies.Factor) {
	lv, name := f.Levels, f.Name
	add(r, name, about{levels: coded(lv), desc: fmt.Sprintf("Level of between-person factor %s, assigned at enrolment by permuted blocks (0 = %s, 1 = %s).", name, lv[0], lv[1]), missing: "when the record holds no level of the factor (the factor was added to the study after the decision)"},
		func(d *decision) (int64, bool) {
			if fd := d.draw(name); fd != nil {
				return int64(fd.Level), true
			}
			return 0, false
		})
	add(r, name+"_label", about{levels: lv, desc: fmt.Sprintf("Label of the level of %s.", name), missing: "as " + name}, drawLabel(name))
	always := "Always missing: a between-person factor is assigned at enrolment, not drawn at each decision."
	add(r, name+"_prob", about{unit: "probability", desc: always, missing: "always"},
		drawNumber(name, func(fd *trial.FactorDraw) *float64 { return fd.Probability }))
	add(r, name+"_draw", about{desc: always, missing: "always"},
		drawNumber(name, func(fd *trial.FactorDraw) *float64 { return fd.Draw }))
}

// drawLabel reads the label of the record's draw of a factor.
func drawLabel(name string) func(*decision) (string, bool) {
	return func(d *decision) (string, bool) {
		if fd := d.draw(name); fd != nil {
			return fd.Label, true
		}
		return "", false
	}
}

// drawNumber reads a number of the record's draw of a factor.
func drawNumber(name string, field func(*trial.FactorDraw) *float64) func(*decision) (float64, bool) {
	return func(d *decision) (float64, bool) {
		if fd := d.draw(name); fd != nil {
			if v := field(fd); v != nil {
				return *v, true
			}
		}
		return 0, false
	}
}

// pluginFactorColumns adds the columns of a factor whose probability comes
// from a probability provider plugin: where the probability came from, the
// provider's unclipped value, its version and the fallback's reason.
func pluginFactorColumns(r *registry[*decision], f policies.Factor) {
	name := f.Name
	noCall := "when not randomised (unavailable or safety), or when the record holds no call of the provider (a decision made under a policy revision where the factor's probability did not come from a plugin)"
	add(r, name+"_prob_source", about{levels: []string{probSourcePlugin, probSourceFallback},
		desc:    fmt.Sprintf("Where %s_prob came from: plugin (the probability provider plugin %s's answer, clipped) or fallback (the study's fixed probability %s, because the provider failed, missed its deadline or gave an invalid answer; %s_fallback_reason says why). From the record's factors[].plugin. Exclude fallback rows for a sensitivity analysis of the provider's probabilities; the analysis with every row stays valid, as %s_prob is always the probability used.", name, f.Plugin, fmtFloat(f.Probability), name, name),
		missing: noCall},
		func(d *decision) (string, bool) {
			call := d.providerCall(name)
			switch {
			case call == nil:
				return "", false
			case call.Fallback != "":
				return probSourceFallback, true
			}
			return probSourcePlugin, true
		})
	add(r, name+"_provider_value", about{unit: "probability",
		desc:    fmt.Sprintf("The probability provider plugin %s's value, before clipping to the bounds [%s, %s]: %s_prob differs from it exactly when clipping changed it. From the record's factors[].plugin.value. Missing after a fallback, even when the provider answered a value out of [0, 1] (fallback reason invalid; the decision record keeps that value).", f.Plugin, fmtFloat(f.Bounds[0]), fmtFloat(f.Bounds[1]), name),
		missing: "when " + name + "_prob_source is fallback, or " + noCall},
		func(d *decision) (float64, bool) {
			call := d.providerCall(name)
			if call == nil || call.Fallback != "" || call.Value == nil {
				return 0, false
			}
			return *call.Value, true
		})
	add(r, name+"_provider_version", about{
		desc:    fmt.Sprintf("Version the probability provider plugin %s reported when it started (also on fallback rows: the version that failed). From the record's factors[].plugin.version.", f.Plugin),
		missing: "when the provider had not started (it reported no version; then the fallback applied with reason unavailable), or " + noCall},
		func(d *decision) (string, bool) {
			call := d.providerCall(name)
			if call == nil || call.Version == "" {
				return "", false
			}
			return call.Version, true
		})
	add(r, name+"_fallback_reason", about{levels: pluginReasons,
		desc:    fmt.Sprintf("Why the fallback applied (%s_prob_source = fallback): timeout (the provider missed its deadline), unavailable (not running: crashed, restarting or not started), error (it returned an error) or invalid (a value outside [0, 1], NaN or infinite). From the record's factors[].plugin.reason.", name),
		missing: "when " + name + "_prob_source is plugin (the provider answered), or " + noCall},
		func(d *decision) (string, bool) {
			call := d.providerCall(name)
			if call == nil || call.Fallback == "" {
				return "", false
			}
			return call.Reason, true
		})
}

// enricherColumn adds why an enricher plugin's fallback applied.
func enricherColumn(r *registry[*decision], pc policies.PluginConfig) {
	name := pc.Name
	what := "input.derived." + name + " was left out of the policy input"
	if pc.Fallback == policies.FallbackDefaults {
		what = "input.derived." + name + " held the plugin's declared defaults"
	}
	add(r, name+"_enricher_fallback", about{levels: pluginReasons,
		desc:    fmt.Sprintf("Why the enricher plugin %s's fallback (%s) applied at the decision: timeout (it missed its deadline), unavailable (not running), error (it returned an error) or invalid (its answer was not a JSON object); then %s. From the record's plugins[].reason. Enrichers are asked at every decision, randomised or not.", name, pc.Fallback, what),
		missing: "when the enricher answered (its derived values were used), or when the record holds no call of it (a decision made under a policy revision that did not declare it)"},
		func(d *decision) (string, bool) {
			for _, call := range d.plugins {
				if call.Name == name && call.Kind == policies.PluginEnricher {
					return call.Reason, call.Fallback != ""
				}
			}
			return "", false
		})
}

// outcomeType is the column type of a proximal outcome, and whether it is
// settled from the values (first or last of an EMA or context variable
// that the data dictionary does not declare). v is the outcome's declared
// variable, or nil.
func outcomeType(o policies.Outcome, v *policies.Variable) (t Type, inferred bool) {
	switch {
	case o.Aggregate == "any" || o.Aggregate == "count":
		return Integer, false
	case o.Aggregate == "mean":
		return Double, false
	case v != nil:
		return variableType(v), false
	case o.Event == "ema" || o.Event == "context":
		return Double, true
	}
	return Double, false
}

// outcomeVariable is the declared variable an EMA or context outcome
// aggregates, or nil.
func outcomeVariable(cfg *policies.Config, o policies.Outcome) *policies.Variable {
	if o.Event != policies.SourceEMA && o.Event != policies.SourceContext {
		return nil
	}
	v, _ := cfg.Variable(o.Event, o.Variable)
	return v
}

// variableType is the column type of a declared variable: numbers are
// doubles, integers and booleans (0/1) integers, categories strings.
func variableType(v *policies.Variable) Type {
	switch v.Type {
	case policies.TypeNumber:
		return Double
	case policies.TypeCategory:
		return String
	}
	return Integer
}

// outcomeColumn adds the k-th proximal outcome, of settled type t.
func outcomeColumn(r *registry[*decision], k int, o policies.Outcome, t Type) {
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
	a := about{desc: desc, missing: outcomeMissing(o)}
	if o.Aggregate == "any" {
		a.levels = []string{"0 = no", "1 = yes"}
	}
	if o.Event == "assessment" {
		a.unit = "total score"
	}
	addAs(r, o.Name, t, a, func(d *decision) any { return d.outcomes[k] })
}

// historyColumns adds the policy's input.history.
func historyColumns(r *registry[*decision]) {
	add(r, "prompts_today", about{unit: "prompts", desc: "Prompts delivered earlier on the participant-local day, as given to the policy (input.history.prompts_today).", missing: "when the record's policy input lacks it"},
		func(d *decision) (int64, bool) { return whole(d.history.PromptsToday) })
	add(r, "decisions_today", about{unit: "decisions", desc: "Decisions earlier on the participant-local day, as given to the policy (input.history.decisions_today).", missing: "when the record's policy input lacks it"},
		func(d *decision) (int64, bool) { return whole(d.history.DecisionsToday) })
	add(r, "minutes_since_last_prompt", about{unit: "minutes", desc: "Whole minutes since the last delivered prompt, as given to the policy (input.history.minutes_since_last_prompt).", missing: "when no prompt was delivered in the 8 days before"},
		func(d *decision) (int64, bool) { return whole(d.history.MinutesSinceLastPrompt) })
}

// dynGroups are the prefixes of the policy-input columns, in column order.
var dynGroups = []struct{ prefix, what string }{
	{"ema_", "Latest self-report (EMA) of %q at or before the decision, as given to the policy (input.state.ema.%s.value)."},
	{"ctx_", "Context %q sent by the app with the decision request (input.context.%s)."},
	{"ctxev_", "Latest reported context variable %q at or before the decision, as given to the policy (input.state.context.%s.value)."},
	{"assess_", "Total score of the latest %q assessment at or before the decision, as given to the policy (input.state.assessment.%s.total)."},
	{"derived_", "Value %q derived by an enricher plugin, as given to the policy (input.derived.%s)."},
	{"tailoring_", "Tailoring value %q recorded by the policy (the record's tailoring.%s; lists joined with ';')."},
}

// Positions of the groups in dynGroups.
const (
	groupEMA = iota
	groupContext
	groupContextEvent
	groupAssessment
	groupDerived
	groupTailoring
)

// dynColumn adds a policy-input column: a declared variable's, of the
// type the data dictionary gives it, or one found in the records, of the
// type settled from the kinds of value seen in the whole export.
func dynColumn(r *registry[*decision], dc *dynCol) {
	g := dynGroups[dc.group]
	key := dc.key
	if dc.group == groupAssessment {
		key = strings.TrimSuffix(key, "_total")
	}
	name := g.prefix + strings.ReplaceAll(dc.key, ".", "_")
	a := about{desc: fmt.Sprintf(g.what, key, key), missing: "when the policy input of the decision did not hold it"}
	if dc.v != nil {
		t := variableType(dc.v)
		declaredAbout(&a, dc.group, dc.v)
		addAs(r, name, t, a, func(d *decision) any { return d.dynValue(dc) })
		return
	}
	t := dc.kinds.typ()
	if t == Integer {
		a.levels = []string{"0 = false", "1 = true"}
	}
	switch {
	case dc.group == groupTailoring:
		a.missing = "when the policy did not record it for the decision"
	case dc.undeclared:
		a.desc += " Not in the study's data dictionary: typed by the values seen in this export."
	}
	addAs(r, name, t, a, func(d *decision) any { return d.dynValue(dc) })
}

// declaredAbout completes the codebook entry of a declared variable's
// column from the data dictionary: label, unit, range or levels, and how
// long a report stays current.
func declaredAbout(a *about, group int, v *policies.Variable) {
	if v.Label != "" {
		a.desc = strings.TrimSuffix(v.Label, ".") + ". " + a.desc
	}
	a.unit = v.Unit
	switch v.Type {
	case policies.TypeBoolean:
		a.levels = []string{"0 = false", "1 = true"}
	case policies.TypeCategory:
		a.levels = v.Levels
	}
	a.variable = &Variable{Source: v.Source, Plugin: v.Plugin, Name: v.Name, Type: v.Type, Min: v.Min, Max: v.Max, Levels: v.Levels, Unit: v.Unit, Label: v.Label}
	if v.CurrentFor.Duration > 0 {
		a.variable.CurrentFor = fmtDur(v.CurrentFor.Duration)
		a.desc += " A report is current for " + a.variable.CurrentFor + " (data dictionary)."
	}
	if group == groupContext {
		a.missing += ", or held a value that does not fit the data dictionary (a decision request's context is not checked against it)"
	} else {
		a.missing += ", or held a value that does not fit the data dictionary (a record made before it)"
	}
}

// sortDyn orders the policy-input columns: by group; in a group, the
// declared variables in data dictionary order, then the others by name.
func sortDyn(dyn []*dynCol) {
	sort.Slice(dyn, func(i, j int) bool {
		a, b := dyn[i], dyn[j]
		if a.group != b.group {
			return a.group < b.group
		}
		if (a.order == 0) != (b.order == 0) {
			return a.order != 0
		}
		if a.order != b.order {
			return a.order < b.order
		}
		return a.key < b.key
	})
}

// whole is a number of the policy input as a whole number, when given.
func whole(f *float64) (int64, bool) {
	if f == nil {
		return 0, false
	}
	return int64(*f), true
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

// deliveryColumns are the delivery log of scheduled and event-triggered
// deliver or safety decisions of a study with a delivery section: the
// funnel's sent step (delivered, opened and completed are the engagement
// outcomes).
func deliveryColumns(r *registry[*decision]) {
	none := "unless the decision was a scheduled or event-triggered deliver or safety decision of a study with a delivery section"
	add(r, "delivery_status", about{levels: []string{trial.DeliveryQueued, trial.DeliverySent, trial.DeliveryFailed, trial.DeliveryExpired, trial.DeliveryAnswered},
		desc: "Delivery log: queued (not yet accepted by a channel at export time), sent (accepted by a channel), failed (refused for good), expired (the decision expired first), answered (the app asked for it and got it in the answer).", missing: none},
		func(d *decision) (string, bool) {
			if d.delivery == nil {
				return "", false
			}
			return d.delivery.Status, true
		})
	add(r, "delivery_channel", about{desc: "The channel that accepted the delivery (webhook, fcm, apns, webpush, a notifier plugin, or answer).", missing: "unless delivery_status is sent or answered"},
		func(d *decision) (string, bool) {
			if d.delivery == nil || d.delivery.Channel == "" {
				return "", false
			}
			return d.delivery.Channel, true
		})
	add(r, "delivery_attempts", about{desc: "Delivery attempts made.", missing: none},
		func(d *decision) (int64, bool) {
			if d.delivery == nil {
				return 0, false
			}
			return int64(d.delivery.Attempts), true
		})
	add(r, "delivery_sent_at", about{unit: "UTC", desc: "When a channel accepted the delivery (RFC 3339, UTC).", missing: "unless delivery_status is sent or answered"},
		func(d *decision) (time.Time, bool) {
			if d.delivery == nil || d.delivery.SentAt.IsZero() {
				return time.Time{}, false
			}
			return d.delivery.SentAt.UTC(), true
		})
}
