package simulate

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments/power"
	"github.com/jitai/jitai/policies"
)

// Report is what a simulation found (report.json). It holds no wall-clock
// measurements, so the same seed gives the same report.
type Report struct {
	Study        StudyInfo         `json:"study"`
	Run          RunInfo           `json:"run"`
	Totals       Totals            `json:"totals"`
	Deliveries   Deliveries        `json:"deliveries"`
	Hours        Hours             `json:"hours"`
	Availability Availability      `json:"availability"`
	Funnel       Funnel            `json:"funnel"`
	Safety       SafetySummary     `json:"safety"`
	Factors      []FactorRate      `json:"factors"`
	Cells        *CellBalance      `json:"cell_balance,omitempty"`
	Engagement   EngagementSummary `json:"engagement"`
	Daily        []DayRow          `json:"daily"`
	Effects      []EffectEstimate  `json:"effects"`
	Power        PowerReport       `json:"power"`
	Checks       []Check           `json:"checks"`
	dayRows      []ParticipantDay  // participant_days.csv
	factorPoints []FactorPointRate // factors.csv
}

// StudyInfo identifies the study simulated.
type StudyInfo struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	Revision          string   `json:"policy_revision"`
	DecisionPoints    []string `json:"decision_points"`
	MaxPerDay         int      `json:"max_per_day"`
	MinMinutesBetween int      `json:"min_minutes_between"`
	DeliveryFactor    string   `json:"delivery_factor,omitempty"`
	PrimaryOutcome    string   `json:"primary_outcome,omitempty"`
}

// RunInfo is how the simulation was run.
type RunInfo struct {
	Participants int    `json:"participants"`
	Days         int    `json:"days"`
	Seed         uint64 `json:"seed"`
	Start        string `json:"start"`
	Timezone     string `json:"timezone"`
	Cohort       Cohort `json:"cohort"`
}

// Totals counts decisions by action.
type Totals struct {
	Decisions  int `json:"decisions"`
	Deliver    int `json:"deliver"`
	None       int `json:"none"`
	Safety     int `json:"safety"`
	Available  int `json:"available"`
	Randomised int `json:"randomised"`
}

// Deliveries describes deliveries per participant-day.
type Deliveries struct {
	// Histogram[k] is the number of participant-days with k deliveries.
	Histogram       []int   `json:"histogram"`
	Max             int     `json:"max"`
	Mean            float64 `json:"mean"`
	Cap             int     `json:"cap"`
	DaysOverCap     int     `json:"days_over_cap"`
	ParticipantDays int     `json:"participant_days"`
}

// Hours counts decisions and deliveries by participant-local hour.
type Hours struct {
	Decisions  [24]int `json:"decisions"`
	Deliveries [24]int `json:"deliveries"`
}

// Availability is the share of decision points at which the person could
// be treated, and why not.
type Availability struct {
	Rate            float64       `json:"rate"`
	Reasons         []ReasonCount `json:"reasons"`
	ByDecisionPoint []PointRate   `json:"by_decision_point"`
}

// ReasonCount is how many decisions gave a reason (a decision may give
// several).
type ReasonCount struct {
	Reason string  `json:"reason"`
	Count  int     `json:"count"`
	Share  float64 `json:"share"` // of all decisions
}

// PointRate is availability and delivery at one decision point.
type PointRate struct {
	ID         string  `json:"id"`
	Decisions  int     `json:"decisions"`
	Available  float64 `json:"available"`
	Deliveries int     `json:"deliveries"`
}

// SafetySummary counts safety decisions.
type SafetySummary struct {
	Decisions    int           `json:"decisions"`
	Participants int           `json:"participants"`
	Reasons      []ReasonCount `json:"reasons"`
}

// FactorRate compares a within-person factor's realised randomisation rate
// with the probability the engine used.
type FactorRate struct {
	Name       string    `json:"name"`
	Levels     [2]string `json:"levels"`
	Source     string    `json:"probability_source"`
	Declared   float64   `json:"declared_probability"`
	Randomised int       `json:"randomised"`
	Level1     int       `json:"level1"`
	Realised   float64   `json:"realised_rate"`
	Intended   float64   `json:"intended_probability"` // mean of the probabilities used
	// Z is (level1 - sum p) / sqrt(sum p(1-p)); |Z| > 3 is flagged.
	Z  float64 `json:"z"`
	OK bool    `json:"ok"`
}

