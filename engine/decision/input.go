package decision

import (
	"encoding/json"
	"math"
	"time"

	"github.com/jitai/jitai/engine/schedule"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// localClock is the decision time in the participant's zone.
type localClock struct {
	t    time.Time
	date string
}

func newLocalClock(now time.Time, loc *time.Location) localClock {
	t := now.In(loc)
	return localClock{t: t, date: t.Format(time.DateOnly)}
}

func (c localClock) sameDay(t time.Time) bool {
	return t.In(c.t.Location()).Format(time.DateOnly) == c.date
}

// timeOfDay names the part of the day for rendering.
func timeOfDay(hour int) string {
	switch {
	case hour >= 5 && hour < 12:
		return "morning"
	case hour >= 12 && hour < 17:
		return "afternoon"
	case hour >= 17 && hour < 21:
		return "evening"
	}
	return "night"
}

// history is what the policy sees of the participant's past, computed from
// the state's bounded history at the decision time.
type history struct {
	promptsToday   int
	prompts24h     int
	decisionsToday int
	lastPrompt     time.Time
}

func computeHistory(st *trial.State, now time.Time, clock localClock) history {
	var h history
	for _, p := range st.Prompts {
		if p.Time.After(now) {
			continue
		}
		if clock.sameDay(p.Time) {
			h.promptsToday++
		}
		if now.Sub(p.Time) < 24*time.Hour {
			h.prompts24h++
		}
		if p.Time.After(h.lastPrompt) {
			h.lastPrompt = p.Time
		}
	}
	for _, d := range st.Decisions {
		if !d.After(now) && clock.sameDay(d) {
			h.decisionsToday++
		}
	}
	return h
}

// buildInput assembles the policy input document (docs/policy.md).
func buildInput(rt *Runtime, snap *trial.Snapshot, dp any, reqCtx map[string]any, now time.Time, clock localClock, h history, ph phaseDay, ev *trial.Event) map[string]any {
	p := snap.Participant
	st := snap.State
	local := clock.t
	enrolled := p.EnrolledAt.In(local.Location())
	dayInStudy := int(math.Round(dateOnly(local).Sub(dateOnly(enrolled)).Hours() / 24))

	assignment := make(map[string]any, len(p.Assignment))
	for k, v := range p.Assignment {
		assignment[k] = v
	}
	strata := make(map[string]any, len(p.Strata))
	for k, v := range p.Strata {
		strata[k] = v
	}
	ctx := make(map[string]any, len(reqCtx))
	for k, v := range reqCtx {
		ctx[k] = v
	}

	state := map[string]any{
		"ema":         observations(st.EMA, now),
		"context":     observations(st.Context, now),
		"assessment":  assessments(st.Assessments, now),
		"preferences": preferences(&st.Preferences, now),
	}

	hist := map[string]any{
		"prompts_today":        h.promptsToday,
		"prompts_24h":          h.prompts24h,
		"decisions_today":      h.decisionsToday,
		"recent_interventions": recentInterventions(st.Prompts, now),
		"engagement":           engagementSummary(st, now),
	}
	if !h.lastPrompt.IsZero() {
		hist["minutes_since_last_prompt"] = int(now.Sub(h.lastPrompt) / time.Minute)
		hist["last_prompt_at"] = h.lastPrompt.Format(time.RFC3339)
	}

	return map[string]any{
		"now":    now.Format(time.RFC3339Nano),
		"now_ns": now.UnixNano(),
		"local": map[string]any{
			"timezone":      local.Location().String(),
			"time":          local.Format(time.RFC3339),
			"date":          clock.date,
			"hour":          local.Hour(),
			"minute":        local.Minute(),
			"minute_of_day": local.Hour()*60 + local.Minute(),
			"weekday":       local.Weekday().String(),
		},
		"study": rt.studyInput,
		"participant": map[string]any{
			"id":           p.ID,
			"enrolled_at":  p.EnrolledAt.Format(time.RFC3339),
			"day_in_study": dayInStudy,
			"study_day":    ph.studyDay,
			"phase":        ph.phase,
			"assignment":   assignment,
			"strata":       strata,
		},
		"decision_point": dp,
		"event":          eventDoc(ev),
		"context":        ctx,
		"state":          state,
		"history":        hist,
	}
}

// eventDoc is input.event: the event that opened an event point (also
// when the policy's open rule is asked about it), null otherwise.
func eventDoc(ev *trial.Event) any {
	if ev == nil {
		return nil
	}
	var data any
	_ = json.Unmarshal(ev.Data, &data)
	return map[string]any{"id": ev.ID, "type": ev.Type, "time": ev.Time.Format(time.RFC3339Nano), "data": data}
}

// pointDoc is input.decision_point.
func pointDoc(dp *policies.DecisionPoint, trigger string, scheduledAt time.Time, eventID string) map[string]any {
	return map[string]any{"id": dp.ID, "time": dp.Time, "kind": dp.Kind, "trigger": trigger,
		"scheduled_at": scheduledAt.Format(time.RFC3339), "event_id": eventID}
}

// phaseDay is the participant's phase and study day at the decision.
type phaseDay struct {
	phase     string
	studyDay  int
	randomise bool
}

// phaseAt is the participant's phase at now. Before enrolment (a decision
// the service refuses) it is the first day's.
func phaseAt(rt *Runtime, p *trial.Participant, loc *time.Location, now time.Time) phaseDay {
	phase, day, randomise := schedule.PhaseAt(rt.Config, p, loc, now)
	if day < 1 {
		phase, _, randomise = schedule.PhaseAt(rt.Config, p, loc, p.EnrolledAt)
		day = 1
	}
	return phaseDay{phase: phase, studyDay: day, randomise: randomise}
}

// phaseRandomises reports whether the study's phase name randomises (for
// replaying a record).
func phaseRandomises(rt *Runtime, name string) bool {
	if name == "" || name == policies.PhaseActive {
		return true
	}
	if name == policies.PhaseCompleted {
		return false
	}
	for i := range rt.Config.Phases {
		if rt.Config.Phases[i].Name == name {
			return rt.Config.Phases[i].Randomises()
		}
	}
	return true
}

func dateOnly(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func observations(obs map[string]trial.Observation, now time.Time) map[string]any {
	out := make(map[string]any, len(obs))
	for k, o := range obs {
		if o.Time.After(now) {
			continue // reported for a later time than this decision
		}
		out[k] = map[string]any{
			"value":       o.Value,
			"time":        o.Time.Format(time.RFC3339),
			"age_minutes": int(now.Sub(o.Time) / time.Minute),
		}
	}
	return out
}

func assessments(as map[string]trial.Assessment, now time.Time) map[string]any {
	out := make(map[string]any, len(as))
	for k, a := range as {
		if a.Time.After(now) {
			continue
		}
		items := make([]any, len(a.Items))
		for i, v := range a.Items {
			items[i] = v
		}
		m := map[string]any{
			"total":    a.Total,
			"severity": a.Severity,
			"items":    items,
			"time":     a.Time.Format(time.RFC3339),
			"age_days": int(now.Sub(a.Time) / (24 * time.Hour)),
		}
		if a.Instrument == "phq9" && len(a.Items) == 9 {
			m["item9"] = a.Items[8]
		}
		out[k] = m
	}
	return out
}

// preferences are the participant's preferences as of now: a snooze or
// quiet hours set after now (a decision made late, at its scheduled time)
// did not exist then. An opt-out is honoured whenever it was set: a late
// decision is delivered now.
func preferences(p *trial.Preferences, now time.Time) map[string]any {
	snoozed := p.SnoozeSetAt.IsZero() || !p.SnoozeSetAt.After(now)
	out := map[string]any{
		"snoozed":   snoozed && now.Before(p.SnoozedUntil),
		"opted_out": p.OptedOut,
	}
	if snoozed && !p.SnoozedUntil.IsZero() {
		out["snoozed_until"] = p.SnoozedUntil.Format(time.RFC3339)
	}
	if p.QuietHours != nil && (p.QuietSetAt.IsZero() || !p.QuietSetAt.After(now)) {
		out["quiet_hours"] = map[string]any{"start": p.QuietHours.Start, "end": p.QuietHours.End}
	}
	return out
}

func recentInterventions(prompts []trial.Prompt, now time.Time) []any {
	out := make([]any, 0, 10)
	for i := len(prompts) - 1; i >= 0 && len(out) < 10; i-- {
		if !prompts[i].Time.After(now) {
			out = append(out, prompts[i].Intervention)
		}
	}
	return out
}

func engagementSummary(st *trial.State, now time.Time) map[string]any {
	from := now.Add(-7 * 24 * time.Hour)
	counts := map[string]int{}
	var lastRating *float64
	var lastRatingAt time.Time
	for _, e := range st.Engagement {
		if e.Time.After(now) || !e.Time.After(from) {
			continue
		}
		counts[e.Status]++
		if e.Rating != nil && !e.Time.Before(lastRatingAt) {
			lastRating, lastRatingAt = e.Rating, e.Time
		}
	}
	prompts := 0
	for _, p := range st.Prompts {
		if !p.Time.After(now) && p.Time.After(from) {
			prompts++
		}
	}
	out := map[string]any{
		"prompts":   prompts,
		"delivered": counts["delivered"],
		"opened":    counts["opened"],
		"completed": counts["completed"],
		"dismissed": counts["dismissed"],
	}
	if prompts > 0 {
		out["open_rate"] = math.Min(1, float64(counts["opened"])/float64(prompts))
	}
	if lastRating != nil {
		out["last_rating"] = *lastRating
	}
	return out
}
