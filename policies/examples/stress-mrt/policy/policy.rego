# Decision rules of the stress-mrt study (the contract is docs/policy.md).
#
# Pure: reads only input and data.jitai.catalogue; the time comes from input.local.
# Every field of `decision` is always defined, whatever input is missing (a new
# participant has no EMA, no assessment and no history). Rules are written to be
# cheap: the catalogue is walked once, the state is read by key, never walked.
package jitai.policy

# The document the engine evaluates.
decision := {
	"safety_reasons": sort(safety),
	"unavailable_reasons": sort(unavailable),
	"candidates": candidates,
	"conditions": sort(conditions),
	"tailoring": tailoring,
}

# ---------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------

phq9_max_age_days := 14 # a PHQ-9 counts for safety for 14 days

risk_max_age_minutes := 1440 # an explicit risk answer counts for 24 h

ema_max_age_minutes := 360 # tailoring uses self-reports from the last 6 h

context_max_age_minutes := 30 # reported driving / location count for 30 min

# ---------------------------------------------------------------------------
# Inputs, made total
# ---------------------------------------------------------------------------

default catalogue := {}

catalogue := data.jitai.catalogue if is_object(data.jitai.catalogue)

# Recent numeric self-reports of the tailoring variables (0-10 scales): stress
# and loneliness high = bad; mood, energy and sleep_quality high = good.
recent_ema := {name: v |
	some name, e in input.state.ema
	name in {"stress", "mood", "energy", "sleep_quality", "loneliness", "anxiety"}
	e.age_minutes <= ema_max_age_minutes
	v := e.value
	is_number(v)
}

# Participant-local minute of the day (0..1439).
now_minute := input.local.minute_of_day if {
	is_number(input.local.minute_of_day)
} else := (input.local.hour * 60) + minute if {
	is_number(input.local.hour)
	minute := object.get(input.local, "minute", 0)
	is_number(minute)
}

# Where the person is: this request's context, else a recently reported one.
location := input.context.location if {
	is_string(input.context.location)
} else := l.value if {
	l := input.state.context.location
	l.age_minutes <= context_max_age_minutes
	is_string(l.value)
}

late_night if now_minute >= 1260 # 21:00 to 06:00

late_night if now_minute < 360

evening if now_minute >= 1200 # 20:00 to 06:00

evening if now_minute < 360

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
	risk_answer(r.value)
	is_number(r.age_minutes)
	r.age_minutes <= risk_max_age_minutes
}

safety contains "risk_flag" if input.context.risk == true

# A risk item answered yes: true, or a positive score.
risk_answer(v) if v == true

risk_answer(v) if {
	is_number(v)
	v > 0
}

# ---------------------------------------------------------------------------
# Availability
# ---------------------------------------------------------------------------

unavailable contains "driving" if input.context.driving == true

unavailable contains "driving" if {
	d := input.state.context.driving
	d.value == true
	is_number(d.age_minutes)
	d.age_minutes <= context_max_age_minutes
}

unavailable contains "quiet_hours" if {
	[start, end] := quiet_span

	# minutes since the start of quiet hours < their length, both modulo a day:
	# start inclusive, end exclusive, wraps past midnight, start == end is empty.
	((now_minute - start) + 1440) % 1440 < ((end - start) + 1440) % 1440
}

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

# Quiet hours as [start, end] minutes after midnight: the participant's own
# choice overrides the study default; malformed values are ignored.
quiet_span := [clock(q.start), clock(q.end)] if {
	q := input.state.preferences.quiet_hours
	valid_clock(q.start)
	valid_clock(q.end)
} else := [clock(q.start), clock(q.end)] if {
	q := input.study.quiet_hours
	valid_clock(q.start)
	valid_clock(q.end)
}

valid_clock(s) if {
	is_string(s)
	regex.match(`^([01][0-9]|2[0-3]):[0-5][0-9]$`, s)
}

clock(s) := (to_number(substring(s, 0, 2)) * 60) + to_number(substring(s, 3, 2))

# ---------------------------------------------------------------------------
# Tailoring: what the person needs now
# ---------------------------------------------------------------------------

need := "stress" if {
	recent_ema.stress >= 7
} else := "low_mood" if {
	recent_ema.mood <= 3
} else := "anxiety" if {
	recent_ema.anxiety >= 7
} else := "loneliness" if {
	recent_ema.loneliness >= 7
} else := "sleep" if {
	recent_ema.sleep_quality <= 3
	evening
} else := "stress"

# States in force that favour some techniques (each adds 1 to the weight of a
# candidate whose technique it suits).
favour contains "low_energy" if recent_ema.energy <= 3

favour contains "high_stress" if recent_ema.stress >= 7

favour contains "evening" if evening

favour contains "low_mood" if {
	need == "low_mood"
	not recent_ema.energy <= 3
}

# technique -> the states that favour it.
suited_by := {
	"relaxation": {"low_energy", "high_stress"},
	"mindful_breathing": {"low_energy", "high_stress"},
	"grounding": {"low_energy", "high_stress"},
	"self_compassion": {"low_energy"},
	"sleep_wind_down": {"evening"},
	"behavioural_activation": {"low_mood"},
	"activity_scheduling": {"low_mood"},
}

# ---------------------------------------------------------------------------
# Candidates: catalogue entries for the need, selected by target
# ---------------------------------------------------------------------------

need_pool := targeting(catalogue, need)

stress_pool := targeting(catalogue, "stress")

# Ids of the catalogue entries whose targets include target.
targeting(cat, target) := {id | some id, e in cat; e.targets[_] == target}

# Entries for the need; else for the default need; else the whole catalogue.
pool := need_pool if {
	count(need_pool) > 0
} else := stress_pool if {
	count(stress_pool) > 0
} else := object.keys(catalogue)

# The three most recently delivered interventions are left out while others remain.
recent := {id |
	ids := input.history.recent_interventions
	is_array(ids)
	some id in array.slice(ids, 0, 3)
}

fresh := pool - recent

chosen := fresh if {
	count(fresh) > 0
} else := pool

# No candidates when the engine will not treat (safety or unavailable): it never
# uses them then, and unavailable points are common, so this keeps them cheap.
# Rule values are bound once, outside the comprehensions: a rule lookup per
# catalogue entry costs more. Without a favouring state every weight is 1.
candidates := [] if {
	not treatable
} else := [{"id": id, "weight": 1, "reason": reason} | some id in ids] if {
	count(favour) == 0
	ids := chosen
	reason := concat("", ["targets_", need])
} else := [{"id": id, "weight": 1 + count(labels), "reason": concat("+", array.concat([reason], sort(labels)))} |
	some id in ids
	labels := object.get(suits, object.get(cat[id], "technique", ""), no_states) & active
] if {
	ids := chosen
	cat := catalogue
	suits := suited_by
	no_states := set()
	active := favour
	reason := concat("", ["targets_", need])
}

treatable if {
	count(safety) == 0
	count(unavailable) == 0
}

# ---------------------------------------------------------------------------
# Conditions (the engine drops contraindicated candidates)
# ---------------------------------------------------------------------------

conditions contains "late_night" if late_night

conditions contains "low_energy" if recent_ema.energy <= 3

conditions contains "high_distress" if recent_ema.stress >= 8

conditions contains location_conditions[location]

location_conditions := {"public": "in_public", "transit": "in_public", "work": "at_work"}

# ---------------------------------------------------------------------------
# Recorded for explanation
# ---------------------------------------------------------------------------

tailoring := object.union(recent_ema, {"need": need, "favour": sort(favour)})
