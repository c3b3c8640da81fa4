package simulate

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// person is one synthetic participant's traits, drawn once from the cohort.
type person struct {
	stressUsual, moodUsual float64
	bedtime, wake          float64 // minutes after local midnight (bedtime may exceed 1440)
	commuter               bool
	open, complete, rate   float64
	respond                float64
	disengageDay           int // -1: never
	optOut                 bool
}

func clip01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

func clip10(x float64) float64 { return math.Max(0, math.Min(10, x)) }

func spread(r *rand.Rand, mean, half float64) float64 {
	return clip01(mean + half*(2*r.Float64()-1))
}

func newPerson(c *Cohort, r *rand.Rand, days int) person {
	bed, _ := trial.ParseClock(c.Sleep.Bedtime)
	wake, _ := trial.ParseClock(c.Sleep.Wake)
	if bed < wake {
		bed += 1440 // after midnight
	}
	e := &c.Engagement
	p := person{
		stressUsual:  clip10(c.Stress.Mean + c.Stress.BetweenSD*r.NormFloat64()),
		moodUsual:    clip10(c.Mood.Mean + c.Mood.BetweenSD*r.NormFloat64()),
		bedtime:      float64(bed) + 30*r.NormFloat64(),
		wake:         float64(wake) + 30*r.NormFloat64(),
		commuter:     r.Float64() < c.Driving.Commuters,
		open:         spread(r, e.Open, e.Spread),
		complete:     spread(r, e.Complete, e.Spread),
		rate:         spread(r, e.Rate, e.Spread),
		respond:      spread(r, e.Respond, e.Spread),
		disengageDay: -1,
	}
	if r.Float64() < c.Disengagement.Fraction {
		from := min(c.Disengagement.FromDay, days)
		p.disengageDay = from + r.IntN(days-from+1)
		p.optOut = r.Float64() < c.Disengagement.OptOut
	}
	return p
}

// day is what one day of a person looks like, drawn at local midnight.
type day struct {
	date         time.Time // local midnight
	index        int
	sleepQuality float64
	stressShift  float64
	moodShift    float64
	wake         time.Time
	trips        [][2]time.Time // driving intervals
	disengaged   bool
}

// level is a rhythm's expected value at local time t on day d.
func level(rh *Rhythm, usual, shift, sleepQuality float64, t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	v := usual + shift + rh.Amplitude*math.Cos(2*math.Pi*(h-rh.PeakHour)/24)
	if sleepQuality < 5 {
		v += rh.PerSleepPoint * (5 - sleepQuality)
	}
	return v
}

// asleep reports whether the person is asleep at local time t: before
// today's waking or after their bedtime (which may be after midnight).
func (d *day) asleep(p *person, t time.Time) bool {
	m := t.Sub(d.date).Minutes()
	if !t.Before(d.wake) {
		return m >= p.bedtime
	}
	return m >= p.bedtime-1440
}

func (d *day) driving(t time.Time) bool {
	for _, tr := range d.trips {
		if !t.Before(tr[0]) && t.Before(tr[1]) {
			return true
		}
	}
	return false
}

// location is the person's place at local time t.
func (d *day) location(p *person, t time.Time, r *rand.Rand) string {
	h := t.Hour()
	weekday := t.Weekday() != time.Saturday && t.Weekday() != time.Sunday
	switch {
	case d.driving(t):
		return "transit"
	case weekday && h >= 9 && h < 17 && (p.commuter || r.Float64() < 0.5):
		return "work"
	case h >= 10 && h < 20 && r.Float64() < 0.15:
		return "public"
	}
	return "home"
}

func minutes(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }
