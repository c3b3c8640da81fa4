# Decision rules of the stress-mrt study (see docs/policy.md for the contract).
#
# The policy is pure: it reads only input and data.jitai.catalogue; time comes from
# input.now / input.local. Every part of `decision` is always defined, whatever
# input is missing (a new participant has no EMA, no assessment and no history).
package jitai.policy

# The engine evaluates data.jitai.policy.decision.
decision := {
	"safety_reasons": sort([r | some r in safety]),
	"unavailable_reasons": sort([r | some r in unavailable]),
	"candidates": candidates,
	"conditions": sort([c | some c in conditions]),
	"tailoring": tailoring,
}

# ---------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------

phq9_max_age_days := 14

risk_max_age_minutes := 1440 # an explicit risk answer counts for 24 h

ema_max_age_minutes := 360 # tailoring uses self-reports from the last 6 h

driving_max_age_minutes := 30

# ---------------------------------------------------------------------------
# Inputs, made total
# ---------------------------------------------------------------------------

default catalogue := {}

catalogue := data.jitai.catalogue if is_object(data.jitai.catalogue)

# Recent numeric self-reports of the tailoring variables (only the few variables
# used here are looked up, never the whole state).
tailoring_vars := {"stress", "mood", "energy", "sleep_quality", "loneliness", "anxiety"}

ema[name] := e.value if {
	some name in tailoring_vars
	e := input.state.ema[name]
	is_number(e.value)
	is_number(e.age_minutes)
	e.age_minutes <= ema_max_age_minutes
}

# Participant-local minute of the day.
now_minute := input.local.minute_of_day if {
	is_number(input.local.minute_of_day)
} else := (input.local.hour * 60) + object.get(input.local, "minute", 0) if {
	is_number(input.local.hour)
}

local_hour := input.local.hour if {
	is_number(input.local.hour)
} else := floor(now_minute / 60)

# "HH:MM" -> minutes after midnight; undefined when malformed.
clock_minutes(s) := (to_number(substring(s, 0, 2)) * 60) + to_number(substring(s, 3, 2)) if {
	is_string(s)
	regex.match(`^([01][0-9]|2[0-3]):[0-5][0-9]$`, s)
}

valid_quiet_hours(q) if {
	clock_minutes(q.start)
	clock_minutes(q.end)
}

# The participant's own quiet hours override the study default.
quiet_hours := input.state.preferences.quiet_hours if {
	valid_quiet_hours(input.state.preferences.quiet_hours)
} else := input.study.quiet_hours if {
	valid_quiet_hours(input.study.quiet_hours)
}

# [start, end): start inclusive, end exclusive; wraps past midnight when start > end;
# start == end is an empty interval.
in_interval(m, start, end) if {
	start < end
	m >= start
	m < end
}

in_interval(m, start, end) if {
	start > end
	m >= start
}

in_interval(m, start, end) if {
	start > end
	m < end
}

in_quiet_hours if in_interval(now_minute, clock_minutes(quiet_hours.start), clock_minutes(quiet_hours.end))

# Where the person is: this request's context, else a fresh reported context.
location := input.context.location if {
	is_string(input.context.location)
} else := input.state.context.location.value if {
	l := input.state.context.location
	is_string(l.value)
	is_number(l.age_minutes)
	l.age_minutes <= driving_max_age_minutes
}

late_night if local_hour >= 21

late_night if local_hour < 6

evening if now_minute >= 20 * 60

evening if late_night

# ---------------------------------------------------------------------------
# Safety: pre-empts everything
# ---------------------------------------------------------------------------

safety contains "phq9_item9" if {
	p := input.state.assessment.phq9
	is_number(p.item9)
	p.item9 > 0
	is_number(p.age_days)
	p.age_days <= phq9_max_age_days
}

safety contains "risk_flag" if {
	r := input.state.ema.risk
	r.value == true
	is_number(r.age_minutes)
	r.age_minutes <= risk_max_age_minutes
}

