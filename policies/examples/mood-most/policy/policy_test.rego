package jitai.policy_test

import data.jitai.policy

# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

mock_catalogue := {
	"small_step": {"title": "One small step", "technique": "behavioural_activation", "targets": ["low_mood"], "duration_s": 180, "contraindications": ["low_energy"]},
	"plan_day": {"title": "Plan one good thing", "technique": "activity_scheduling", "targets": ["low_mood"], "duration_s": 240, "contraindications": []},
	"savour_moment": {"title": "Savour a good moment", "technique": "savouring", "targets": ["low_mood"], "duration_s": 120, "contraindications": []},
	"three_good_things": {"title": "Three good things", "technique": "gratitude", "targets": ["low_mood"], "duration_s": 180, "contraindications": []},
	"values_compass": {"title": "What matters to you", "technique": "values", "targets": ["low_mood"], "duration_s": 300, "contraindications": ["high_distress"]},
	"kind_voice": {"title": "A kinder voice", "technique": "self_compassion", "targets": ["low_mood", "stress"], "duration_s": 180, "contraindications": []},
	"reach_out": {"title": "Reach out", "technique": "social_connection", "targets": ["loneliness"], "duration_s": 120, "contraindications": ["late_night"]},
	"box_breathing": {"title": "Box breathing", "technique": "mindful_breathing", "targets": ["stress", "anxiety"], "duration_s": 120, "contraindications": []},
	"wind_down": {"title": "Wind down for sleep", "technique": "sleep_wind_down", "targets": ["sleep"], "duration_s": 300, "contraindications": []},
}

# The study's own settings (quiet hours, burden caps, factors): exactly what
# live decisions get at input.study, built from study.yaml. Tests read them
# from here and compute their times and counts from them, so they follow
# study.yaml instead of a copy of it (`jitai study check` warns on a copy).
study := data.jitai.study

# "HH:MM" as minutes after midnight, and back (wrapped to the day).
minutes(hhmm) := (to_number(substring(hhmm, 0, 2)) * 60) + to_number(substring(hhmm, 3, 2))

hhmm(m) := sprintf("%02d:%02d", [floor(d / 60), d % 60]) if d := ((m % 1440) + 1440) % 1440

quiet_start := minutes(study.quiet_hours.start)

quiet_end := minutes(study.quiet_hours.end)

cap := study.burden.max_per_day

gap := study.burden.min_minutes_between

# The last prompt was well outside the minimum gap.
base_since := gap + 120

base_input := {
	"now": "2026-11-18T13:00:00Z",
	"now_ns": 1795006800000000000,
	"local": {
		"timezone": "Europe/London",
		"time": "2026-11-18T13:00:00Z",
		"date": "2026-11-18",
		"hour": 13,
		"minute": 0,
		"minute_of_day": 780,
		"weekday": "Wednesday",
	},
	"study": study,
	"participant": {
		"id": "p-19c2",
		"enrolled_at": "2026-11-04T09:00:00Z",
		"day_in_study": 14,
		"assignment": {"framing": "gain", "reminder": "on", "booster": "off", "dose": "low"},
		"strata": {"site": "leeds"},
	},
	"decision_point": {"id": "midday", "time": "2026-11-18T13:00:00Z", "kind": "scheduled"},
	"context": {},
	"state": {
		"ema": {
			"mood": {"value": 5, "time": "2026-11-18T12:20:00Z", "age_minutes": 40},
			"energy": {"value": 6, "time": "2026-11-18T12:20:00Z", "age_minutes": 40},
			"loneliness": {"value": 3, "time": "2026-11-18T12:20:00Z", "age_minutes": 40},
		},
		"preferences": {"snoozed": false},
	},
	"history": {
		"prompts_today": 0,
		"decisions_today": 1,
		"minutes_since_last_prompt": base_since,
		"last_prompt_at": time.format(1795006800000000000 - ((base_since * 60) * 1000000000)),
		"recent_interventions": [],
		"engagement": {"delivered": 10, "opened": 7, "completed": 5, "dismissed": 2, "open_rate": 0.7},
	},
}

decide(inp) := d if {
	d := policy.decision with input as inp with data.jitai.catalogue as mock_catalogue
}

# base_input with patch merged in (recursively).
decide_with(patch) := decide(object.union(base_input, patch))

# base_input at a participant-local clock time.
at(h, m) := object.union(base_input, {"local": {"hour": h, "minute": m, "minute_of_day": (h * 60) + m}})

# base_input at a minute of the participant-local day (wrapped to the day).
at_minute(m) := at(floor(d / 60), d % 60) if d := ((m % 1440) + 1440) % 1440

