package engine

import (
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// Sample-ratio flags of a within-person factor (StudyHealth.Factors).
const (
	FlagOK    = "ok"
	FlagAmber = "amber" // p < 0.01
	FlagRed   = "red"   // p < 0.001
)

// healthPage is how many records one ListDecisions call of a rebuild reads.
const healthPage = 5000

// healthRecentWindow: records recorded this long before a rebuild started
// may also reach the commit hook while the rebuild lists them; their ids
// are remembered so that they are counted once.
const healthRecentWindow = time.Hour

// SampleRatio tests realised against intended randomisation: randomised
// points, treated the points at level 1, expected the sum of the logged
// probabilities of level 1 and variance the sum of p(1-p). It returns
// z = (treated-expected)/sqrt(variance), the two-sided normal p value and
// the flag (red below 0.001, amber below 0.01). With no variance (nothing
// randomised, or every probability 0 or 1) there is nothing to test: z 0,
// p 1, unless the realised count contradicts a certain one (then red, z
// the largest float of its sign).
func SampleRatio(treated int64, expected, variance float64) (z, p float64, flag string) {
	switch {
	case variance <= 1e-12 && math.Abs(float64(treated)-expected) < 0.5:
		return 0, 1, FlagOK
	case variance <= 1e-12:
		// A certain probability contradicted: as far from expected as can
		// be (JSON has no infinity).
		return math.Copysign(math.MaxFloat64, float64(treated)-expected), 0, FlagRed
	}
	z = (float64(treated) - expected) / math.Sqrt(variance)
	p = math.Erfc(math.Abs(z) / math.Sqrt2)
	switch {
	case p < 0.001:
		flag = FlagRed
	case p < 0.01:
		flag = FlagAmber
	default:
		flag = FlagOK
	}
	return z, p, flag
}

// StudyHealth is a live study's randomisation integrity and decision
// counts, kept incrementally (GET /v1/studies/{study}/health).
type StudyHealth struct {
	Study string    `json:"study"`
	AsOf  time.Time `json:"as_of"`
	// Factors is each within-person factor's sample-ratio test over all
	// randomised decisions, in declaration order.
	Factors []FactorHealth `json:"factors"`
	// ByDecisionPoint is the same test per decision point, by point name.
	ByDecisionPoint []PointHealth  `json:"by_decision_point"`
	Decisions       DecisionCounts `json:"decisions"`
	Availability    Availability   `json:"availability"`
}

// FactorHealth is one within-person factor's realised against intended
// randomisation.
type FactorHealth struct {
	Name       string  `json:"name"`
	Randomised int64   `json:"randomised"`
	Treated    int64   `json:"treated"`
	Expected   float64 `json:"expected"`
	Z          float64 `json:"z"`
	PValue     float64 `json:"p_value"`
	Flag       string  `json:"flag"`
}

// PointHealth is the sample-ratio test of one decision point.
type PointHealth struct {
	DecisionPoint string         `json:"decision_point"`
	Decisions     int64          `json:"decisions"`
	Factors       []FactorHealth `json:"factors"`
}

// DecisionCounts counts a study's recorded decisions.
type DecisionCounts struct {
	Total int64 `json:"total"`
	// Today counts decisions whose time falls on Date (UTC).
	Today    int64            `json:"today"`
	Date     string           `json:"date"`
	ByAction map[string]int64 `json:"by_action"`
	// FailSafe counts decisions the study's fail-safe answered because the
	// policy failed.
	FailSafe int64 `json:"fail_safe"`
}

// Availability counts available and unavailable decisions, and each
// unavailability reason (a decision may give several).
type Availability struct {
	Available   int64            `json:"available"`
	Unavailable int64            `json:"unavailable"`
	ByReason    map[string]int64 `json:"by_reason"`
}

// factorSums are the sufficient statistics of one factor's test.
type factorSums struct {
	randomised, treated int64
	expected, variance  float64
}

func (f *factorSums) add(fd *trial.FactorDraw) {
	p := *fd.Probability
	f.randomised++
	if fd.Level == 1 {
		f.treated++
	}
	f.expected += p
	f.variance += p * (1 - p)
}

func (f *factorSums) health(name string) FactorHealth {
	z, p, flag := SampleRatio(f.treated, f.expected, f.variance)
	return FactorHealth{Name: name, Randomised: f.randomised, Treated: f.treated, Expected: f.expected, Z: z, PValue: p, Flag: flag}
}

// healthSums are one study's aggregates.
type healthSums struct {
	total, failSafe, available, unavailable int64
	byDay, byAction, byReason               map[string]int64
	factors                                 map[string]*factorSums
	points                                  map[string]*pointSums
}

type pointSums struct {
	decisions int64
	factors   map[string]*factorSums
}

func newHealthSums() *healthSums {
	return &healthSums{byDay: map[string]int64{}, byAction: map[string]int64{}, byReason: map[string]int64{},
		factors: map[string]*factorSums{}, points: map[string]*pointSums{}}
}

// add counts one record: cheap, a few map updates.
func (h *healthSums) add(rec *trial.Record) {
	h.total++
	h.byDay[rec.Time.UTC().Format(time.DateOnly)]++
	h.byAction[rec.Action]++
	if rec.PolicyError != nil {
		h.failSafe++
	}
	if rec.Available {
		h.available++
	} else {
		h.unavailable++
		for _, r := range rec.UnavailableReasons {
			h.byReason[r]++
		}
	}
	pt := h.points[rec.DecisionPoint]
	if pt == nil {
		pt = &pointSums{factors: map[string]*factorSums{}}
		h.points[rec.DecisionPoint] = pt
	}
	pt.decisions++
	if !rec.Randomised {
		return
	}
	for i := range rec.Factors {
		fd := &rec.Factors[i]
		if fd.Type != string(policies.Within) || fd.Probability == nil {
			continue
		}
		sumOf(h.factors, fd.Name).add(fd)
		sumOf(pt.factors, fd.Name).add(fd)
	}
}

func sumOf(m map[string]*factorSums, name string) *factorSums {
	s := m[name]
	if s == nil {
		s = &factorSums{}
		m[name] = s
	}
	return s
}

// factorList is the health of the declared factors (in order) and then of
// any other factor the records name (a factor since removed), by name.
func factorList(m map[string]*factorSums, declared []string) []FactorHealth {
	out := make([]FactorHealth, 0, len(m))
	seen := map[string]bool{}
	for _, name := range declared {
		seen[name] = true
		s := m[name]
		if s == nil {
			s = &factorSums{}
		}
		out = append(out, s.health(name))
	}
	var rest []string
	for name := range m {
		if !seen[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		out = append(out, m[name].health(name))
	}
	return out
}

func (h *healthSums) snapshot(study string, now time.Time, declared []string) *StudyHealth {
	day := now.UTC().Format(time.DateOnly)
	out := &StudyHealth{Study: study, AsOf: now.UTC(), Factors: factorList(h.factors, declared), ByDecisionPoint: []PointHealth{},
		Decisions:    DecisionCounts{Total: h.total, Today: h.byDay[day], Date: day, ByAction: copyCounts(h.byAction), FailSafe: h.failSafe},
		Availability: Availability{Available: h.available, Unavailable: h.unavailable, ByReason: copyCounts(h.byReason)}}
	names := make([]string, 0, len(h.points))
	for n := range h.points {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		pt := h.points[n]
		out.ByDecisionPoint = append(out.ByDecisionPoint, PointHealth{DecisionPoint: n, Decisions: pt.decisions, Factors: factorList(pt.factors, declared)})
	}
	return out
}

func copyCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// studyHealth is one study's aggregates with their loading state: built
// from the decision log on first use, then kept by the commit hook.
type studyHealth struct {
	load sync.Mutex // one rebuild at a time

	mu         sync.Mutex
	sums       *healthSums // nil until loaded
	rebuilding bool
	pending    []*trial.Record // committed while rebuilding
}

// healthAggregates are the engine's per-study aggregates.
type healthAggregates struct {
	m sync.Map // study id -> *studyHealth
}

func (a *healthAggregates) of(study string) *studyHealth {
	if v, ok := a.m.Load(study); ok {
		return v.(*studyHealth)
	}
	v, _ := a.m.LoadOrStore(study, &studyHealth{})
	return v.(*studyHealth)
}

// recordHealth is the commit hook: it counts a committed record when the
// study's aggregates are loaded, keeps it aside while they are being
// rebuilt, and otherwise leaves it to the rebuild, which will list it.
func (e *Engine) recordHealth(rec *trial.Record) {
	sh := e.health.of(rec.Study)
	sh.mu.Lock()
	switch {
	case sh.sums != nil:
		sh.sums.add(rec)
	case sh.rebuilding:
		sh.pending = append(sh.pending, rec)
	}
	sh.mu.Unlock()
}

// loaded returns the study's aggregates, rebuilding them from the decision
// log when this engine has not yet done so.
func (e *Engine) loadedHealth(ctx context.Context, study string) (*studyHealth, error) {
	sh := e.health.of(study)
	sh.mu.Lock()
	ready := sh.sums != nil
	sh.mu.Unlock()
	if ready {
		return sh, nil
	}
	sh.load.Lock()
	defer sh.load.Unlock()
	sh.mu.Lock()
	if sh.sums != nil {
		sh.mu.Unlock()
		return sh, nil
	}
	sh.rebuilding, sh.pending = true, nil
	sh.mu.Unlock()
	sums, recent, err := e.rebuildHealth(ctx, study)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.rebuilding = false
	pending := sh.pending
	sh.pending = nil
	if err != nil {
		return nil, err
	}
	for _, rec := range pending {
		if !recent[rec.ID] {
			sums.add(rec)
		}
	}
	sh.sums = sums
	return sh, nil
}

// rebuildHealth counts the study's whole decision log, page by page. It
// returns the ids of records recorded since shortly before it started:
// only those can also have reached the commit hook meanwhile.
func (e *Engine) rebuildHealth(ctx context.Context, study string) (*healthSums, map[string]bool, error) {
	since := e.now().Add(-healthRecentWindow)
	sums, recent := newHealthSums(), map[string]bool{}
	q := trial.DecisionQuery{Study: study, Limit: healthPage}
	for {
		recs, err := e.store.ListDecisions(ctx, q)
		if err != nil {
			return nil, nil, fmt.Errorf("rebuilding the health of study %q from its decision log: %w", study, err)
		}
		for _, rec := range recs {
			sums.add(rec)
			if !rec.RecordedAt.Before(since) {
				recent[rec.ID] = true
			}
		}
		if len(recs) < q.Limit {
			return sums, recent, nil
		}
		last := recs[len(recs)-1]
		q.AfterTime, q.AfterID = last.Time, last.ID
	}
}

// Health returns a study's live randomisation integrity and decision
// counts. The aggregates are kept at every commit; the first call after
// start rebuilds them from the study's decision log.
func (e *Engine) Health(ctx context.Context, study string) (*StudyHealth, error) {
	rt, ok := e.Study(study)
	if !ok {
		return nil, ErrUnknownStudy
	}
	sh, err := e.loadedHealth(ctx, study)
	if err != nil {
		return nil, err
	}
	declared := []string{}
	for _, f := range rt.Config.FactorsOf(policies.Within) {
		declared = append(declared, f.Name)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.sums.snapshot(study, e.now(), declared), nil
}

// WarmHealth rebuilds the aggregates of every loaded study from the
// decision log (serve calls it at start, so that the first health request
// does not wait for it).
func (e *Engine) WarmHealth(ctx context.Context) error {
	for _, rt := range e.Studies() {
		if _, err := e.loadedHealth(ctx, rt.Config.ID); err != nil {
			return err
		}
	}
	return nil
}

// SampleRatios returns each within-person factor's sample-ratio p of the
// studies whose aggregates are loaded (for metrics; it never reads the
// store).
func (e *Engine) SampleRatios() map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	e.health.m.Range(func(k, v any) bool {
		sh := v.(*studyHealth)
		sh.mu.Lock()
		if sh.sums != nil {
			m := map[string]float64{}
			for name, f := range sh.sums.factors {
				_, p, _ := SampleRatio(f.treated, f.expected, f.variance)
				m[name] = p
			}
			out[k.(string)] = m
		}
		sh.mu.Unlock()
		return true
	})
	return out
}
