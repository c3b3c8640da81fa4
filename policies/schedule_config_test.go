package policies

import (
	"strings"
	"testing"
)

const scheduledStudy = `id: s1
name: A study
timezone: Europe/London
seed: "0123456789abcdef"
decision_points:
  - {id: morning, time: "08:30"}
  - id: mid
    window: {start: "08:00", end: "10:00"}
    days: [mon, tue, wed]
    study_days: {from: 1, to: 28}
  - {id: on-demand, kind: app}
phases:
  - {name: baseline, days: 7, randomise: false}
  - {name: active, days: 42}
  - {name: follow_up, days: 14, randomise: false}
crisis:
  text: "Call 116 123."
`

func TestScheduleConfigParses(t *testing.T) {
	c, err := ParseConfig("s/study.yaml", []byte(scheduledStudy))
	if err != nil {
		t.Fatalf("valid study refused: %v", err)
	}
	mid, _ := c.DecisionPoint("mid")
	if mid.Kind != "scheduled" || mid.Window == nil || mid.Window.Start != "08:00" || len(mid.Days) != 3 || !mid.StudyDays.Contains(28) || mid.StudyDays.Contains(29) || mid.StudyDays.Contains(0) {
		t.Errorf("window point %+v", mid)
	}
	if m, _ := c.DecisionPoint("morning"); m.Kind != "scheduled" || m.Window != nil || m.StudyDays != nil || !m.StudyDays.Contains(1000) {
		t.Errorf("fixed point %+v", m)
	}
	if len(c.Phases) != 3 || c.Phases[0].Randomises() || !c.Phases[1].Randomises() || c.Phases[2].Randomises() || c.Phases[1].Days != 42 {
		t.Errorf("phases %+v", c.Phases)
	}
}

func TestScheduleConfigErrorsPointAtLines(t *testing.T) {
	r := func(old, new string) string { return strings.Replace(scheduledStudy, old, new, 1) }
	cases := []struct{ name, edit, want string }{
		{"window start", r(`start: "08:00"`, `start: "8am"`), `s/study.yaml:8: window start "8am" must be HH:MM`},
		{"window end", r(`end: "10:00"`, `end: "25:00"`), `s/study.yaml:8: window end "25:00" must be HH:MM`},
		{"window backwards", r(`end: "10:00"`, `end: "07:00"`), "s/study.yaml:8: window end 07:00 must be after its start 08:00"},
		{"time and window", r(`window: {`, `time: "09:00"`+"\n    window: {"), `s/study.yaml:9: decision point "mid" has both time and window`},
		{"no time", r(`{id: morning, time: "08:30"}`, `{id: morning, kind: scheduled}`), "s/study.yaml:6: a scheduled decision point needs a time"},
		{"bad day", r("[mon, tue, wed]", "[mon, tues]"), `s/study.yaml:9: day "tues" must be one of mon`},
		{"day twice", r("[mon, tue, wed]", "[mon, mon]"), `s/study.yaml:9: day "mon" is listed twice`},
		{"no days", r("[mon, tue, wed]", "[]"), "s/study.yaml:9: days is empty"},
		{"study day 0", r("from: 1,", "from: 0,"), "s/study.yaml:10: study_days.from 0 must be at least 1"},
		{"study days backwards", r("to: 28", "to: 0"), "s/study.yaml:10: study_days.to 0 must be at least from (1)"},
		{"app with window", r("{id: on-demand, kind: app}", `{id: on-demand, kind: app, days: [mon]}`), `s/study.yaml:11: window, days and study_days apply only to scheduled points`},
		{"unknown key", r("days: [mon, tue, wed]", "weekdays: [mon]"), "s/study.yaml:9: field weekdays not found"},
		{"phase days", r("{name: active, days: 42}", "{name: active}"), `s/study.yaml:14: phase "active" needs days`},
		{"negative days", r("days: 14,", "days: -1,"), `s/study.yaml:15: phase "follow_up" needs days`},
		{"phase twice", r("name: follow_up", "name: active"), `s/study.yaml:15: phase "active" is declared twice`},
		{"reserved phase", r("name: follow_up", "name: completed"), `s/study.yaml:15: phase name "completed" is reserved`},
		{"bad phase name", r("name: follow_up", "name: Follow-up"), `s/study.yaml:15: phase name "Follow-up" must be a lower-case identifier`},
		{"no phases", r("phases:\n  - {name: baseline, days: 7, randomise: false}\n  - {name: active, days: 42}\n  - {name: follow_up, days: 14, randomise: false}", "phases: []"), "s/study.yaml:12: phases is empty"},
		{"randomise type", r("randomise: false}\n  - {name: active", "randomise: maybe}\n  - {name: active"), "s/study.yaml:13: cannot unmarshal"},
	}
	for _, c := range cases {
		_, err := ParseConfig("s/study.yaml", []byte(c.edit))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	open := r("{name: follow_up, days: 14, randomise: false}", "{name: follow_up, randomise: false}")
	if _, err := ParseConfig("s/study.yaml", []byte(open)); err != nil {
		t.Errorf("an open-ended last phase was refused: %v", err)
	}
}
