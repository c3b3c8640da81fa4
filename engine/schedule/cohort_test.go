package schedule

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/policies"
)

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
