package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/schedule"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// clockStudyPoints replaces stress-mrt's decision points: a window point, a
// weekday point, a study-day point, a daily fixed point, an app point and
// an event point (openEvent opens it on a stressed self-report); and gives
// the study a two-day baseline.
const openEvent = `
open contains "stress_spike" if {
	input.event.type == "ema"
	input.event.data.stress >= 7
}
`

const clockStudyPoints = `decision_points:
  - id: morning
    window: {start: "08:00", end: "10:00"}
  - id: late_morning
    time: "11:30"
    days: [mon, wed, fri]
  - id: afternoon
    time: "14:30"
    study_days: {from: 3, to: 5}
  - id: early_evening
    time: "17:30"
  - id: evening
    kind: app
  - id: stress_spike
    kind: event
    trigger: {within: 5m, max_per_day: 2, min_minutes_between: 60}
phases:
  - {name: baseline, days: 2, randomise: false}
  - {name: active}
`

// scheduledStudy is stress-mrt with clockStudyPoints, loaded from a copy of
// its folder.
func scheduledStudy(t *testing.T) *policies.Study {
	t.Helper()
	src := filepath.Join("..", "..", "policies", "examples", "stress-mrt")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	y := string(read(t, filepath.Join(dir, "study.yaml")))
	from, to := strings.Index(y, "decision_points:"), strings.Index(y, "decision_ttl:")
	if from < 0 || to < from {
		t.Fatal("stress-mrt's study.yaml has changed shape")
	}
	y = y[:from] + clockStudyPoints + y[to:]
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	rego := filepath.Join(dir, "policy", "policy.rego")
	if err := os.WriteFile(rego, append(read(t, rego), openEvent...), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	st, err := policies.LoadStudy(context.Background(), dir, cat)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestSimulateTrialClock: a study with window, weekday and study-day points
// and a baseline is simulated through the trial clock: its scheduled
// records are exactly the points schedule.Occurrences lists (one per
// participant, point and local date, at the point's instant), the baseline
// randomises nothing, and the report's funnel is what the store holds.
func TestSimulateTrialClock(t *testing.T) {
	st := scheduledStudy(t)
	ctx := context.Background()
	c := DefaultCohort()
	c.Phone.Unreachable = 0.2 // so that the funnel loses deliveries between sent and delivered
	c.Clock.Outage = 0.1      // and misses points
	o := Options{Study: st, Cohort: c, Participants: 8, Days: 9, Seed: 21}
	run, err := Simulate(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := run.Store.Participants(ctx, st.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := Build(run, ps)
	recs, err := run.Store.ListDecisions(ctx, trial.DecisionQuery{Study: st.Config.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != r.Funnel.Overall.Points || len(recs) != r.Totals.Decisions {
		t.Fatalf("%d records; the funnel counts %d points, the totals %d decisions", len(recs), r.Funnel.Overall.Points, r.Totals.Decisions)
	}
	checkOccurrences(t, run, ps, recs)
	checkFunnel(t, run, r, recs)
	if f := r.Funnel.Overall; f.Missed == 0 || f.Requested == 0 || f.Scheduled == 0 || f.Triggered == 0 {
		t.Errorf("funnel %+v: want scheduled, app and event points, and missed ones (the clock's outages)", f)
	}
	phases := map[string]PhaseCounts{}
	for _, pc := range r.Funnel.ByPhase {
		phases[pc.Phase] = pc
	}
	if b := phases["baseline"]; b.Points == 0 || b.Randomised != 0 || b.Deliver != 0 {
		t.Errorf("baseline %+v: want points, none randomised or delivered", b)
	}
	if a := phases["active"]; a.Randomised == 0 || a.Deliver == 0 {
		t.Errorf("active %+v: want randomised and delivered points", a)
	}
}

// checkOccurrences compares the scheduled records with the points the
// schedule lists for each participant over the simulated days.
func checkOccurrences(t *testing.T, run *Run, ps []*trial.Participant, recs []*trial.Record) {
	t.Helper()
	cfg := run.Options.Study.Config
	loc, _ := time.LoadLocation(cfg.Timezone)
	start := time.Date(2026, time.March, 2, 0, 0, 0, 0, loc) // DefaultStart, a Monday
	end := start.AddDate(0, 0, run.Options.Days)
	drawer := experiments.NewDrawer(cfg.Seed)
	want := map[string]schedule.Point{}
	for _, p := range ps {
		for _, pt := range schedule.Occurrences(cfg, drawer, p, loc, start, end) {
			want[p.ID+" "+pt.DecisionPoint+" "+pt.LocalDate] = pt
		}
	}
	seen := map[string]bool{}
	for _, rec := range recs {
		local := rec.Time.In(loc)
		if rec.Trigger != trial.TriggerScheduled {
			if (rec.Trigger != trial.TriggerApp || rec.DecisionPoint != "evening") && (rec.Trigger != trial.TriggerEvent || rec.DecisionPoint != "stress_spike") {
				t.Errorf("record %s: trigger %q at %s", rec.ID, rec.Trigger, rec.DecisionPoint)
			}
			continue
		}
		k := rec.Participant + " " + rec.DecisionPoint + " " + local.Format(time.DateOnly)
		if seen[k] {
			t.Errorf("two records for %s", k)
		}
		seen[k] = true
		pt, ok := want[k]
		switch {
		case !ok:
			t.Errorf("record for %s, which the schedule does not list", k)
		case !rec.Time.Equal(pt.At) || !rec.ScheduledAt.Equal(pt.At) || rec.Phase != pt.Phase || rec.StudyDay != pt.StudyDay:
			t.Errorf("%s: record at %s (scheduled %s, %s day %d), schedule %s (%s day %d)", k, rec.Time, rec.ScheduledAt, rec.Phase, rec.StudyDay, pt.At, pt.Phase, pt.StudyDay)
		}
		if rec.Phase == "baseline" && (rec.Randomised || rec.Action == trial.ActionDeliver) {
			t.Errorf("%s: a baseline record was randomised or delivered", k)
		}
		if decision.IsMissed(rec) && (rec.Randomised || rec.Action != trial.ActionNone || !rec.RecordedAt.After(rec.ScheduledAt.Add(30*time.Minute))) {
			t.Errorf("%s: missed record %s %v recorded at %s", k, rec.Action, rec.Randomised, rec.RecordedAt)
		}
		switch rec.DecisionPoint {
		case "morning":
			if m := local.Hour()*60 + local.Minute(); m < 8*60 || m >= 10*60 || local.Second() != 0 {
				t.Errorf("%s: window point at %s", k, local.Format(time.TimeOnly))
			}
		case "late_morning":
			if wd := local.Weekday(); wd != time.Monday && wd != time.Wednesday && wd != time.Friday {
				t.Errorf("%s: weekday point on a %s", k, wd)
			}
		case "afternoon":
			if rec.StudyDay < 3 || rec.StudyDay > 5 {
				t.Errorf("%s: study-day point on day %d", k, rec.StudyDay)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d scheduled records, the schedule lists %d points", len(seen), len(want))
	}
	// 8 participants x 9 days: morning and early_evening daily, late_morning
	// on 4 days (Mon 2, Wed 4, Fri 6, Mon 9 March), afternoon on 3.
	if n := 8 * (9 + 9 + 4 + 3); len(want) != n {
		t.Errorf("the schedule lists %d points, want %d", len(want), n)
	}
}

// checkFunnel derives the funnel from the store (delivery logs and the
// engagement events the phone sent) and compares it with the report's.
func checkFunnel(t *testing.T, run *Run, r *Report, recs []*trial.Record) {
	t.Helper()
	ctx := context.Background()
	cfg := run.Options.Study.Config
	got := map[string]*FunnelRow{}
	all := &FunnelRow{}
	for _, dp := range cfg.DecisionPoints {
		got[dp.ID] = &FunnelRow{ID: dp.ID}
	}
	engaged := map[string]map[string]bool{} // decision id -> statuses
	for _, p := range run.People {
		evs, err := run.Store.Events(ctx, cfg.ID, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type != trial.EventEngagement {
				continue
			}
			var d trial.EngagementData
			if err := json.Unmarshal(ev.Data, &d); err != nil {
				t.Fatal(err)
			}
			if engaged[d.DecisionID] == nil {
				engaged[d.DecisionID] = map[string]bool{}
			}
			engaged[d.DecisionID][d.Status] = true
		}
	}
	for _, rec := range recs {
		for _, f := range []*FunnelRow{all, got[rec.DecisionPoint]} {
			f.Points++
			switch rec.Trigger {
			case trial.TriggerApp:
				f.Requested++
			case trial.TriggerEvent:
				f.Triggered++
			default:
				f.Scheduled++
			}
			if decision.IsMissed(rec) {
				f.Missed++
				continue
			}
			f.Decided++
			if rec.Action != trial.ActionDeliver {
				continue
			}
			f.Deliver++
			// An app point's decision is in the app's answer: it has no
			// delivery log; the clock's has one, sent to the phone.
			d, err := run.Store.Delivery(ctx, cfg.ID, rec.Participant, rec.ID)
			switch {
			case rec.Trigger == trial.TriggerApp && errors.Is(err, trial.ErrNotFound):
				f.Sent++
			case err != nil:
				t.Fatalf("decision %s to deliver has no delivery log: %v", rec.ID, err)
			case d.Status == trial.DeliverySent:
				f.Sent++
			default:
				t.Errorf("decision %s (%s): delivery %s", rec.ID, rec.Trigger, d.Status)
			}
			e := engaged[rec.ID]
			for _, s := range []struct {
				status string
				n      *int
			}{{"delivered", &f.Delivered}, {"opened", &f.Opened}, {"completed", &f.Completed}} {
				if e[s.status] {
					*s.n++
				}
			}
		}
	}
	if *all != r.Funnel.Overall {
		t.Errorf("funnel from the store %+v, report %+v", *all, r.Funnel.Overall)
	}
	for _, row := range r.Funnel.ByDecisionPoint {
		if *got[row.ID] != row {
			t.Errorf("%s: funnel from the store %+v, report %+v", row.ID, *got[row.ID], row)
		}
	}
	f := r.Funnel.Overall
	if f.Decided+f.Missed != f.Points || f.Deliver > f.Decided || f.Sent > f.Deliver || f.Delivered > f.Sent || f.Opened > f.Delivered || f.Completed > f.Opened {
		t.Errorf("the funnel narrows the wrong way: %+v", f)
	}
	if f.Sent != f.Deliver || f.Delivered == f.Sent || f.Opened == 0 || f.Completed == 0 {
		t.Errorf("funnel %+v: every delivery should be sent, some not reach the phone, some be opened and completed", f)
	}
}

// TestSimulateTrialClockDeterministic: the trial clock's run is the same
// from the same seed whatever the number of workers.
func TestSimulateTrialClockDeterministic(t *testing.T) {
	st := scheduledStudy(t)
	base := Options{Study: st, Cohort: DefaultCohort(), Participants: 6, Days: 4, Seed: 5}
	one, four := base, base
	one.Workers, four.Workers = 1, 4
	d1, _ := simulateTo(t, one)
	d4, _ := simulateTo(t, four)
	for _, f := range []string{"report.json", "report.html"} {
		if !bytes.Equal(read(t, filepath.Join(d1, f)), read(t, filepath.Join(d4, f))) {
			t.Errorf("%s differs between 1 and 4 workers", f)
		}
	}
	j1 := latency.ReplaceAll(read(t, filepath.Join(d1, "decisions.jsonl")), nil)
	j4 := latency.ReplaceAll(read(t, filepath.Join(d4, "decisions.jsonl")), nil)
	if !bytes.Equal(j1, j4) {
		t.Error("decisions.jsonl differs between 1 and 4 workers (beyond latency_us)")
	}
}
