package policies

// StudyInput is the study block of the policy input: what every live
// decision puts at input.study, and what the study's Rego tests read as
// data.jitai.study (see RunTests). It is built here once, from study.yaml,
// so that the two cannot differ.
func (c *Config) StudyInput() map[string]any {
	factors := map[string]any{}
	for _, f := range c.Factors {
		fm := map[string]any{"type": string(f.Type), "levels": []any{f.Levels[0], f.Levels[1]}}
		if f.Type == Within {
			fm["probability"] = f.Probability
			fm["bounds"] = []any{f.Bounds[0], f.Bounds[1]}
			fm["probability_source"] = f.ProbabilitySource
		}
		factors[f.Name] = fm
	}
	in := map[string]any{
		"id": c.ID,
		"burden": map[string]any{
			"max_per_day":         c.Burden.MaxPerDay,
			"max_per_24h":         c.Burden.MaxPer24h,
			"min_minutes_between": c.Burden.MinMinutesBetween,
		},
		"factors": factors,
	}
	if q := c.QuietHours; q != nil {
		in["quiet_hours"] = map[string]any{"start": q.Start, "end": q.End}
	}
	return in
}
