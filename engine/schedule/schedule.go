// Package schedule is the calculus of the trial clock: which scheduled
// decision points a participant has in a span of time, at which instants,
// in which phase and study day, and the deterministic key of each. It is
// pure: it holds no store and no clock; the scheduler calls it with the
// times it needs.
package schedule

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"time"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/policies"
)

// Point is one scheduled decision point of one participant on one local date.
type Point struct {
	// DecisionPoint is the decision point's id.
	DecisionPoint string
	// LocalDate is the participant-local date, YYYY-MM-DD.
	LocalDate string
	// At is the instant the point fires, in UTC.
	At time.Time
	// StudyDay counts participant-local days from enrolment; day 1 is the
	// day of enrolment.
	StudyDay int
	// Phase is the participant's phase on that day.
	Phase string
	// Randomise is false in phases whose points are recorded but never
	// randomised or delivered (e.g. a baseline).
	Randomise bool
}

// Occurrences lists every scheduled decision point instant of participant p
// in [from, to), in time order (points at the same instant in declaration
// order). Times are p's local times in loc; a local time skipped by a
// daylight-saving gap fires at the first instant after the gap, and a local
// time repeated by a fall-back fires once, at its first occurrence. A
// window point fires at a whole minute of [start, end) drawn by drawer from
// (p, point, local date). Points before p.EnrolledAt, on days outside a
// point's days or study_days, and from the day p is completed are left out.
// Occurrences does not look at p.Status: whether a withdrawn participant's
// points still matter is the caller's business.
func Occurrences(cfg *policies.Config, drawer *experiments.Drawer, p *trial.Participant, loc *time.Location, from, to time.Time) []Point {
	if !to.After(from) {
		return nil
	}
	if from.Before(p.EnrolledAt) {
		from = p.EnrolledAt
	}
	enrolDay := civil(p.EnrolledAt.In(loc))
	// A point of local date D fires on D, or on D+1 when a gap at the end of
	// D skips its time, never before D: so the local dates from the day
	// before from's to to's cover [from, to).
	first := max(civil(from.In(loc))-1, enrolDay)
	last := civil(to.In(loc))
	var out []Point
	for day := first; day <= last; day++ {
		studyDay := int(day-enrolDay) + 1
		phase, randomise, done := phaseOfDay(cfg.Phases, studyDay)
		if done {
			break
		}
		date := dateOf(day)
		weekday := date.Weekday()
		var ds string
		for i := range cfg.DecisionPoints {
			dp := &cfg.DecisionPoints[i]
			if dp.Kind != "scheduled" || !dp.StudyDays.Contains(studyDay) || !onWeekday(dp.Days, weekday) {
				continue
			}
			if ds == "" {
				ds = date.Format(time.DateOnly)
			}
			minute, ok := minuteOf(dp, drawer, p.ID, ds)
			if !ok {
				continue
			}
			at := WallInstant(loc, date, minute)
			if at.Before(from) || !at.Before(to) {
				continue
			}
			out = append(out, Point{DecisionPoint: dp.ID, LocalDate: ds, At: at.UTC(), StudyDay: studyDay, Phase: phase, Randomise: randomise})
		}
	}
	slices.SortStableFunc(out, func(a, b Point) int { return a.At.Compare(b.At) })
	return out
}

// minuteOf is the local minute of the day at which dp fires on date ds.
func minuteOf(dp *policies.DecisionPoint, drawer *experiments.Drawer, participant, ds string) (int, bool) {
	if dp.Window == nil {
		m, err := trial.ParseClock(dp.Time)
		return m, err == nil
	}
	start, err1 := trial.ParseClock(dp.Window.Start)
	end, err2 := trial.ParseClock(dp.Window.End)
	if err1 != nil || err2 != nil || end <= start {
		return 0, false
	}
	return start + WindowMinute(drawer, participant, dp.ID, ds, end-start), true
}

// WindowMinute is the minute offset in [0, n) at which a window point of n
// minutes fires for participant on local date ds: the study's keyed draw
// of (participant, "schedule:<point>:<date>", "time"), so it reproduces
// from the seed and differs between participants and days.
func WindowMinute(drawer *experiments.Drawer, participant, point, ds string, n int) int {
	u := drawer.Uniform(participant, "schedule:"+point+":"+ds, "time")
	return min(int(u*float64(n)), n-1)
}

func onWeekday(days []string, d time.Weekday) bool {
	if len(days) == 0 {
		return true
	}
	return slices.Contains(days, policies.WeekdayName(d))
}

