package storetest

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/interventions"
)

// base is the start of the suite's fictional study week. Times built from it
// carry microseconds so that a store that truncates them fails.
var base = time.Date(2026, time.March, 2, 7, 30, 0, 0, time.UTC)

// at returns the i-th point in time of the suite: i minutes after base plus a
// few microseconds that differ from point to point.
func at(i int) time.Time {
	return base.Add(time.Duration(i)*time.Minute + time.Duration(i*7919%1000003+13)*time.Microsecond)
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// participant returns a new participant of study in stratum.
func participant(study, id, stratum string) *trial.Participant {
	return &trial.Participant{
		Study:      study,
		ID:         id,
		Timezone:   "Europe/London",
		Strata:     map[string]string{"site": stratum},
		Stratum:    stratum,
		EnrolledAt: at(0),
		Status:     trial.StatusActive,
	}
}

// assignBySeq returns an assign function that derives p's design row and
// between-person levels from its sequence number, as a 2x2 factorial would.
func assignBySeq(p *trial.Participant) func(seq int64) error {
	return func(seq int64) error {
		p.Row = int(seq % 4)
		p.Assignment = map[string]string{
			"framing":  []string{"gain", "loss"}[p.Row&1],
			"reminder": []string{"off", "on"}[p.Row>>1&1],
		}
		return nil
	}
}

// emaEvent is a stress self-report.
func emaEvent(id string, t time.Time, stress int) trial.Event {
	return trial.Event{
		ID:         id,
		Type:       trial.EventEMA,
		Time:       t,
		Data:       json.RawMessage(fmt.Sprintf(`{"item":"stress","value":%d,"prompted":true}`, stress)),
		ReceivedAt: t.Add(2*time.Second + 345*time.Microsecond),
	}
}

// contextEvent is a context report.
func contextEvent(id string, t time.Time, activity string) trial.Event {
	return trial.Event{
		ID:         id,
		Type:       trial.EventContext,
		Time:       t,
		Data:       json.RawMessage(fmt.Sprintf(`{"activity":%q,"location":"home","phone_in_use":false}`, activity)),
		ReceivedAt: t.Add(900 * time.Millisecond),
	}
}

// applyEvents is a minimal state enricher: the latest stress and activity
// with their times.
func applyEvents(st *trial.State, fresh []trial.Event) error {
	for _, ev := range fresh {
		var d struct {
			Item     string  `json:"item"`
			Value    float64 `json:"value"`
			Activity string  `json:"activity"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		switch ev.Type {
		case trial.EventEMA:
			if st.EMA == nil {
				st.EMA = map[string]trial.Observation{}
			}
			st.EMA[d.Item] = trial.Observation{Value: d.Value, Time: ev.Time}
		case trial.EventContext:
			if st.Context == nil {
				st.Context = map[string]trial.Observation{}
			}
			st.Context["activity"] = trial.Observation{Value: d.Activity, Time: ev.Time}
		}
	}
	return nil
}

// nextState returns the state after a delivered decision at t: a copy of old
// with the version bumped and the prompt and decision time appended.
func nextState(old *trial.State, id string, t time.Time) *trial.State {
	st := *old
	st.Version = old.Version + 1
	st.Prompts = append(append([]trial.Prompt(nil), old.Prompts...), trial.Prompt{DecisionID: id, Time: t, Intervention: "breathing-478"})
	st.Decisions = append(append([]time.Time(nil), old.Decisions...), t)
	if st.EMA == nil {
		st.EMA = map[string]trial.Observation{"stress": {Value: 6.0, Time: t.Add(-17 * time.Minute)}}
	}
	st.Preferences.QuietHours = &trial.QuietHours{Start: "22:30", End: "07:00"}
	st.Preferences.QuietSetAt = base
	return &st
}

// record returns a realistic decision record: a delivered, micro-randomised
// decision with one within-person and one between-person factor.
func record(study, participant, id string, t time.Time) *trial.Record {
	return &trial.Record{
		ID:                id,
		Study:             study,
		Participant:       participant,
		DecisionPoint:     "scheduled",
		Time:              t,
		LocalTime:         t.Format("2006-01-02T15:04:05"),
		RecordedAt:        t.Add(3*time.Millisecond + 211*time.Microsecond),
		ExpiresAt:         t.Add(time.Hour),
		PolicyRevision:    "sha256:4f2a9c",
		CatalogueRevision: "cat-2026-02-20",
		Action:            trial.ActionDeliver,
		Reasons:           []string{"stress_high"},
		Available:         true,
		Randomised:        true,
		Factors: []trial.FactorDraw{
			{Name: "prompt", Type: "within", Level: 1, Label: "on", Probability: ptr(0.6), Proposed: ptr(0.72), Source: "policy", Draw: ptr(0.4137792315)},
			{Name: "framing", Type: "between", Level: 0, Label: "gain"},
		},
		Candidates: []trial.Candidate{
			{ID: "breathing-478", Weight: 2, Reason: "stress_high"},
			{ID: "grounding-54321", Weight: 1},
		},
		Option: &trial.OptionDraw{ID: "breathing-478", Probability: 2.0 / 3, Draw: 0.1903},
		Intervention: &interventions.Rendered{
			ID:        "breathing-478",
			Title:     "4–7–8 breathing",
			Body:      "Your stress seems high right now — let's slow things down for two minutes.",
			Steps:     []string{"Breathe in through your nose for 4 s", "Hold for 7 s", "Breathe out slowly for 8 s", "Repeat 4 times"},
			DurationS: 120,
		},
		Tailoring: map[string]any{"stress": 7.0, "minutes_since_prompt": 184.0, "activity": "still"},
		Input: json.RawMessage(`{"now":"` + t.Format(time.RFC3339Nano) + `","state":{"ema":{"stress":{"v":7,"t":"2026-03-02T07:11:00Z"}}},` +
			`"between":{"framing":"gain"},"history":{"prompts_today":1,"minutes_since_prompt":184}}`),
		InputHash:      "sha256:0b1c7e",
		IdempotencyKey: "",
		LatencyMicros:  1843,
	}
}

// idem returns an idempotency entry for a decision.
func idem(key, decisionID string, t time.Time) *trial.IdempotencyEntry {
	return &trial.IdempotencyEntry{
		Key:         key,
		RequestHash: "sha256:" + key + "-req",
		DecisionID:  decisionID,
		Response:    []byte(`{"decision_id":"` + decisionID + `","action":"deliver","intervention":{"id":"breathing-478"}}`),
		CreatedAt:   t,
	}
}
