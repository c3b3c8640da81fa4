// Package simulate drives a synthetic cohort through the real decision
// engine with a simulated clock, and reports how the study behaves:
// deliveries per participant-day and the hours they land at, availability
// and its reasons, safety events, realised randomisation rates against the
// intended probabilities, cell balance, and the expected sample size and
// power for the study's primary effect. `jitai simulate` is its command.
//
// Each participant has their own engine (over one shared in-memory store),
// clock, decision-id stream and random stream, all derived from the seed
// and the participant's index, and participants are enrolled one by one in
// index order before their timelines run in parallel; so a run is the same
// for a given seed whatever the scheduling.
package simulate

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// Options configures a run.
type Options struct {
	Study        *policies.Study
	Cohort       Cohort
	Participants int
	Days         int
	Seed         uint64
	// Start is the first study day (its date counts; the time is ignored).
	Start time.Time
	// Workers run participants in parallel (default GOMAXPROCS).
	Workers int
	// Progress, if set, is called after each participant-day with the
	// number done and the total.
	Progress func(done, total int)
	// SpillDir, if set, is where the run keeps its decision records (in a
	// temporary file that Run.Close removes), so that its memory grows with
	// the participants rather than with the decisions: the store then keeps
	// only each participant's recent records (see spillRetain), and Write
	// writes decisions.jsonl from the file. Unset, the store keeps every
	// record, and Run.Store can answer for any decision afterwards.
	SpillDir string

	// keepRecords keeps every record in the store even with SpillDir set
	// (for tests that compare the two).
	keepRecords bool
}

// DefaultStart is the first day when none is given: a Monday.
var DefaultStart = time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC)

// Run is a finished simulation: the per-decision observations and the
// store, for the report. The store holds every record unless the run
// spilled them (Options.SpillDir). Close releases the spill.
type Run struct {
	Options Options
	Store   *memstore.Store
	People  []*Outcome
	Wall    time.Duration
	spill   *spill
}

// Close removes the run's spill file, if any; Write cannot be called
// after it.
func (r *Run) Close() error {
	if r.spill == nil {
		return nil
	}
	err := r.spill.close()
	r.spill = nil
	if err != nil {
		return fmt.Errorf("simulate: removing the decision spill file: %w", err)
	}
	return nil
}

// spillRetain is how long a spilling run's store keeps a participant's
// records after their latest: engagement events look their decision up
// within hours, and outcome reports to plugins read the decisions whose
// outcome windows hold the outcome.
func spillRetain(cfg *policies.Config) time.Duration {
	d := 24 * time.Hour
	var longest time.Duration
	for _, o := range cfg.Outcomes {
		longest = max(longest, o.To.Duration)
	}
	return d + longest
}

func participantID(i int) string { return fmt.Sprintf("sim-%05d", i) }

// Outcome is what happened to one participant.
type Outcome struct {
	ID            string
	Stratum       string
	Assignment    map[string]string
	Row           int
	Disengaged    int // study day they drifted away, -1 never
	OptedOut      bool
	Points        []Point
	Reports       int // self-reports answered
	Requests      int // self-reports asked for
	Opened        int
	Completed     int
	ReportsByDay  []int
	RequestsByDay []int
	OpenedByDay   []int
}

// Point is one decision as the report needs it.
type Point struct {
	Day        int
	DP         int // index into the study's decision points
	Hour       int // participant-local hour
	Action     string
	Available  bool
	Reasons    []string // unavailable reasons
	Safety     []string
	Factors    []FactorLevel // within-person factors, in the study's order (randomised points only)
	Outcome    float64       // the primary proximal outcome (NaN: missing)
	Randomised bool
	At         time.Time
	// Trigger and Phase are the record's; Missed: the trial clock did not
	// decide the point within its window.
	Trigger string
	Phase   string
	Missed  bool
	// The delivery funnel of a deliver decision: Sent, a channel accepted
	// it (or the app's answer held it); Delivered, the phone received it;
	// Opened and Completed, the participant's engagement.
	Sent, Delivered, Opened, Completed bool
}

// FactorLevel is a within-person factor's draw.
type FactorLevel struct {
	Level int
	Prob  float64
}

