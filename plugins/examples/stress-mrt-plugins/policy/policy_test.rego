package jitai.policy_test

import data.jitai.policy

mock_catalogue := {
	"box_breathing": {"technique": "mindful_breathing", "targets": ["stress", "anxiety"], "contraindications": []},
	"muscle_relaxation": {"technique": "relaxation", "targets": ["stress", "sleep"], "contraindications": []},
	"thought_record": {"technique": "cognitive_restructuring", "targets": ["stress", "low_mood"], "contraindications": ["high_distress"]},
	"wind_down": {"technique": "sleep_wind_down", "targets": ["sleep"], "contraindications": []},
	"sleep_facts": {"technique": "psychoeducation", "targets": ["sleep"], "contraindications": []},
	"small_step": {"technique": "behavioural_activation", "targets": ["low_mood"], "contraindications": []},
}

base_input := {
	"local": {"hour": 14, "minute": 30, "minute_of_day": 870},
	"study": {"quiet_hours": {"start": "22:00", "end": "08:00"}},
	"context": {},
	"state": {
		"ema": {"stress": {"value": 5, "age_minutes": 40}, "mood": {"value": 6, "age_minutes": 40}},
		"preferences": {"snoozed": false},
	},
}

decide(inp) := d if {
	d := policy.decision with input as inp with data.jitai.catalogue as mock_catalogue
}

decide_with(patch) := decide(object.union(base_input, patch))

evening := {"local": {"hour": 20, "minute": 30, "minute_of_day": 1230}}

sleep(debt) := {"derived": {"sleep": {"known": true, "nights": 5, "debt_hours": debt, "last_night_hours": 5.5, "short_sleep": debt >= 5}}}

ids(d) := {c.id | some c in d.candidates}

cand(d, id) := c if {
	some c in d.candidates
	c.id == id
}

# --- the enricher's sleep debt tailors the decision -------------------------

test_short_of_sleep_in_the_evening_needs_sleep if {
	d := decide_with(object.union(evening, sleep(6.5)))
	d.tailoring.need == "sleep"
	d.tailoring.sleep_debt_hours == 6.5
	ids(d) == {"muscle_relaxation", "wind_down", "sleep_facts"}
}

test_sleep_debt_favours_wind_down if {
	d := decide_with(object.union(evening, sleep(6.5)))
	cand(d, "wind_down").weight == 2
	cand(d, "wind_down").reason == "targets_sleep+short_of_sleep"
	cand(d, "sleep_facts").weight == 1
}

test_short_of_sleep_in_the_afternoon_keeps_stress_need if {
	d := decide_with(sleep(6.5))
	d.tailoring.need == "stress"
	"short_of_sleep" in d.tailoring.favour
	cand(d, "muscle_relaxation").weight == 2
}

test_small_debt_changes_nothing if {
	d := decide_with(object.union(evening, sleep(2)))
	d.tailoring.need == "stress"
	d.tailoring.favour == []
	d.tailoring.sleep_debt_hours == 2
}

test_debt_threshold_is_inclusive if {
	decide_with(object.union(evening, sleep(5))).tailoring.need == "sleep"
	decide_with(object.union(evening, sleep(4.9))).tailoring.need == "stress"
}

test_high_stress_comes_before_sleep if {
	d := decide_with(object.union_n([evening, sleep(8), {"state": {"ema": {"stress": {"value": 8, "age_minutes": 10}}}}]))
	d.tailoring.need == "stress"
	d.tailoring.favour == ["high_stress", "short_of_sleep"]
}

# --- the enricher failed or knows nothing: input.derived.sleep is absent ----

test_enricher_absent_falls_back_to_self_report if {
	d := decide(object.union(base_input, evening))
	d.tailoring.need == "stress"
	not d.tailoring.sleep_debt_hours
	d.tailoring.favour == []
}

test_unknown_sleep_is_ignored if {
	d := decide_with(object.union(evening, {"derived": {"sleep": {"known": false, "nights": 0, "debt_hours": 0, "short_sleep": false}}}))
	d.tailoring.need == "stress"
	not d.tailoring.sleep_debt_hours
}

test_malformed_debt_is_ignored if {
	d := decide_with(object.union(evening, {"derived": {"sleep": {"known": true, "debt_hours": "lots"}}}))
	d.tailoring.need == "stress"
	not d.tailoring.sleep_debt_hours
}

test_other_derived_values_are_ignored if {
	d := decide_with(object.union(evening, {"derived": {"other": {"debt_hours": 9}}}))
	d.tailoring.need == "stress"
}

# --- safety and availability do not depend on plugins ----------------------

test_risk_is_safety_whatever_the_sleep if {
	d := decide_with(object.union_n([evening, sleep(9), {"context": {"risk": true}}]))
	d.safety_reasons == ["risk_flag"]
	d.candidates == []
}

test_recent_ema_risk_is_safety if {
	decide_with({"state": {"ema": {"risk": {"value": true, "age_minutes": 60}}}}).safety_reasons == ["risk_flag"]
}

test_recent_ema_risk_answered_1_is_safety if {
	decide_with({"state": {"ema": {"risk": {"value": 1, "age_minutes": 60}}}}).safety_reasons == ["risk_flag"]
	decide_with({"state": {"ema": {"risk": {"value": 0, "age_minutes": 60}}}}).safety_reasons == []
}

test_old_ema_risk_is_not_safety if {
	decide_with({"state": {"ema": {"risk": {"value": true, "age_minutes": 1441}}}}).safety_reasons == []
}

test_driving_is_unavailable if {
	d := decide_with({"context": {"driving": true}})
	d.unavailable_reasons == ["driving"]
	d.candidates == []
}

test_snoozed_is_unavailable if {
	decide_with({"state": {"preferences": {"snoozed": true}}}).unavailable_reasons == ["snoozed"]
}

test_quiet_hours_wrap_midnight if {
	decide_with({"local": {"minute_of_day": 1380}}).unavailable_reasons == ["quiet_hours"]
	decide_with({"local": {"minute_of_day": 60}}).unavailable_reasons == ["quiet_hours"]
	decide_with({"local": {"minute_of_day": 480}}).unavailable_reasons == []
	decide_with({"local": {"minute_of_day": 1319}}).unavailable_reasons == []
}

# --- tailoring from self-report ---------------------------------------------

test_base_case_targets_stress if {
	d := decide(base_input)
	d.safety_reasons == []
	d.unavailable_reasons == []
	d.tailoring.need == "stress"
	ids(d) == {"box_breathing", "muscle_relaxation", "thought_record"}
}

test_low_mood if {
	d := decide_with({"state": {"ema": {"mood": {"value": 2, "age_minutes": 30}}}})
	d.tailoring.need == "low_mood"
	ids(d) == {"thought_record", "small_step"}
}

test_stale_ema_is_ignored if {
	d := decide_with({"state": {"ema": {"stress": {"value": 9, "age_minutes": 361}}}})
	d.tailoring.need == "stress"
	d.tailoring.favour == []
	not d.tailoring.stress
}

test_high_distress_condition if {
	d := decide_with({"state": {"ema": {"stress": {"value": 8, "age_minutes": 5}}}})
	d.conditions == ["high_distress"]
	cand(d, "box_breathing").weight == 2
}

test_no_probabilities_from_the_policy if {
	not "probabilities" in object.keys(decide(base_input))
}

test_empty_input_is_total if {
	d := decide({})
	is_array(d.candidates)
	d.safety_reasons == []
	d.tailoring.need == "stress"
}
