package jitai.policy

decision := {
	"safety_reasons": [],
	"unavailable_reasons": unavailable,
	"candidates": [{"id": "box-breathing", "weight": 1}, {"id": "breathing-box", "weight": 1}],
}

unavailable contains "late" if input.local.hours >= 22

unavailable contains "tired" if input.state.ema.energy.val < 3

unavailable contains "clock" if time.now_ns() > 0

unavailable contains "week" if input.participant.day_in_study.week > 1

unavailable contains "busy" if object.get(input, ["history", "prompt_today"], 0) > 3

unavailable contains "calm" if input.state.ema.stress.value < 2
