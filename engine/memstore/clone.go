package memstore

import (
	"maps"
	"slices"

	"github.com/jitai/jitai/engine"
)

// CloneState returns a deep copy of st: changing the copy's maps and slices
// leaves st as it was. Observation values are numbers, strings and
// booleans (immutable) as the engine stores them; other values are shared.
func CloneState(st *engine.State) *engine.State {
	c := *st
	c.EMA = maps.Clone(st.EMA)
	c.Context = maps.Clone(st.Context)
	if st.Assessments != nil {
		c.Assessments = make(map[string]engine.Assessment, len(st.Assessments))
		for k, a := range st.Assessments {
			a.Items = slices.Clone(a.Items)
			c.Assessments[k] = a
		}
	}
	if st.Preferences.QuietHours != nil {
		q := *st.Preferences.QuietHours
		c.Preferences.QuietHours = &q
	}
	c.Prompts = slices.Clone(st.Prompts)
	c.Decisions = slices.Clone(st.Decisions)
	c.Engagement = slices.Clone(st.Engagement)
	c.Budget = slices.Clone(st.Budget)
	return &c
}

func cloneParticipant(p *engine.Participant) *engine.Participant {
	c := *p
	c.Strata = maps.Clone(p.Strata)
	c.Assignment = maps.Clone(p.Assignment)
	return &c
}
