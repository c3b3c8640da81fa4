package simulate

import (
	"fmt"
	"sort"

	"github.com/jitai/jitai/engine/simulate/page"
	"github.com/jitai/jitai/engine/trial"
)

// Funnel is the delivery funnel of a run: how the decision points the
// participants had became decisions, deliveries that reached their phones,
// and engagement.
type Funnel struct {
	Overall         FunnelRow     `json:"overall"`
	ByDecisionPoint []FunnelRow   `json:"by_decision_point"`
	ByPhase         []PhaseCounts `json:"by_phase"`
}

// FunnelRow is the funnel of all decision points or of one. Each stage
// counts decision points: Points = Scheduled + Requested, Points =
// Decided + Missed; Deliver counts the decided points whose action is
// deliver, and Sent >= Delivered >= Opened >= Completed count those.
// Points = Scheduled + Triggered + Requested.
type FunnelRow struct {
	ID string `json:"id,omitempty"`
	// Points are the records: one per scheduled point (the trial clock's),
	// per point an event opened and per app request.
	Points    int `json:"points"`
	Scheduled int `json:"scheduled"`
	Triggered int `json:"event_triggered"`
	Requested int `json:"app_requested"`
	// Decided: the policy decided the point; Missed: the trial clock did
	// not decide it within its window (recorded as missed).
	Decided int `json:"decided"`
	Missed  int `json:"missed"`
	// Deliver: the decision was to deliver an intervention.
	Deliver int `json:"deliver"`
	// Sent: a delivery channel accepted it (for an app point, the app's
	// answer held it); Delivered: the phone received it (the app's
	// delivered engagement event); Opened and Completed: the participant
	// opened it and completed it.
	Sent      int `json:"sent"`
	Delivered int `json:"delivered"`
	Opened    int `json:"opened"`
	Completed int `json:"completed"`
}

// PhaseCounts counts the records of one phase: a baseline records its
// points but randomises none.
type PhaseCounts struct {
	Phase      string `json:"phase"`
	Points     int    `json:"points"`
	Randomised int    `json:"randomised"`
	Deliver    int    `json:"deliver"`
}

func (f *FunnelRow) add(pt *Point) {
	f.Points++
	switch pt.Trigger {
	case trial.TriggerScheduled:
		f.Scheduled++
	case trial.TriggerEvent:
		f.Triggered++
	default:
		f.Requested++
	}
	if pt.Missed {
		f.Missed++
		return
	}
	f.Decided++
	if pt.Action != trial.ActionDeliver {
		return
	}
	f.Deliver++
	for _, s := range []struct {
		on bool
		n  *int
	}{{pt.Sent, &f.Sent}, {pt.Delivered, &f.Delivered}, {pt.Opened, &f.Opened}, {pt.Completed, &f.Completed}} {
		if s.on {
			*s.n++
		}
	}
}

// funnel counts the run's delivery funnel.
func funnel(run *Run) Funnel {
	dps := run.Options.Study.Config.DecisionPoints
	f := Funnel{ByDecisionPoint: make([]FunnelRow, len(dps)), ByPhase: []PhaseCounts{}}
	for i, dp := range dps {
		f.ByDecisionPoint[i].ID = dp.ID
	}
	phases := map[string]*PhaseCounts{}
	for _, p := range run.People {
		for i := range p.Points {
			pt := &p.Points[i]
			f.Overall.add(pt)
			f.ByDecisionPoint[pt.DP].add(pt)
			pc := phases[pt.Phase]
			if pc == nil {
				pc = &PhaseCounts{Phase: pt.Phase}
				phases[pt.Phase] = pc
			}
			pc.Points++
			if pt.Randomised {
				pc.Randomised++
			}
			if pt.Action == trial.ActionDeliver {
				pc.Deliver++
			}
		}
	}
	for _, pc := range phases {
		f.ByPhase = append(f.ByPhase, *pc)
	}
	sort.Slice(f.ByPhase, func(i, j int) bool { return f.ByPhase[i].Phase < f.ByPhase[j].Phase })
	return f
}

// stages are the funnel's stages in order, with their counts.
func (f *FunnelRow) stages() ([]string, []int) {
	return []string{"decision points", "decided", "deliver", "sent", "delivered", "opened", "completed"},
		[]int{f.Points, f.Decided, f.Deliver, f.Sent, f.Delivered, f.Opened, f.Completed}
}

// funnelChart draws the overall funnel: each stage as a share of the
// decision points, labelled with its count.
func funnelChart(f *FunnelRow) page.Chart {
	names, counts := f.stages()
	labels, shares := make([]string, len(names)), make([]float64, len(names))
	for i := range names {
		labels[i] = fmt.Sprintf("%s (%d)", names[i], counts[i])
		shares[i] = ratio(counts[i], f.Points)
	}
	return page.HBarChart("delivery funnel (share of decision points)", labels, shares)
}
