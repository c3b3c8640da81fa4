package simulate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// The simulator runs the trial clock of production (engine.FireDue and
// engine.DeliverDue) on its simulated clock. Every participant has their
// own engine and clock, so that participants run in parallel and each one's
// timeline depends only on the seed; clockView keeps each engine to its own
// participant: it is the shared store, but its claims (ClaimDue,
// ClaimDeliveries) only ever return that participant's schedule entry and
// deliveries. Everything else (deciding the point at its instant, missing
// it past its window, the outbox, delivery attempts and their log) is the
// engine's own code.

// phoneChannel is the simulated participant's phone: a delivery channel
// that accepts every message and hands it to the participant, who reacts
// to it (engagement events) when the clock has finished its step.
type phoneChannel struct {
	name string
	s    *sim
}

func (p phoneChannel) Name() string { return p.name }

func (p phoneChannel) Send(_ context.Context, m *delivery.Message) (delivery.Result, error) {
	p.s.inbox = append(p.s.inbox, m)
	return delivery.Result{MessageID: "phone-" + m.ID}, nil
}

// phoneChannel is the channel name of a study simulated without a delivery
// section: the simulator delivers its scheduled decisions through it.
const phoneChannelName = "simulated_phone"

// simulatedStudy is the study as the simulator runs it: the same study,
// with a delivery section naming the simulated phone when it has none (a
// study without one expects the app to ask for its decisions; the
// simulated phone stands for that app). Its channels are all the phone.
func simulatedStudy(st *policies.Study) *policies.Study {
	if st.Config.Delivery != nil && len(st.Config.Delivery.Channels) > 0 {
		return st
	}
	cp := *st
	cfg := *st.Config
	cfg.Delivery = &policies.DeliveryConfig{Channels: []string{phoneChannelName}}
	cp.Config = &cfg
	return &cp
}

// phoneChannels builds the study's channels: each one is the phone.
func (s *sim) phoneChannels(st *policies.Study) ([]delivery.Channel, error) {
	var out []delivery.Channel
	for _, name := range st.Config.Delivery.Channels {
		out = append(out, phoneChannel{name: name, s: s})
	}
	return out, nil
}

// clockView is the shared store as one participant's engine sees it: its
// claims return only the participant's schedule entry and deliveries, and
// it tells the participant of every record committed. Only the
// participant's goroutine uses it (the engine's clock runs one worker).
type clockView struct {
	*memstore.Store
	study, participant string
	// queued are the decision ids of the participant's queued deliveries.
	queued map[string]bool
	// commits are the records committed since the participant last looked.
	commits []*trial.Record
}

func newClockView(st *memstore.Store, study, participant string) *clockView {
	return &clockView{Store: st, study: study, participant: participant, queued: map[string]bool{}}
}

// CommitDecision commits c and notes its record and queued delivery.
func (c *clockView) CommitDecision(ctx context.Context, cm *trial.Commit) error {
	if err := c.Store.CommitDecision(ctx, cm); err != nil {
		return err
	}
	c.commits = append(c.commits, cm.Record)
	if cm.Delivery != nil && !cm.Delivery.Terminal() {
		c.queued[cm.Delivery.DecisionID] = true
	}
	return nil
}

// ClaimDue claims the participant's schedule entry if it is due: the
// store's Complete moves it to now+lease as the store's own claim would.
func (c *clockView) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]trial.Due, error) {
	e, err := c.Store.ScheduleEntry(ctx, c.study, c.participant)
	if errors.Is(err, trial.ErrNotFound) || err == nil && (e.At.After(now) || limit < 1) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	until := now.Add(lease)
	claim := *e
	claim.Lease = e.At
	if err := c.Store.Complete(ctx, claim, e.From, until); err != nil {
		return nil, err
	}
	d := *e
	d.Lease = until
	return []trial.Due{d}, nil
}

