package decision

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/policies"
)

func TestScoreAssessment(t *testing.T) {
	cases := []struct {
		inst     string
		items    []int
		total    int
		severity string
		err      string
	}{
		{"phq9", []int{0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, "minimal", ""},
		{"phq9", []int{1, 1, 1, 1, 0, 0, 0, 0, 0}, 4, "minimal", ""},
		{"phq9", []int{1, 1, 1, 1, 1, 0, 0, 0, 0}, 5, "mild", ""},
		{"phq9", []int{2, 2, 2, 2, 2, 0, 0, 0, 0}, 10, "moderate", ""},
		{"phq9", []int{2, 2, 2, 2, 2, 2, 2, 1, 0}, 15, "moderately_severe", ""},
		{"phq9", []int{3, 3, 3, 3, 3, 3, 2, 0, 0}, 20, "severe", ""},
		{"phq9", []int{3, 3, 3, 3, 3, 3, 3, 3, 3}, 27, "severe", ""},
		{"gad7", []int{3, 3, 3, 3, 3, 0, 0}, 15, "severe", ""},
		{"gad7", []int{2, 2, 2, 2, 2, 0, 0}, 10, "moderate", ""},
		{"phq9", []int{0, 0, 0}, 0, "", "has 9 items"},
		{"phq9", []int{0, 0, 0, 0, 0, 0, 0, 0, 4}, 0, "", "item 9 is 4"},
		{"bdi", []int{0}, 0, "", "unknown instrument"},
	}
	for _, c := range cases {
		a, err := trial.ScoreAssessment(c.inst, c.items)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s %v: error %v, want %q", c.inst, c.items, err, c.err)
			}
			continue
		}
		if err != nil || a.Total != c.total || a.Severity != c.severity {
			t.Errorf("%s %v = %d %s (%v), want %d %s", c.inst, c.items, a.Total, a.Severity, err, c.total, c.severity)
		}
	}
}

func ev(id, typ string, at time.Time, data string) trial.Event {
	return trial.Event{ID: id, Type: typ, Time: at, Data: json.RawMessage(data)}
}

func TestApplyEventLatestByEventTime(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	st := &trial.State{}
	for _, e := range []trial.Event{
		ev("a", trial.EventEMA, t0.Add(time.Hour), `{"stress":7,"note":"`+strings.Repeat("x", 100)+`"}`),
		ev("b", trial.EventEMA, t0, `{"stress":2,"mood":5}`), // older, arrives later
		ev("c", trial.EventPreference, t0.Add(2*time.Hour), `{"snooze_minutes":30}`),
		ev("d", trial.EventPreference, t0, `{"snooze_minutes":600,"opt_out":true}`), // older
		ev("e", trial.EventAssessment, t0, `{"instrument":"phq9","items":[1,1,1,1,1,1,1,1,1]}`),
		ev("f", trial.EventPreference, t0.Add(3*time.Hour), `{"quiet_hours":{"start":"21:00","end":"07:00"}}`),
	} {
		trial.ApplyEvent(st, &e)
	}
	if got := st.EMA["stress"].Value; got != 7.0 {
		t.Errorf("stress = %v, want the later report 7", got)
	}
	if got := st.EMA["mood"].Value; got != 5.0 {
		t.Errorf("mood = %v, want 5", got)
	}
	if _, ok := st.EMA["note"]; ok {
		t.Error("free text reached the state")
	}
	if want := t0.Add(2*time.Hour + 30*time.Minute); !st.Preferences.SnoozedUntil.Equal(want) {
		t.Errorf("snoozed until %v, want %v (older snooze must not win)", st.Preferences.SnoozedUntil, want)
	}
	if !st.Preferences.OptedOut {
		t.Error("opt_out from the only opt event was lost")
	}
	if a := st.Assessments["phq9"]; a.Total != 9 || a.Severity != "mild" || a.Items[8] != 1 {
		t.Errorf("phq9 = %+v", a)
	}
	if q := st.Preferences.QuietHours; q == nil || q.Start != "21:00" {
		t.Errorf("quiet hours = %+v", q)
	}
}

