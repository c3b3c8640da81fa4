package jitai.policy_test

import data.jitai.policy

# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

mock_catalogue := {
	"box_breathing": {"title": "Box breathing", "technique": "mindful_breathing", "targets": ["stress", "anxiety"], "duration_s": 120, "contraindications": []},
	"grounding_54321": {"title": "5-4-3-2-1 grounding", "technique": "grounding", "targets": ["stress", "anxiety"], "duration_s": 180, "contraindications": []},
	"muscle_relaxation": {"title": "Progressive muscle relaxation", "technique": "relaxation", "targets": ["stress", "sleep"], "duration_s": 420, "contraindications": ["in_public"]},
	"thought_record": {"title": "Thought record", "technique": "cognitive_restructuring", "targets": ["stress", "low_mood", "anxiety"], "duration_s": 300, "contraindications": ["high_distress", "late_night"]},
	"problem_steps": {"title": "Five steps to a problem", "technique": "problem_solving", "targets": ["stress"], "duration_s": 300, "contraindications": ["high_distress"]},
	"wind_down": {"title": "Wind down for sleep", "technique": "sleep_wind_down", "targets": ["sleep", "stress"], "duration_s": 300, "contraindications": ["at_work"]},
	"small_step": {"title": "One small step", "technique": "behavioural_activation", "targets": ["low_mood"], "duration_s": 180, "contraindications": ["low_energy"]},
	"kind_voice": {"title": "A kinder voice", "technique": "self_compassion", "targets": ["low_mood", "stress"], "duration_s": 180, "contraindications": []},
	"savour_moment": {"title": "Savour a good moment", "technique": "savouring", "targets": ["low_mood"], "duration_s": 120, "contraindications": []},
	"reach_out": {"title": "Reach out", "technique": "social_connection", "targets": ["loneliness", "low_mood"], "duration_s": 120, "contraindications": ["late_night"]},
	"worry_time": {"title": "Worry time", "technique": "worry_postponement", "targets": ["anxiety"], "duration_s": 180, "contraindications": []},
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
base_since := gap + 90

base_input := {
	"now": "2026-11-18T14:30:00Z",
	"now_ns": 1795012200000000000,
	"local": {
		"timezone": "Europe/London",
		"time": "2026-11-18T14:30:00Z",
		"date": "2026-11-18",
		"hour": 14,
		"minute": 30,
		"minute_of_day": 870,
		"weekday": "Wednesday",
	},
	"study": study,
	"participant": {
		"id": "p-7f3a",
		"enrolled_at": "2026-11-13T10:00:00Z",
		"day_in_study": 5,
		"assignment": {},
		"strata": {},
	},
	"decision_point": {"id": "afternoon", "time": "2026-11-18T14:30:00Z", "kind": "scheduled"},
	"context": {},
	"state": {
		"ema": {
			"stress": {"value": 5, "time": "2026-11-18T13:50:00Z", "age_minutes": 40},
			"mood": {"value": 6, "time": "2026-11-18T13:50:00Z", "age_minutes": 40},
			"energy": {"value": 6, "time": "2026-11-18T13:50:00Z", "age_minutes": 40},
		},
		"preferences": {"snoozed": false},
	},
	"history": {
		"prompts_today": 0,
		"decisions_today": 2,
		"minutes_since_last_prompt": base_since,
		"last_prompt_at": time.format(1795012200000000000 - ((base_since * 60) * 1000000000)),
		"recent_interventions": [],
		"engagement": {"delivered": 5, "opened": 3, "completed": 2, "dismissed": 1, "open_rate": 0.6},
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

# inp without the study's quiet hours: for tests of tailoring at evening and
# night times, which are about candidates whatever quiet hours study.yaml sets.
awake(inp) := json.remove(inp, ["study/quiet_hours"])

ema(name, value, age) := {"state": {"ema": {name: {"value": value, "age_minutes": age}}}}

ids(d) := {c.id | some c in d.candidates}

cand(d, id) := c if {
	some c in d.candidates
	c.id == id
}

targeting(t) := {id | some id, e in mock_catalogue; t in e.targets}

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

test_base_available_with_stress_candidates if {
	d := decide(base_input)
	complete(d)
	d.safety_reasons == []
	d.unavailable_reasons == []
	d.conditions == []
	d.tailoring.need == "stress"
	ids(d) == targeting("stress")
}

test_no_probabilities_for_fixed_source if {
	d := decide(base_input)
	not "probabilities" in object.keys(d)
}

test_candidates_are_catalogue_ids_with_positive_weight if {
	d := decide_with(object.union(ema("stress", 9, 10), ema("energy", 1, 10)))
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
	d := decide_with({"state": {"assessment": {"phq9": {"total": 14, "severity": "moderate", "item9": 1, "age_days": 3}}}})
	d.safety_reasons == ["phq9_item9"]
}

test_phq9_item9_zero_is_not_safety if {
	d := decide_with({"state": {"assessment": {"phq9": {"total": 22, "severity": "severe", "item9": 0, "age_days": 1}}}})
	d.safety_reasons == []
}

test_phq9_item9_on_day_14_still_counts if {
	d := decide_with({"state": {"assessment": {"phq9": {"item9": 2, "age_days": 14}}}})
	d.safety_reasons == ["phq9_item9"]
}

test_phq9_stale_assessment_ignored if {
	d := decide_with({"state": {"assessment": {"phq9": {"item9": 3, "age_days": 15}}}})
	d.safety_reasons == []
}

test_phq9_without_age_ignored if {
	d := decide_with({"state": {"assessment": {"phq9": {"item9": 3}}}})
	d.safety_reasons == []
}

test_ema_risk_flag_is_safety if {
	d := decide_with(ema("risk", true, 120))
	d.safety_reasons == ["risk_flag"]
}

test_ema_risk_positive_score_is_safety if {
	decide_with(ema("risk", 1, 30)).safety_reasons == ["risk_flag"]
	decide_with(ema("risk", 0, 30)).safety_reasons == []
}

test_ema_risk_false_is_not_safety if {
	d := decide_with(ema("risk", false, 5))
	d.safety_reasons == []
}

test_ema_risk_older_than_24h_ignored if {
	d := decide_with(ema("risk", true, 1441))
	d.safety_reasons == []
}

test_context_risk_flag_is_safety if {
	d := decide_with({"context": {"risk": true}})
	d.safety_reasons == ["risk_flag"]
}

test_both_safety_reasons_sorted_once if {
	d := decide_with(object.union_n([
		{"context": {"risk": true}},
		ema("risk", true, 10),
		{"state": {"assessment": {"phq9": {"item9": 1, "age_days": 0}}}},
	]))
	d.safety_reasons == ["phq9_item9", "risk_flag"]
}

test_safety_document_still_complete if {
	d := decide_with({"context": {"risk": true}})
	complete(d)
	d.candidates == []
}

# ---------------------------------------------------------------------------
# Availability
# ---------------------------------------------------------------------------

test_driving_from_request_context if {
	d := decide_with({"context": {"driving": true}})
	d.unavailable_reasons == ["driving"]
}

test_driving_from_recent_state if {
	d := decide_with({"state": {"context": {"driving": {"value": true, "age_minutes": 12}}}})
	d.unavailable_reasons == ["driving"]
}

test_driving_state_older_than_30m_ignored if {
	d := decide_with({"state": {"context": {"driving": {"value": true, "age_minutes": 31}}}})
	d.unavailable_reasons == []
}

test_not_driving_is_available if {
	d := decide_with({"context": {"driving": false}})
	d.unavailable_reasons == []
}

test_quiet_hours_start_inclusive if {
	d := decide(at_minute(quiet_start))
	d.unavailable_reasons == ["quiet_hours"]
}

test_quiet_hours_an_hour_in_unavailable if {
	d := decide(at_minute(quiet_start + 60))
	d.unavailable_reasons == ["quiet_hours"]
}

test_quiet_hours_last_minute_unavailable if {
	d := decide(at_minute(quiet_end - 1))
	d.unavailable_reasons == ["quiet_hours"]
}

test_quiet_hours_end_exclusive if {
	d := decide(at_minute(quiet_end))
	d.unavailable_reasons == []
}

test_quiet_hours_minute_before_start_available if {
	d := decide(at_minute(quiet_start - 1))
	d.unavailable_reasons == []
}

test_quiet_hours_from_hour_and_minute_only if {
	inp := json.remove(at_minute(quiet_start + 90), ["local/minute_of_day"])
	d := decide(inp)
	d.unavailable_reasons == ["quiet_hours"]
}

# The participant's own quiet hours, an hour earlier than the study's.
test_participant_quiet_hours_override_study if {
	own := {"state": {"preferences": {"quiet_hours": {"start": hhmm(quiet_start - 60), "end": hhmm(quiet_end - 60)}}}}
	decide(object.union(at_minute(quiet_start - 30), own)).unavailable_reasons == ["quiet_hours"]
	decide(object.union(at_minute(quiet_end - 30), own)).unavailable_reasons == []
	decide(object.union(at_minute(quiet_end - 61), own)).unavailable_reasons == ["quiet_hours"]
}

# Two daytime hours of the participant's own, starting four hours after the
# study's quiet hours end.
test_participant_daytime_quiet_hours if {
	from := quiet_end + 240
	own := {"state": {"preferences": {"quiet_hours": {"start": hhmm(from), "end": hhmm(from + 120)}}}}
	decide(object.union(at_minute(from + 90), own)).unavailable_reasons == ["quiet_hours"]
	decide(object.union(at_minute(from + 120), own)).unavailable_reasons == []
	decide(object.union(at_minute(quiet_start), own)).unavailable_reasons == []
}

test_malformed_participant_quiet_hours_fall_back_to_study if {
	own := {"state": {"preferences": {"quiet_hours": {"start": "9pm", "end": hhmm(quiet_end - 60)}}}}
	decide(object.union(at_minute(quiet_start), own)).unavailable_reasons == ["quiet_hours"]
}

test_no_quiet_hours_configured if {
	inp := awake(at_minute(quiet_start))
	decide(inp).unavailable_reasons == []
}

test_snoozed if {
	d := decide_with({"state": {"preferences": {"snoozed": true, "snoozed_until": "2026-11-18T16:00:00Z"}}})
	d.unavailable_reasons == ["snoozed"]
}

test_max_prompts_today_reached if {
	d := decide_with({"history": {"prompts_today": cap}})
	d.unavailable_reasons == ["max_prompts_today"]
}

test_max_prompts_today_below_cap if {
	d := decide_with({"history": {"prompts_today": cap - 1}})
	d.unavailable_reasons == []
}

test_max_per_day_zero_means_no_cap if {
	d := decide_with({"study": {"burden": {"max_per_day": 0}}, "history": {"prompts_today": cap * 3}})
	d.unavailable_reasons == []
}

test_min_gap if {
	d := decide_with({"history": {"minutes_since_last_prompt": gap - 1}})
	d.unavailable_reasons == ["min_gap"]
}

test_min_gap_boundary_available if {
	d := decide_with({"history": {"minutes_since_last_prompt": gap}})
	d.unavailable_reasons == []
}

test_min_gap_no_previous_prompt if {
	inp := json.remove(base_input, ["history/minutes_since_last_prompt", "history/last_prompt_at"])
	decide(inp).unavailable_reasons == []
}

test_several_unavailable_reasons_sorted if {
	inp := object.union(at_minute(quiet_start + 60), {
		"context": {"driving": true},
		"state": {"preferences": {"snoozed": true}},
		"history": {"prompts_today": cap, "minutes_since_last_prompt": gap - 1},
	})
	d := decide(inp)
	d.unavailable_reasons == ["driving", "max_prompts_today", "min_gap", "quiet_hours", "snoozed"]
}

test_unavailable_has_no_candidates_but_tailoring if {
	d := decide(object.union(at_minute(quiet_start), ema("stress", 9, 10)))
	d.unavailable_reasons == ["quiet_hours"]
	complete(d)
	d.candidates == []
	d.tailoring.need == "stress"
	"high_distress" in d.conditions
}

# ---------------------------------------------------------------------------
# Missing inputs
# ---------------------------------------------------------------------------

test_empty_input_complete_document if {
	d := decide({})
	complete(d)
	d.safety_reasons == []
	d.unavailable_reasons == []
	d.tailoring.need == "stress"
	ids(d) == targeting("stress")
}

test_new_participant_without_state_or_history if {
	inp := json.remove(base_input, ["state", "history"])
	d := decide(inp)
	complete(d)
	d.unavailable_reasons == []
	ids(d) == targeting("stress")
}

test_empty_state_objects if {
	inp := object.union(json.remove(base_input, ["state", "history"]), {"state": {}, "history": {}, "context": {}})
	d := decide(inp)
	complete(d)
	count(d.candidates) > 0
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
		"local": {"minute_of_day": "870", "minute": "30"},
		"state": {
			"ema": {"stress": {"value": 9, "age_minutes": "recent"}, "mood": "low"},
			"context": {"driving": "yes", "location": 3},
			"preferences": {"quiet_hours": {"start": 2200, "end": null}, "snoozed": "true"},
		},
		"history": {"recent_interventions": "box_breathing"},
		"participant": {"day_in_study": "20"},
	})
	complete(d)
	d.unavailable_reasons == []
	d.conditions == []
	ids(d) == targeting("stress")
}

test_non_numeric_values_ignored if {
	d := decide_with({
		"state": {
			"ema": {"stress": {"value": "high", "age_minutes": 1}},
			"assessment": {"phq9": {"item9": "1", "age_days": 1}},
		},
		"history": {"prompts_today": "4", "minutes_since_last_prompt": "5"},
	})
	complete(d)
	d.safety_reasons == []
	d.unavailable_reasons == []
	d.conditions == []
}

# ---------------------------------------------------------------------------
# Need and candidates
# ---------------------------------------------------------------------------

test_high_stress_favours_grounding_breathing_relaxation if {
	d := decide_with(ema("stress", 7, 20))
	d.tailoring.need == "stress"
	ids(d) == targeting("stress")
	cand(d, "grounding_54321").weight == 2
	cand(d, "box_breathing").weight == 2
	cand(d, "muscle_relaxation").weight == 2
	cand(d, "muscle_relaxation").reason == "targets_stress+high_stress"
	cand(d, "problem_steps").weight == 1
	cand(d, "problem_steps").reason == "targets_stress"
}

test_low_mood_need_selects_low_mood_targets if {
	d := decide_with(ema("mood", 2, 30))
	d.tailoring.need == "low_mood"
	ids(d) == targeting("low_mood")
	cand(d, "small_step").weight == 2
	cand(d, "savour_moment").weight == 1
}

test_low_energy_favours_gentle_techniques_over_activation if {
	d := decide_with(object.union(ema("mood", 2, 30), ema("energy", 2, 30)))
	d.tailoring.need == "low_mood"
	cand(d, "kind_voice").weight == 2
	cand(d, "kind_voice").reason == "targets_low_mood+low_energy"
	cand(d, "small_step").weight == 1
	"low_energy" in d.conditions
}

test_high_stress_outranks_low_mood if {
	d := decide_with(object.union(ema("stress", 9, 30), ema("mood", 1, 30)))
	d.tailoring.need == "stress"
}

test_loneliness_need if {
	d := decide_with(ema("loneliness", 8, 30))
	d.tailoring.need == "loneliness"
	ids(d) == {"reach_out"}
}

test_anxiety_need if {
	d := decide_with(ema("anxiety", 8, 30))
	d.tailoring.need == "anxiety"
	ids(d) == targeting("anxiety")
}

test_poor_sleep_in_evening_is_sleep_need if {
	d := decide(awake(object.union(at(20, 30), ema("sleep_quality", 2, 60))))
	d.tailoring.need == "sleep"
	ids(d) == {"muscle_relaxation", "wind_down"}
	cand(d, "wind_down").weight == 2
	cand(d, "wind_down").reason == "targets_sleep+evening"
}

test_poor_sleep_at_midday_stays_stress if {
	d := decide_with(ema("sleep_quality", 2, 60))
	d.tailoring.need == "stress"
}

test_evening_favours_sleep_wind_down if {
	d := decide(awake(at(20, 30)))
	cand(d, "wind_down").weight == 2
	cand(d, "box_breathing").weight == 1
}

test_stale_ema_ignored if {
	d := decide_with(object.union(ema("stress", 9, 361), ema("energy", 1, 400)))
	d.tailoring.need == "stress"
	not d.tailoring.stress
	d.conditions == []
	every c in d.candidates {
		c.weight == 1
	}
}

test_need_without_catalogue_entries_falls_back_to_stress if {
	inp := object.union(base_input, ema("loneliness", 9, 10))
	d := policy.decision with input as inp with data.jitai.catalogue as json.remove(mock_catalogue, ["reach_out"])
	d.tailoring.need == "loneliness"
	ids(d) == targeting("stress")
}

test_recent_interventions_excluded if {
	d := decide_with({"history": {"recent_interventions": ["box_breathing", "grounding_54321", "thought_record", "problem_steps"]}})
	ids(d) == targeting("stress") - {"box_breathing", "grounding_54321", "thought_record"}
	"problem_steps" in ids(d)
}

test_recent_interventions_kept_when_nothing_else_remains if {
	d := decide_with({
		"state": {"ema": {"loneliness": {"value": 9, "age_minutes": 5}}},
		"history": {"recent_interventions": ["reach_out"]},
	})
	ids(d) == {"reach_out"}
}

test_tailoring_records_recent_values if {
	d := decide_with(object.union(ema("stress", 8, 30), ema("energy", 2, 30)))
	d.tailoring.stress == 8
	d.tailoring.energy == 2
	d.tailoring.mood == 6
	d.tailoring.favour == ["high_stress", "low_energy"]
	cand(d, "grounding_54321").weight == 3
}

# ---------------------------------------------------------------------------
# Conditions
# ---------------------------------------------------------------------------

test_late_night_from_2100 if {
	"late_night" in decide(at(21, 0)).conditions
	not "late_night" in decide(at(20, 59)).conditions
}

test_late_night_until_0600 if {
	"late_night" in decide(at(5, 59)).conditions
	not "late_night" in decide(at(6, 0)).conditions
}

test_low_energy_condition if {
	decide_with(ema("energy", 3, 30)).conditions == ["low_energy"]
	decide_with(ema("energy", 4, 30)).conditions == []
}

test_high_distress_condition if {
	decide_with(ema("stress", 8, 30)).conditions == ["high_distress"]
	decide_with(ema("stress", 7, 30)).conditions == []
}

test_in_public_condition if {
	decide_with({"context": {"location": "public"}}).conditions == ["in_public"]
	decide_with({"context": {"location": "transit"}}).conditions == ["in_public"]
	decide_with({"context": {"location": "home"}}).conditions == []
}

test_at_work_condition if {
	decide_with({"context": {"location": "work"}}).conditions == ["at_work"]
}

test_location_from_recent_state_context if {
	decide_with({"state": {"context": {"location": {"value": "transit", "age_minutes": 10}}}}).conditions == ["in_public"]
	decide_with({"state": {"context": {"location": {"value": "transit", "age_minutes": 90}}}}).conditions == []
}

test_request_location_beats_state_location if {
	d := decide_with({
		"context": {"location": "home"},
		"state": {"context": {"location": {"value": "work", "age_minutes": 5}}},
	})
	d.conditions == []
}

test_several_conditions_sorted if {
	inp := object.union_n([at(21, 15), ema("stress", 9, 10), ema("energy", 2, 10), {"context": {"location": "work"}}])
	decide(inp).conditions == ["at_work", "high_distress", "late_night", "low_energy"]
}
