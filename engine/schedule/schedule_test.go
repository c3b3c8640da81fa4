package schedule

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
	_ "time/tzdata" // the zone database even where the system has none

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/policies"
)

const seed = "0123456789abcdef-schedule"

// study parses a study.yaml with the given decision points and phases.
func study(t testing.TB, points, phases string) *policies.Config {
	t.Helper()
	src := "id: s1\nname: A study\ntimezone: Europe/London\nseed: \"" + seed + "\"\ndecision_points:\n" + points +
		phases + "crisis:\n  text: \"Call 116 123.\"\n"
	cfg, err := policies.ParseConfig("study.yaml", []byte(src))
	if err != nil {
		t.Fatalf("study refused: %v\n%s", err, src)
	}
	return cfg
}

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func participant(id string, enrolled time.Time) *trial.Participant {
	return &trial.Participant{Study: "s1", ID: id, EnrolledAt: enrolled, Status: trial.StatusActive}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The 2026 transitions: London 29 Mar 01:00 GMT -> 02:00 BST and 25 Oct
// 02:00 BST -> 01:00 GMT; New York 8 Mar 02:00 EST -> 03:00 EDT and 1 Nov
// 02:00 EDT -> 01:00 EST.
func TestWallInstantAcrossDaylightSaving(t *testing.T) {
	cases := []struct {
		zone, date, clock, want string
	}{
		{"Europe/London", "2026-03-29", "00:59", "2026-03-29T00:59:00Z"},
		{"Europe/London", "2026-03-29", "01:00", "2026-03-29T01:00:00Z"}, // skipped: fires at 02:00 BST
		{"Europe/London", "2026-03-29", "01:30", "2026-03-29T01:00:00Z"}, // skipped: fires at 02:00 BST
		{"Europe/London", "2026-03-29", "02:00", "2026-03-29T01:00:00Z"},
		{"Europe/London", "2026-03-29", "02:30", "2026-03-29T01:30:00Z"},
		{"Europe/London", "2026-10-25", "00:30", "2026-10-24T23:30:00Z"},
		{"Europe/London", "2026-10-25", "01:00", "2026-10-25T00:00:00Z"}, // repeated: first (BST)
		{"Europe/London", "2026-10-25", "01:30", "2026-10-25T00:30:00Z"}, // repeated: first (BST)
		{"Europe/London", "2026-10-25", "02:00", "2026-10-25T02:00:00Z"},
		{"Europe/London", "2026-07-01", "08:30", "2026-07-01T07:30:00Z"},
		{"America/New_York", "2026-03-08", "01:59", "2026-03-08T06:59:00Z"},
		{"America/New_York", "2026-03-08", "02:00", "2026-03-08T07:00:00Z"}, // skipped: fires at 03:00 EDT
		{"America/New_York", "2026-03-08", "02:30", "2026-03-08T07:00:00Z"}, // skipped: fires at 03:00 EDT
		{"America/New_York", "2026-03-08", "03:00", "2026-03-08T07:00:00Z"},
		{"America/New_York", "2026-11-01", "00:59", "2026-11-01T04:59:00Z"},
		{"America/New_York", "2026-11-01", "01:30", "2026-11-01T05:30:00Z"}, // repeated: first (EDT)
		{"America/New_York", "2026-11-01", "02:00", "2026-11-01T07:00:00Z"},
		{"America/New_York", "2026-12-01", "23:59", "2026-12-02T04:59:00Z"},
		{"UTC", "2026-03-29", "01:30", "2026-03-29T01:30:00Z"},
		{"Australia/Lord_Howe", "2026-10-04", "02:15", "2026-10-03T15:30:00Z"}, // 30-minute gap 02:00 -> 02:30
	}
	for _, c := range cases {
		loc := zone(t, c.zone)
		date, _ := time.Parse(time.DateOnly, c.date)
		m, _ := trial.ParseClock(c.clock)
		if got := WallInstant(loc, date, m); !got.Equal(utc(c.want)) {
			t.Errorf("%s %s %s: %s, want %s", c.zone, c.date, c.clock, got.UTC().Format(time.RFC3339), c.want)
		}
	}
}

func TestFixedPointsFireOncePerDayAcrossDaylightSaving(t *testing.T) {
	cfg := study(t, "  - {id: night, time: \"01:30\"}\n  - {id: early, time: \"02:30\"}\n  - {id: morning, time: \"08:30\"}\n", "")
	dr := experiments.NewDrawer(seed)
	for _, c := range []struct{ zone, day string }{
		{"Europe/London", "2026-03-29"}, {"Europe/London", "2026-10-25"},
		{"America/New_York", "2026-03-08"}, {"America/New_York", "2026-11-01"},
	} {
		loc := zone(t, c.zone)
		day, _ := time.ParseInLocation(time.DateOnly, c.day, loc)
		p := participant("p1", day.AddDate(0, 0, -10))
		got := Occurrences(cfg, dr, p, loc, day.AddDate(0, 0, -2), day.AddDate(0, 0, 3))
		perDay := map[string]int{}
		for i, pt := range got {
			perDay[pt.LocalDate]++
			if i > 0 && got[i-1].At.After(pt.At) {
				t.Errorf("%s: not in time order: %v then %v", c.zone, got[i-1], pt)
			}
		}
		if len(perDay) != 5 {
			t.Errorf("%s around %s: points on %d dates, want 5: %v", c.zone, c.day, len(perDay), perDay)
		}
		for d, n := range perDay {
			if n != 3 {
				t.Errorf("%s %s: %d points, want 3 (each wall time once)", c.zone, d, n)
			}
		}
	}
}

func TestWindowTimesReproduceAndStayInWindow(t *testing.T) {
	cfg := study(t, "  - {id: morning, window: {start: \"08:00\", end: \"10:00\"}}\n", "")
	loc := zone(t, "America/New_York")
	from := utc("2026-10-20T00:00:00Z")
	to := from.AddDate(0, 0, 30)
	minutes := func(dr *experiments.Drawer, id string) []int {
		var out []int
		for _, pt := range Occurrences(cfg, dr, participant(id, from.AddDate(0, 0, -1)), loc, from, to) {
			l := pt.At.In(loc)
			m := l.Hour()*60 + l.Minute()
			if m < 8*60 || m >= 10*60 || l.Format(time.DateOnly) != pt.LocalDate {
				t.Errorf("%s %s: fires at %s local, outside 08:00-10:00", id, pt.LocalDate, l.Format("2006-01-02 15:04"))
			}
			out = append(out, m)
		}
		return out
	}
	a := minutes(experiments.NewDrawer(seed), "p1")
	if len(a) != 30 {
		t.Fatalf("%d window points in 30 days, want 30", len(a))
	}
	if again := minutes(experiments.NewDrawer(seed), "p1"); !slices.Equal(a, again) {
		t.Errorf("window times do not reproduce from the seed:\n%v\n%v", a, again)
	}
	if other := minutes(experiments.NewDrawer(seed), "p2"); slices.Equal(a, other) {
		t.Errorf("two participants got the same window times %v", a)
	}
	if reseeded := minutes(experiments.NewDrawer(seed+"x"), "p1"); slices.Equal(a, reseeded) {
		t.Errorf("another seed gave the same window times %v", a)
	}
	if slices.Min(a) == slices.Max(a) {
		t.Errorf("every day has the same window time %d", a[0])
	}
	// Uniform over the 120 minutes: over many participant-days both halves
	// of the window are used about equally.
	dr := experiments.NewDrawer(seed)
	var early, total int
	for i := range 200 {
		for _, m := range minutes(dr, fmt.Sprintf("q%d", i)) {
			total++
			if m < 9*60 {
				early++
			}
		}
	}
	if share := float64(early) / float64(total); share < 0.45 || share > 0.55 {
		t.Errorf("share of window times before 09:00 is %.3f of %d, want about 0.5", share, total)
	}
}

func TestDayFilters(t *testing.T) {
	loc := zone(t, "Europe/London")
	enrolled := utc("2026-06-01T07:00:00Z") // a Monday, 08:00 BST
	cases := []struct {
		name, points string
		wantDays     []int // study days with a point
	}{
		{"weekdays", "  - {id: m, time: \"09:00\", days: [mon, fri]}\n", []int{1, 5, 8, 12}},
		{"study days", "  - {id: m, time: \"09:00\", study_days: {from: 3, to: 5}}\n", []int{3, 4, 5}},
		{"study days open", "  - {id: m, time: \"09:00\", study_days: {from: 12}}\n", []int{12, 13, 14}},
		{"both", "  - {id: m, time: \"09:00\", days: [wed], study_days: {to: 9}}\n", []int{3}},
		{"app points never fire", "  - {id: m, kind: app}\n", nil},
	}
	for _, c := range cases {
		cfg := study(t, c.points, "")
		var got []int
		for _, pt := range Occurrences(cfg, experiments.NewDrawer(seed), participant("p", enrolled), loc, enrolled, enrolled.AddDate(0, 0, 14)) {
			got = append(got, pt.StudyDay)
			if wd := policies.WeekdayName(pt.At.In(loc).Weekday()); c.name == "weekdays" && wd != "mon" && wd != "fri" {
				t.Errorf("%s: point on a %s", c.name, wd)
			}
		}
		if !slices.Equal(got, c.wantDays) {
			t.Errorf("%s: study days %v, want %v", c.name, got, c.wantDays)
		}
	}
}

func TestPhases(t *testing.T) {
	cfg := study(t, "  - {id: m, time: \"09:00\"}\n",
		"phases:\n  - {name: baseline, days: 7, randomise: false}\n  - {name: active, days: 42}\n  - {name: follow_up, days: 14, randomise: false}\n")
	loc := zone(t, "Europe/London")
	enrolled := utc("2026-02-02T12:00:00Z") // after 09:00: day 1 has no point
	got := Occurrences(cfg, experiments.NewDrawer(seed), participant("p", enrolled), loc, enrolled.AddDate(0, 0, -5), enrolled.AddDate(0, 0, 80))
	if len(got) != 62 {
		t.Fatalf("%d points, want 62 (days 2-63)", len(got))
	}
	for i, pt := range got {
		day := i + 2
		want, rand := "active", true
		switch {
		case day <= 7:
			want, rand = "baseline", false
		case day > 49:
			want, rand = "follow_up", false
		}
		if pt.StudyDay != day || pt.Phase != want || pt.Randomise != rand {
			t.Errorf("point %d: day %d phase %s randomise %v, want day %d %s %v", i, pt.StudyDay, pt.Phase, pt.Randomise, day, want, rand)
		}
	}
	for _, c := range []struct {
		at        string
		phase     string
		day       int
		randomise bool
	}{
		{"2026-02-01T23:59:00Z", "", 0, false},
		{"2026-02-02T00:00:00Z", "baseline", 1, false},
		{"2026-02-08T23:59:00Z", "baseline", 7, false},
		{"2026-02-09T00:00:00Z", "active", 8, true},
		{"2026-03-22T23:00:00Z", "active", 49, true},
		{"2026-04-05T22:59:00Z", "follow_up", 63, false}, // 23:59 BST
		{"2026-04-05T23:00:00Z", "completed", 64, false}, // 00:00 BST
	} {
		phase, day, r := PhaseAt(cfg, participant("p", enrolled), loc, utc(c.at))
		if phase != c.phase || day != c.day || r != c.randomise {
			t.Errorf("PhaseAt(%s) = %q, %d, %v; want %q, %d, %v", c.at, phase, day, r, c.phase, c.day, c.randomise)
		}
	}
	none := study(t, "  - {id: m, time: \"09:00\"}\n", "")
	if phase, day, r := PhaseAt(none, participant("p", enrolled), loc, enrolled.AddDate(5, 0, 0)); phase != policies.PhaseActive || !r || day < 365*5 {
		t.Errorf("no phases: PhaseAt = %q, %d, %v; want active without end", phase, day, r)
	}
	open := study(t, "  - {id: m, time: \"09:00\"}\n", "phases:\n  - {name: baseline, days: 2, randomise: false}\n  - {name: active}\n")
	if phase, _, r := PhaseAt(open, participant("p", enrolled), loc, enrolled.AddDate(2, 0, 0)); phase != "active" || !r {
		t.Errorf("open-ended last phase: PhaseAt = %q, %v", phase, r)
	}
}

func TestNoPointsBeforeEnrolment(t *testing.T) {
	cfg := study(t, "  - {id: a, time: \"08:30\"}\n  - {id: b, time: \"14:30\"}\n  - {id: w, window: {start: \"06:00\", end: \"07:00\"}}\n", "")
	loc := zone(t, "Asia/Tokyo")
	enrolled := utc("2026-05-01T01:00:00Z") // 10:00 JST
	got := Occurrences(cfg, experiments.NewDrawer(seed), participant("p", enrolled), loc, utc("2026-04-20T00:00:00Z"), utc("2026-05-02T15:00:00Z"))
	var ids []string
	for _, pt := range got {
		if pt.At.Before(enrolled) {
			t.Errorf("point %+v before enrolment %s", pt, enrolled)
		}
		ids = append(ids, pt.LocalDate+" "+pt.DecisionPoint)
	}
	want := []string{"2026-05-01 b", "2026-05-02 w", "2026-05-02 a", "2026-05-02 b"}
	if !slices.Equal(ids, want) {
		t.Errorf("points %v, want %v", ids, want)
	}
	if got[0].StudyDay != 1 || got[1].StudyDay != 2 {
		t.Errorf("study days %d, %d; want 1, 2", got[0].StudyDay, got[1].StudyDay)
	}
	if pts := Occurrences(cfg, experiments.NewDrawer(seed), participant("p", enrolled), loc, enrolled, enrolled); pts != nil {
		t.Errorf("empty span gave %v", pts)
	}
}

func TestPointKey(t *testing.T) {
	// The value is pinned (computed independently with Python's hashlib from
	// the algorithm in the doc comment): every engine must derive it.
	k := PointKey("s1", "p1", "morning", "2026-10-25")
	if k != "9b613ea1c8a6157f82b4b99c264abf67" {
		t.Fatalf("PointKey = %q, want 9b613ea1c8a6157f82b4b99c264abf67 (a changed key splits decisions across engine versions)", k)
	}
	if PointKey("s1", "p1", "morning", "2026-10-25") != k {
		t.Error("PointKey is not deterministic")
	}
	for _, other := range []string{
		PointKey("s2", "p1", "morning", "2026-10-25"),
		PointKey("s1", "p2", "morning", "2026-10-25"),
		PointKey("s1", "p1", "evening", "2026-10-25"),
		PointKey("s1", "p1", "morning", "2026-10-26"),
		PointKey("s1", "p1m", "orning", "2026-10-25"), // parts are length-prefixed
	} {
		if other == k {
			t.Errorf("different (study, participant, point, date) share key %s", k)
		}
	}
}

var cohortZones = []string{"Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles", "Asia/Kolkata"}

const cohortPoints = `  - {id: night, time: "01:30"}
  - {id: early, time: "02:30"}
  - {id: morning, time: "08:30", days: [mon, tue, wed, thu, fri]}
  - {id: lunch, window: {start: "12:00", end: "14:00"}}
  - {id: evening, time: "20:00", study_days: {from: 2, to: 14}}
  - {id: weekend, window: {start: "10:00", end: "10:05"}, days: [sat, sun], study_days: {from: 3}}
  - {id: on-demand, kind: app}
`

const cohortPhases = `phases:
  - {name: baseline, days: 3, randomise: false}
  - {name: active, days: 14}
  - {name: follow_up, days: 3, randomise: false}
`

// cohort makes n participants spread over the zones, enrolled at random
// instants in the 8 days before from.
func cohort(n int, from time.Time) ([]*trial.Participant, []*time.Location) {
	r := rand.New(rand.NewPCG(1, 2))
	ps := make([]*trial.Participant, n)
	locs := make([]*time.Location, n)
	for i := range ps {
		locs[i], _ = time.LoadLocation(cohortZones[i%len(cohortZones)])
		enrolled := from.Add(-time.Duration(r.Int64N(int64(8 * 24 * time.Hour))))
		ps[i] = &trial.Participant{Study: "s1", ID: fmt.Sprintf("p%04d", i), EnrolledAt: enrolled, Status: trial.StatusActive}
	}
	return ps, locs
}

// firstInstantAtOrAfter finds, minute by minute, the first instant whose
// wall clock in loc reads date+clock or later: the brute-force definition
// of when a scheduled point fires.
func firstInstantAtOrAfter(loc *time.Location, y int, m time.Month, d, minute int) time.Time {
	want := [5]int{y, int(m), d, minute / 60, minute % 60}
	// Start two hours before the wall time read with the day's noon offset:
	// no offset in these zones changes by more than an hour in a day.
	_, off := time.Date(y, m, d, 12, 0, 0, 0, loc).Zone()
	t0 := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(time.Duration(minute)*time.Minute - time.Duration(off)*time.Second - 2*time.Hour)
	for t := t0; ; t = t.Add(time.Minute) {
		l := t.In(loc)
		got := [5]int{l.Year(), int(l.Month()), l.Day(), l.Hour(), l.Minute()}
		if slices.Compare(got[:], want[:]) >= 0 {
			if t == t0 {
				panic("firstInstantAtOrAfter started too late")
			}
			return t
		}
	}
}

// expected lists p's points in [from, to) by a day-by-day loop over local
// dates, independently of Occurrences.
func expected(t *testing.T, cfg *policies.Config, dr *experiments.Drawer, p *trial.Participant, loc *time.Location, from, to time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	ey, em, ed := p.EnrolledAt.In(loc).Date()
	for studyDay := 1; studyDay <= 40; studyDay++ {
		date := time.Date(ey, em, ed+studyDay-1, 12, 0, 0, 0, time.UTC)
		if studyDay > 20 { // baseline 3 + active 14 + follow_up 3
			break
		}
		wd := [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}[date.Weekday()]
		ds := date.Format("2006-01-02")
		for _, dp := range cfg.DecisionPoints {
			var minute int
			switch dp.ID {
			case "night":
				minute = 90
			case "early":
				minute = 150
			case "morning":
				if wd == "sat" || wd == "sun" {
					continue
				}
				minute = 510
			case "lunch":
				minute = 720 + int(dr.Uniform(p.ID, "schedule:lunch:"+ds, "time")*120)
			case "evening":
				if studyDay < 2 || studyDay > 14 {
					continue
				}
				minute = 1200
			case "weekend":
				if (wd != "sat" && wd != "sun") || studyDay < 3 {
					continue
				}
				minute = 600 + int(dr.Uniform(p.ID, "schedule:weekend:"+ds, "time")*5)
			default:
				continue
			}
			at := firstInstantAtOrAfter(loc, date.Year(), date.Month(), date.Day(), minute)
			if !at.Before(from) && !at.Before(p.EnrolledAt) && at.Before(to) {
				out[dp.ID+" "+ds] = at
			}
		}
	}
	return out
}

// 200 participants in 6 zones over 21 days spanning both daylight-saving
// changes of Europe/London and America/New_York (autumn: 25 Oct and 1 Nov
// 2026; spring: 8 and 29 Mar 2026, 22 days).
func TestOccurrencesMatchIndependentCount(t *testing.T) {
	cfg := study(t, cohortPoints, cohortPhases)
	dr := experiments.NewDrawer(seed)
	for _, span := range []struct{ from, to string }{
		{"2026-10-20T00:00:00Z", "2026-11-10T00:00:00Z"},
		{"2026-03-07T12:00:00Z", "2026-03-29T12:00:00Z"},
	} {
		from, to := utc(span.from), utc(span.to)
		ps, locs := cohort(200, from)
		total := 0
		for i, p := range ps {
			want := expected(t, cfg, dr, p, locs[i], from, to)
			got := Occurrences(cfg, dr, p, locs[i], from, to)
			if len(got) != len(want) {
				t.Errorf("%s in %s enrolled %s: %d points, want %d", p.ID, locs[i], p.EnrolledAt, len(got), len(want))
			}
			seen := map[string]bool{}
			for j, pt := range got {
				k := pt.DecisionPoint + " " + pt.LocalDate
				if seen[k] {
					t.Errorf("%s: %s twice", p.ID, k)
				}
				seen[k] = true
				if w, ok := want[k]; !ok || !w.Equal(pt.At) {
					t.Errorf("%s in %s: %s at %s, want %v (present %v)", p.ID, locs[i], k, pt.At, w, ok)
				}
				if j > 0 && got[j-1].At.After(pt.At) {
					t.Errorf("%s: points out of time order", p.ID)
				}
				phase, day, r := PhaseAt(cfg, p, locs[i], pt.At)
				if pt.Phase != phase || pt.StudyDay != day || pt.Randomise != r || (phase == "active") != r {
					t.Errorf("%s %s: phase %s day %d randomise %v; PhaseAt says %s %d %v", p.ID, k, pt.Phase, pt.StudyDay, pt.Randomise, phase, day, r)
				}
			}
			total += len(got)
		}
		if total < 200*21*3 {
			t.Errorf("%s: only %d points in all; the cohort should have far more", span.from, total)
		}
		t.Logf("%s - %s: %d points for 200 participants", span.from, span.to, total)
	}
}

// BenchmarkOccurrences lists one day of points for 100,000 participants in
// 6 zones (one op = the whole cohort).
func BenchmarkOccurrences(b *testing.B) {
	cfg := study(b, cohortPoints, cohortPhases)
	dr := experiments.NewDrawer(seed)
	from := utc("2026-10-25T00:00:00Z")
	ps, locs := cohort(100_000, from)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		for i, p := range ps {
			n += len(Occurrences(cfg, dr, p, locs[i], from, from.Add(24*time.Hour)))
		}
	}
	b.ReportMetric(float64(n), "points/op")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ps)), "ns/participant")
}

