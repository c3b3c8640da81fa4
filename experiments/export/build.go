package export

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// builder gathers the rows' data participant by participant. The columns
// are made in finish, by the tables' registries (decisionTable,
// participantTable), once what depends on the data is known: which
// policy-input variables occur, the kinds of their values and of untyped
// outcomes, and which assessment instruments were reported.
type builder struct {
	cfg *policies.Config
	now time.Time

	decisions []*decision
	// outInfer says which outcomes (cfg.Outcomes order) take their type
	// from the values, and outKinds the kinds seen; outVars is the
	// declared variable of an EMA or context outcome (nil if none).
	outInfer []bool
	outKinds []kinds
	outVars  []*policies.Variable
	// dyn holds the policy-input columns seen, by name (e.g. "ema_stress").
	dyn     map[string]*dynCol
	revs    []string
	revSeen map[string]bool

	participants []*participantRow
	engagement   []*engagementRow
	pinst        map[string]bool // instruments seen in assessment events
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

// kv is a decision's value of a policy-input column.
type kv struct {
	col *dynCol
	v   any
}

// dynCol is a column of the policy input: declared in the study's data
// dictionary (v not nil: always there, of the declared type) or found in
// the records (typed by the kinds of value seen).
type dynCol struct {
	group int // order of the groups: see dynGroups
	key   string
	kinds kinds
	v     *policies.Variable
	order int // 1 + the variable's position in the dictionary; 0 if undeclared
	// undeclared: found in the records of a study whose dictionary does not
	// declare it.
	undeclared bool
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

func newBuilder(cfg *policies.Config, now time.Time) *builder {
	b := &builder{cfg: cfg, now: now, dyn: map[string]*dynCol{}, revSeen: map[string]bool{}, pinst: map[string]bool{}}
	for _, o := range cfg.Outcomes {
		v := outcomeVariable(cfg, o)
		_, infer := outcomeType(o, v)
		b.outInfer = append(b.outInfer, infer)
		b.outKinds = append(b.outKinds, kinds{})
		b.outVars = append(b.outVars, v)
	}
	for i := range cfg.Variables {
		b.declare(&cfg.Variables[i], i+1)
	}
	return b
}

// declare makes the columns of a variable of the data dictionary: an EMA
// variable's ema_<name>; a context variable's ctx_<name> (the decision
// request's) and ctxev_<name> (the latest context event's); an
// assessment's assess_<name>_total; a derived variable's
// derived_<plugin>_<name>.
func (b *builder) declare(v *policies.Variable, order int) {
	col := func(group int, key string) {
		b.dyn[dynGroups[group].prefix+key] = &dynCol{group: group, key: key, v: v, order: order}
	}
	switch v.Source {
	case policies.SourceEMA:
		col(groupEMA, v.Name)
	case policies.SourceContext:
		col(groupContext, v.Name)
		col(groupContextEvent, v.Name)
	case policies.SourceAssessment:
		col(groupAssessment, v.Name+"_total")
	case policies.SourceDerived:
		col(groupDerived, v.Plugin+"."+v.Name)
	}
}

// addParticipant gathers the rows' data of a participant read by fetch.
func (b *builder) addParticipant(p *trial.Participant, f fetched) error {
	recs, idx := f.recs, f.idx
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil || p.Timezone == "" {
		loc = nil
	}
	pr := &participantRow{p: p, index: int64(len(b.participants) + 1), decisions: int64(len(recs)), distal: map[string]*distal{}}
	for i, rec := range recs {
		if !b.revSeen[rec.PolicyRevision] {
			b.revSeen[rec.PolicyRevision] = true
			b.revs = append(b.revs, rec.PolicyRevision)
		}
		d := b.decision(rec, i, idx, &f.inputs[i], loc)
		d.delivery = f.dels[rec.ID]
		b.decisions = append(b.decisions, d)
		if delivered(rec) {
			b.engagement = append(b.engagement, newEngagementRow(d, idx.engagement[rec.ID]))
		}
		if rec.Available {
			pr.available++
		}
		switch rec.Action {
		case trial.ActionDeliver:
			pr.delivered++
		case trial.ActionSafety:
			pr.safety++
		}
	}
	for _, a := range idx.assess {
		b.pinst[a.instrument] = true
		x := pr.distal[a.instrument]
		if x == nil {
			x = &distal{first: a.total, firstAt: a.t}
			pr.distal[a.instrument] = x
		}
		x.last, x.lastAt = a.total, a.t
		x.n++
	}
	b.participants = append(b.participants, pr)
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

// decision gathers the data of the i-th decision of a participant: the
// record's exported fields, the proximal outcomes joined from the events,
// and the policy input.
func (b *builder) decision(rec *trial.Record, i int, idx *eventIndex, in *policyInput, loc *time.Location) *decision {
	d := &decision{
		participant: rec.Participant, id: rec.ID, point: rec.DecisionPoint, local: localTime(rec, loc),
		revision: rec.PolicyRevision, action: rec.Action, time: rec.Time, available: rec.Available,
		trigger: rec.Trigger, phase: rec.Phase, eventID: rec.EventID, scheduledAt: rec.ScheduledAt, studyDay: rec.StudyDay,
		unavailable: rec.UnavailableReasons, safetyReasons: rec.SafetyReasons,
		factors: rec.Factors, plugins: rec.Plugins, index: int64(i + 1),
		outcomes: make([]any, len(b.cfg.Outcomes)),
	}
	if rec.Action == trial.ActionDeliver {
		d.option = rec.Option
	}
	for k, o := range b.cfg.Outcomes {
		v := b.outcome(o, b.outVars[k], rec, idx)
		if b.outInfer[k] {
			b.outKinds[k].see(v)
		}
		d.outcomes[k] = v
	}

	d.day, d.history = in.Participant.DayInStudy, in.History
	add := func(group int, key string, raw any) {
		name := dynGroups[group].prefix + key
		dc := b.dyn[name]
		if dc != nil && dc.v != nil {
			// Declared: a value that does not fit the dictionary (a record
			// made before it, a request's context) is missing.
			if dc.v.Fits(raw) {
				d.dyn = append(d.dyn, kv{dc, raw})
			}
			return
		}
		v := scalar(raw)
		if v == nil || group == groupDerived {
			return
		}
		if dc == nil {
			dc = &dynCol{group: group, key: key, undeclared: len(b.cfg.Variables) > 0 && group != groupTailoring}
			b.dyn[name] = dc
		}
		dc.kinds.see(v)
		d.dyn = append(d.dyn, kv{dc, v})
	}
	for k, o := range in.State.EMA {
		add(groupEMA, k, o.Value)
	}
	for k, v := range in.Context {
		add(groupContext, k, v)
	}
	for k, o := range in.State.Context {
		add(groupContextEvent, k, o.Value)
	}
	for k, a := range in.State.Assessment {
		if a.Total != nil {
			add(groupAssessment, k+"_total", *a.Total)
		}
	}
	for p, vals := range in.Derived {
		if m, ok := vals.(map[string]any); ok {
			for k, v := range m {
				add(groupDerived, p+"."+k, v)
			}
		}
	}
	for k, v := range rec.Tailoring {
		add(groupTailoring, k, v)
	}
	return d
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// finish settles the types that depend on the data, makes the tables'
// registries and builds the tables.
func (b *builder) finish() (*Tables, error) {
	outTypes := make([]Type, len(b.cfg.Outcomes))
	for k, o := range b.cfg.Outcomes {
		outTypes[k], _ = outcomeType(o, b.outVars[k])
		if b.outInfer[k] {
			outTypes[k] = b.outKinds[k].typ()
		}
	}
	dyn := make([]*dynCol, 0, len(b.dyn))
	for _, dc := range b.dyn {
		dyn = append(dyn, dc)
	}
	sortDyn(dyn)

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

	return &Tables{
		Study:           b.cfg.ID,
		PolicyRevisions: b.revs,
		GeneratedAt:     b.now,
		Decisions:       decisionTable(b.cfg, outTypes, dyn).table(b.decisions),
		Participants:    participantTable(b.cfg, insts).table(b.participants),
		Engagement:      engagementTable().table(b.engagement),
		pluginNote:      strings.TrimSpace(dictionaryNote(b.cfg) + " " + pluginNote(b.cfg)),
	}, nil
}

// dictionaryNote describes the policy-input columns of a study with a data
// dictionary, if it has one.
func dictionaryNote(cfg *policies.Config) string {
	if len(cfg.Variables) == 0 {
		return ""
	}
	return "The study has a data dictionary (study.yaml variables): every declared variable has its columns (ema_<name>; ctx_<name> and ctxev_<name> for a context variable; assess_<instrument>_total; derived_<plugin>_<name>), first in each group in dictionary order, of the declared type whatever the data; a value that does not fit the dictionary is missing. " +
		"Undeclared variables found in the records follow, sorted by name and typed by the values seen; tailoring_* columns are always typed by the values seen."
}

// pluginNote describes the plugin columns of the decisions table, if the
// study has any.
func pluginNote(cfg *policies.Config) string {
	var fs []string
	for _, f := range cfg.Factors {
		if pluginFactor(f) {
			fs = append(fs, f.Name)
		}
	}
	enrichers := false
	for _, pc := range cfg.Plugins {
		enrichers = enrichers || pc.Kind == policies.PluginEnricher
	}
	if len(fs) == 0 && !enrichers {
		return ""
	}
	var s []string
	if len(fs) > 0 {
		s = append(s, fmt.Sprintf("The probability of %s comes from a probability provider plugin: after the factor's _draw come _prob_source (plugin or fallback), _provider_value (the provider's unclipped value), _provider_version and _fallback_reason.", strings.Join(fs, ", ")))
	}
	if enrichers {
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
