package trial

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jitai/jitai/interventions"
)

// The stores write a decision record and a state with every decision. These
// encoders give exactly encoding/json's bytes (recordjson_test.go compares
// them on varied documents) without its reflection and without re-scanning
// each time.Time and json.RawMessage, which encoding/json compacts after
// calling their MarshalJSON. Readers decode with encoding/json as before.
//
// Keep them in step with the struct definitions in types.go: a field added
// there and not here is caught by TestRecordJSONMatchesEncodingJSON, which
// fills every field.

// AppendJSON appends the record's JSON encoding, byte for byte what
// json.Marshal(r) gives, to dst.
func (r *Record) AppendJSON(dst []byte) ([]byte, error) {
	e := jsonEncoder{b: dst}
	e.b = append(e.b, `{"decision_id":`...)
	e.str(r.ID)
	e.b = append(e.b, `,"study":`...)
	e.str(r.Study)
	e.b = append(e.b, `,"participant_id":`...)
	e.str(r.Participant)
	e.b = append(e.b, `,"decision_point":`...)
	e.str(r.DecisionPoint)
	if r.Trigger != "" {
		e.b = append(e.b, `,"trigger":`...)
		e.str(r.Trigger)
	}
	if r.EventID != "" {
		e.b = append(e.b, `,"event_id":`...)
		e.str(r.EventID)
	}
	if !r.ScheduledAt.IsZero() {
		e.b = append(e.b, `,"scheduled_at":`...)
		e.time(r.ScheduledAt)
	}
	if r.Phase != "" {
		e.b = append(e.b, `,"phase":`...)
		e.str(r.Phase)
	}
	if r.StudyDay != 0 {
		e.b = append(e.b, `,"study_day":`...)
		e.b = strconv.AppendInt(e.b, int64(r.StudyDay), 10)
	}
	e.b = append(e.b, `,"time":`...)
	e.time(r.Time)
	e.b = append(e.b, `,"local_time":`...)
	e.str(r.LocalTime)
	e.b = append(e.b, `,"recorded_at":`...)
	e.time(r.RecordedAt)
	e.b = append(e.b, `,"expires_at":`...)
	e.time(r.ExpiresAt)
	e.b = append(e.b, `,"policy_revision":`...)
	e.str(r.PolicyRevision)
	e.b = append(e.b, `,"catalogue_revision":`...)
	e.str(r.CatalogueRevision)
	e.b = append(e.b, `,"action":`...)
	e.str(r.Action)
	e.b = append(e.b, `,"reasons":`...)
	e.strs(r.Reasons)
	if len(r.SafetyReasons) > 0 {
		e.b = append(e.b, `,"safety_reasons":`...)
		e.strs(r.SafetyReasons)
	}
	e.b = append(e.b, `,"available":`...)
	e.b = strconv.AppendBool(e.b, r.Available)
	if len(r.UnavailableReasons) > 0 {
		e.b = append(e.b, `,"unavailable_reasons":`...)
		e.strs(r.UnavailableReasons)
	}
	e.b = append(e.b, `,"randomised":`...)
	e.b = strconv.AppendBool(e.b, r.Randomised)
	e.b = append(e.b, `,"factors":`...)
	if r.Factors == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i := range r.Factors {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.factor(&r.Factors[i])
		}
		e.b = append(e.b, ']')
	}
	if len(r.Candidates) > 0 {
		e.b = append(e.b, `,"candidates":[`...)
		for i := range r.Candidates {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.candidate(&r.Candidates[i])
		}
		e.b = append(e.b, ']')
	}
	if len(r.Contraindicated) > 0 {
		e.b = append(e.b, `,"contraindicated":`...)
		e.strs(r.Contraindicated)
	}
	if len(r.Conditions) > 0 {
		e.b = append(e.b, `,"conditions":`...)
		e.strs(r.Conditions)
	}
	if o := r.Option; o != nil {
		e.b = append(e.b, `,"option":{"id":`...)
		e.str(o.ID)
		e.b = append(e.b, `,"probability":`...)
		e.float(o.Probability)
		e.b = append(e.b, `,"draw":`...)
		e.float(o.Draw)
		e.b = append(e.b, '}')
	}
	if r.Intervention != nil {
		e.b = append(e.b, `,"intervention":`...)
		e.rendered(r.Intervention)
	}
	if len(r.Tailoring) > 0 {
		e.b = append(e.b, `,"tailoring":`...)
		e.value(r.Tailoring)
	}
	e.b = append(e.b, `,"input":`...)
	e.raw(r.Input)
	e.b = append(e.b, `,"input_hash":`...)
	e.str(r.InputHash)
	if r.IdempotencyKey != "" {
		e.b = append(e.b, `,"idempotency_key":`...)
		e.str(r.IdempotencyKey)
	}
	e.b = append(e.b, `,"latency_us":`...)
	e.b = strconv.AppendInt(e.b, r.LatencyMicros, 10)
	if len(r.Plugins) > 0 {
		e.b = append(e.b, `,"plugins":[`...)
		for i := range r.Plugins {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.pluginCall(&r.Plugins[i])
		}
		e.b = append(e.b, ']')
	}
	if pe := r.PolicyError; pe != nil {
		e.b = append(e.b, `,"policy_error":{"kind":`...)
		e.str(pe.Kind)
		if pe.Location != "" {
			e.b = append(e.b, `,"location":`...)
			e.str(pe.Location)
		}
		e.b = append(e.b, `,"message":`...)
		e.str(pe.Message)
		e.b = append(e.b, `,"safety":`...)
		e.str(pe.Safety)
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
	if e.err != nil {
		return nil, fmt.Errorf("encoding decision record: %w", e.err)
	}
	return e.b, nil
}

