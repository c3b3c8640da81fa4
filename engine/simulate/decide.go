package simulate

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/policies"
)

// decide asks the engine for a decision at app point dp, as the app does;
// the app shows a delivery itself (the answer is the delivery).
func (s *sim) decide(ctx context.Context, dp int) error {
	_, err := s.eng.Decide(ctx, s.cfg.ID, s.id, engine.DecideRequest{DecisionPoint: s.cfg.DecisionPoints[dp].ID, Time: s.now, Context: s.reqContext})
	s.reqContext = nil
	if err != nil {
		return fmt.Errorf("deciding at %s: %w", s.cfg.DecisionPoints[dp].ID, err)
	}
	s.recorded()
	return nil
}

// recorded takes in the records the engine committed since the last look:
// each is a decision point of the report, followed by a self-report
// request; a delivery the app asked for is shown now, one the trial clock
// queued when the phone receives it.
func (s *sim) recorded() {
	commits := s.view.commits
	s.view.commits = nil
	for _, rec := range commits {
		s.record(rec)
	}
}

// record takes in one record.
func (s *sim) record(rec *trial.Record) {
	at := rec.Time
	dp := s.dpIndex[rec.DecisionPoint]
	pt := Point{Day: s.dayOf(at), DP: dp, Hour: at.In(s.loc).Hour(), Action: rec.Action, Available: rec.Available,
		Reasons: rec.UnavailableReasons, Safety: rec.SafetyReasons, Randomised: rec.Randomised, Outcome: math.NaN(), At: at,
		Trigger: rec.Trigger, Phase: rec.Phase, Missed: decision.IsMissed(rec)}
	if rec.Randomised {
		for _, fd := range rec.Factors {
			if fd.Type == string(policies.Within) && fd.Probability != nil {
				pt.Factors = append(pt.Factors, FactorLevel{Level: fd.Level, Prob: *fd.Probability})
			}
		}
	}
	s.out.Points = append(s.out.Points, pt)
	idx := len(s.out.Points) - 1
	switch {
	case rec.Action != trial.ActionDeliver && rec.Action != trial.ActionSafety:
	case rec.Trigger == trial.TriggerApp || rec.Trigger == "":
		// In the app's answer: shown at once.
		s.out.Points[idx].Sent = true
		if rec.Action == trial.ActionDeliver {
			s.deliver(rec, at, idx)
		}
	default:
		s.points[rec.ID] = idx
		s.sent[rec.ID] = rec
	}
	if pt.Missed {
		return
	}
	// The follow-up self-report request, after every decision point.
	c := &s.o.Cohort
	delay := c.Engagement.ReportDelay.Duration
	jitter := time.Duration((2*s.rng.Float64() - 1) * float64(delay) / 3)
	s.push(action{at: at.Add(delay + jitter).Truncate(time.Second), kind: actReport, dp: dp})
}

// received: a channel sent the phone a decision the trial clock delivered;
// it may not reach the phone (Phone.Unreachable).
func (s *sim) received(rec *trial.Record) {
	idx := s.points[rec.ID]
	delete(s.points, rec.ID)
	s.out.Points[idx].Sent = true
	if rec.Action == trial.ActionDeliver && s.rng.Float64() >= s.o.Cohort.Phone.Unreachable {
		s.deliver(rec, s.now, idx)
	}
}

// dayOf is the study day (from 0) of instant t.
func (s *sim) dayOf(t time.Time) int {
	y, m, d := t.In(s.loc).Date()
	day := int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(time.Date(s.start.Year(), s.start.Month(), s.start.Day(), 0, 0, 0, 0, time.UTC)).Hours() / 24)
	return min(max(day, 0), s.o.Days-1)
}