// Every quarter hour of every 2026 transition day of zones with unusual
// transitions (at midnight, 30 minutes, southern hemisphere) agrees with
// the brute-force definition.
func TestWallInstantMatchesBruteForceOnTransitionDays(t *testing.T) {
	for _, name := range []string{"Europe/London", "America/New_York", "America/Santiago", "America/Havana", "Australia/Lord_Howe", "Australia/Sydney", "Pacific/Chatham", "Asia/Beirut", "Asia/Kolkata"} {
		loc := zone(t, name)
		days := 0
		for t0 := utc("2026-01-01T00:00:00Z"); t0.Year() == 2026; {
			_, end := t0.In(loc).ZoneBounds()
			if end.IsZero() || end.Year() != 2026 {
				break
			}
			for _, edge := range []time.Time{end.Add(-time.Minute).In(loc), end.In(loc)} {
				days++
				y, m, d := edge.Date()
				date := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
				for minute := 0; minute < 24*60; minute += 15 {
					want := firstInstantAtOrAfter(loc, y, m, d, minute)
					if got := WallInstant(loc, date, minute); !got.Equal(want) {
						t.Errorf("%s %s +%dmin: %s, want %s", name, date.Format(time.DateOnly), minute, got.In(loc), want.In(loc))
					}
				}
			}
			t0 = end
		}
		if days == 0 && name != "Asia/Kolkata" {
			t.Errorf("%s: no transition found in 2026", name)
		}
	}
}