func TestValidateEvent(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		e     trial.Event
		field string
	}{
		{"ok ema", ev("e1", "ema", now, `{"stress":3}`), ""},
		{"no id", ev("", "ema", now, `{"stress":3}`), "ev.id"},
		{"email id", ev("me@example.org", "ema", now, `{"stress":3}`), "ev.id"},
		{"no time", ev("e1", "ema", time.Time{}, `{"stress":3}`), "ev.time"},
		{"future", ev("e1", "ema", now.Add(48*time.Hour), `{"stress":3}`), "ev.time"},
		{"unknown type", ev("e1", "mood", now, `{"stress":3}`), "ev.type"},
		{"no type", ev("e1", "", now, `{"stress":3}`), "ev.type"},
		{"no data", trial.Event{ID: "e1", Type: "ema", Time: now}, "ev.data"},
		{"nested ema", ev("e1", "ema", now, `{"stress":{"x":1}}`), "ev.data.stress"},
		{"bad var", ev("e1", "ema", now, `{"Stress":1}`), "ev.data.Stress"},
		{"engagement no decision", ev("e1", "engagement", now, `{"status":"opened"}`), "ev.data.decision_id"},
		{"engagement bad status", ev("e1", "engagement", now, `{"decision_id":"d","status":"loved"}`), "ev.data.status"},
		{"rated without rating", ev("e1", "engagement", now, `{"decision_id":"d","status":"rated"}`), "ev.data.rating"},
		{"preference empty", ev("e1", "preference", now, `{}`), "ev.data"},
		{"preference bad clock", ev("e1", "preference", now, `{"quiet_hours":{"start":"25:00","end":"07:00"}}`), "ev.data.quiet_hours.start"},
		{"preference unknown key", ev("e1", "preference", now, `{"volume":3}`), "ev.data"},
		{"assessment short", ev("e1", "assessment", now, `{"instrument":"gad7","items":[1,2]}`), "ev.data"},
		{"assessment ok", ev("e1", "assessment", now, `{"instrument":"gad7","items":[1,2,0,0,0,0,3]}`), ""},
	}
	for _, c := range cases {
		err := trial.ValidateEvent("ev", &c.e, now)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: unexpected error %v", c.name, err)
			}
			continue
		}
		ie, ok := err.(*trial.InputError)
		if !ok || ie.Field != c.field {
			t.Errorf("%s: error %v, want one naming %s", c.name, err, c.field)
		}
	}
}

func TestHistoryUsesParticipantLocalDay(t *testing.T) {
	loc, _ := time.LoadLocation("America/New_York")
	// 2026-11-21 23:30 New York is 04:30 UTC on the 22nd.
	now := time.Date(2026, 11, 22, 4, 30, 0, 0, time.UTC)
	st := &trial.State{Prompts: []trial.Prompt{
		{DecisionID: "a", Time: time.Date(2026, 11, 21, 4, 0, 0, 0, time.UTC), Intervention: "x"},  // 23:00 on the 20th NY
		{DecisionID: "b", Time: time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC), Intervention: "y"}, // 09:00 NY
		{DecisionID: "c", Time: time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC), Intervention: "z"},  // 21:00 NY
		{DecisionID: "d", Time: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC), Intervention: "w"},  // after now
	}}
	h := computeHistory(st, now, newLocalClock(now, loc))
	if h.promptsToday != 2 {
		t.Errorf("prompts today = %d, want 2 (local day in New York)", h.promptsToday)
	}
	if !h.lastPrompt.Equal(st.Prompts[2].Time) {
		t.Errorf("last prompt = %v", h.lastPrompt)
	}
	if got := recentInterventions(st.Prompts, now); len(got) != 3 || got[0] != "z" {
		t.Errorf("recent interventions = %v", got)
	}
}