# inp without the study's quiet hours: for tests of tailoring at times of day,
# which are about candidates whatever quiet hours study.yaml sets.
awake(inp) := json.remove(inp, ["study/quiet_hours"])

ema(name, value, age) := {"state": {"ema": {name: {"value": value, "age_minutes": age}}}}

booster(level, day) := {"participant": {"assignment": {"booster": level}, "day_in_study": day}}

ids(d) := {c.id | some c in d.candidates}

cand(d, id) := c if {
	some c in d.candidates
	c.id == id
}

mood_ids := {id | some id, e in mock_catalogue; "low_mood" in e.targets}

complete(d) if {
	is_array(d.safety_reasons)
	is_array(d.unavailable_reasons)
	is_array(d.candidates)
	is_array(d.conditions)
	is_object(d.tailoring)
}

# ---------------------------------------------------------------------------
# The base case
# ---------------------------------------------------------------------------

test_base_available_with_low_mood_candidates if {
	d := decide(base_input)
	complete(d)
	d.safety_reasons == []
	d.unavailable_reasons == []
	d.conditions == []
	d.tailoring.need == "low_mood"
	d.tailoring.booster_active == false
	ids(d) == mood_ids
	every c in d.candidates {
		c.weight == 1
		c.reason == "targets_low_mood"
	}
}

test_no_probabilities_without_within_factors if {
	d := decide(base_input)
	not "probabilities" in object.keys(d)
}

test_candidates_are_catalogue_ids_with_positive_weight if {
	d := decide_with(object.union_n([ema("mood", 2, 10), ema("loneliness", 9, 10), booster("on", 30)]))
	count(d.candidates) > 0
	every c in d.candidates {
		mock_catalogue[c.id]
		is_number(c.weight)
		c.weight > 0
		is_string(c.reason)
	}
}

# ---------------------------------------------------------------------------
# Safety
# ---------------------------------------------------------------------------

test_phq9_item9_positive_is_safety if {
	d := decide_with({"state": {"assessment": {"phq9": {"total": 16, "severity": "moderately_severe", "item9": 1, "age_days": 2}}}})
	d.safety_reasons == ["phq9_item9"]
}

test_phq9_item9_zero_is_not_safety if {
	d := decide_with({"state": {"assessment": {"phq9": {"total": 24, "severity": "severe", "item9": 0, "age_days": 2}}}})
	d.safety_reasons == []
}

test_phq9_stale_assessment_ignored if {
	d := decide_with({"state": {"assessment": {"phq9": {"item9": 2, "age_days": 15}}}})
	d.safety_reasons == []
}

test_phq9_item9_on_day_14_still_counts if {
	d := decide_with({"state": {"assessment": {"phq9": {"item9": 1, "age_days": 14}}}})
	d.safety_reasons == ["phq9_item9"]
}

test_ema_risk_flag_is_safety if {
	d := decide_with(ema("risk", true, 600))
	d.safety_reasons == ["risk_flag"]
}

test_ema_risk_positive_score_is_safety if {
	decide_with(ema("risk", 2, 30)).safety_reasons == ["risk_flag"]
	decide_with(ema("risk", 0, 30)).safety_reasons == []
	decide_with(ema("risk", false, 30)).safety_reasons == []
}

test_ema_risk_older_than_24h_ignored if {
	d := decide_with(ema("risk", true, 1500))
	d.safety_reasons == []
}

test_context_risk_flag_is_safety if {
	d := decide_with({"context": {"risk": true}})
	d.safety_reasons == ["risk_flag"]
	complete(d)
	d.candidates == []
}

test_safety_is_not_changed_by_assignment if {
	d := decide_with(object.union(booster("on", 40), {"context": {"risk": true}}))
	d.safety_reasons == ["risk_flag"]
}

# ---------------------------------------------------------------------------
# Availability
# ---------------------------------------------------------------------------

test_driving_from_request_context if {
	decide_with({"context": {"driving": true}}).unavailable_reasons == ["driving"]
}

test_driving_from_recent_state if {
	decide_with({"state": {"context": {"driving": {"value": true, "age_minutes": 5}}}}).unavailable_reasons == ["driving"]
	decide_with({"state": {"context": {"driving": {"value": true, "age_minutes": 45}}}}).unavailable_reasons == []
}

test_quiet_hours_unavailable if {
	decide(at_minute(quiet_start)).unavailable_reasons == ["quiet_hours"]
	decide(at_minute(quiet_start + 60)).unavailable_reasons == ["quiet_hours"]
	decide(at_minute(quiet_end - 1)).unavailable_reasons == ["quiet_hours"]
}