// Simulate runs the cohort through the engine.
func Simulate(ctx context.Context, o Options) (_ *Run, err error) {
	if o.Study == nil {
		return nil, errors.New("simulate: no study")
	}
	if o.Participants < 1 || o.Days < 1 {
		return nil, fmt.Errorf("simulate: need at least one participant and one day (got %d and %d)", o.Participants, o.Days)
	}
	if err := o.Cohort.checkAgainst(o.Study.Config); err != nil {
		return nil, err
	}
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	tz := o.Cohort.Timezone
	if tz == "" {
		tz = o.Study.Config.Timezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("simulate: time zone %q: %w", tz, err)
	}
	began := time.Now()
	run := &Run{Options: o, People: make([]*Outcome, o.Participants)}
	var so memstore.Options
	if o.SpillDir != "" {
		sp, err := newSpill(o.SpillDir, o.Participants)
		if err != nil {
			return nil, err
		}
		run.spill = sp
		defer func() {
			if err != nil {
				_ = run.Close()
			}
		}()
		byID := make(map[string]*spillPerson, o.Participants)
		for i, p := range sp.people {
			byID[participantID(i)] = p
		}
		so.OnCommit = func(rec *trial.Record, doc []byte) {
			if p := byID[rec.Participant]; p != nil {
				p.add(rec.Time, rec.ID, doc)
			} else {
				sp.fail(fmt.Errorf("simulate: decision %s for unknown participant %q", rec.ID, rec.Participant))
			}
		}
		if !o.keepRecords {
			so.Retain = spillRetain(o.Study.Config)
		}
	}
	store := memstore.NewWithOptions(so)
	run.Store = store
	sims := make([]*sim, o.Participants)
	y, m, d := o.Start.Date()
	start := time.Date(y, m, d, 0, 0, 0, 0, loc)
	study := simulatedStudy(o.Study)
	for i := range sims {
		s, err := newSim(ctx, &o, study, store, i, loc, start)
		if err != nil {
			return nil, err
		}
		if run.spill != nil {
			s.spill = run.spill.people[i]
		}
		sims[i] = s
		run.People[i] = s.out
	}
	total := o.Participants * o.Days
	var done atomic.Int64
	jobs := make(chan *sim)
	errs := make([]error, o.Participants)
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(o.Workers, o.Participants) {
		wg.Go(func() {
			for s := range jobs {
				err := s.run(cctx, func() {
					n := done.Add(1)
					if o.Progress != nil {
						o.Progress(int(n), total)
					}
				})
				if err != nil {
					errs[s.index] = err
					cancel()
				}
			}
		})
	}
feed:
	for _, s := range sims {
		select {
		case jobs <- s:
		case <-cctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	// The first failure, not the cancellations it caused.
	var first error
	for _, err := range errs {
		if err != nil && (first == nil || errors.Is(first, context.Canceled) && !errors.Is(err, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	run.Wall = time.Since(began)
	return run, nil
}

// sim is one participant's timeline.
type sim struct {
	o       *Options
	cfg     *policies.Config
	index   int
	id      string
	eng     *engine.Engine
	now     time.Time
	rng     *rand.Rand
	loc     *time.Location
	start   time.Time
	p       person
	out     *Outcome
	queue   actions
	seq     int
	evn     int
	pending []effect // deliveries whose effect awaits the next self-report
	reports []report
	today   *day
	prevDay day
	within  []policies.Factor
	inUse   bool // the phone was in use at the last context report
	// view is the store as the participant's engine sees it (clock.go);
	// rt and part are their study and enrolment.
	view *clockView
	rt   *engine.StudyRuntime
	part *trial.Participant
	// dpIndex maps decision point ids to their index in the study.
	dpIndex map[string]int
	// points maps the ids of decisions awaiting the phone to their index
	// in out.Points; sent holds those decisions; inbox is what the phone
	// received in the clock's current step.
	points map[string]int
	sent   map[string]*trial.Record
	inbox  []*delivery.Message
	// downUntil is when the trial clock's current outage ends.
	downUntil time.Time
	// reqContext goes with the next decision request; lastCtx is the last
	// context event.
	reqContext, lastCtx map[string]any
	engaged             []engagement
	spill               *spillPerson // nil: the store keeps the records
}

type engagement struct {
	at     time.Time
	status string
}

type effect struct {
	at     time.Time
	stress float64
	mood   float64
}

type report struct {
	at     time.Time
	values map[string]float64
}

// stream derives a per-participant seed.
func stream(seed uint64, index int, what string) [32]byte {
	var b [8 + 8]byte
	binary.LittleEndian.PutUint64(b[:8], seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(index))
	return sha256.Sum256(append([]byte("jitai-simulate/"+what+"/"), b[:]...))
}

func newSim(ctx context.Context, o *Options, study *policies.Study, store *memstore.Store, i int, loc *time.Location, start time.Time) (*sim, error) {
	s := &sim{o: o, cfg: o.Study.Config, index: i, id: participantID(i), loc: loc, start: start,
		dpIndex: map[string]int{}, points: map[string]int{}, sent: map[string]*trial.Record{}}
	for j, dp := range s.cfg.DecisionPoints {
		s.dpIndex[dp.ID] = j
	}
	seed := stream(o.Seed, i, "person")
	s.rng = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:16])))
	s.now = start
	s.view = newClockView(store, s.cfg.ID, s.id)
	eng, err := engine.New(engine.Components{
		Store:    s.view,
		Studies:  []*policies.Study{study},
		Now:      func() time.Time { return s.now },
		Rand:     rand.NewChaCha8(stream(o.Seed, i, "ids")),
		Channels: s.phoneChannels,
		// One worker: the participant's clock works in their goroutine's
		// order, so the run is the same whatever the machine.
		Clock: engine.ClockOptions{Workers: 1},
		// Each app point and time is asked once; no idempotency entries
		// (the store keeps those whatever it retains).
		NoDerivedKeys: true,
	})
	if err != nil {
		return nil, fmt.Errorf("simulate: building the engine: %w", err)
	}
	s.eng = eng
	s.rt, _ = eng.Study(s.cfg.ID)
	s.within = s.cfg.FactorsOf(policies.Within)
	s.p = newPerson(&o.Cohort, s.rng, o.Days)
	strata := map[string]string{}
	for _, name := range s.cfg.Strata {
		vals := o.Cohort.Strata[name]
		if len(vals) == 0 {
			vals = []string{"a", "b"}
		}
		strata[name] = vals[i%len(vals)]
	}
	p, _, err := eng.Enroll(ctx, s.cfg.ID, engine.EnrollRequest{ParticipantID: s.id, Timezone: loc.String(), Strata: strata})
	if err != nil {
		return nil, fmt.Errorf("simulate: enrolling %s: %w", s.id, err)
	}
	s.part = p
	s.view.commits = nil
	s.out = &Outcome{ID: s.id, Stratum: p.Stratum, Assignment: p.Assignment, Row: p.Row, Disengaged: s.p.disengageDay, OptedOut: s.p.optOut,
		ReportsByDay: make([]int, o.Days), RequestsByDay: make([]int, o.Days), OpenedByDay: make([]int, o.Days)}
	return s, nil
}

// action kinds.
const (
	actDayStart = iota
	actWake
	actContext
	actDecide
	actEvent
	actReport
)

type action struct {
	at   time.Time
	seq  int
	kind int
	dp   int
	evs  []trial.Event
}

type actions []action

func (a actions) Len() int { return len(a) }
func (a actions) Less(i, j int) bool {
	if c := a[i].at.Compare(a[j].at); c != 0 {
		return c < 0
	}
	return a[i].seq < a[j].seq
}
func (a actions) Swap(i, j int) { a[i], a[j] = a[j], a[i] }
func (a *actions) Push(x any)   { *a = append(*a, x.(action)) }
func (a *actions) Pop() any {
	old := *a
	x := old[len(old)-1]
	*a = old[:len(old)-1]
	return x
}

func (s *sim) push(a action) {
	s.seq++
	a.seq = s.seq
	heap.Push(&s.queue, a)
}

func (s *sim) localDate(d int) time.Time {
	y, m, dd := s.start.Date()
	return time.Date(y, m, dd+d, 0, 0, 0, 0, s.loc)
}

func (s *sim) run(ctx context.Context, dayDone func()) error {
	end := s.localDate(s.o.Days)
	s.push(action{at: s.localDate(0), kind: actDayStart})
	var lastTick time.Time
	for s.queue.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		// The trial clock runs first at its instants, but for the day's
		// start (a point at midnight belongs to the day that starts).
		next, err := s.nextTick(ctx)
		if err != nil {
			return fmt.Errorf("simulate: participant %d: %w", s.index, err)
		}
		if top := s.queue[0]; !next.IsZero() && next.Before(end) && (next.Before(top.at) || next.Equal(top.at) && top.kind != actDayStart) {
			if down, err := s.down(ctx, next); err != nil || down {
				if err != nil {
					return fmt.Errorf("simulate: participant %d: %w", s.index, err)
				}
				continue
			}
			if next.Equal(lastTick) {
				return fmt.Errorf("simulate: participant %d: the trial clock makes no progress at %s", s.index, next.Format(time.RFC3339))
			}
			lastTick, s.now = next, next
			if err := s.tick(ctx); err != nil {
				return fmt.Errorf("simulate: participant %d, day %d: %w", s.index, s.today.index, err)
			}
			continue
		}
		a := heap.Pop(&s.queue).(action)
		if !a.at.Before(end) {
			break
		}
		s.now = a.at
		if err := s.act(ctx, a, dayDone); err != nil {
			return fmt.Errorf("simulate: participant %d, day %d: %w", s.index, s.today.index, err)
		}
	}
	if s.today != nil {
		dayDone()
	}
	s.finish()
	if s.spill != nil {
		return s.spill.finish()
	}
	return nil
}