func TestNextStateDoesNotTouchOld(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	old := &trial.State{Version: 3}
	for i := 0; i < trial.KeepPrompts; i++ {
		old.Prompts = append(old.Prompts, trial.Prompt{DecisionID: "x", Time: now.Add(-time.Duration(trial.KeepPrompts-i) * time.Minute)})
	}
	before := len(old.Prompts)
	rec := &trial.Record{ID: "new", Action: trial.ActionDeliver, Option: &trial.OptionDraw{ID: "iv"}}
	st := nextState(old, rec, now, "2026-11-21", nil)
	if len(old.Prompts) != before || old.Version != 3 {
		t.Fatal("old state modified")
	}
	if st.Version != 4 || len(st.Prompts) != trial.KeepPrompts || st.Prompts[len(st.Prompts)-1].DecisionID != "new" {
		t.Fatalf("new state: version %d, %d prompts", st.Version, len(st.Prompts))
	}
	rec.Action = trial.ActionNone
	if st2 := nextState(st, rec, now, "2026-11-21", nil); len(st2.Prompts) != trial.KeepPrompts || len(st2.Decisions) != 2 {
		t.Fatalf("a none decision must add to decisions only: %d prompts, %d decisions", len(st2.Prompts), len(st2.Decisions))
	}
}

func TestRollingCapCountsLast24Hours(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	st := &trial.State{}
	for _, h := range []int{30, 23, 12, 1} { // hours ago
		st.Prompts = append(st.Prompts, trial.Prompt{Time: now.Add(-time.Duration(h) * time.Hour)})
	}
	h := computeHistory(st, now, newLocalClock(now, time.UTC))
	if h.prompts24h != 3 || h.promptsToday != 1 {
		t.Fatalf("24h %d (want 3), today %d (want 1)", h.prompts24h, h.promptsToday)
	}
}

// Caps hold whatever order deliveries were recorded in: a decision for an
// earlier time sees the deliveries recorded for later times.
func TestBurdenCapsSeeLaterDeliveries(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 11, 21, h, m, 0, 0, time.UTC) }
	b := policies.Burden{MaxPerDay: 2, MaxPer24h: 3, MinMinutesBetween: 90}
	cases := []struct {
		name    string
		prompts []trial.Prompt
		now     time.Time
		want    []string
	}{
		{"free", []trial.Prompt{{Time: at(8, 0)}}, at(12, 0), nil},
		{"gap before", []trial.Prompt{{Time: at(11, 0)}}, at(12, 0), []string{ReasonBurdenMinGap}},
		{"gap after (recorded later)", []trial.Prompt{{Time: at(11, 0)}}, at(10, 0), []string{ReasonBurdenMinGap}},
		{"daily cap counts later deliveries", []trial.Prompt{{Time: at(15, 0)}, {Time: at(19, 0)}}, at(9, 0), []string{ReasonBurdenDailyCap}},
		{"other days do not count", []trial.Prompt{{Time: at(15, 0).AddDate(0, 0, 1)}, {Time: at(19, 0).AddDate(0, 0, -1)}}, at(9, 0), nil},
		// 3 in the 24 h from 20:00 yesterday would become 4 with a delivery at 09:00.
		{"rolling window before", []trial.Prompt{{Time: at(20, 0).AddDate(0, 0, -1)}, {Time: at(22, 0).AddDate(0, 0, -1)}, {Time: at(23, 30).AddDate(0, 0, -1)}}, at(9, 0), []string{ReasonBurden24hCap}},
		// Later deliveries (tomorrow morning) fill the window starting now.
		{"rolling window after", []trial.Prompt{{Time: at(7, 0).AddDate(0, 0, 1)}, {Time: at(8, 0).AddDate(0, 0, 1)}, {Time: at(9, 0).AddDate(0, 0, 1)}}, at(12, 0), []string{ReasonBurden24hCap}},
		{"rolling window not full", []trial.Prompt{{Time: at(7, 0).AddDate(0, 0, -1)}, {Time: at(8, 0).AddDate(0, 0, 1)}}, at(12, 0), nil},
	}
	for _, c := range cases {
		got := burdenReasons(b, c.prompts, c.now, newLocalClock(c.now, time.UTC))
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