// ClaimDeliveries claims the participant's due queued deliveries, oldest
// decision id first.
func (c *clockView) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*trial.Delivery, error) {
	var out []*trial.Delivery
	for _, id := range c.sortedQueued() {
		if len(out) >= limit {
			break
		}
		d, err := c.Store.Delivery(ctx, c.study, c.participant, id)
		if err != nil {
			return nil, err
		}
		if d.Terminal() {
			delete(c.queued, id)
			continue
		}
		if d.NextAttempt.After(now) {
			continue
		}
		before := *d
		d.NextAttempt = now.Add(lease)
		if err := c.Store.SaveDelivery(ctx, d); err != nil {
			return nil, err
		}
		out = append(out, &before)
	}
	return out, nil
}

// SaveDelivery stores an attempt's outcome; a terminal one leaves the
// participant's queue.
func (c *clockView) SaveDelivery(ctx context.Context, d *trial.Delivery) error {
	if err := c.Store.SaveDelivery(ctx, d); err != nil {
		return err
	}
	if d.Terminal() {
		delete(c.queued, d.DecisionID)
	} else {
		c.queued[d.DecisionID] = true
	}
	return nil
}

func (c *clockView) sortedQueued() []string {
	ids := make([]string, 0, len(c.queued))
	for id := range c.queued {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// next is when the participant's clock has work next: the earlier of their
// schedule entry and their queued deliveries' next attempts (zero: none).
func (c *clockView) next(ctx context.Context) (time.Time, error) {
	var at time.Time
	e, err := c.Store.ScheduleEntry(ctx, c.study, c.participant)
	switch {
	case err == nil:
		at = e.At
	case !errors.Is(err, trial.ErrNotFound):
		return time.Time{}, err
	}
	for _, id := range c.sortedQueued() {
		d, err := c.Store.Delivery(ctx, c.study, c.participant, id)
		if err != nil {
			return time.Time{}, err
		}
		if d.Terminal() {
			delete(c.queued, id)
			continue
		}
		if at.IsZero() || d.NextAttempt.Before(at) {
			at = d.NextAttempt
		}
	}
	return at, nil
}

// tick runs the trial clock at the simulated now: it fires the due points
// and delivers the queued decisions, as `jitai serve` does every second,
// then plays out what the participant saw.
func (s *sim) tick(ctx context.Context) error {
	if _, err := s.eng.FireDue(ctx); err != nil {
		return fmt.Errorf("trial clock: %w", err)
	}
	s.recorded()
	if _, err := s.eng.DeliverDue(ctx); err != nil {
		return fmt.Errorf("trial clock: %w", err)
	}
	inbox := s.inbox
	s.inbox = nil
	for _, m := range inbox {
		rec := s.sent[m.DecisionID]
		if rec == nil {
			return fmt.Errorf("the phone received decision %s, which the participant never had", m.DecisionID)
		}
		delete(s.sent, m.DecisionID)
		s.received(rec)
	}
	return nil
}

// nextTick is when the participant's clock has work next, never before
// now nor while the clock is down (zero: none).
func (s *sim) nextTick(ctx context.Context) (time.Time, error) {
	at, err := s.view.next(ctx)
	if err != nil || at.IsZero() {
		return at, err
	}
	if at.Before(s.now) {
		at = s.now
	}
	if at.Before(s.downUntil) {
		at = s.downUntil
	}
	return at, nil
}

// down reports whether the trial clock goes down at instant at, when the
// participant's schedule falls due (Cohort.Clock.Outage): it then stays
// down for the study's decision_ttl and a minute, past the due point's
// window.
func (s *sim) down(ctx context.Context, at time.Time) (bool, error) {
	p := s.o.Cohort.Clock.Outage
	if p <= 0 || !s.downUntil.IsZero() && !at.After(s.downUntil) {
		return false, nil
	}
	e, err := s.view.Store.ScheduleEntry(ctx, s.cfg.ID, s.id)
	if errors.Is(err, trial.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if e.At.After(at) || s.rng.Float64() >= p {
		return false, nil
	}
	s.downUntil = at.Add(s.cfg.DecisionTTL.Duration + time.Minute)
	return true, nil
}