// AppendJSON appends the state's JSON encoding, byte for byte what
// json.Marshal(st) gives, to dst.
func (st *State) AppendJSON(dst []byte) ([]byte, error) {
	e := jsonEncoder{b: dst}
	e.b = append(e.b, `{"version":`...)
	e.b = strconv.AppendInt(e.b, st.Version, 10)
	if len(st.EMA) > 0 {
		e.b = append(e.b, `,"ema":`...)
		e.observations(st.EMA)
	}
	if len(st.Context) > 0 {
		e.b = append(e.b, `,"context":`...)
		e.observations(st.Context)
	}
	if len(st.Assessments) > 0 {
		e.b = append(e.b, `,"assessments":{`...)
		for i, k := range slices.Sorted(maps.Keys(st.Assessments)) {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.str(k)
			e.b = append(e.b, ':')
			e.assessment(st.Assessments[k])
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, `,"preferences":`...)
	e.preferences(&st.Preferences)
	if len(st.Prompts) > 0 {
		e.b = append(e.b, `,"prompts":[`...)
		for i := range st.Prompts {
			p := &st.Prompts[i]
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, `{"d":`...)
			e.str(p.DecisionID)
			e.b = append(e.b, `,"t":`...)
			e.time(p.Time)
			e.b = append(e.b, `,"i":`...)
			e.str(p.Intervention)
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	if len(st.Decisions) > 0 {
		e.b = append(e.b, `,"decisions":[`...)
		for i, t := range st.Decisions {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.time(t)
		}
		e.b = append(e.b, ']')
	}
	if len(st.Engagement) > 0 {
		e.b = append(e.b, `,"engagement":[`...)
		for i := range st.Engagement {
			g := &st.Engagement[i]
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, `{"d":`...)
			e.str(g.DecisionID)
			e.b = append(e.b, `,"s":`...)
			e.str(g.Status)
			e.b = append(e.b, `,"t":`...)
			e.time(g.Time)
			if g.Rating != nil {
				e.b = append(e.b, `,"r":`...)
				e.float(*g.Rating)
			}
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	if len(st.Budget) > 0 {
		e.b = append(e.b, `,"budget":[`...)
		for i := range st.Budget {
			be := &st.Budget[i]
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, `{"f":`...)
			e.str(be.Factor)
			e.b = append(e.b, `,"d":`...)
			e.str(be.Date)
			if be.Stratum != "" {
				e.b = append(e.b, `,"s":`...)
				e.str(be.Stratum)
			}
			e.b = append(e.b, `,"t":`...)
			e.b = strconv.AppendInt(e.b, int64(be.T), 10)
			e.b = append(e.b, `,"p":`...)
			e.float(be.Rho)
			if be.Treated {
				e.b = append(e.b, `,"a":true`...)
			}
			e.b = append(e.b, '}')
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, '}')
	if e.err != nil {
		return nil, fmt.Errorf("encoding state: %w", e.err)
	}
	return e.b, nil
}

// jsonEncoder appends JSON to b; the first error sticks and the caller
// reports it at the end.
type jsonEncoder struct {
	b   []byte
	err error
}

func (e *jsonEncoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *jsonEncoder) str(s string) { e.b = appendString(e.b, s) }

// strs encodes a []string field without omitempty: nil is null.
func (e *jsonEncoder) strs(list []string) {
	if list == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.b = append(e.b, '[')
	for i, s := range list {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = appendString(e.b, s)
	}
	e.b = append(e.b, ']')
}

func (e *jsonEncoder) float(f float64) {
	var err error
	if e.b, err = appendFloat(e.b, f); err != nil {
		e.fail(err)
	}
}

// time encodes t as time.Time.MarshalJSON does (RFC 3339 with nanoseconds,
// an error for years outside 0-9999).
func (e *jsonEncoder) time(t time.Time) {
	e.b = append(e.b, '"')
	b, err := t.AppendText(e.b)
	if err != nil {
		e.fail(fmt.Errorf("json: error calling MarshalJSON for type time.Time: %w", err))
		e.b = append(e.b, '"')
		return
	}
	e.b = append(b, '"')
}

func (e *jsonEncoder) raw(m json.RawMessage) {
	var err error
	if e.b, err = appendRawMessage(e.b, m); err != nil {
		e.fail(err)
	}
}

func (e *jsonEncoder) value(v any) {
	var err error
	if e.b, err = AppendJSON(e.b, v); err != nil {
		e.fail(err)
	}
}

func (e *jsonEncoder) optFloat(key string, f *float64) {
	if f != nil {
		e.b = append(e.b, key...)
		e.float(*f)
	}
}

func (e *jsonEncoder) factor(f *FactorDraw) {
	e.b = append(e.b, `{"name":`...)
	e.str(f.Name)
	e.b = append(e.b, `,"type":`...)
	e.str(f.Type)
	e.b = append(e.b, `,"level":`...)
	e.b = strconv.AppendInt(e.b, int64(f.Level), 10)
	e.b = append(e.b, `,"label":`...)
	e.str(f.Label)
	e.optFloat(`,"probability":`, f.Probability)
	e.optFloat(`,"proposed":`, f.Proposed)
	if f.Source != "" {
		e.b = append(e.b, `,"source":`...)
		e.str(f.Source)
	}
	e.optFloat(`,"draw":`, f.Draw)
	if bd := f.Budget; bd != nil {
		e.b = append(e.b, `,"budget":{`...)
		if bd.Stratum != "" {
			e.b = append(e.b, `"stratum":`...)
			e.str(bd.Stratum)
			e.b = append(e.b, ',')
		}
		e.b = append(e.b, `"t":`...)
		e.b = strconv.AppendInt(e.b, int64(bd.T), 10)
		e.b = append(e.b, `,"used":`...)
		e.float(bd.Used)
		e.b = append(e.b, `,"remaining":`...)
		e.float(bd.Remaining)
		e.b = append(e.b, '}')
	}
	if f.Plugin != nil {
		e.b = append(e.b, `,"plugin":`...)
		e.pluginCall(f.Plugin)
	}
	e.b = append(e.b, '}')
}

func (e *jsonEncoder) pluginCall(c *PluginCall) {
	e.b = append(e.b, `{"name":`...)
	e.str(c.Name)
	e.b = append(e.b, `,"kind":`...)
	e.str(c.Kind)
	if c.Version != "" {
		e.b = append(e.b, `,"version":`...)
		e.str(c.Version)
	}
	e.optFloat(`,"value":`, c.Value)
	if c.Fallback != "" {
		e.b = append(e.b, `,"fallback":`...)
		e.str(c.Fallback)
	}
	if c.Reason != "" {
		e.b = append(e.b, `,"reason":`...)
		e.str(c.Reason)
	}
	e.b = append(e.b, `,"latency_us":`...)
	e.b = strconv.AppendInt(e.b, c.LatencyMicros, 10)
	e.b = append(e.b, '}')
}

func (e *jsonEncoder) candidate(c *Candidate) {
	e.b = append(e.b, `{"id":`...)
	e.str(c.ID)
	e.b = append(e.b, `,"weight":`...)
	e.float(c.Weight)
	if c.Reason != "" {
		e.b = append(e.b, `,"reason":`...)
		e.str(c.Reason)
	}
	e.b = append(e.b, '}')
}

func (e *jsonEncoder) rendered(r *interventions.Rendered) {
	e.b = append(e.b, `{"id":`...)
	e.str(r.ID)
	e.b = append(e.b, `,"title":`...)
	e.str(r.Title)
	e.b = append(e.b, `,"body":`...)
	e.str(r.Body)
	e.b = append(e.b, `,"steps":`...)
	e.strs(r.Steps)
	e.b = append(e.b, `,"duration_s":`...)
	e.b = strconv.AppendInt(e.b, int64(r.DurationS), 10)
	e.b = append(e.b, '}')
}

func (e *jsonEncoder) observations(m map[string]Observation) {
	e.b = append(e.b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.str(k)
		e.b = append(e.b, `:{"v":`...)
		e.value(m[k].Value)
		e.b = append(e.b, `,"t":`...)
		e.time(m[k].Time)
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, '}')
}

func (e *jsonEncoder) assessment(a Assessment) {
	e.b = append(e.b, `{"instrument":`...)
	e.str(a.Instrument)
	e.b = append(e.b, `,"items":`...)
	if a.Items == nil {
		e.b = append(e.b, "null"...)
	} else {
		e.b = append(e.b, '[')
		for i, n := range a.Items {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = strconv.AppendInt(e.b, int64(n), 10)
		}
		e.b = append(e.b, ']')
	}
	e.b = append(e.b, `,"total":`...)
	e.b = strconv.AppendInt(e.b, int64(a.Total), 10)
	e.b = append(e.b, `,"severity":`...)
	e.str(a.Severity)
	e.b = append(e.b, `,"time":`...)
	e.time(a.Time)
	e.b = append(e.b, '}')
}

func (e *jsonEncoder) preferences(p *Preferences) {
	e.b = append(e.b, '{')
	sep := func() {
		if e.b[len(e.b)-1] != '{' {
			e.b = append(e.b, ',')
		}
	}
	if !p.SnoozedUntil.IsZero() {
		e.b = append(e.b, `"snoozed_until":`...)
		e.time(p.SnoozedUntil)
	}
	if q := p.QuietHours; q != nil {
		sep()
		e.b = append(e.b, `"quiet_hours":{"start":`...)
		e.str(q.Start)
		e.b = append(e.b, `,"end":`...)
		e.str(q.End)
		e.b = append(e.b, '}')
	}
	if p.OptedOut {
		sep()
		e.b = append(e.b, `"opted_out":true`...)
	}
	for _, f := range [...]struct {
		key string
		t   time.Time
	}{{`"snooze_set_at":`, p.SnoozeSetAt}, {`"quiet_set_at":`, p.QuietSetAt}, {`"opt_set_at":`, p.OptSetAt}} {
		if !f.t.IsZero() {
			sep()
			e.b = append(e.b, f.key...)
			e.time(f.t)
		}
	}
	e.b = append(e.b, '}')
}

// appendFloat formats f as encoding/json formats a float64: the shortest
// representation, in exponent form below 1e-6 and from 1e21 on. NaN and
// infinities are an error, as there.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}