// FactorPointRate is a factor's rate at one decision point (factors.csv).
type FactorPointRate struct {
	Factor        string
	DecisionPoint string
	Randomised    int
	Level1        int
	Intended      float64
}

// CellBalance counts participants per between-person cell and stratum.
type CellBalance struct {
	Factors []string  `json:"factors"`
	Strata  []CellRow `json:"strata"`
	// MaxSpread is the largest (max - min) cell count within a stratum;
	// permuted blocks keep it at most 1.
	MaxSpread int `json:"max_spread"`
}

// CellRow is one stratum's cell counts, by design row.
type CellRow struct {
	Stratum string   `json:"stratum"`
	Cells   []string `json:"cells"`
	Counts  []int    `json:"counts"`
}

// EngagementSummary describes how participants engaged.
type EngagementSummary struct {
	OpenRate       float64 `json:"open_rate"`
	CompleteRate   float64 `json:"complete_rate"`
	ReportRate     float64 `json:"self_report_rate"`
	Disengaged     int     `json:"disengaged"`
	OptedOut       int     `json:"opted_out"`
	OutcomeMissing float64 `json:"primary_outcome_missing"`
}

// DayRow is one study day across participants.
type DayRow struct {
	Day        int     `json:"day"`
	Available  float64 `json:"available"`
	Deliveries float64 `json:"deliveries_per_participant"`
	OpenRate   float64 `json:"open_rate"`
	ReportRate float64 `json:"self_report_rate"`
}

// ParticipantDay is one row of participant_days.csv.
type ParticipantDay struct {
	Participant string
	Day         int
	Decisions   int
	Available   int
	Deliveries  int
	Safety      int
	Opened      int
	Reports     int
	Requests    int
}

// EffectEstimate is a simple difference in the primary outcome between a
// factor's levels, next to the true effect the cohort built in.
type EffectEstimate struct {
	Factor   string  `json:"factor"`
	Outcome  string  `json:"outcome"`
	True     float64 `json:"true_effect"`
	Estimate float64 `json:"estimate"`
	SE       float64 `json:"std_err"`
	N1       int     `json:"n1"`
	N0       int     `json:"n0"`
	Note     string  `json:"note"`
}

// PowerReport is the expected sample size and power for the primary effect.
type PowerReport struct {
	Kind   string `json:"kind"` // mrt, factorial or none
	Effect string `json:"effect,omitempty"`
	N      int    `json:"n_for_target,omitempty"`
	// AtMost says that the target is reached already at N, the first size
	// the MRT search tries: the study needs at most N.
	AtMost   bool    `json:"n_is_upper_bound,omitempty"`
	Target   float64 `json:"target_power,omitempty"`
	PowerAtN float64 `json:"power_at_participants,omitempty"`
	// NMissing and PowerAtNMissing count only decision points whose
	// outcome was observed: availability times the observed share (MRT).
	NMissing        int      `json:"n_for_target_with_missing,omitempty"`
	AtMostMissing   bool     `json:"n_with_missing_is_upper_bound,omitempty"`
	PowerAtNMissing float64  `json:"power_at_participants_with_missing,omitempty"`
	ObservedShare   float64  `json:"observed_share,omitempty"`
	Detectable      float64  `json:"detectable_effect,omitempty"`
	Inputs          any      `json:"inputs,omitempty"`
	Assumptions     []string `json:"assumptions"`
	Error           string   `json:"error,omitempty"`
}