// act plays one action of the participant's timeline.
func (s *sim) act(ctx context.Context, a action, dayDone func()) error {
	switch a.kind {
	case actDayStart:
		if s.today != nil {
			dayDone()
		}
		s.startDay(s.dayIndex(a.at))
	case actWake:
		return s.wake()
	case actContext:
		return s.context(ctx, a.at, a.dp >= 0)
	case actDecide:
		return s.decide(ctx, a.dp)
	case actEvent:
		return s.ingest(ctx, a.evs)
	case actReport:
		return s.selfReport(ctx, a.dp)
	}
	return nil
}

func (s *sim) dayIndex(t time.Time) int {
	for d := 0; d <= s.o.Days; d++ {
		if s.localDate(d).Equal(t) {
			return d
		}
	}
	return s.o.Days
}

func (s *sim) startDay(d int) {
	c := &s.o.Cohort
	r := s.rng
	prev := s.prevDay
	if s.today != nil {
		prev = *s.today
	}
	date := s.localDate(d)
	td := &day{date: date, index: d, disengaged: s.p.disengageDay >= 0 && d >= s.p.disengageDay}
	td.sleepQuality = clip10(c.Sleep.QualityMean + c.Sleep.QualitySD*r.NormFloat64())
	td.stressShift = c.Stress.DayCorr*prev.stressShift + c.Stress.DaySD*math.Sqrt(1-c.Stress.DayCorr*c.Stress.DayCorr)*r.NormFloat64()
	td.moodShift = c.Mood.DayCorr*prev.moodShift + c.Mood.DaySD*math.Sqrt(1-c.Mood.DayCorr*c.Mood.DayCorr)*r.NormFloat64()
	td.wake = date.Add(minutes(s.p.wake + c.Sleep.SDMinutes*r.NormFloat64()))
	weekday := date.Weekday() != time.Saturday && date.Weekday() != time.Sunday
	if s.p.commuter && weekday {
		for _, at := range []string{c.Driving.MorningStart, c.Driving.EveningStart} {
			m, _ := trial.ParseClock(at)
			from := date.Add(minutes(float64(m) + c.Driving.JitterMinutes*r.NormFloat64()))
			td.trips = append(td.trips, [2]time.Time{from, from.Add(minutes(c.Driving.DurationMinutes))})
		}
	}
	for n := poisson(r, c.Driving.TripsPerDay); n > 0; n-- {
		from := date.Add(minutes(600 + 600*r.Float64()))
		td.trips = append(td.trips, [2]time.Time{from, from.Add(minutes(c.Driving.DurationMinutes * (0.5 + r.Float64())))})
	}
	s.prevDay = prev
	s.today = td
	if td.disengaged && d == s.p.disengageDay && s.p.optOut {
		s.queueEvent(date.Add(12*time.Hour), trial.EventPreference, map[string]any{"opt_out": true})
	}
	s.push(action{at: td.wake, kind: actWake})
	// The app reports the context before each scheduled point, which the
	// trial clock decides at its instant; app points are asked for.
	for _, pt := range s.rt.Occurrences(s.part, s.loc, date, s.localDate(d+1)) {
		// (never before the day starts: the simulated clock only advances)
		at := pt.At.Add(-2 * time.Minute)
		if at.Before(date) {
			at = date
		}
		s.push(action{at: at, kind: actContext, dp: s.dpIndex[pt.DecisionPoint]})
	}
	for i, dp := range s.cfg.DecisionPoints {
		if dp.Kind != "app" {
			continue // scheduled and event points are the engine's
		}
		// An app-requested point: on half the days, at a random time
		// between 09:00 and 21:00.
		if r.Float64() >= 0.5 {
			continue
		}
		at := date.Add(minutes(540 + 720*r.Float64())).Truncate(time.Minute)
		s.push(action{at: at.Add(-2 * time.Minute), kind: actContext, dp: -1})
		s.push(action{at: at, kind: actDecide, dp: i})
	}
	s.push(action{at: s.localDate(d + 1), kind: actDayStart})
}

