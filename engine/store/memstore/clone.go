package memstore

import (
	"maps"
	"slices"

	"github.com/jitai/jitai/engine/trial"
)

// CloneState returns a copy of st that can be changed as the engine's event
// handling does without changing st: its maps are copied; its slices share
// st's elements but have no spare capacity, so appending to them copies.
// Changing a slice element in place would change st too. Observation
// values are numbers, strings and booleans (immutable) as the engine
// stores them.
func CloneState(st *trial.State) *trial.State {
	c := *st
	c.EMA = maps.Clone(st.EMA)
	c.Context = maps.Clone(st.Context)
	if st.Assessments != nil {
		c.Assessments = make(map[string]trial.Assessment, len(st.Assessments))
		for k, a := range st.Assessments {
			a.Items = slices.Clone(a.Items)
			c.Assessments[k] = a
		}
	}
	if st.Preferences.QuietHours != nil {
		q := *st.Preferences.QuietHours
		c.Preferences.QuietHours = &q
	}
	c.Prompts = slices.Clip(st.Prompts)
	c.Decisions = slices.Clip(st.Decisions)
	c.Engagement = slices.Clip(st.Engagement)
	c.Budget = slices.Clip(st.Budget)
	return &c
}

func cloneParticipant(p *trial.Participant) *trial.Participant {
	c := *p
	c.Strata = maps.Clone(p.Strata)
	c.Assignment = maps.Clone(p.Assignment)
	return &c
}