test_quiet_hours_edges_available if {
	decide(at_minute(quiet_end)).unavailable_reasons == []
	decide(at_minute(quiet_start - 1)).unavailable_reasons == []
}

# Quiet hours of the participant's own that span midnight.
test_quiet_hours_wrap_past_midnight if {
	own := {"state": {"preferences": {"quiet_hours": {"start": "23:30", "end": "00:30"}}}}
	decide(object.union(at(0, 0), own)).unavailable_reasons == ["quiet_hours"]
	decide(object.union(at(23, 30), own)).unavailable_reasons == ["quiet_hours"]
	decide(object.union(at(0, 30), own)).unavailable_reasons == []
	decide(object.union(at(23, 29), own)).unavailable_reasons == []
}

# The participant's own quiet hours, an hour and a half later than the study's.
test_participant_quiet_hours_override_study if {
	own := {"state": {"preferences": {"quiet_hours": {"start": hhmm(quiet_start + 90), "end": hhmm(quiet_end + 90)}}}}
	decide(object.union(at_minute(quiet_start + 60), own)).unavailable_reasons == []
	decide(object.union(at_minute(quiet_end + 60), own)).unavailable_reasons == ["quiet_hours"]
	decide(object.union(at_minute(quiet_end + 90), own)).unavailable_reasons == []
}

test_snoozed if {
	decide_with({"state": {"preferences": {"snoozed": true}}}).unavailable_reasons == ["snoozed"]
}

test_max_prompts_today if {
	decide_with({"history": {"prompts_today": cap}}).unavailable_reasons == ["max_prompts_today"]
	decide_with({"history": {"prompts_today": cap - 1}}).unavailable_reasons == []
}

test_min_gap if {
	decide_with({"history": {"minutes_since_last_prompt": gap - 1}}).unavailable_reasons == ["min_gap"]
	decide_with({"history": {"minutes_since_last_prompt": gap}}).unavailable_reasons == []
}

test_several_unavailable_reasons_sorted if {
	inp := object.union(at_minute(quiet_end - 60), {
		"context": {"driving": true},
		"state": {"preferences": {"snoozed": true}},
		"history": {"prompts_today": cap, "minutes_since_last_prompt": gap - 1},
	})
	d := decide(inp)
	d.unavailable_reasons == ["driving", "max_prompts_today", "min_gap", "quiet_hours", "snoozed"]
	d.candidates == []
	complete(d)
}

# ---------------------------------------------------------------------------
# Missing inputs
# ---------------------------------------------------------------------------

test_empty_input_complete_document if {
	d := decide({})
	complete(d)
	d.safety_reasons == []
	d.unavailable_reasons == []
	d.conditions == []
	ids(d) == mood_ids
	d.tailoring == {"need": "low_mood", "favour": [], "booster_active": false}
}

test_new_participant_without_state_history_or_assignment if {
	inp := json.remove(base_input, ["state", "history", "participant/assignment", "participant/day_in_study"])
	d := decide(inp)
	complete(d)
	d.unavailable_reasons == []
	ids(d) == mood_ids
}

test_empty_catalogue_still_complete if {
	d := policy.decision with input as base_input with data.jitai.catalogue as {}
	complete(d)
	d.candidates == []
}

# Malformed values are ignored, never a builtin error (the engine evaluates with
# strict builtin errors).
test_malformed_inputs_ignored if {
	d := decide_with({
		"local": {"minute_of_day": "780", "minute": "0"},
		"state": {
			"ema": {"loneliness": {"value": "9", "age_minutes": 5}, "energy": {"value": 2, "age_minutes": "now"}},
			"context": {"driving": {"value": "true", "age_minutes": 1}},
			"preferences": {"quiet_hours": {"start": ["22:00"], "end": 8}},
			"assessment": {"phq9": {"item9": "2", "age_days": 1}},
		},
		"history": {"recent_interventions": {"small_step": true}, "prompts_today": "9"},
		"participant": {"day_in_study": "30", "assignment": {"booster": "on"}},
	})
	complete(d)
	d.safety_reasons == []
	d.unavailable_reasons == []
	d.conditions == []
	d.tailoring.booster_active == false
	ids(d) == mood_ids
}

test_catalogue_without_low_mood_entries_falls_back_to_all if {
	d := policy.decision with input as base_input with data.jitai.catalogue as {"box_breathing": mock_catalogue.box_breathing}
	ids(d) == {"box_breathing"}
}

# ---------------------------------------------------------------------------
# Candidates and tailoring
# ---------------------------------------------------------------------------

test_candidates_selected_by_target if {
	d := decide(base_input)
	not "box_breathing" in ids(d)
	not "wind_down" in ids(d)
	not "reach_out" in ids(d)
}