func poisson(r *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// probs are the person's engagement probabilities today.
func (s *sim) factor() float64 {
	if s.today.disengaged {
		return s.o.Cohort.Disengagement.Factor
	}
	return 1
}

func (s *sim) nextEventID(kind string) string {
	s.evn++
	return kind + "-" + strconv.Itoa(s.evn)
}

func (s *sim) queueEvent(at time.Time, typ string, data map[string]any) {
	s.push(action{at: at, kind: actEvent, evs: []trial.Event{s.event(at, typ, data)}})
}

func (s *sim) event(at time.Time, typ string, data map[string]any) trial.Event {
	b, _ := json.Marshal(data)
	return trial.Event{ID: s.nextEventID(typ), Type: typ, Time: at, Data: b}
}

func (s *sim) ingest(ctx context.Context, evs []trial.Event) error {
	if _, _, err := s.eng.Ingest(ctx, s.cfg.ID, s.id, evs); err != nil {
		return fmt.Errorf("ingesting %s events: %w", evs[0].Type, err)
	}
	s.recorded() // an event may open an event point
	return nil
}

// wake: the morning self-report (sleep quality and the usual items) and,
// on questionnaire days, a PHQ-9.
func (s *sim) wake() error {
	c := &s.o.Cohort
	s.push(action{at: s.now, kind: actReport, dp: -1})
	if c.Safety.PHQ9EveryDays > 0 && s.today.index%c.Safety.PHQ9EveryDays == 0 && s.rng.Float64() < s.p.respond*s.factor() {
		items := make([]int, 9)
		low := s.moodNow() < 4
		for j := range 8 {
			items[j] = s.rng.IntN(2)
			if low {
				items[j] += s.rng.IntN(2)
			}
		}
		if s.rng.Float64() < c.Safety.Item9 {
			items[8] = 1 + s.rng.IntN(2)
		}
		s.queueEvent(s.now.Add(20*time.Minute), trial.EventAssessment, map[string]any{"instrument": "phq9", "items": items})
	}
	return nil
}

func (s *sim) moodNow() float64 {
	return level(&s.o.Cohort.Mood, s.p.moodUsual, s.today.moodShift, s.today.sleepQuality, s.now.In(s.loc))
}

// context: the app's context just before a decision point. Before an app
// point it goes with the decision request, and a change of driving or
// location is also reported as a context event, as apps report context
// changes; before a scheduled point, which the trial clock decides from
// what the engine knows, the app reports all of it as a context event.
func (s *sim) context(ctx context.Context, at time.Time, scheduled bool) error {
	local := at.Add(2 * time.Minute).In(s.loc)
	driving := s.today.driving(local)
	activity := "still"
	switch {
	case driving:
		activity = "in_vehicle"
	case s.rng.Float64() < 0.2:
		activity = "walking"
	}
	s.inUse = s.rng.Float64() < s.o.Cohort.Phone.InUse
	location := s.today.location(&s.p, local, s.rng)
	if scheduled {
		s.lastCtx = map[string]any{"driving": driving, "location": location}
		return s.ingest(ctx, []trial.Event{s.event(at, trial.EventContext,
			map[string]any{"driving": driving, "location": location, "activity": activity, "phone_in_use": s.inUse})})
	}
	s.reqContext = map[string]any{"driving": driving, "location": location, "activity": activity, "phone_in_use": s.inUse}
	if s.lastCtx != nil && s.lastCtx["driving"] == driving && s.lastCtx["location"] == location {
		return nil
	}
	s.lastCtx = map[string]any{"driving": driving, "location": location}
	return s.ingest(ctx, []trial.Event{s.event(at, trial.EventContext, map[string]any{"driving": driving, "location": location, "activity": activity})})
}

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding event data: %w", err)
	}
	return b, nil
}