safety contains "risk_flag" if input.context.risk == true

# ---------------------------------------------------------------------------
# Availability
# ---------------------------------------------------------------------------

unavailable contains "driving" if input.context.driving == true

unavailable contains "driving" if {
	d := input.state.context.driving
	d.value == true
	is_number(d.age_minutes)
	d.age_minutes <= driving_max_age_minutes
}

unavailable contains "quiet_hours" if in_quiet_hours

unavailable contains "snoozed" if input.state.preferences.snoozed == true

unavailable contains "max_prompts_today" if {
	cap := input.study.burden.max_per_day
	is_number(cap)
	cap > 0
	sent := object.get(input, ["history", "prompts_today"], 0)
	is_number(sent)
	sent >= cap
}

unavailable contains "min_gap" if {
	gap := input.study.burden.min_minutes_between
	is_number(gap)
	gap > 0
	since := input.history.minutes_since_last_prompt
	is_number(since)
	since < gap
}

# ---------------------------------------------------------------------------
# Tailoring: what the person needs now
# ---------------------------------------------------------------------------

need := "stress" if {
	ema.stress >= 7
} else := "low_mood" if {
	ema.mood <= 3
} else := "anxiety" if {
	ema.anxiety >= 7
} else := "loneliness" if {
	ema.loneliness >= 7
} else := "sleep" if {
	ema.sleep_quality <= 3
	evening
} else := "stress"

# Techniques suited to the current state, each with the state that favours it.
favoured contains [t, "low_energy"] if {
	ema.energy <= 3
	some t in {"relaxation", "mindful_breathing", "grounding", "self_compassion"}
}

favoured contains [t, "high_stress"] if {
	ema.stress >= 7
	some t in {"grounding", "mindful_breathing", "relaxation"}
}

favoured contains ["sleep_wind_down", "evening"] if evening

favoured contains [t, "low_mood"] if {
	need == "low_mood"
	not ema.energy <= 3
	some t in {"behavioural_activation", "activity_scheduling"}
}

# technique -> sorted labels (built once, looked up per catalogue entry).
favour_labels := {t: labels |
	some [t, _] in favoured
	labels := sort([pair[1] | some pair in favoured; pair[0] == t])
}

# ---------------------------------------------------------------------------
# Candidates
# ---------------------------------------------------------------------------

targeting(target) := {id |
	some id, e in catalogue
	target in e.targets
}

need_pool := targeting(need)

stress_pool := targeting("stress")

# Entries for the need; else the default need; else the whole catalogue.
pool := need_pool if {
	count(need_pool) > 0
} else := stress_pool if {
	count(stress_pool) > 0
} else := {id | some id, _ in catalogue}

# The three most recently delivered interventions are left out while others remain.
recent := {id |
	some i, id in input.history.recent_interventions
	i < 3
}

fresh := pool - recent

chosen := fresh if {
	count(fresh) > 0
} else := pool

candidates := [c |
	some id in chosen
	labels := object.get(favour_labels, object.get(catalogue[id], "technique", ""), [])
	c := {
		"id": id,
		"weight": 1 + count(labels),
		"reason": concat("+", array.concat([sprintf("targets_%s", [need])], labels)),
	}
]

# ---------------------------------------------------------------------------
# Conditions (the engine drops contraindicated candidates)
# ---------------------------------------------------------------------------

conditions contains "late_night" if late_night

conditions contains "low_energy" if ema.energy <= 3

conditions contains "high_distress" if ema.stress >= 8

conditions contains "in_public" if location in {"public", "transit"}

conditions contains "at_work" if location == "work"

# ---------------------------------------------------------------------------
# Recorded for explanation
# ---------------------------------------------------------------------------

tailoring := object.union(ema, {
	"need": need,
	"favoured": sort([t | some t, _ in favour_labels]),
})