test_loneliness_adds_social_connection if {
	d := decide_with(ema("loneliness", 8, 30))
	ids(d) == mood_ids | {"reach_out"}
	cand(d, "reach_out").weight == 2
	cand(d, "reach_out").reason == "targets_low_mood+lonely"
	d.tailoring.favour == ["lonely"]
}

test_stale_loneliness_ignored if {
	d := decide_with(ema("loneliness", 9, 400))
	ids(d) == mood_ids
}

test_very_low_mood_favours_activation if {
	d := decide_with(ema("mood", 2, 30))
	cand(d, "small_step").weight == 2
	cand(d, "plan_day").weight == 2
	cand(d, "savour_moment").weight == 1
}

test_low_energy_favours_low_effort_over_activation if {
	d := decide_with(object.union(ema("mood", 2, 30), ema("energy", 2, 30)))
	cand(d, "kind_voice").weight == 2
	cand(d, "savour_moment").weight == 2
	cand(d, "three_good_things").weight == 2
	cand(d, "small_step").weight == 1
	d.conditions == ["low_energy"]
}

test_morning_favours_activity_scheduling if {
	d := decide(awake(at(9, 0)))
	cand(d, "plan_day").weight == 2
	cand(d, "plan_day").reason == "targets_low_mood+morning"
	cand(d, "three_good_things").weight == 1
}

test_evening_favours_savouring_and_gratitude if {
	d := decide(awake(at(19, 0)))
	cand(d, "savour_moment").weight == 2
	cand(d, "three_good_things").weight == 2
	cand(d, "plan_day").weight == 1
}

test_booster_on_from_day_14_favours_booster_techniques if {
	d := decide_with(booster("on", 14))
	d.tailoring.booster_active == true
	cand(d, "values_compass").weight == 2
	cand(d, "values_compass").reason == "targets_low_mood+booster"
	cand(d, "small_step").weight == 2
	cand(d, "savour_moment").weight == 1
}

test_booster_on_before_day_14_has_no_effect if {
	d := decide_with(booster("on", 13))
	d.tailoring.booster_active == false
	every c in d.candidates {
		c.weight == 1
	}
}

test_booster_off_has_no_effect if {
	d := decide_with(booster("off", 40))
	d.tailoring.booster_active == false
	cand(d, "values_compass").weight == 1
}

test_booster_and_state_add_up if {
	d := decide_with(object.union(booster("on", 20), ema("mood", 2, 10)))
	cand(d, "small_step").weight == 3
	cand(d, "small_step").reason == "targets_low_mood+booster+very_low_mood"
}

test_recent_interventions_excluded if {
	d := decide_with({"history": {"recent_interventions": ["small_step", "plan_day", "savour_moment", "three_good_things"]}})
	ids(d) == mood_ids - {"small_step", "plan_day", "savour_moment"}
}

test_recent_interventions_kept_when_nothing_else_remains if {
	cat := {"small_step": mock_catalogue.small_step, "plan_day": mock_catalogue.plan_day}
	d := policy.decision with input as object.union(base_input, {"history": {"recent_interventions": ["plan_day", "small_step"]}})
		with data.jitai.catalogue as cat
	ids(d) == {"small_step", "plan_day"}
}

test_tailoring_records_recent_values if {
	d := decide_with(object.union(ema("mood", 4, 10), ema("stress", 6, 10)))
	d.tailoring.mood == 4
	d.tailoring.stress == 6
	d.tailoring.energy == 6
	d.tailoring.need == "low_mood"
}

# ---------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------

test_late_night_condition if {
	"late_night" in decide(at(21, 0)).conditions
	not "late_night" in decide(at(20, 59)).conditions
	"late_night" in decide(at(5, 59)).conditions
	not "late_night" in decide(at(6, 0)).conditions
}

test_low_energy_condition if {
	decide_with(ema("energy", 3, 10)).conditions == ["low_energy"]
	decide_with(ema("energy", 4, 10)).conditions == []
}

test_high_distress_condition if {
	decide_with(ema("stress", 8, 10)).conditions == ["high_distress"]
	decide_with(ema("mood", 1, 10)).conditions == ["high_distress"]
	decide_with(ema("mood", 2, 10)).conditions == []
}

test_location_conditions if {
	decide_with({"context": {"location": "public"}}).conditions == ["in_public"]
	decide_with({"context": {"location": "transit"}}).conditions == ["in_public"]
	decide_with({"context": {"location": "work"}}).conditions == ["at_work"]
	decide_with({"context": {"location": "home"}}).conditions == []
}
