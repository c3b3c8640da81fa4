# Decision rules of the stress-mrt-plugins study (the contract is
# docs/policy.md; plugins are docs/plugins.md).
#
# Like stress-mrt, but shorter, and tailored with a value no self-report
# gives: the sleep debt that the `sleep` enricher plugin derives, which the
# policy reads as input.derived.sleep. When the plugin failed or was late,
# input.derived.sleep is absent (the study declares fallback: omit) and the
# rules below fall back to the self-reported state: every rule that reads it
# is written so that its absence changes nothing else.
package jitai.policy

decision := {
	"safety_reasons": sort(safety),
	"unavailable_reasons": sort(unavailable),
	"candidates": candidates,
	"conditions": sort(conditions),
	"tailoring": tailoring,
}

ema_max_age_minutes := 360

default catalogue := {}

catalogue := data.jitai.catalogue if is_object(data.jitai.catalogue)

recent_ema := {name: v |
	some name, e in input.state.ema
	name in {"stress", "mood", "energy"}
	e.age_minutes <= ema_max_age_minutes
	v := e.value
	is_number(v)
}

now_minute := input.local.minute_of_day if is_number(input.local.minute_of_day)

evening if now_minute >= 1200

evening if now_minute < 360

# ---------------------------------------------------------------------------
# Derived by the sleep enricher (absent when it failed: fallback omit)
# ---------------------------------------------------------------------------

sleep_debt := d if {
	input.derived.sleep.known == true
	d := input.derived.sleep.debt_hours
	is_number(d)
}

short_of_sleep if sleep_debt >= 5

# ---------------------------------------------------------------------------
# Safety and availability
# ---------------------------------------------------------------------------

safety contains "risk_flag" if input.context.risk == true

# The risk item answered yes in the last 24 h: 1 (the data dictionary's
# type) or true (reports made before the dictionary).
safety contains "risk_flag" if {
	r := input.state.ema.risk
	r.value in {1, true}
	r.age_minutes <= 1440
}

unavailable contains "driving" if input.context.driving == true

unavailable contains "snoozed" if input.state.preferences.snoozed == true

unavailable contains "quiet_hours" if {
	q := input.study.quiet_hours
	start := clock(q.start)
	end := clock(q.end)
	((now_minute - start) + 1440) % 1440 < ((end - start) + 1440) % 1440
}

clock(s) := (to_number(substring(s, 0, 2)) * 60) + to_number(substring(s, 3, 2))

# ---------------------------------------------------------------------------
# Tailoring
# ---------------------------------------------------------------------------

need := "stress" if {
	recent_ema.stress >= 7
} else := "sleep" if {
	short_of_sleep
	evening
} else := "low_mood" if {
	recent_ema.mood <= 3
} else := "stress"

favour contains "high_stress" if recent_ema.stress >= 7

favour contains "short_of_sleep" if short_of_sleep

suited_by := {
	"relaxation": {"high_stress", "short_of_sleep"},
	"mindful_breathing": {"high_stress"},
	"grounding": {"high_stress"},
	"sleep_wind_down": {"short_of_sleep"},
}

pool := ids if {
	ids := {id | some id, e in catalogue; need in e.targets}
	count(ids) > 0
} else := object.keys(catalogue)

candidates := [] if {
	count(safety) + count(unavailable) > 0
} else := [{"id": id, "weight": 1 + count(labels), "reason": concat("+", array.concat([concat("", ["targets_", need])], sort(labels)))} |
	some id in pool
	labels := object.get(suited_by, object.get(catalogue[id], "technique", ""), set()) & favour
]

conditions contains "high_distress" if recent_ema.stress >= 8

default sleep_tailoring := {}

sleep_tailoring := {"sleep_debt_hours": sleep_debt} if is_number(sleep_debt)

tailoring := object.union(object.union(recent_ema, {"need": need, "favour": sort(favour)}), sleep_tailoring)