// PhaseAt returns p's phase, study day (1 = the local day of enrolment) and
// whether points are randomised at instant t in loc. Before the local day
// of enrolment the phase is "" and nothing is randomised; after the last
// phase it is policies.PhaseCompleted.
func PhaseAt(cfg *policies.Config, p *trial.Participant, loc *time.Location, t time.Time) (phase string, studyDay int, randomise bool) {
	studyDay = int(civil(t.In(loc))-civil(p.EnrolledAt.In(loc))) + 1
	if studyDay < 1 {
		return "", studyDay, false
	}
	phase, randomise, _ = phaseOfDay(cfg.Phases, studyDay)
	return phase, studyDay, randomise
}

// phaseOfDay returns the phase of study day d >= 1 and whether the
// participant is completed.
func phaseOfDay(phases []policies.Phase, d int) (name string, randomise, completed bool) {
	if len(phases) == 0 {
		return policies.PhaseActive, true, false
	}
	end := 0
	for i := range phases {
		ph := &phases[i]
		if ph.Days == 0 {
			return ph.Name, ph.Randomises(), false
		}
		end += ph.Days
		if d <= end {
			return ph.Name, ph.Randomises(), false
		}
	}
	return policies.PhaseCompleted, false, true
}

// PointKey is the deterministic decision key of one (participant, decision
// point, local date) of a study: the first 16 bytes of
// SHA-256("jitai/point/v1" || len-prefixed study, participant, point,
// date), in lower-case hex. Every engine derives the same key, so retries,
// replicas and app requests converge on one decision.
func PointKey(study, participant, decisionPoint, localDate string) string {
	h := sha256.New()
	var buf [4]byte
	h.Write([]byte("jitai/point/v1"))
	for _, s := range [...]string{study, participant, decisionPoint, localDate} {
		binary.BigEndian.PutUint32(buf[:], uint32(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// civil is t's calendar date as days since 1970-01-01.
func civil(t time.Time) int64 {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// dateOf is the midnight UTC of a civil day.
func dateOf(day int64) time.Time { return time.Unix(day*86400, 0).UTC() }

// WallInstant is the instant at which the local wall clock in loc reads
// date (a UTC midnight) plus minute minutes: in a daylight-saving gap, the
// first instant after the gap (the first at which the wall clock has passed
// that time); in a fall-back overlap, the earlier of the two.
func WallInstant(loc *time.Location, date time.Time, minute int) time.Time {
	wall := date.Add(time.Duration(minute) * time.Minute) // the wall time, read as UTC
	// Fast path: the zone in effect around the wall time has no transition
	// within 36 hours, so the wall time exists exactly once.
	_, off := wall.In(loc).Zone()
	at := wall.Add(-time.Duration(off) * time.Second)
	start, end := at.In(loc).ZoneBounds()
	if _, off2 := at.In(loc).Zone(); off2 == off &&
		(start.IsZero() || start.Before(at.Add(-36*time.Hour))) &&
		(end.IsZero() || end.After(at.Add(36*time.Hour))) {
		return at
	}
	return wallInstantSlow(loc, wall)
}

// wallInstantSlow walks the zones in effect from 36 hours before to 36
// hours after wall and returns the earliest instant whose wall clock reads
// wall, or, when none does (a gap), the transition that skips it.
func wallInstantSlow(loc *time.Location, wall time.Time) time.Time {
	type zone struct {
		off        time.Duration
		start, end time.Time
	}
	var buf [8]zone
	zones := buf[:0]
	for t := wall.Add(-36 * time.Hour); len(zones) < len(buf); {
		_, off := t.In(loc).Zone()
		start, end := t.In(loc).ZoneBounds()
		zones = append(zones, zone{time.Duration(off) * time.Second, start, end})
		if end.IsZero() || end.After(wall.Add(36*time.Hour)) {
			break
		}
		t = end
	}
	for _, z := range zones {
		at := wall.Add(-z.off)
		if (z.start.IsZero() || !at.Before(z.start)) && (z.end.IsZero() || at.Before(z.end)) {
			return at // zones are in time order, so the first valid one is the earliest
		}
	}
	for i := 0; i+1 < len(zones); i++ {
		boundary := zones[i].end
		if !wall.Add(-zones[i].off).Before(boundary) && wall.Add(-zones[i+1].off).Before(boundary) {
			return boundary
		}
	}
	_, off := wall.In(loc).Zone() // unreachable for a well-formed zone
	return wall.Add(-time.Duration(off) * time.Second)
}