// Check is one pass/fail statement the report makes.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Build computes the report of a run.
func Build(run *Run, participants []*trial.Participant) *Report {
	o := run.Options
	cfg := o.Study.Config
	r := &Report{}
	r.Study = StudyInfo{ID: cfg.ID, Name: cfg.Name, Revision: o.Study.Revision, MaxPerDay: cfg.Burden.MaxPerDay,
		MinMinutesBetween: cfg.Burden.MinMinutesBetween, DeliveryFactor: cfg.DeliveryFactor}
	for _, dp := range cfg.DecisionPoints {
		r.Study.DecisionPoints = append(r.Study.DecisionPoints, dp.ID)
	}
	primary := primaryOutcome(cfg)
	if primary != nil {
		r.Study.PrimaryOutcome = primary.Name
	}
	tz := o.Cohort.Timezone
	if tz == "" {
		tz = cfg.Timezone
	}
	r.Run = RunInfo{Participants: o.Participants, Days: o.Days, Seed: o.Seed, Start: o.Start.Format("2006-01-02"), Timezone: tz, Cohort: o.Cohort}

	within := cfg.FactorsOf(policies.Within)
	t := r.tally(run, len(within))
	delivered := r.Totals.Deliver

	// Deliveries per participant-day.
	r.Deliveries.Cap = cfg.Burden.MaxPerDay
	r.Deliveries.ParticipantDays = len(r.dayRows)
	for _, pd := range r.dayRows {
		for len(r.Deliveries.Histogram) <= pd.Deliveries {
			r.Deliveries.Histogram = append(r.Deliveries.Histogram, 0)
		}
		r.Deliveries.Histogram[pd.Deliveries]++
		r.Deliveries.Max = max(r.Deliveries.Max, pd.Deliveries)
		if cfg.Burden.MaxPerDay > 0 && pd.Deliveries > cfg.Burden.MaxPerDay {
			r.Deliveries.DaysOverCap++
		}
	}
	r.Deliveries.Mean = ratio(delivered, len(r.dayRows))

	r.Availability.Rate = ratio(r.Totals.Available, r.Totals.Decisions)
	r.Availability.Reasons = counted(t.reasons, r.Totals.Decisions)
	for i, dp := range cfg.DecisionPoints {
		t.dpN[i].ID = dp.ID
		t.dpN[i].Available = ratio(t.dpAvail[i], t.dpN[i].Decisions)
	}
	r.Availability.ByDecisionPoint = t.dpN

	r.Funnel = funnel(run)

	r.Safety = SafetySummary{Decisions: r.Totals.Safety, Participants: t.safetyPeople, Reasons: counted(t.safety, r.Totals.Decisions)}

	r.Factors = []FactorRate{}
	for i, f := range within {
		a := t.facc[i]
		fr := FactorRate{Name: f.Name, Levels: [2]string{f.Levels[0], f.Levels[1]}, Source: f.ProbabilitySource, Declared: f.Probability,
			Randomised: a.n, Level1: a.l1, Realised: ratio(a.l1, a.n), OK: true}
		if a.n > 0 {
			fr.Intended = a.sumP / float64(a.n)
		}
		if a.var_ > 0 {
			fr.Z = (float64(a.l1) - a.sumP) / math.Sqrt(a.var_)
			fr.OK = math.Abs(fr.Z) <= 3
		}
		r.Factors = append(r.Factors, fr)
		for j, dp := range cfg.DecisionPoints {
			pa := t.fpoint[i][j]
			fp := FactorPointRate{Factor: f.Name, DecisionPoint: dp.ID, Randomised: pa.n, Level1: pa.l1}
			if pa.n > 0 {
				fp.Intended = pa.sumP / float64(pa.n)
			}
			r.factorPoints = append(r.factorPoints, fp)
		}
	}

	r.Cells = cellBalance(cfg, participants)

	r.Engagement.OpenRate = ratio(t.opened, delivered)
	r.Engagement.CompleteRate = ratio(t.completed, delivered)
	r.Engagement.ReportRate = ratio(t.reports, t.requests)
	r.Engagement.OutcomeMissing = 1 - ratio(t.withOutcome, r.Totals.Decisions)

	dayOpened := make([]int, o.Days)
	dayReports := make([]int, o.Days)
	dayRequests := make([]int, o.Days)
	for _, pd := range r.dayRows {
		dayOpened[pd.Day] += pd.Opened
		dayReports[pd.Day] += pd.Reports
		dayRequests[pd.Day] += pd.Requests
	}
	for d := range o.Days {
		r.Daily = append(r.Daily, DayRow{Day: d + 1, Available: ratio(t.dayAvail[d], t.dayDec[d]),
			Deliveries: ratio(t.dayDel[d], o.Participants), OpenRate: ratio(dayOpened[d], t.dayDel[d]), ReportRate: ratio(dayReports[d], dayRequests[d])})
	}

	r.Effects = effects(run, primary, within)
	r.Power = powerFor(run, primary, r)
	r.Checks = checks(r)
	return r
}

