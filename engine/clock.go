package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/engine/schedule"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"go.uber.org/zap"
)

// ClockOptions tune the trial clock (zero values take the defaults).
type ClockOptions struct {
	// Lease is how long a claimed schedule entry or delivery stays with the
	// engine that claimed it before another engine may take it (30s).
	Lease time.Duration
	// Batch is how many entries one claim takes (256).
	Batch int
	// Workers decide (and deliver) claimed entries concurrently (32).
	Workers int
	// Recheck bounds how long a participant's entry waits: a study reload
	// that adds an earlier point is seen within it (6h).
	Recheck time.Duration
	// Tick is how often an idle clock looks for due work (1s).
	Tick time.Duration
}

func (o *ClockOptions) setDefaults() {
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.Recheck <= 0 {
		o.Recheck = 6 * time.Hour
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
}

// horizon is how far ahead the clock looks for a participant's next point.
const horizon = 8 * 24 * time.Hour

// pointHash is the request hash stored with the decision of a scheduled
// point: the point's key says everything, so every request for the point
// (the clock's, a retry's, the app's) matches it.
const pointHash = "scheduled-point"

// ErrNoClock: the store does not keep a schedule (trial.Clock).
var ErrNoClock = errors.New("the store does not support the trial clock")

// RunClock runs the trial clock until ctx ends: it fires due scheduled
// points and delivers queued decisions, looking for work every Tick when
// idle. Every engine on a shared store may run it: claims are atomic.
func (e *Engine) RunClock(ctx context.Context) error {
	if e.clock == nil {
		return ErrNoClock
	}
	if err := e.adoptParticipants(ctx); err != nil && ctx.Err() == nil {
		e.log.Warn("trial clock: scheduling participants enrolled before the clock", zap.Error(err))
	}
	t := time.NewTicker(e.clockOpts.Tick)
	defer t.Stop()
	var out outage
	for {
		busy := false
		n, ferr := e.FireDue(ctx)
		out.report(ctx, e.log, "firing due points", ferr)
		busy = busy || n >= e.clockOpts.Batch
		m, derr := e.DeliverDue(ctx)
		out.report(ctx, e.log, "delivering", derr)
		if ferr == nil && derr == nil {
			out.back(e.log)
		}
		busy = busy || m >= e.clockOpts.Batch
		if busy {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// outage logs the trial clock's failures: each other failure, but an
// unavailable store (down, or refusing writes on a full or read-only disk)
// once until a round succeeds, not once a tick.
type outage struct{ down bool }

func (o *outage) report(ctx context.Context, log *zap.Logger, what string, err error) {
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, trial.ErrUnavailable):
		if !o.down {
			o.down = true
			log.Warn("trial clock: the store is unavailable; retrying every tick", zap.String("while", what), zap.Error(err))
		}
	default:
		log.Warn("trial clock: "+what, zap.Error(err))
	}
}

func (o *outage) back(log *zap.Logger) {
	if o.down {
		o.down = false
		log.Info("trial clock: the store is available again")
	}
}

// adoptParticipants puts on the clock the active participants of studies
// with scheduled points who have no schedule entry: those enrolled before
// the engine had a trial clock (or before their study had scheduled
// points). Their points count from now: earlier ones were the app's to ask
// for, and are not recorded as missed.
func (e *Engine) adoptParticipants(ctx context.Context) error {
	now := e.now()
	for _, rt := range e.Studies() {
		if !hasScheduled(rt.Config) {
			continue
		}
		ps, err := e.store.Participants(ctx, rt.Config.ID)
		if err != nil {
			return fmt.Errorf("listing participants of %s: %w", rt.Config.ID, err)
		}
		for _, p := range ps {
			if p.Status != trial.StatusActive {
				continue
			}
			if _, err := e.clock.ScheduleEntry(ctx, p.Study, p.ID); !errors.Is(err, trial.ErrNotFound) {
				if err != nil {
					return fmt.Errorf("reading schedule: %w", err)
				}
				continue
			}
			next := e.nextDue(rt, p, e.location(rt, p), now)
			if next.IsZero() {
				continue
			}
			if err := e.clock.Touch(ctx, p.Study, p.ID, next, now.Add(time.Nanosecond)); err != nil {
				return fmt.Errorf("scheduling participant: %w", err)
			}
		}
	}
	return nil
}

// FireDue claims the participants whose scheduled work is due now and
// handles each one's points up to now: a point still inside its window is
// decided (at its own instant, from the state as of then) and queued for
// delivery; a point past its window is recorded as missed. It returns how
// many participants it handled. A participant whose handling fails keeps
// its claim until the lease ends, and is then handled again from where it
// stood: the points' keys make every retry resolve to the same records.
func (e *Engine) FireDue(ctx context.Context) (int, error) {
	if e.clock == nil {
		return 0, ErrNoClock
	}
	now := e.now()
	dues, err := e.clock.ClaimDue(ctx, now, e.clockOpts.Lease, e.clockOpts.Batch)
	if err != nil {
		return 0, fmt.Errorf("claiming due points: %w", err)
	}
	errs := e.parallel(len(dues), func(i int) error { return e.runDue(ctx, dues[i], now) })
	return len(dues), errors.Join(errs...)
}

// parallel runs f(0..n-1) on the clock's workers and returns the errors.
func (e *Engine) parallel(n int, f func(i int) error) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan int)
	for range min(e.clockOpts.Workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := f(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return errs
}

// runDue handles one claimed participant.
func (e *Engine) runDue(ctx context.Context, d trial.Due, now time.Time) error {
	rt, release, ok := e.acquire(d.Study)
	defer release()
	if !ok {
		// The study is not loaded here (now): look again later.
		return e.clock.Complete(ctx, d, d.From, now.Add(e.clockOpts.Recheck))
	}
	p, err := e.store.Participant(ctx, d.Study, d.Participant)
	if errors.Is(err, trial.ErrNotFound) {
		return e.clock.Complete(ctx, d, d.From, time.Time{})
	}
	if err != nil {
		return fmt.Errorf("trial clock: reading participant: %w", err)
	}
	if p.Status == trial.StatusWithdrawn {
		return e.clock.Complete(ctx, d, d.From, time.Time{})
	}
	loc := e.location(rt, p)
	from := d.From
	if from.IsZero() || from.Before(p.EnrolledAt) {
		from = p.EnrolledAt
	}
	until := now.Add(time.Nanosecond)
	for _, pt := range rt.Occurrences(p, loc, from, until) {
		if _, err := e.firePoint(ctx, rt, p, loc, pt, now, nil); err != nil {
			return err
		}
	}
	return e.clock.Complete(ctx, d, until, e.nextDue(rt, p, loc, now))
}

// nextDue is when the participant's entry is due next: their next point,
// no later than Recheck from now; zero once their schedule has ended.
func (e *Engine) nextDue(rt *StudyRuntime, p *trial.Participant, loc *time.Location, now time.Time) time.Time {
	recheck := now.Add(e.clockOpts.Recheck)
	next := rt.Occurrences(p, loc, now.Add(time.Nanosecond), now.Add(horizon))
	if len(next) > 0 {
		if next[0].At.Before(recheck) {
			return next[0].At
		}
		return recheck
	}
	if !hasScheduled(rt.Config) {
		return time.Time{}
	}
	if phase, _, _ := schedule.PhaseAt(rt.Config, p, loc, now.Add(horizon)); phase == policies.PhaseCompleted {
		return time.Time{}
	}
	return recheck
}

// hasScheduled reports whether the study has scheduled decision points.
func hasScheduled(cfg *policies.Config) bool {
	for i := range cfg.DecisionPoints {
		if cfg.DecisionPoints[i].Kind == "scheduled" {
			return true
		}
	}
	return false
}

// location is the participant's time zone (the study's if theirs no longer
// loads).
func (e *Engine) location(rt *StudyRuntime, p *trial.Participant) *time.Location {
	loc, err := e.zones.load(p.Timezone)
	if err != nil {
		return rt.Location
	}
	return loc
}

// firePoint resolves one scheduled point to its one record: the recorded
// decision if there is one, else a decision at the point's instant if now is
// inside its window, else a missed record. app is the app's request when the
// app asked for it: its context is used, and the decision is in the app's
// answer, so nothing is pushed.
func (e *Engine) firePoint(ctx context.Context, rt *StudyRuntime, p *trial.Participant, loc *time.Location, pt schedule.Point, now time.Time, app *DecideRequest) (*Answer, error) {
	return e.firePointOf(ctx, rt, p, loc, pt, now, app, nil)
}

// firePointOf is firePoint for a scheduled point (ev nil) or an event point
// opened by ev (pt.LocalDate then names the event: "event:<id>").
func (e *Engine) firePointOf(ctx context.Context, rt *StudyRuntime, p *trial.Participant, loc *time.Location, pt schedule.Point, now time.Time, app *DecideRequest, ev *trial.Event) (*Answer, error) {
	answered := app != nil
	trigger := trial.TriggerScheduled
	if ev != nil {
		trigger = trial.TriggerEvent
	}
	dp, ok := rt.Config.DecisionPoint(pt.DecisionPoint)
	if !ok {
		return nil, fmt.Errorf("trial clock: study %s has no decision point %q", rt.Config.ID, pt.DecisionPoint)
	}
	key := schedule.PointKey(rt.Config.ID, p.ID, pt.DecisionPoint, pt.LocalDate)
	missed := !now.Before(pt.At.Add(decision.TTL(rt.Runtime, dp)))
	decisionID := e.ids.next(pt.At)
	start := time.Now()
	ans, err := e.commitKeyed(ctx, rt, p.ID, key, pointHash, nil, func(snap *trial.Snapshot) (*trial.Commit, []byte, error) {
		if missed {
			rec := decision.Missed(rt.Runtime, snap.Participant, pt, loc, decisionID)
			rec.Trigger = trigger
			rec.RecordedAt = e.now().UTC().Truncate(time.Microsecond)
			rec.IdempotencyKey = key
			body, err := e.answerBody(rt, rec, nil, snap.Participant.Region)
			return &trial.Commit{Record: rec}, body, err
		}
		req := &DecideRequest{DecisionPoint: dp.ID, Time: pt.At, IdempotencyKey: key,
			trigger: trigger, scheduledAt: pt.At, event: ev}
		if ev != nil {
			req.eventID = ev.ID
		}
		if app != nil {
			req.Context = app.Context // what the phone knows now
		}
		rec, st, body, err := e.decide(ctx, rt, dp, snap, req, decisionID, start)
		if err != nil {
			return nil, nil, err
		}
		return &trial.Commit{Record: rec, State: st, Delivery: e.newDelivery(rt, rec, answered, body, snap.Participant.Region)}, body, nil
	})
	if err != nil {
		return nil, fmt.Errorf("trial clock: point %s of %s on %s: %w", pt.DecisionPoint, p.ID, pt.LocalDate, err)
	}
	if ans.Replayed && !answered {
		// A retried firing: the commit may have outrun its outbox index
		// and, on Redis Cluster, its study-wide index (Requeue repairs
		// both; a decision without a delivery is ErrNotFound).
		if err := e.clock.Requeue(ctx, rt.Config.ID, p.ID, ans.decisionID); err != nil && !errors.Is(err, trial.ErrNotFound) {
			return nil, fmt.Errorf("trial clock: requeueing delivery: %w", err)
		}
	}
	if !ans.Replayed && ans.Record != nil {
		e.observePoint(rt.Config.ID, ans.Record)
	}
	return ans, nil
}

// commitKeyed commits the one decision of an idempotency key: it returns
// the stored answer if the key has one, or commits what produce makes from
// the participant's snapshot (re-reading on a concurrent change), under the
// participant's lock. check, if set, may refuse the request after a stored
// answer is replayed and before a withdrawn participant is.
func (e *Engine) commitKeyed(ctx context.Context, rt *StudyRuntime, participant, key, reqHash string, check func(*trial.Snapshot) error, produce func(*trial.Snapshot) (*trial.Commit, []byte, error)) (*Answer, error) {
	study := rt.Config.ID
	unlock := e.lock(study, participant)
	defer unlock()
	for attempt := 0; attempt < maxAttempts; attempt++ {
		t0 := time.Now()
		snap, err := e.store.Snapshot(ctx, study, participant, key)
		e.observeStore(StoreOpSnapshot, t0, err)
		if errors.Is(err, trial.ErrNotFound) {
			return nil, ErrUnknownParticipant
		}
		if err != nil {
			return nil, fmt.Errorf("reading participant state: %w", err)
		}
		if snap.Replay != nil {
			if snap.Replay.RequestHash != reqHash {
				return nil, ErrIdempotencyMismatch
			}
			return &Answer{Body: snap.Replay.Response, Replayed: true, decisionID: snap.Replay.DecisionID}, nil
		}
		if check != nil {
			if err := check(snap); err != nil {
				return nil, err
			}
		}
		if snap.Participant.Status == trial.StatusWithdrawn {
			return nil, ErrWithdrawn
		}
		c, body, err := produce(snap)
		if err != nil {
			return nil, err
		}
		if key != "" {
			c.Idempotency = &trial.IdempotencyEntry{Key: key, RequestHash: reqHash, DecisionID: c.Record.ID, Response: body, CreatedAt: c.Record.RecordedAt}
		}
		t0 = time.Now()
		err = e.store.CommitDecision(ctx, c)
		e.observeStore(StoreOpCommit, t0, err)
		switch {
		case err == nil:
			e.notify(rt, c.Record)
			e.shadowDecision(c.Record)
			e.recordHealth(c.Record)
			return &Answer{Body: body, Record: c.Record, decisionID: c.Record.ID}, nil
		case errors.Is(err, trial.ErrConflict), errors.Is(err, trial.ErrIdempotencyReplay):
			continue // re-read: the same decision id keeps the draws the same
		default:
			return nil, fmt.Errorf("recording decision: %w", err)
		}
	}
	return nil, fmt.Errorf("recording decision: %w after %d attempts", trial.ErrConflict, maxAttempts)
}

// newDelivery is the delivery log a decision starts with: queued in the
// outbox when the study delivers and the decision has something to deliver;
// answered when the app asked for it. Nil when there is nothing to deliver.
func (e *Engine) newDelivery(rt *StudyRuntime, rec *trial.Record, answered bool, answer []byte, region string) *trial.Delivery {
	if rt.Config.Delivery == nil || (rec.Action != trial.ActionDeliver && rec.Action != trial.ActionSafety) {
		return nil
	}
	d := &trial.Delivery{ID: rec.ID, Study: rec.Study, Participant: rec.Participant, DecisionID: rec.ID,
		DecisionPoint: rec.DecisionPoint, ScheduledAt: rec.ScheduledAt, DecidedAt: rec.RecordedAt, ExpiresAt: rec.ExpiresAt,
		Trigger: rec.Trigger, Time: rec.Time, Action: rec.Action}
	switch {
	case rec.Action == trial.ActionSafety:
		cr := e.crisisFor(rt, region)
		d.Title, d.Body = cr.Title, cr.Text
	case rec.Intervention != nil:
		d.Title, d.Body = rec.Intervention.Title, rec.Intervention.Body
	}
	if !answered {
		d.Answer = append(json.RawMessage(nil), answer...)
	}
	if answered {
		d.Status, d.SentAt, d.Channel = trial.DeliveryAnswered, rec.RecordedAt, "answer"
		return d
	}
	d.Status, d.QueuedAt, d.NextAttempt = trial.DeliveryQueued, rec.RecordedAt, rec.RecordedAt
	return d
}

// scheduleParticipant puts a newly enrolled (or changed) participant on the
// trial clock: due at their next point, at the latest by Recheck.
func (e *Engine) scheduleParticipant(ctx context.Context, rt *StudyRuntime, p *trial.Participant, at time.Time) error {
	if e.clock == nil || !hasScheduled(rt.Config) {
		return nil
	}
	if at.IsZero() {
		at = e.nextDue(rt, p, e.location(rt, p), p.EnrolledAt.Add(-time.Nanosecond))
		if at.IsZero() {
			return nil
		}
	}
	if err := e.clock.Touch(ctx, p.Study, p.ID, at, p.EnrolledAt); err != nil {
		return fmt.Errorf("scheduling participant: %w", err)
	}
	return nil
}

// scheduledPoint is the occurrence of scheduled point dp that an app's
// request at t refers to: the latest at or before t whose window is open,
// else the point of t's local date. It answers 422 naming time when the
// point is not due yet or the participant has no such point that day.
func (e *Engine) scheduledPoint(rt *StudyRuntime, p *trial.Participant, dp *policies.DecisionPoint, t time.Time) (schedule.Point, *time.Location, error) {
	loc := e.location(rt, p)
	var latest, sameDay *schedule.Point
	date := t.In(loc).Format(time.DateOnly)
	for _, pt := range rt.Occurrences(p, loc, t.Add(-2*24*time.Hour), t.Add(2*24*time.Hour)) {
		if pt.DecisionPoint != dp.ID {
			continue
		}
		if !pt.At.After(t) {
			latest = &pt
		}
		if pt.LocalDate == date && sameDay == nil {
			sameDay = &pt
		}
	}
	open := latest != nil && t.Before(latest.At.Add(decision.TTL(rt.Runtime, dp)))
	switch {
	case open:
		return *latest, loc, nil
	case sameDay != nil && sameDay.At.After(t):
		return schedule.Point{}, nil, trial.InputErrorf("time", "decision point %s is scheduled for this participant at %s (%s local) on %s; it cannot be decided before then",
			dp.ID, sameDay.At.Format(time.RFC3339), sameDay.At.In(loc).Format("15:04"), sameDay.LocalDate)
	case sameDay != nil:
		return *sameDay, loc, nil
	}
	return schedule.Point{}, nil, trial.InputErrorf("time", "participant has no scheduled decision point %s on %s (its days, study days or the participant's phase leave it out)", dp.ID, date)
}
