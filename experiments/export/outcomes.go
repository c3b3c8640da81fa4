package export

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/policies"
)

// eventIndex holds one participant's events, decoded once, for the joins.
type eventIndex struct {
	ema, context []obsEvent            // by time
	engagement   map[string][]engEvent // by decision id, each by time
	assess       []assessEvent         // by time
}

type obsEvent struct {
	t    time.Time
	vars map[string]any
}

type engEvent struct {
	t      time.Time
	status string
	rating *float64
}

type assessEvent struct {
	t          time.Time
	instrument string
	total      float64
}

func newEventIndex(evs []trial.Event) *eventIndex {
	sorted := append([]trial.Event(nil), evs...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	idx := &eventIndex{engagement: map[string][]engEvent{}}
	for _, ev := range sorted {
		switch ev.Type {
		case trial.EventEMA, trial.EventContext:
			var m map[string]any
			if json.Unmarshal(ev.Data, &m) != nil {
				continue
			}
			o := obsEvent{t: ev.Time, vars: m}
			if ev.Type == trial.EventEMA {
				idx.ema = append(idx.ema, o)
			} else {
				idx.context = append(idx.context, o)
			}
		case trial.EventEngagement:
			var d struct {
				DecisionID string   `json:"decision_id"`
				Status     string   `json:"status"`
				Rating     *float64 `json:"rating"`
			}
			if json.Unmarshal(ev.Data, &d) != nil || d.DecisionID == "" {
				continue
			}
			idx.engagement[d.DecisionID] = append(idx.engagement[d.DecisionID], engEvent{t: ev.Time, status: d.Status, rating: d.Rating})
		case trial.EventAssessment:
			var d struct {
				Instrument string `json:"instrument"`
				Items      []int  `json:"items"`
			}
			if json.Unmarshal(ev.Data, &d) != nil {
				continue
			}
			a, err := trial.ScoreAssessment(d.Instrument, d.Items)
			if err != nil {
				continue
			}
			idx.assess = append(idx.assess, assessEvent{t: ev.Time, instrument: a.Instrument, total: float64(a.Total)})
		}
	}
	return idx
}

// outcome joins one proximal outcome to a decision: the values reported in
// the window [t+from, t+to] (both ends included), aggregated. It returns nil
// (missing) while the window is still open at the time of the export. v is
// the declared variable of an EMA or context outcome (nil if none): its
// values that do not fit the data dictionary are left out.
func (b *builder) outcome(o policies.Outcome, v *policies.Variable, rec *trial.Record, idx *eventIndex) any {
	lo, hi := rec.Time.Add(o.From.Duration), rec.Time.Add(o.To.Duration)
	if hi.After(b.now) {
		return nil
	}
	in := func(t time.Time) bool { return !t.Before(lo) && !t.After(hi) }
	var vals []any
	switch o.Event {
	case "ema", "context":
		evs := idx.ema
		if o.Event == "context" {
			evs = idx.context
		}
		i := sort.Search(len(evs), func(i int) bool { return !evs[i].t.Before(lo) })
		for ; i < len(evs) && !evs[i].t.After(hi); i++ {
			x := atom(evs[i].vars[o.Variable])
			if x != nil && (v == nil || v.Fits(x)) {
				vals = append(vals, x)
			}
		}
	case "engagement":
		for _, e := range idx.engagement[rec.ID] {
			if e.status != o.Status || !in(e.t) {
				continue
			}
			if e.rating != nil {
				vals = append(vals, *e.rating)
			} else {
				vals = append(vals, 1.0)
			}
		}
	case "assessment":
		inst := assessmentInstrument(o.Variable)
		for _, a := range idx.assess {
			if a.instrument == inst && in(a.t) {
				vals = append(vals, a.total)
			}
		}
	}
	switch o.Aggregate {
	case "count":
		return int64(len(vals))
	case "any":
		if len(vals) == 0 {
			if o.Event == "engagement" {
				return int64(0)
			}
			return nil
		}
		if o.Event == "engagement" {
			return int64(1)
		}
		for _, v := range vals {
			if truthy(v) {
				return int64(1)
			}
		}
		return int64(0)
	case "mean":
		var sum float64
		n := 0
		for _, v := range vals {
			switch x := v.(type) {
			case float64:
				sum += x
				n++
			case bool:
				sum += float64(boolInt(x))
				n++
			}
		}
		if n == 0 {
			return nil
		}
		return sum / float64(n)
	case "last":
		if len(vals) == 0 {
			return nil
		}
		return vals[len(vals)-1]
	default: // first
		if len(vals) == 0 {
			return nil
		}
		return vals[0]
	}
}

// atom is scalar for a single value: lists are not outcome values.
func atom(v any) any {
	if _, list := v.([]any); list {
		return nil
	}
	return scalar(v)
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != "" && x != "false" && x != "0"
	}
	return false
}
