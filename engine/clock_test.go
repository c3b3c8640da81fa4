package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// clockStudyPoints replace stress-mrt's decision points: a fixed time, a
// window, weekdays, study days, and 01:30, which the autumn daylight-saving
// change repeats in Europe/London (and 02:30, which spring skips, is not in
// this span).
const clockStudyPoints = `decision_points:
  - id: morning
    time: "08:30"
  - id: midday
    window: {start: "12:00", end: "14:00"}
  - id: weekday_evening
    time: "18:00"
    days: [mon, wed, fri]
  - id: first_week
    time: "20:00"
    study_days: {from: 1, to: 7}
  - id: night
    time: "01:30"
phases:
  - name: baseline
    days: 3
    randomise: false
  - name: active
    days: 14
  - name: follow_up
    days: 7
`

// clockStudy is stress-mrt with clockStudyPoints.
func clockStudy(t testing.TB) *policies.Study {
	t.Helper()
	src := "../policies/examples/stress-mrt"
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(src, "policy", "policy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "decision_points:")
	j := strings.Index(s, "decision_ttl:")
	// The example's Rego tests know its own points: only its policy is kept.
	policytest.WriteFiles(t, dir, s[:i]+clockStudyPoints+s[j:], string(rego))
	return policytest.Load(t, dir)
}

// person is one participant of the fake-clock test.
type person struct {
	id       string
	zone     string
	enrolled time.Time
}

// fakeClock is the test's clock.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// wallInstant is the instant a point at local minute m of local date d
// fires in loc, found by brute force: the first minute whose local date and
// time are at or after (d, m). A time skipped by a daylight-saving gap so
// fires at the first instant after the gap, and a repeated one fires once,
// at its first occurrence.
func wallInstant(d time.Time, m int, loc *time.Location) time.Time {
	want := d.Format(time.DateOnly) + fmt.Sprintf(" %04d", m)
	for t := d.Add(-16 * time.Hour); ; t = t.Add(time.Minute) {
		l := t.In(loc)
		if l.Format(time.DateOnly)+fmt.Sprintf(" %04d", l.Hour()*60+l.Minute()) >= want {
			return t
		}
	}
}

// expectedPoints counts, independently of the schedule package, the keys
// (point, local date) of a participant's scheduled points with instants in
// [from, to), enrolled at enrolled in loc: fixed and window points once a
// day (a window point's minute is not needed to know that it exists, only
// to place it in time: the record says which minute was drawn, and the test
// checks it lies in the window), weekday points on their days, study-day
// points on their days. Phases: 3 baseline + 14 active + 7 follow-up days.
func expectedPoints(enrolled time.Time, loc *time.Location, from, to time.Time, windowMinute func(date string) int) map[string]time.Time {
	out := map[string]time.Time{}
	y, mo, d := enrolled.In(loc).Date()
	day1 := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	for day := day1.AddDate(0, 0, -1); day.Before(to.AddDate(0, 0, 2)); day = day.AddDate(0, 0, 1) {
		studyDay := int(day.Sub(day1).Hours()/24) + 1
		if studyDay < 1 || studyDay > 24 {
			continue
		}
		date := day.Format(time.DateOnly)
		add := func(point string, minute int) {
			at := wallInstant(day, minute, loc)
			if !at.Before(from) && at.Before(to) && !at.Before(enrolled) {
				out[point+"/"+date] = at
			}
		}
		add("morning", 8*60+30)
		if m := windowMinute(date); m >= 0 {
			add("midday", m)
		}
		switch day.Weekday() {
		case time.Monday, time.Wednesday, time.Friday:
			add("weekday_evening", 18*60)
		}
		if studyDay <= 7 {
			add("first_week", 20*60)
		}
		add("night", 90)
	}
	return out
}

// TestClockFakeTime runs the trial clock on a fake clock: 200 participants
// in six time zones over 21 days that span the autumn daylight-saving
// changes of Europe/London (25 October 2026) and America/New_York (1
// November 2026). One participant moves from London to Tokyo mid-study and
// one withdraws. Every participant's records are exactly their scheduled
// points, counted independently here; window times reproduce from the seed
// and lie in the window; baseline days randomise nothing.
func TestClockFakeTime(t *testing.T) {
	ctx := context.Background()
	study := clockStudy(t)
	store := memstore.New()
	start := time.Date(2026, 10, 20, 6, 7, 0, 0, time.UTC)
	end := start.Add(21 * 24 * time.Hour)
	clk := &fakeClock{now: start}
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now,
		Clock: engine.ClockOptions{Lease: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	zones := []string{"Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "Asia/Kolkata", "America/Los_Angeles"}
	var people []person
	for i := range 200 {
		// Enrolments spread over the first two days.
		clk.now = start.Add(time.Duration(i) * 17 * time.Minute)
		id := fmt.Sprintf("p%03d", i)
		p, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: id, Timezone: zones[i%len(zones)]})
		if err != nil {
			t.Fatal(err)
		}
		people = append(people, person{id, p.Timezone, p.EnrolledAt})
		fireAll(t, eng) // the clock runs while people enrol
	}
	mover, leaver := people[0], people[1] // London; New York
	moveAt := start.Add(9*24*time.Hour + 5*time.Hour)
	leaveAt := start.Add(12*24*time.Hour + 3*time.Hour)
	moved, left := false, false
	// The engine is down for three hours on day 5: points whose window
	// closed meanwhile are recorded as missed when it is back, the others
	// are decided late, at their own instants.
	downFrom := time.Date(2026, 10, 24, 5, 0, 0, 0, time.UTC)
	downTo := time.Date(2026, 10, 24, 7, 45, 0, 0, time.UTC)
	var lastUp, backUp time.Time // the clock's last run before, and first after
	for clk.now = people[len(people)-1].enrolled; clk.now.Before(end); clk.now = clk.now.Add(7 * time.Minute) {
		if !moved && !clk.now.Before(moveAt) {
			tz := "Asia/Tokyo"
			if _, err := eng.UpdateParticipant(ctx, study.Config.ID, mover.id, engine.UpdateRequest{Timezone: &tz}); err != nil {
				t.Fatal(err)
			}
			moveAt, moved = clk.now, true
		}
		if !left && !clk.now.Before(leaveAt) {
			if _, err := eng.Withdraw(ctx, study.Config.ID, leaver.id); err != nil {
				t.Fatal(err)
			}
			leaveAt, left = clk.now, true
		}
		if !clk.now.Before(downFrom) && clk.now.Before(downTo) {
			continue
		}
		if clk.now.Before(downFrom) {
			lastUp = clk.now
		} else if backUp.IsZero() {
			backUp = clk.now
		}
		fireAll(t, eng)
	}
	last := clk.now.Add(-7 * time.Minute) // the last time the clock ran
	recs, err := store.ListDecisions(ctx, trial.DecisionQuery{Study: study.Config.ID, Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	byPerson := map[string]map[string]*trial.Record{}
	for _, r := range recs {
		if r.Trigger != trial.TriggerScheduled {
			t.Fatalf("record %s has trigger %q", r.ID, r.Trigger)
		}
		m := byPerson[r.Participant]
		if m == nil {
			m = map[string]*trial.Record{}
			byPerson[r.Participant] = m
		}
		key := r.DecisionPoint + "/" + localDate(t, r)
		if old := m[key]; old != nil {
			t.Fatalf("participant %s has two records for %s: %s and %s", r.Participant, key, old.ID, r.ID)
		}
		m[key] = r
	}
	total, missedSeen, lateSeen := 0, 0, 0
	for _, p := range people {
		loc, _ := time.LoadLocation(p.zone)
		window := func(date string) int {
			if r := byPerson[p.id]["midday/"+date]; r != nil {
				l := r.ScheduledAt.In(loc)
				return l.Hour()*60 + l.Minute()
			}
			return 12*60 + 0 // a point the engine did not record: any window minute is counted
		}
		var want map[string]time.Time
		switch p.id {
		case mover.id:
			tokyo, _ := time.LoadLocation("Asia/Tokyo")
			want = expectedPoints(p.enrolled, loc, p.enrolled, moveAt.Add(time.Nanosecond), window)
			after := expectedPoints(p.enrolled, tokyo, moveAt.Add(time.Nanosecond), last.Add(time.Nanosecond), func(date string) int {
				if r := byPerson[p.id]["midday/"+date]; r != nil {
					l := r.ScheduledAt.In(tokyo)
					return l.Hour()*60 + l.Minute()
				}
				return 12 * 60
			})
			for k, v := range after {
				if _, ok := want[k]; !ok {
					want[k] = v
				}
			}
		case leaver.id:
			want = expectedPoints(p.enrolled, loc, p.enrolled, leaveAt, window)
		default:
			want = expectedPoints(p.enrolled, loc, p.enrolled, last.Add(time.Nanosecond), window)
		}
		got := byPerson[p.id]
		total += len(got)
		if missing, extra := diffPoints(want, got); len(missing)+len(extra) > 0 {
			t.Fatalf("participant %s (%s, enrolled %s): %d records, %d scheduled points; missing %v; not scheduled %v",
				p.id, p.zone, p.enrolled.Format(time.RFC3339), len(got), len(want), missing, extra)
		}
		late, missed := checkRecords(t, p, p.id == mover.id, want, got, loc, lastUp, backUp)
		lateSeen += late
		missedSeen += missed
	}
	t.Logf("%d records of %d participants; mover moved at %s, leaver left at %s", total, len(people), moveAt.Format(time.RFC3339), leaveAt.Format(time.RFC3339))
	if missedSeen == 0 || missedSeen == lateSeen {
		t.Fatalf("%d points fell in the engine's downtime, %d of them recorded as missed: the test should see both kinds", lateSeen, missedSeen)
	}
	t.Logf("%d points while the engine was down: %d missed, %d decided late", lateSeen, missedSeen, lateSeen-missedSeen)
	if total < 200*60 {
		t.Fatalf("only %d records for 200 participants over 21 days", total)
	}
	// Window times reproduce from the seed: a second engine over the same
	// study, participants and days draws the same minutes.
	checkWindowsReproduce(t, study, people[2].id, people[2].zone, people[2].enrolled, byPerson[people[2].id])
}

// checkRecords checks one participant's records against their scheduled
// points: decided at the point's instant, the phase, missed exactly when
// the clock was down past the point's window, window minutes inside the
// window. It returns how many points fell in the downtime and how many of
// them were missed.
func checkRecords(t *testing.T, p person, moved bool, want map[string]time.Time, got map[string]*trial.Record, loc *time.Location, lastUp, backUp time.Time) (late, missedN int) {
	t.Helper()
	for k, r := range got {
		if at := want[k]; !moved && !r.ScheduledAt.Equal(at) {
			t.Errorf("participant %s point %s: scheduled at %s, want %s", p.id, k, r.ScheduledAt.Format(time.RFC3339), at.Format(time.RFC3339))
		}
		if !r.Time.Equal(r.ScheduledAt) {
			t.Errorf("participant %s point %s: decided for %s, scheduled for %s", p.id, k, r.Time, r.ScheduledAt)
		}
		checkPhase(t, p.id, k, r)
		down := r.ScheduledAt.After(lastUp) && !r.ScheduledAt.After(backUp)
		missed := down && !r.ScheduledAt.Add(30*time.Minute).After(backUp)
		if down {
			late++
		}
		if got := len(r.UnavailableReasons) == 1 && r.UnavailableReasons[0] == trial.ReasonEngineUnavailable; got != missed {
			t.Errorf("participant %s point %s at %s: recorded as missed %v, want %v (the clock ran at %s, then at %s)", p.id, k, r.ScheduledAt.Format(time.RFC3339), got, missed, lastUp.Format(time.RFC3339), backUp.Format(time.RFC3339))
		} else if missed {
			missedN++
			if r.Randomised || r.Action != trial.ActionNone {
				t.Errorf("missed point %s of %s was randomised or acted on", k, p.id)
			}
		}
		if strings.HasPrefix(k, "midday/") && !moved {
			l := r.ScheduledAt.In(loc)
			if m := l.Hour()*60 + l.Minute(); m < 12*60 || m >= 14*60 {
				t.Errorf("participant %s window point %s at local %s, outside 12:00-14:00", p.id, k, l.Format("15:04"))
			}
		}
	}
	return late, missedN
}

// diffPoints lists the scheduled points without a record and the records
// of points that were not scheduled, sorted.
func diffPoints(want map[string]time.Time, got map[string]*trial.Record) (missing, extra []string) {
	for k := range want {
		if got[k] == nil {
			missing = append(missing, k)
		}
	}
	for k, r := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k+" at "+r.ScheduledAt.Format(time.RFC3339))
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return missing, extra
}

// fireAll runs the clock until nothing is due.
func fireAll(t *testing.T, eng *engine.Engine) {
	t.Helper()
	for {
		n, err := eng.FireDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// localDate is the participant-local date of a record's scheduled time.
func localDate(t *testing.T, r *trial.Record) string {
	lt, err := time.Parse(time.RFC3339, r.LocalTime)
	if err != nil {
		t.Fatalf("record %s local time %q: %v", r.ID, r.LocalTime, err)
	}
	// A point fires on its own local date, or just after a gap at its
	// end; none of the points here are near midnight.
	return lt.Format(time.DateOnly)
}

// checkPhase: baseline days (study days 1-3) randomise and deliver nothing.
func checkPhase(t *testing.T, participant, key string, r *trial.Record) {
	t.Helper()
	want := "active"
	switch {
	case r.StudyDay <= 3:
		want = "baseline"
	case r.StudyDay > 17:
		want = "follow_up"
	}
	if r.Phase != want {
		t.Errorf("participant %s point %s on study day %d: phase %q, want %q", participant, key, r.StudyDay, r.Phase, want)
	}
	if r.Phase == "baseline" {
		if r.Randomised || r.Action == trial.ActionDeliver {
			t.Errorf("participant %s baseline point %s was randomised (%v) or delivered (%s)", participant, key, r.Randomised, r.Action)
		}
		for _, f := range r.Factors {
			if f.Draw != nil {
				t.Errorf("participant %s baseline point %s drew factor %s", participant, key, f.Name)
			}
		}
	}
}

// checkWindowsReproduce enrols the participant again, in a fresh store at
// the same time, and checks that the clock draws the same window minutes.
func checkWindowsReproduce(t *testing.T, study *policies.Study, id, zone string, enrolled time.Time, recs map[string]*trial.Record) {
	ctx := context.Background()
	store := memstore.New()
	clk := &fakeClock{now: enrolled}
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: id, Timezone: zone}); err != nil {
		t.Fatal(err)
	}
	for clk.now = enrolled; clk.now.Before(enrolled.Add(5 * 24 * time.Hour)); clk.now = clk.now.Add(11 * time.Minute) {
		if _, err := eng.FireDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	again, err := store.ListDecisions(ctx, trial.DecisionQuery{Study: study.Config.ID, Participant: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range again {
		if r.DecisionPoint != "midday" {
			continue
		}
		n++
		key := "midday/" + localDate(t, r)
		if old := recs[key]; old == nil || !old.ScheduledAt.Equal(r.ScheduledAt) {
			t.Errorf("window point %s: the second run drew %s, the first %v", key, r.ScheduledAt, old)
		}
	}
	if n < 4 {
		t.Fatalf("only %d window points in five days", n)
	}
}

// TestAppAsksForScheduledPoint: an app asking for a scheduled point gets
// that point's one decision (the same one when it asks again, and the one
// the clock made); before the point's time it gets 422 naming time; after
// its window it gets the recorded decision, never a new draw. A snooze sent
// after the point does not change a decision made late, at the point's
// instant.
func TestAppAsksForScheduledPoint(t *testing.T) {
	ctx := context.Background()
	study := clockStudy(t)
	clk := &fakeClock{now: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)} // Monday
	store := memstore.New()
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: id, Timezone: "Europe/London"}); err != nil {
			t.Fatal(err)
		}
	}
	ask := func(p string, at time.Time) (*engine.Answer, error) {
		clk.now = at
		return eng.Decide(ctx, study.Config.ID, p, engine.DecideRequest{DecisionPoint: "morning", Time: at})
	}
	day := func(h, m int) time.Time { return time.Date(2026, 3, 2, h, m, 0, 0, time.UTC) }
	// Before 08:30: 422 naming time.
	_, err = ask("a", day(8, 10))
	var ie *trial.InputError
	if !errors.As(err, &ie) || ie.Field != "time" || !strings.Contains(ie.Reason, "08:30") {
		t.Fatalf("asking at 08:10 for the 08:30 point: %v, want 422 naming time and the point's time", err)
	}
	// Inside the window: one decision, the same on a second request.
	first, err := ask("a", day(8, 35))
	if err != nil {
		t.Fatal(err)
	}
	again, err := ask("a", day(8, 50))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || string(again.Body) != string(first.Body) {
		t.Fatalf("a second request for the point made a new decision:\n%s\n%s", first.Body, again.Body)
	}
	if first.Record.Trigger != trial.TriggerScheduled || !first.Record.Time.Equal(day(8, 30)) {
		t.Fatalf("the app's decision of the point: trigger %q at %s, want scheduled at 08:30", first.Record.Trigger, first.Record.Time)
	}
	// c snoozes at 08:45 for two hours; the clock decides the 08:30 point
	// late, at 08:50: it was not snoozed at 08:30.
	clk.now = day(8, 46)
	if _, _, err := eng.Ingest(ctx, study.Config.ID, "c", []trial.Event{{ID: "s1", Type: trial.EventPreference, Time: day(8, 45),
		Data: json.RawMessage(`{"snooze_minutes":120}`)}}); err != nil {
		t.Fatal(err)
	}
	c, err := ask("c", day(8, 50))
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		State struct {
			Preferences map[string]any `json:"preferences"`
		} `json:"state"`
	}
	if err := json.Unmarshal(c.Record.Input, &in); err != nil {
		t.Fatal(err)
	}
	if in.State.Preferences["snoozed"] != false {
		t.Fatalf("the 08:30 decision made at 08:50 saw a snooze sent at 08:45: %v", in.State.Preferences)
	}
	// The clock then resolves the point to the same record.
	clk.now = day(8, 55)
	fireAll(t, eng)
	recs, err := store.ListDecisions(ctx, trial.DecisionQuery{Study: study.Config.ID, Participant: "a", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[1].ID != first.Record.ID { // night 01:30 was before enrolment; morning once; midday not yet
		var ids []string
		for _, r := range recs {
			ids = append(ids, r.DecisionPoint+"@"+r.Time.Format("15:04")+"="+r.ID)
		}
		if !(len(recs) == 1 && recs[0].ID == first.Record.ID) {
			t.Fatalf("records of a after the clock ran: %v; want the app's morning decision %s once", ids, first.Record.ID)
		}
	}
	// After the window: the recorded decision.
	late, err := ask("a", day(17, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !late.Replayed || string(late.Body) != string(first.Body) {
		t.Fatalf("asking after the window gave a different answer:\n%s\n%s", first.Body, late.Body)
	}
	// b never asked for the next morning and the clock did not run: after
	// the window the point is recorded as missed.
	missed, err := ask("b", day(17, 0).AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Action  string   `json:"action"`
		Reasons []string `json:"reasons"`
	}
	if err := json.Unmarshal(missed.Body, &ans); err != nil || ans.Action != trial.ActionNone || len(ans.Reasons) != 1 || ans.Reasons[0] != trial.ReasonEngineUnavailable {
		t.Fatalf("after the window, an undecided point: %s", missed.Body)
	}
}

// TestEventOpensPoint: the policy's open rule opens an event point when a
// stress report of 8 or more arrives; the decision is recorded with trigger
// event and the event's id, once per event (a repeated request resolves to
// it), within the trigger's caps (min_minutes_between 60, max_per_day 2).
func TestEventOpensPoint(t *testing.T) {
	ctx := context.Background()
	base := clockStudy(t)
	b, err := os.ReadFile(filepath.Join(base.Dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(base.Dir, "policy", "p.rego"))
	if err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(string(b), "decision_points:\n", `decision_points:
  - id: stress_spike
    kind: event
    trigger: {within: 5m, max_per_day: 2, min_minutes_between: 60}
`, 1)
	yaml = strings.Replace(yaml, "    randomise: false\n", "", 1)
	policy := string(rego) + `
open contains "stress_spike" if {
	input.event.type == "ema"
	input.event.data.stress >= 8
}
`
	study := policytest.WriteStudy(t, t.TempDir(), yaml, policy)
	clk := &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	store := memstore.New()
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: "p", Timezone: "Europe/London"}); err != nil {
		t.Fatal(err)
	}
	report := func(id string, stress int, at time.Time) {
		t.Helper()
		clk.now = at.Add(30 * time.Second)
		ev := trial.Event{ID: id, Type: trial.EventEMA, Time: at, Data: json.RawMessage(fmt.Sprintf(`{"stress":%d}`, stress))}
		if _, _, err := eng.Ingest(ctx, study.Config.ID, "p", []trial.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	at := func(h, m int) time.Time { return time.Date(2026, 3, 2, h, m, 0, 0, time.UTC) }
	report("e1", 8, at(10, 0))  // opens
	report("e1", 8, at(10, 0))  // the same event again: no second point
	report("e2", 9, at(10, 20)) // within 60 minutes of the last: capped
	report("e3", 5, at(11, 30)) // below the threshold
	report("e4", 10, at(11, 30))
	report("e5", 10, at(13, 0)) // third in a day: capped
	recs, err := store.ListDecisions(ctx, trial.DecisionQuery{Study: study.Config.ID, Participant: "p", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Trigger != trial.TriggerEvent {
			continue
		}
		if r.DecisionPoint != "stress_spike" || r.ScheduledAt.IsZero() {
			t.Errorf("event record %+v", r)
		}
		var in struct {
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
		}
		if err := json.Unmarshal(r.Input, &in); err != nil || in.Event.ID != r.EventID {
			t.Errorf("record %s: input.event.id %q, event_id %q", r.ID, in.Event.ID, r.EventID)
		}
		got = append(got, r.EventID)
	}
	if strings.Join(got, ",") != "e1,e4" {
		t.Fatalf("event points opened by %v, want e1,e4", got)
	}
	// The app cannot ask for an event point.
	_, err = eng.Decide(ctx, study.Config.ID, "p", engine.DecideRequest{DecisionPoint: "stress_spike", Time: clk.now})
	var ie *trial.InputError
	if !errors.As(err, &ie) || ie.Field != "decision_point" {
		t.Fatalf("asking for an event point: %v", err)
	}
}
