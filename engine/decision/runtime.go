package decision

import (
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/policies"
)

// Runtime is a loaded study with what a decision derives from it once:
// the draw keyer, the between-person design and its assigner.
type Runtime struct {
	*policies.Study
	drawer   *experiments.Drawer
	between  []policies.Factor
	within   []policies.Factor
	rows     [][]int
	assigner *experiments.BlockAssigner
	content  map[string]bool
	budgets  map[string]budgetRuntime
	// studyInput is the constant part of the policy input (input.study).
	studyInput map[string]any
	// studyValue is studyInput as an AST value, converted once: decisions
	// put it into the policy input instead of converting the map again.
	studyValue ast.Value
}

// NewRuntime prepares a loaded study for decisions.
func NewRuntime(s *policies.Study) (*Runtime, error) {
	rt := &Runtime{
		Study:   s,
		drawer:  experiments.NewDrawer(s.Config.Seed),
		between: s.Config.FactorsOf(policies.Between),
		within:  s.Config.FactorsOf(policies.Within),
		content: map[string]bool{},
	}
	rt.budgets = map[string]budgetRuntime{}
	for _, f := range s.Config.Factors {
		if f.Content {
			rt.content[f.Name] = true
		}
		if f.ProbabilitySource == policies.SourceBudget && f.Budget != nil {
			rt.budgets[f.Name] = newBudgetRuntime(f)
		}
	}
	if len(rt.between) > 0 {
		if len(rt.between) > 12 {
			return nil, fmt.Errorf("study %s: %d between-person factors make %d cells; use a fractional design", s.Config.ID, len(rt.between), 1<<len(rt.between))
		}
		rt.rows = experiments.FullFactorial(len(rt.between))
		if s.Design != nil {
			rt.rows = s.Design.Rows()
		}
		a, err := experiments.NewBlockAssigner(s.Config.Seed, rt.rows)
		if err != nil {
			return nil, err
		}
		rt.assigner = a
	}
	rt.studyInput = s.Config.StudyInput()
	v, err := ast.InterfaceToValue(rt.studyInput)
	if err != nil {
		return nil, fmt.Errorf("study %s: policy input: %w", s.Config.ID, err)
	}
	rt.studyValue = v
	return rt, nil
}

// budgetRuntime is a budgeted factor's day grid and parameters.
type budgetRuntime struct {
	b        experiments.Budget
	start    int // minutes after local midnight
	interval int // minutes
	stratum  string
}

func newBudgetRuntime(f policies.Factor) budgetRuntime {
	c := f.Budget
	start, _ := trial.ParseClock(c.DayStart)
	end, _ := trial.ParseClock(c.DayEnd)
	interval := int(c.Interval.Minutes())
	return budgetRuntime{
		b: experiments.Budget{
			PerDay: c.PerDay, Lambda: c.Lambda, Availability: c.Availability,
			Times: (end - start) / interval, Blackout: int(c.Blackout.Minutes()) / interval,
			Min: f.Bounds[0], Max: f.Bounds[1],
		},
		start: start, interval: interval, stratum: c.Stratum,
	}
}

// index is the decision time index of a local minute of the day, and
// whether it falls inside the budget's day.
func (br budgetRuntime) index(minuteOfDay int) (int, bool) {
	if minuteOfDay < br.start {
		return 0, false
	}
	t := (minuteOfDay - br.start) / br.interval
	return t, t < br.b.Times
}

// StratumKey is the canonical key of a participant's strata, in the order
// the study declares them ("site=a|sex=f"); "" when the study has none.
func (rt *Runtime) StratumKey(strata map[string]string) string {
	parts := make([]string, 0, len(rt.Config.Strata))
	for _, name := range rt.Config.Strata {
		parts = append(parts, name+"="+strata[name])
	}
	return strings.Join(parts, "|")
}

// ValidateStrata checks that exactly the declared strata are given.
func (rt *Runtime) ValidateStrata(strata map[string]string) error {
	declared := map[string]bool{}
	for _, name := range rt.Config.Strata {
		declared[name] = true
		v, ok := strata[name]
		if !ok {
			return trial.InputErrorf("strata."+name, "stratum %q is required by study %s", name, rt.Config.ID)
		}
		if v == "" || len(v) > trial.MaxStringValue || strings.ContainsAny(v, "|=") {
			return trial.InputErrorf("strata."+name, "stratum values are 1-64 characters without | or =")
		}
	}
	keys := make([]string, 0, len(strata))
	for k := range strata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !declared[k] {
			return trial.InputErrorf("strata."+k, "study %s declares no stratum %q (declared: %v)", rt.Config.ID, k, rt.Config.Strata)
		}
	}
	return nil
}

// BetweenFactors returns the between-person factors in design column order.
func (rt *Runtime) BetweenFactors() []policies.Factor { return rt.between }

// Design returns the between-person design rows (level indices 0/1, one
// column per between-person factor); nil when the study has none.
func (rt *Runtime) Design() [][]int { return rt.rows }

// AssignedRow is the design row the seq-th enrolment of a stratum gets.
func (rt *Runtime) AssignedRow(stratum string, seq int64) int {
	if rt.assigner == nil {
		return 0
	}
	return rt.assigner.RowIndex(stratum, seq)
}

// Assign fills in the between-person assignment for the seq-th enrolment.
func (rt *Runtime) Assign(p *trial.Participant, seq int64) {
	p.Seq = seq
	p.Assignment = map[string]string{}
	if rt.assigner == nil {
		return
	}
	p.Row = rt.assigner.RowIndex(p.Stratum, seq)
	for j, f := range rt.between {
		p.Assignment[f.Name] = f.Levels[rt.rows[p.Row][j]]
	}
}
