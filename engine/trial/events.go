package trial

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"
)

// Limits on untrusted input.
const (
	MaxEventsPerRequest = 500
	MaxStringValue      = 64  // longer strings are free text: stored, never given to policies
	MaxVariables        = 64  // per event
	maxIDLen            = 128 // ids of participants, events, idempotency keys
)

var (
	idPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	varPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// InputError is a problem with a request's content. Field names the
// offending field (a JSON path such as "events[2].data.items").
type InputError struct {
	Field  string
	Reason string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

func InputErrorf(field, format string, args ...any) *InputError {
	return &InputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ValidVariable reports whether s is an acceptable variable name (lower
// case letters, digits and _, starting with a letter, at most 64).
func ValidVariable(s string) bool { return varPattern.MatchString(s) }

// ValidID reports whether s is an acceptable pseudonymous id (letters,
// digits and . _ : -, at most 128 characters; no e-mail addresses).
func ValidID(s string) bool { return idPattern.MatchString(s) }

// engagement statuses an app may report.
var engagementStatus = map[string]bool{"delivered": true, "opened": true, "completed": true, "dismissed": true, "rated": true}

type EngagementData struct {
	DecisionID string   `json:"decision_id"`
	Status     string   `json:"status"`
	Rating     *float64 `json:"rating"`
}

type preferenceData struct {
	SnoozeUntil   *string `json:"snooze_until"`
	SnoozeMinutes *int    `json:"snooze_minutes"`
	// QuietHours is a json.RawMessage, not a pointer: a pointer would be
	// nil for null, and null (clear the quiet hours) must differ from absent.
	QuietHours json.RawMessage `json:"quiet_hours"`
	OptOut     *bool           `json:"opt_out"`
}

type assessmentData struct {
	Instrument string `json:"instrument"`
	Items      []int  `json:"items"`
}

// instruments maps a questionnaire to its item count and severity bands
// (upper bounds of each band, inclusive).
var instruments = map[string]struct {
	items, max int
	bands      []band
}{
	"phq9": {9, 3, []band{{4, "minimal"}, {9, "mild"}, {14, "moderate"}, {19, "moderately_severe"}, {27, "severe"}}},
	"gad7": {7, 3, []band{{4, "minimal"}, {9, "mild"}, {14, "moderate"}, {21, "severe"}}},
}

type band struct {
	upTo int
	name string
}

// InstrumentMaxTotal is the highest total score of a questionnaire the
// engine scores (phq9: 27, gad7: 21); ok is false for another name.
func InstrumentMaxTotal(instrument string) (max int, ok bool) {
	spec, ok := instruments[instrument]
	return spec.items * spec.max, ok
}

// ScoreAssessment scores a questionnaire's items: total and severity band.
func ScoreAssessment(instrument string, items []int) (Assessment, error) {
	spec, ok := instruments[instrument]
	if !ok {
		return Assessment{}, fmt.Errorf("unknown instrument %q (phq9 or gad7)", instrument)
	}
	if len(items) != spec.items {
		return Assessment{}, fmt.Errorf("%s has %d items, got %d", instrument, spec.items, len(items))
	}
	total := 0
	for i, v := range items {
		if v < 0 || v > spec.max {
			return Assessment{}, fmt.Errorf("item %d is %d; items are scored 0 to %d", i+1, v, spec.max)
		}
		total += v
	}
	a := Assessment{Instrument: instrument, Items: append([]int(nil), items...), Total: total}
	for _, b := range spec.bands {
		if total <= b.upTo {
			a.Severity = b.name
			break
		}
	}
	return a, nil
}

func decodeStrict(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}

// ValidateEvent checks one event's envelope and data. field is its JSON path.
func ValidateEvent(field string, ev *Event, now time.Time) error {
	if !ValidID(ev.ID) {
		return InputErrorf(field+".id", "event id is required: 1-128 letters, digits or . _ : -")
	}
	if ev.Time.IsZero() {
		return InputErrorf(field+".time", "time is required (RFC 3339, e.g. 2026-11-21T14:05:00Z)")
	}
	if err := CheckTime(field+".time", ev.Time); err != nil {
		return err
	}
	if ev.Time.After(now.Add(24 * time.Hour)) {
		return InputErrorf(field+".time", "time %s is more than 24 hours in the future", ev.Time.Format(time.RFC3339))
	}
	if len(ev.Data) == 0 || bytes.Equal(ev.Data, []byte("null")) {
		return InputErrorf(field+".data", "data is required")
	}
	if err := CheckName(field+".type", ev.Type); err != nil {
		return err
	}
	df := field + ".data"
	switch ev.Type {
	case EventEMA, EventContext:
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			if name := outOfRangeNumber(ev.Data); name != "" {
				return InputErrorf(df+"."+name, "the number is out of range")
			}
			return InputErrorf(df, "must be an object of variable: value")
		}
		if len(m) == 0 || len(m) > MaxVariables {
			return InputErrorf(df, "must hold 1 to %d variables", MaxVariables)
		}
		for k, v := range m {
			if !ValidVariable(k) {
				return InputErrorf(df+"."+k, "variable names are lower-case identifiers")
			}
			switch x := v.(type) {
			case float64:
				if err := CheckNumber(df+"."+k, x); err != nil {
					return err
				}
			case string:
				if len(x) > MaxTextValue {
					return InputErrorf(df+"."+k, "strings are at most %d bytes", MaxTextValue)
				}
			case bool:
			default:
				return InputErrorf(df+"."+k, "value must be a number, boolean or string")
			}
		}
	case EventEngagement:
		var d EngagementData
		if err := decodeStrict(ev.Data, &d); err != nil {
			return InputErrorf(df, "engagement data is {decision_id, status, rating?}: %v", err)
		}
		if d.DecisionID == "" {
			return InputErrorf(df+".decision_id", "decision_id is required")
		}
		if len(d.DecisionID) > maxIDLen {
			return InputErrorf(df+".decision_id", "decision ids are at most %d characters", maxIDLen)
		}
		if !engagementStatus[d.Status] {
			if len(d.Status) > maxNameLen {
				d.Status = d.Status[:maxNameLen] + "..."
			}
			return InputErrorf(df+".status", "status %q must be delivered, opened, completed, dismissed or rated", d.Status)
		}
		if d.Status == "rated" && d.Rating == nil {
			return InputErrorf(df+".rating", "a rated engagement needs a rating")
		}
		if d.Rating != nil && (*d.Rating < 0 || *d.Rating > 10) {
			return InputErrorf(df+".rating", "rating must be between 0 and 10")
		}
	case EventPreference:
		var d preferenceData
		if err := decodeStrict(ev.Data, &d); err != nil {
			return InputErrorf(df, "preference data is {snooze_until?, snooze_minutes?, quiet_hours?, opt_out?}: %v", err)
		}
		if d.SnoozeUntil == nil && d.SnoozeMinutes == nil && d.QuietHours == nil && d.OptOut == nil {
			return InputErrorf(df, "give at least one of snooze_until, snooze_minutes, quiet_hours, opt_out")
		}
		if d.SnoozeUntil != nil && len(*d.SnoozeUntil) > maxNameLen {
			return InputErrorf(df+".snooze_until", "must be an RFC 3339 time")
		}
		if d.SnoozeUntil != nil && *d.SnoozeUntil != "" {
			t, err := time.Parse(time.RFC3339, *d.SnoozeUntil)
			if err != nil {
				return InputErrorf(df+".snooze_until", "must be an RFC 3339 time")
			}
			if err := CheckTime(df+".snooze_until", t); err != nil {
				return err
			}
		}
		if d.SnoozeMinutes != nil && (*d.SnoozeMinutes < 0 || *d.SnoozeMinutes > 60*24*30) {
			return InputErrorf(df+".snooze_minutes", "must be between 0 and 43200")
		}
		if d.QuietHours != nil && !bytes.Equal(d.QuietHours, []byte("null")) {
			var q QuietHours
			if err := decodeStrict(d.QuietHours, &q); err != nil {
				return InputErrorf(df+".quiet_hours", "must be {start, end} or null")
			}
			if _, err := ParseClock(q.Start); err != nil {
				return InputErrorf(df+".quiet_hours.start", "must be HH:MM")
			}
			if _, err := ParseClock(q.End); err != nil {
				return InputErrorf(df+".quiet_hours.end", "must be HH:MM")
			}
		}
	case EventAssessment:
		var d assessmentData
		if err := decodeStrict(ev.Data, &d); err != nil {
			return InputErrorf(df, "assessment data is {instrument, items: [...]}: %v", err)
		}
		if err := CheckName(df+".instrument", d.Instrument); err != nil {
			return err
		}
		if _, err := ScoreAssessment(d.Instrument, d.Items); err != nil {
			return InputErrorf(df, "%v", err)
		}
	case "":
		return InputErrorf(field+".type", "type is required (ema, context, engagement, preference, assessment)")
	default:
		return InputErrorf(field+".type", "unknown event type %q (ema, context, engagement, preference, assessment)", ev.Type)
	}
	return nil
}

// History bounds: the state keeps enough to answer every history question
// in docs/policy.md, and no more.
const (
	KeepPrompts    = 64
	KeepDecisions  = 64
	KeepEngagement = 128
	HistoryWindow  = 8 * 24 * time.Hour
	// DecisionWindow covers any participant-local day (time zones reach
	// 14 hours from UTC) for decisions_today.
	DecisionWindow = 48 * time.Hour
)

// ApplyEvent updates the state with one (validated) event. Later reports of
// a variable replace earlier ones by event time, not arrival order.
func ApplyEvent(st *State, ev *Event) {
	switch ev.Type {
	case EventEMA, EventContext:
		var m map[string]any
		_ = json.Unmarshal(ev.Data, &m)
		target := &st.EMA
		if ev.Type == EventContext {
			target = &st.Context
		}
		if *target == nil {
			*target = map[string]Observation{}
		}
		for k, v := range m {
			if s, ok := v.(string); ok && len(s) > MaxStringValue {
				continue // free text: kept in the event, never in state or logs
			}
			if old, ok := (*target)[k]; ok && old.Time.After(ev.Time) {
				continue
			}
			(*target)[k] = Observation{Value: v, Time: ev.Time}
		}
	case EventEngagement:
		var d EngagementData
		_ = json.Unmarshal(ev.Data, &d)
		st.Engagement = append(st.Engagement, Engagement{DecisionID: d.DecisionID, Status: d.Status, Time: ev.Time, Rating: d.Rating})
		st.Engagement = trimEngagement(st.Engagement, ev.Time)
	case EventPreference:
		var d preferenceData
		_ = json.Unmarshal(ev.Data, &d)
		p := &st.Preferences
		if (d.SnoozeUntil != nil || d.SnoozeMinutes != nil) && !p.SnoozeSetAt.After(ev.Time) {
			p.SnoozeSetAt = ev.Time
			p.SnoozedUntil = time.Time{}
			if d.SnoozeUntil != nil && *d.SnoozeUntil != "" {
				p.SnoozedUntil, _ = time.Parse(time.RFC3339, *d.SnoozeUntil)
				p.SnoozedUntil = p.SnoozedUntil.UTC()
			}
			if d.SnoozeMinutes != nil && *d.SnoozeMinutes > 0 {
				p.SnoozedUntil = ev.Time.Add(time.Duration(*d.SnoozeMinutes) * time.Minute)
			}
		}
		if d.QuietHours != nil && !p.QuietSetAt.After(ev.Time) {
			p.QuietSetAt = ev.Time
			p.QuietHours = nil
			var q QuietHours
			if !bytes.Equal(d.QuietHours, []byte("null")) && json.Unmarshal(d.QuietHours, &q) == nil {
				p.QuietHours = &q
			}
		}
		if d.OptOut != nil && !p.OptSetAt.After(ev.Time) {
			p.OptSetAt = ev.Time
			p.OptedOut = *d.OptOut
		}
	case EventAssessment:
		var d assessmentData
		_ = json.Unmarshal(ev.Data, &d)
		a, err := ScoreAssessment(d.Instrument, d.Items)
		if err != nil {
			return
		}
		a.Time = ev.Time
		if old, ok := st.Assessments[a.Instrument]; ok && old.Time.After(ev.Time) {
			return
		}
		if st.Assessments == nil {
			st.Assessments = map[string]Assessment{}
		}
		st.Assessments[a.Instrument] = a
	}
}

func trimEngagement(es []Engagement, now time.Time) []Engagement {
	cut := 0
	for cut < len(es) && (len(es)-cut > KeepEngagement || now.Sub(es[cut].Time) > HistoryWindow) {
		cut++
	}
	return es[cut:]
}

// outOfRangeNumber names the first member (in name order) of a JSON object
// whose number no float64 holds (1e400), or "" when there is none.
func outOfRangeNumber(data []byte) string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil {
		return ""
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if n, ok := m[k].(json.Number); ok {
			if _, err := n.Float64(); err != nil {
				return k
			}
		}
	}
	return ""
}
