# Decision rules of the mood-most study (the contract is docs/policy.md).
#
# A between-person 2^4 factorial: framing, reminder, booster and dose are assigned
# at enrolment and change the rendered content (content: true). The policy also
# reads the booster level: from day 14, participants with booster "on" have the
# booster techniques (values, behavioural activation) favoured.
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

booster_from_day := 14 # the booster starts on day 14 (the start of week 3)

# ---------------------------------------------------------------------------
# Inputs, made total
# ---------------------------------------------------------------------------

default catalogue := {}

catalogue := data.jitai.catalogue if is_object(data.jitai.catalogue)

# Recent numeric self-reports of the tailoring variables (0-10 scales): mood,
# energy and sleep_quality high = good; stress and loneliness high = bad.
recent_ema := {name: v |
	some name, e in input.state.ema
	name in {"mood", "energy", "loneliness", "stress", "sleep_quality"}
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

morning if {
	now_minute >= 360 # 06:00 to 12:00
	now_minute < 720
}

evening if now_minute >= 1080 # from 18:00

booster_active if {
	input.participant.assignment.booster == "on"
	is_number(input.participant.day_in_study)
	input.participant.day_in_study >= booster_from_day
}

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
# Tailoring
# ---------------------------------------------------------------------------

# The study targets low mood; loneliness widens the pool to social connection.
need := "low_mood"

lonely if recent_ema.loneliness >= 7

low_energy if recent_ema.energy <= 3

# States in force that favour some techniques (each adds 1 to the weight of a
# candidate whose technique it suits).
favour contains "low_energy" if low_energy

favour contains "very_low_mood" if {
	recent_ema.mood <= 3
	not low_energy
}

favour contains "lonely" if lonely

favour contains "morning" if morning

favour contains "evening" if evening

favour contains "booster" if booster_active

# technique -> the states that favour it.
suited_by := {
	# activation while there is energy for it; planning in the morning; the booster
	"behavioural_activation": {"very_low_mood", "booster"},
	"activity_scheduling": {"very_low_mood", "morning"},
	# low-effort techniques when energy is low; reflection in the evening
	"self_compassion": {"low_energy"},
	"savouring": {"low_energy", "evening"},
	"gratitude": {"low_energy", "evening"},
	"social_connection": {"lonely"},
	"values": {"booster"},
}

# ---------------------------------------------------------------------------
# Candidates: catalogue entries targeting low mood (plus social connection when
# lonely), selected by target and technique
# ---------------------------------------------------------------------------

mood_pool := {id | some id, e in cat; e.targets[_] == "low_mood"} if cat := catalogue

default social_pool := set()

social_pool := {id | some id, e in cat; e.technique == "social_connection"} if {
	lonely
	cat := catalogue
}

# Entries for the need; else the whole catalogue.
pool := p if {
	p := mood_pool | social_pool
	count(p) > 0
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
} else := [{"id": id, "weight": 1, "reason": "targets_low_mood"} | some id in ids] if {
	count(favour) == 0
	ids := chosen
} else := [{"id": id, "weight": 1 + count(labels), "reason": concat("+", array.concat(["targets_low_mood"], sort(labels)))} |
	some id in ids
	labels := object.get(suits, object.get(cat[id], "technique", ""), no_states) & active
] if {
	ids := chosen
	cat := catalogue
	suits := suited_by
	no_states := set()
	active := favour
}

treatable if {
	count(safety) == 0
	count(unavailable) == 0
}

# ---------------------------------------------------------------------------
# Conditions (the engine drops contraindicated candidates)
# ---------------------------------------------------------------------------

conditions contains "late_night" if late_night

conditions contains "low_energy" if low_energy

conditions contains "high_distress" if recent_ema.stress >= 8

conditions contains "high_distress" if recent_ema.mood <= 1

conditions contains location_conditions[location]

location_conditions := {"public": "in_public", "transit": "in_public", "work": "at_work"}

# ---------------------------------------------------------------------------
# Recorded for explanation
# ---------------------------------------------------------------------------

tailoring := object.union(recent_ema, {
	"need": need,
	"favour": sort(favour),
	"booster_active": booster_active_value,
})

default booster_active_value := false

booster_active_value if booster_active