// deliver records the true effect awaiting the next self-report and queues
// the engagement the person shows with the delivery that reached their
// phone at at; idx is its decision point in out.Points.
func (s *sim) deliver(rec *trial.Record, at time.Time, idx int) {
	c := &s.o.Cohort
	d := effect{at: at, stress: c.Effects.Stress, mood: c.Effects.Mood}
	for _, fd := range rec.Factors {
		ef, ok := c.Effects.Components[fd.Name]
		if ok && fd.Level == 1 {
			d.stress += ef.Stress
			d.mood += ef.Mood
		}
	}
	s.pending = append(s.pending, d)
	r := s.rng
	pt := &s.out.Points[idx]
	// The app uploads the engagement with a decision when the interaction
	// ends, in one request.
	var batch []trial.Event
	last := at
	eng := func(t time.Time, status string, rating *int) {
		data := map[string]any{"decision_id": rec.ID, "status": status}
		if rating != nil {
			data["rating"] = *rating
		}
		batch = append(batch, s.event(t, trial.EventEngagement, data))
		s.engaged = append(s.engaged, engagement{at: t, status: status})
		if t.After(last) {
			last = t
		}
	}
	defer func() { s.push(action{at: last, kind: actEvent, evs: batch}) }()
	eng(at.Add(5*time.Second), "delivered", nil)
	pt.Delivered = true
	pOpen := s.p.open
	if s.inUse {
		pOpen += c.Engagement.InUseBoost
	}
	pOpen = clip01(pOpen) * s.factor()
	if s.today.asleep(&s.p, at.In(s.loc)) {
		pOpen = 0
	}
	dismissed := time.Time{}
	if r.Float64() < pOpen {
		opened := at.Add(minutes(1 + 44*r.Float64())).Truncate(time.Second)
		eng(opened, "opened", nil)
		s.out.Opened++
		pt.Opened = true
		s.out.OpenedByDay[s.today.index]++
		dur := 120 * time.Second
		if rec.Intervention != nil && rec.Intervention.DurationS > 0 {
			dur = time.Duration(rec.Intervention.DurationS) * time.Second
		}
		if r.Float64() < s.p.complete {
			done := opened.Add(dur)
			eng(done, "completed", nil)
			s.out.Completed++
			pt.Completed = true
			if r.Float64() < s.p.rate {
				rating := min(10, max(0, int(math.Round(7+1.5*r.NormFloat64()))))
				eng(done.Add(30*time.Second), "rated", &rating)
			}
		} else {
			dismissed = opened.Add(time.Minute)
		}
	} else if r.Float64() < 0.3 {
		dismissed = at.Add(minutes(5 + 55*r.Float64())).Truncate(time.Second)
	}
	if !dismissed.IsZero() {
		eng(dismissed, "dismissed", nil)
		if r.Float64() < c.Engagement.Snooze {
			s.queueEvent(dismissed.Add(time.Second), trial.EventPreference, map[string]any{"snooze_minutes": int(c.Engagement.SnoozeFor.Minutes())})
		}
	}
}

// selfReport answers (or not) a self-report request: dp is the decision
// point it follows, -1 for the morning report.
func (s *sim) selfReport(ctx context.Context, dp int) error {
	c := &s.o.Cohort
	r := s.rng
	s.out.Requests++
	s.out.RequestsByDay[s.today.index]++
	if r.Float64() >= clip01(s.p.respond*s.factor()) || s.today.asleep(&s.p, s.now.In(s.loc)) {
		return nil
	}
	s.out.Reports++
	s.out.ReportsByDay[s.today.index]++
	local := s.now.In(s.loc)
	stress := level(&c.Stress, s.p.stressUsual, s.today.stressShift, s.today.sleepQuality, local) + c.Stress.NoiseSD*r.NormFloat64()
	mood := s.moodNow() + c.Mood.NoiseSD*r.NormFloat64()
	// The true effect of deliveries since the last report, within the window.
	for _, d := range s.pending {
		if s.now.Sub(d.at) <= c.Effects.Window.Duration {
			stress += d.stress
			mood += d.mood
		}
	}
	s.pending = s.pending[:0]
	values := map[string]float64{
		"stress": math.Round(clip10(stress)),
		"mood":   math.Round(clip10(mood)),
		"energy": math.Round(clip10(0.6*mood + 0.3*s.today.sleepQuality - 0.5 + r.NormFloat64())),
	}
	if dp < 0 {
		values["sleep_quality"] = math.Round(s.today.sleepQuality)
	}
	data := make(map[string]any, len(values)+1)
	for k, v := range values {
		data[k] = v
	}
	if r.Float64() < c.Safety.RiskReport {
		data["risk"] = 1
	}
	s.reports = append(s.reports, report{at: s.now, values: values})
	b, err := jsonMarshal(data)
	if err != nil {
		return err
	}
	return s.ingest(ctx, []trial.Event{{ID: s.nextEventID("ema"), Type: trial.EventEMA, Time: s.now, Data: b}})
}

// finish joins the primary proximal outcome to every decision, as the
// export would: the first (last, mean; or any, for engagement) value in
// the outcome's window after the decision point.
func (s *sim) finish() {
	defer func() { s.reports, s.engaged, s.pending = nil, nil, nil }()
	var out *policies.Outcome
	for i := range s.cfg.Outcomes {
		if s.cfg.Outcomes[i].Primary {
			out = &s.cfg.Outcomes[i]
		}
	}
	if out == nil {
		return
	}
	for i := range s.out.Points {
		pt := &s.out.Points[i]
		from, to := pt.At.Add(out.From.Duration), pt.At.Add(out.To.Duration)
		in := func(t time.Time) bool { return !t.Before(from) && !t.After(to) }
		switch out.Event {
		case trial.EventEMA:
			var vals []float64
			for _, r := range s.reports {
				if v, ok := r.values[out.Variable]; ok && in(r.at) {
					vals = append(vals, v)
				}
			}
			if len(vals) == 0 {
				continue
			}
			switch out.Aggregate {
			case "last":
				pt.Outcome = vals[len(vals)-1]
			case "mean":
				sum := 0.0
				for _, v := range vals {
					sum += v
				}
				pt.Outcome = sum / float64(len(vals))
			case "count":
				pt.Outcome = float64(len(vals))
			default:
				pt.Outcome = vals[0]
			}
		case trial.EventEngagement:
			pt.Outcome = 0
			for _, e := range s.engaged {
				if e.status == out.Status && in(e.at) {
					pt.Outcome = 1
					break
				}
			}
		}
	}
}
