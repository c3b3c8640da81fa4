package decision

import "github.com/jitai/jitai/policies"

// InputSchema is the documented policy input (docs/policy.md, "Input
// document") as data, for `jitai study check`: every input path a policy
// reads must resolve in it. Tests hold it to what buildInput produces and
// to the table in docs/policy.md, so the three cannot drift apart.
func InputSchema() *policies.InputField {
	str := func() *policies.InputField { return &policies.InputField{Type: policies.FieldString} }
	num := func() *policies.InputField { return &policies.InputField{Type: policies.FieldNumber} }
	boolean := func() *policies.InputField { return &policies.InputField{Type: policies.FieldBool} }
	anyv := func() *policies.InputField { return &policies.InputField{Type: policies.FieldAny} }
	arr := func() *policies.InputField { return &policies.InputField{Type: policies.FieldArray} }
	obj := func(fields map[string]*policies.InputField) *policies.InputField {
		return &policies.InputField{Type: policies.FieldObject, Fields: fields}
	}
	each := func(e *policies.InputField) *policies.InputField {
		return &policies.InputField{Type: policies.FieldObject, Each: e}
	}
	observation := obj(map[string]*policies.InputField{"value": anyv(), "time": str(), "age_minutes": num()})
	assessment := func(item9 bool) *policies.InputField {
		f := map[string]*policies.InputField{"total": num(), "severity": str(), "items": arr(), "time": str(), "age_days": num()}
		if item9 {
			f["item9"] = num()
		}
		return obj(f)
	}
	clock := obj(map[string]*policies.InputField{"start": str(), "end": str()})
	return obj(map[string]*policies.InputField{
		"now":    str(),
		"now_ns": num(),
		"local": obj(map[string]*policies.InputField{
			"timezone": str(), "time": str(), "date": str(), "hour": num(), "minute": num(),
			"minute_of_day": num(), "weekday": str(),
		}),
		"study": obj(map[string]*policies.InputField{
			"id": str(),
			"burden": obj(map[string]*policies.InputField{
				"max_per_day": num(), "max_per_24h": num(), "min_minutes_between": num(),
			}),
			"quiet_hours": clock,
			"factors": each(obj(map[string]*policies.InputField{
				"type": str(), "levels": arr(), "probability": num(), "bounds": arr(), "probability_source": str(),
			})),
		}),
		"participant": obj(map[string]*policies.InputField{
			"id": str(), "enrolled_at": str(), "day_in_study": num(), "study_day": num(), "phase": str(),
			"assignment": each(str()), "strata": each(str()),
		}),
		"decision_point": obj(map[string]*policies.InputField{
			"id": str(), "time": str(), "kind": str(), "trigger": str(), "scheduled_at": str(), "event_id": str(),
		}),
		"context": each(anyv()),
		// event: {id, type, time, data} of the event that opened an event
		// point; null for other points.
		"event": anyv(),
		// derived.<plugin>: what each enricher plugin returned (plugins.md).
		"derived": each(each(anyv())),
		"state": obj(map[string]*policies.InputField{
			"ema":     each(observation),
			"context": each(observation),
			"assessment": obj(map[string]*policies.InputField{
				"phq9": assessment(true), "gad7": assessment(false),
			}),
			"preferences": obj(map[string]*policies.InputField{
				"snoozed": boolean(), "snoozed_until": str(), "quiet_hours": clock, "opted_out": boolean(),
			}),
		}),
		"history": obj(map[string]*policies.InputField{
			"prompts_today": num(), "prompts_24h": num(), "decisions_today": num(),
			"minutes_since_last_prompt": num(), "last_prompt_at": str(), "recent_interventions": arr(),
			"engagement": obj(map[string]*policies.InputField{
				"prompts": num(), "delivered": num(), "opened": num(), "completed": num(), "dismissed": num(),
				"open_rate": num(), "last_rating": num(),
			}),
		}),
	})
}