// rateAcc accumulates a factor's draws at randomised points.
type rateAcc struct {
	n, l1      int
	sumP, var_ float64
}

// tallies are the counts of a run that Build summarises.
type tallies struct {
	facc                           []rateAcc   // by within-person factor
	fpoint                         [][]rateAcc // by factor, then decision point
	reasons, safety                map[string]int
	dpN                            []PointRate
	dpAvail                        []int
	dayDec, dayAvail, dayDel       []int
	opened, completed              int
	reports, requests, withOutcome int
	safetyPeople                   int
}

// tally counts the run's decision points into r's totals, hours,
// participant-days and disengagement, and returns the other counts.
func (r *Report) tally(run *Run, nFactors int) *tallies {
	o := run.Options
	nDP := len(o.Study.Config.DecisionPoints)
	t := &tallies{
		facc: make([]rateAcc, nFactors), fpoint: make([][]rateAcc, nFactors),
		reasons: map[string]int{}, safety: map[string]int{},
		dpN: make([]PointRate, nDP), dpAvail: make([]int, nDP),
		dayDec: make([]int, o.Days), dayAvail: make([]int, o.Days), dayDel: make([]int, o.Days),
	}
	for i := range t.fpoint {
		t.fpoint[i] = make([]rateAcc, nDP)
	}
	for _, p := range run.People {
		perDay := make([]ParticipantDay, o.Days)
		for d := range perDay {
			perDay[d] = ParticipantDay{Participant: p.ID, Day: d, Opened: p.OpenedByDay[d], Reports: p.ReportsByDay[d], Requests: p.RequestsByDay[d]}
		}
		hadSafety := false
		for _, pt := range p.Points {
			r.Totals.Decisions++
			pd := &perDay[pt.Day]
			pd.Decisions++
			t.dayDec[pt.Day]++
			t.dpN[pt.DP].Decisions++
			r.Hours.Decisions[pt.Hour]++
			if !math.IsNaN(pt.Outcome) {
				t.withOutcome++
			}
			switch pt.Action {
			case trial.ActionDeliver:
				r.Totals.Deliver++
				pd.Deliveries++
				t.dayDel[pt.Day]++
				t.dpN[pt.DP].Deliveries++
				r.Hours.Deliveries[pt.Hour]++
			case trial.ActionSafety:
				r.Totals.Safety++
				pd.Safety++
				hadSafety = true
				for _, s := range pt.Safety {
					t.safety[s]++
				}
			default:
				r.Totals.None++
			}
			if pt.Available {
				r.Totals.Available++
				pd.Available++
				t.dayAvail[pt.Day]++
				t.dpAvail[pt.DP]++
			}
			for _, why := range pt.Reasons {
				t.reasons[why]++
			}
			if pt.Randomised {
				r.Totals.Randomised++
				for i, fl := range pt.Factors {
					if i >= len(t.facc) {
						break
					}
					for _, a := range []*rateAcc{&t.facc[i], &t.fpoint[i][pt.DP]} {
						a.n++
						a.l1 += fl.Level
						a.sumP += fl.Prob
						a.var_ += fl.Prob * (1 - fl.Prob)
					}
				}
			}
		}
		if hadSafety {
			t.safetyPeople++
		}
		t.opened += p.Opened
		t.completed += p.Completed
		t.reports += p.Reports
		t.requests += p.Requests
		r.dayRows = append(r.dayRows, perDay...)
		if p.Disengaged >= 0 {
			r.Engagement.Disengaged++
			if p.OptedOut {
				r.Engagement.OptedOut++
			}
		}
	}
	return t
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func counted(m map[string]int, total int) []ReasonCount {
	out := []ReasonCount{}
	for k, n := range m {
		out = append(out, ReasonCount{Reason: k, Count: n, Share: ratio(n, total)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

func primaryOutcome(cfg *policies.Config) *policies.Outcome {
	for i := range cfg.Outcomes {
		if cfg.Outcomes[i].Primary {
			return &cfg.Outcomes[i]
		}
	}
	return nil
}

func cellBalance(cfg *policies.Config, participants []*trial.Participant) *CellBalance {
	between := cfg.FactorsOf(policies.Between)
	if len(between) == 0 {
		return nil
	}
	cb := &CellBalance{}
	for _, f := range between {
		cb.Factors = append(cb.Factors, f.Name)
	}
	byStratum := map[string]map[string]int{}
	cellSet := map[string]bool{}
	for _, p := range participants {
		parts := make([]string, len(between))
		for i, f := range between {
			parts[i] = p.Assignment[f.Name]
		}
		cell := strings.Join(parts, "/")
		cellSet[cell] = true
		if byStratum[p.Stratum] == nil {
			byStratum[p.Stratum] = map[string]int{}
		}
		byStratum[p.Stratum][cell]++
	}
	// Every cell of the design, including empty ones.
	cells := make([]string, 0, len(cellSet))
	for c := range cellSet {
		cells = append(cells, c)
	}
	sort.Strings(cells)
	strata := make([]string, 0, len(byStratum))
	for s := range byStratum {
		strata = append(strata, s)
	}
	sort.Strings(strata)
	for _, s := range strata {
		row := CellRow{Stratum: s, Cells: cells}
		lo, hi := math.MaxInt, 0
		for _, c := range cells {
			n := byStratum[s][c]
			row.Counts = append(row.Counts, n)
			lo, hi = min(lo, n), max(hi, n)
		}
		cb.MaxSpread = max(cb.MaxSpread, hi-lo)
		cb.Strata = append(cb.Strata, row)
	}
	return cb
}

// trueEffect is the cohort's built-in effect of a delivery (factor "")
// or of a factor's second level on a self-report variable.
func trueEffect(c *Cohort, factor, variable string) float64 {
	pick := func(stress, mood float64) float64 {
		switch variable {
		case "stress":
			return stress
		case "mood":
			return mood
		}
		return 0
	}
	if factor == "" {
		return pick(c.Effects.Stress, c.Effects.Mood)
	}
	ef := c.Effects.Components[factor]
	return pick(ef.Stress, ef.Mood)
}

// effects estimates each within-person factor's effect on the primary
// outcome as a difference in means between its levels at randomised
// points (for the delivery factor: delivered vs not), and each
// between-person factor's among delivered points.
func effects(run *Run, primary *policies.Outcome, within []policies.Factor) []EffectEstimate {
	out := []EffectEstimate{}
	if primary == nil || primary.Event != trial.EventEMA {
		return out
	}
	cfg := run.Options.Study.Config
	c := &run.Options.Cohort
	for i, f := range within {
		var y0, y1 []float64
		for _, p := range run.People {
			for _, pt := range p.Points {
				if !pt.Randomised || i >= len(pt.Factors) || math.IsNaN(pt.Outcome) {
					continue
				}
				if f.Name != cfg.DeliveryFactor && pt.Action != trial.ActionDeliver {
					continue // a content factor acts only through a delivery
				}
				if pt.Factors[i].Level == 1 {
					y1 = append(y1, pt.Outcome)
				} else {
					y0 = append(y0, pt.Outcome)
				}
			}
		}
		e := diff(y1, y0)
		e.Factor, e.Outcome = f.Name, primary.Name
		if f.Name == cfg.DeliveryFactor {
			e.True = trueEffect(c, "", primary.Variable)
			e.Note = "delivered vs not, at available randomised points"
		} else {
			e.True = trueEffect(c, f.Name, primary.Variable)
			e.Note = "level " + f.Levels[1] + " vs " + f.Levels[0] + ", among deliveries"
		}
		out = append(out, e)
	}
	for _, f := range cfg.FactorsOf(policies.Between) {
		var y0, y1 []float64
		for _, p := range run.People {
			for _, pt := range p.Points {
				if pt.Action != trial.ActionDeliver || math.IsNaN(pt.Outcome) {
					continue
				}
				if p.Assignment[f.Name] == f.Levels[1] {
					y1 = append(y1, pt.Outcome)
				} else {
					y0 = append(y0, pt.Outcome)
				}
			}
		}
		e := diff(y1, y0)
		e.Factor, e.Outcome = f.Name, primary.Name
		e.True = trueEffect(c, f.Name, primary.Variable)
		e.Note = "level " + f.Levels[1] + " vs " + f.Levels[0] + ", among deliveries"
		out = append(out, e)
	}
	return out
}

// diff is the difference in means with a standard error that treats
// observations as independent (it ignores clustering within participants,
// so it is too small; use jitai analyze wcls on an export for inference).
func diff(y1, y0 []float64) EffectEstimate {
	e := EffectEstimate{N1: len(y1), N0: len(y0)}
	if len(y1) < 2 || len(y0) < 2 {
		return e
	}
	m1, v1 := meanVar(y1)
	m0, v0 := meanVar(y0)
	e.Estimate = m1 - m0
	e.SE = math.Sqrt(v1/float64(len(y1)) + v0/float64(len(y0)))
	return e
}

func meanVar(y []float64) (float64, float64) {
	m := 0.0
	for _, v := range y {
		m += v
	}
	m /= float64(len(y))
	ss := 0.0
	for _, v := range y {
		ss += (v - m) * (v - m)
	}
	return m, ss / float64(len(y)-1)
}

// powerFor computes the expected sample size and power for the study's
// primary effect: the MRT formula for a delivery factor and a continuous
// primary outcome, the factorial formula for between-person factors.
func powerFor(run *Run, primary *policies.Outcome, r *Report) PowerReport {
	cfg := run.Options.Study.Config
	if primary == nil {
		return PowerReport{Kind: "none", Assumptions: []string{"the study declares no primary outcome"}}
	}
	perDay := 0
	for _, dp := range cfg.DecisionPoints {
		if dp.Time != "" {
			perDay++
		}
	}
	if f, ok := cfg.Factor(cfg.DeliveryFactor); ok && f.Type == policies.Within {
		return mrtPowerFor(run, primary, r, f, perDay)
	}
	between := cfg.FactorsOf(policies.Between)
	if len(between) == 0 {
		return PowerReport{Kind: "none", Assumptions: []string{"the study has neither a within-person delivery factor nor between-person factors"}}
	}
	return factorialPowerFor(run, primary, between)
}

// mrtPowerFor is the MRT sample size and power for the causal excursion
// effect of the within-person delivery factor f on the primary outcome,
// with perDay scheduled decision points a day.
func mrtPowerFor(run *Run, primary *policies.Outcome, r *Report, f *policies.Factor, perDay int) PowerReport {
	cfg := run.Options.Study.Config
	c := &run.Options.Cohort
	o := run.Options
	pr := PowerReport{Kind: "mrt", Effect: fmt.Sprintf("causal excursion effect of %s on %s", f.Name, primary.Name), Target: 0.8}
	if primary.Event != trial.EventEMA || (primary.Variable != "stress" && primary.Variable != "mood") {
		pr.Error = fmt.Sprintf("the primary outcome %s is not a simulated continuous self-report (stress or mood); the MRT power for it is not computed", primary.Name)
		pr.Assumptions = []string{}
		return pr
	}
	// The outcome's sd without treatment: at available points where the
	// delivery factor drew level 0.
	var y0 []float64
	idx := factorIndex(cfg, f.Name)
	randomised, observed := 0, 0
	for _, p := range run.People {
		for _, pt := range p.Points {
			if !pt.Randomised {
				continue
			}
			randomised++
			if !math.IsNaN(pt.Outcome) {
				observed++
				if idx < len(pt.Factors) && pt.Factors[idx].Level == 0 {
					y0 = append(y0, pt.Outcome)
				}
			}
		}
	}
	eff := trueEffect(c, "", primary.Variable)
	if len(y0) < 2 || eff == 0 || r.Availability.Rate <= 0 {
		pr.Error = "too few untreated outcomes, a zero true effect or no availability: power is not computed"
		pr.Assumptions = []string{}
		return pr
	}
	_, v := meanVar(y0)
	sd := math.Sqrt(v)
	std := math.Abs(eff) / sd
	prob := f.Probability
	for _, fr := range r.Factors {
		if fr.Name == f.Name && fr.Randomised > 0 {
			prob = fr.Intended
		}
	}
	avail := math.Min(1, r.Availability.Rate)
	spec := power.MRTSpec{Days: o.Days, DecisionsPerDay: max(perDay, 1), RandProb: []float64{prob},
		Effect: power.Trend{Shape: power.Constant, Mean: std}, Availability: power.Trend{Shape: power.Constant, Mean: avail}}
	pr.Inputs = map[string]any{"days": spec.Days, "decisions_per_day": spec.DecisionsPerDay, "rand_prob": prob,
		"standardized_effect": std, "true_effect": eff, "outcome_sd": sd, "availability": avail, "alpha": 0.05}
	pr.Assumptions = []string{
		fmt.Sprintf("effect: the cohort's true effect of a delivery on %s (%.3g) divided by the sd of %s at untreated available points (%.3g), constant over the study", primary.Variable, eff, primary.Name, sd),
		fmt.Sprintf("availability: the simulated rate %.3f, constant over the study", avail),
		fmt.Sprintf("randomisation probability: the mean probability used for %s (%.3f)", f.Name, prob),
		fmt.Sprintf("%d days, %d scheduled decision points a day, alpha 0.05 two-sided, 3 control parameters (Liao et al. 2016, as MRTSampleSize)", spec.Days, spec.DecisionsPerDay),
		"the formula assumes every outcome is observed; the second figure counts only the points whose outcome was observed in the simulation (availability times that share)",
	}
	pr.ObservedShare = ratio(observed, randomised)
	for _, missing := range []bool{false, true} {
		s := spec
		if missing {
			if pr.ObservedShare == 0 {
				break
			}
			s.Availability.Mean = avail * pr.ObservedShare
		}
		n, atMost, pow, err := mrtPower(s, o.Participants)
		if err != nil && pr.Error == "" {
			pr.Error = err.Error()
		}
		if missing {
			pr.NMissing, pr.AtMostMissing, pr.PowerAtNMissing = n, atMost, pow
		} else {
			pr.N, pr.AtMost, pr.PowerAtN = n, atMost, pow
		}
	}
	return pr
}

// factorialPowerFor is the factorial sample size and power (or the
// detectable effect) for the main effects of the between-person factors
// on participants' mean primary outcome.
func factorialPowerFor(run *Run, primary *policies.Outcome, between []policies.Factor) PowerReport {
	c := &run.Options.Cohort
	o := run.Options
	// The factorial analysis of participants' mean primary outcome.
	pr := PowerReport{Kind: "factorial", Target: 0.8}
	var means []float64
	delivShare := 0.0
	nOut, nDelivOut := 0, 0
	for _, p := range run.People {
		sum, n := 0.0, 0
		for _, pt := range p.Points {
			if !math.IsNaN(pt.Outcome) {
				sum += pt.Outcome
				n++
				nOut++
				if pt.Action == trial.ActionDeliver {
					nDelivOut++
				}
			}
		}
		if n > 0 {
			means = append(means, sum/float64(n))
		}
	}
	if len(means) < 2 || primary.Event != trial.EventEMA {
		pr.Error = "too few participants with outcomes, or the primary outcome is not a self-report: power is not computed"
		pr.Assumptions = []string{}
		return pr
	}
	delivShare = ratio(nDelivOut, nOut)
	_, v := meanVar(means)
	sd := math.Sqrt(v)
	name := between[0].Name
	eff := 0.0
	for _, f := range between {
		if e := trueEffect(c, f.Name, primary.Variable); e != 0 {
			name, eff = f.Name, e
			break
		}
	}
	spec := power.FactorialSpec{Factors: len(between), Order: 1, SD: sd, Alpha: 0.05}
	pr.Assumptions = []string{
		fmt.Sprintf("analysis: effect-coded main effects (order 1) of the %d between-person factors on each participant's mean %s, alpha 0.05 (as MOST::FactorialPowerPlan)", len(between), primary.Name),
		fmt.Sprintf("sd: the sd of participants' mean %s in the simulation (%.3g)", primary.Name, sd),
	}
	if eff != 0 {
		raw := math.Abs(eff) * delivShare
		pr.Effect = fmt.Sprintf("main effect of %s on mean %s", name, primary.Name)
		spec.EffectKind, spec.Effect = power.RawMain, raw
		pr.Assumptions = append(pr.Assumptions, fmt.Sprintf("effect: the cohort's effect of %s=%s on %s (%.3g) times the share of observed outcomes that follow a delivery (%.3f) = %.3g",
			name, between[factorPos(between, name)].Levels[1], primary.Variable, eff, delivShare, raw))
		pr.Inputs = map[string]any{"factors": spec.Factors, "raw_main_effect": raw, "sd": sd}
		spec.Power = 0.8
		if res, err := power.Factorial(spec); err == nil {
			pr.N = res.N
		} else {
			pr.Error = err.Error()
		}
		spec.Power, spec.N = 0, o.Participants
		if res, err := power.Factorial(spec); err == nil {
			pr.PowerAtN = res.Power
		} else if pr.Error == "" {
			pr.Error = err.Error()
		}
		return pr
	}
	pr.Effect = fmt.Sprintf("detectable main effect on mean %s", primary.Name)
	pr.Assumptions = append(pr.Assumptions, "effect: the cohort has no component effect on the primary outcome, so the report gives the smallest main effect detectable with 80% power at the simulated number of participants")
	spec.N, spec.Power = o.Participants, 0.8
	pr.Inputs = map[string]any{"factors": spec.Factors, "n": spec.N, "sd": sd}
	if res, err := power.Factorial(spec); err == nil {
		pr.Detectable = res.RawMain
		pr.PowerAtN = res.Power
	} else {
		pr.Error = err.Error()
	}
	return pr
}

// mrtPower is the sample size for the spec's power and the power with n
// participants.
func mrtPower(spec power.MRTSpec, n int) (need int, atMost bool, pow float64, err error) {
	if res, e := power.MRT(spec); e == nil {
		need, atMost = res.N, res.AtSearchStart
	} else {
		err = e
	}
	spec.N = n
	if res, e := power.MRT(spec); e == nil {
		pow = res.Power
	} else if err == nil {
		err = e
	}
	return need, atMost, pow, err
}

func factorIndex(cfg *policies.Config, name string) int {
	for i, f := range cfg.FactorsOf(policies.Within) {
		if f.Name == name {
			return i
		}
	}
	return -1
}

func factorPos(fs []policies.Factor, name string) int {
	return slices.IndexFunc(fs, func(f policies.Factor) bool { return f.Name == name })
}

// checks are the report's pass/fail statements.
func checks(r *Report) []Check {
	var out []Check
	if r.Deliveries.Cap > 0 {
		out = append(out, Check{Name: "daily cap", OK: r.Deliveries.DaysOverCap == 0,
			Detail: fmt.Sprintf("%d participant-days above max_per_day %d (maximum seen %d)", r.Deliveries.DaysOverCap, r.Deliveries.Cap, r.Deliveries.Max)})
	}
	for _, f := range r.Factors {
		out = append(out, Check{Name: "randomisation of " + f.Name, OK: f.OK,
			Detail: fmt.Sprintf("realised %.4f vs intended %.4f over %d randomised points (z = %.2f; flagged beyond ±3)", f.Realised, f.Intended, f.Randomised, f.Z)})
	}
	if r.Cells != nil {
		out = append(out, Check{Name: "cell balance", OK: r.Cells.MaxSpread <= 1,
			Detail: fmt.Sprintf("cell counts within a stratum differ by at most %d", r.Cells.MaxSpread)})
	}
	return out
}
