package memstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// clockState is the trial clock's part of the store (trial.Clock): the
// schedule and the outbox with the delivery logs. Its lock is taken after
// a participant shard's lock, never before (a commit writes its delivery
// under both).
type clockState struct {
	mu      sync.Mutex
	entries map[key]*trial.Due
	due     queue[key]
	// deliveries: (study, participant) -> decision id -> delivery log.
	deliveries map[key]map[string]*trial.Delivery
	outbox     queue[deliveryKey]
}

type deliveryKey struct{ study, participant, decision string }

func newClockState() clockState {
	return clockState{
		entries:    map[key]*trial.Due{},
		due:        newQueue[key](),
		deliveries: map[key]map[string]*trial.Delivery{},
		outbox:     newQueue[deliveryKey](),
	}
}

// Touch inserts the participant's schedule entry or lowers its At
// (trial.Schedule).
func (s *Store) Touch(ctx context.Context, study, participant string, at, from time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	c := &s.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key{study, participant}
	e := c.entries[k]
	if e == nil {
		c.entries[k] = &trial.Due{Study: study, Participant: participant, At: at, From: from}
		c.due.set(k, at)
		return nil
	}
	if at.Before(e.At) {
		e.At = at
		c.due.set(k, at)
	}
	return nil
}

// ClaimDue claims up to limit due entries in At order (trial.Schedule).
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]trial.Due, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	c := &s.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	until := now.Add(lease)
	var out []trial.Due
	for len(out) < limit {
		k, at, ok := c.due.first()
		if !ok || at.After(now) {
			break
		}
		e := c.entries[k]
		d := *e
		e.At, e.Lease = until, until
		c.due.set(k, until)
		d.Lease = until
		out = append(out, d)
	}
	return out, nil
}

// Complete ends a claim (trial.Schedule). An entry removed meanwhile
// (Unschedule) stays removed.
func (s *Store) Complete(ctx context.Context, d trial.Due, from, next time.Time) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	c := &s.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key{d.Study, d.Participant}
	e := c.entries[k]
	if e == nil {
		return nil
	}
	e.From = from
	switch {
	case e.At.Equal(d.Lease) && next.IsZero():
		delete(c.entries, k)
		c.due.remove(k)
	case e.At.Equal(d.Lease):
		e.At, e.Lease = next, time.Time{}
		c.due.set(k, next)
	case !next.IsZero() && next.Before(e.At):
		e.At = next
		c.due.set(k, next)
	}
	return nil
}

// Unschedule removes the participant's schedule entry (trial.Schedule).
func (s *Store) Unschedule(ctx context.Context, study, participant string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	s.clock.unschedule(key{study, participant})
	return nil
}

func (c *clockState) unschedule(k key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, k)
	c.due.remove(k)
}

// ScheduleEntry returns one schedule entry or ErrNotFound (trial.Schedule).
func (s *Store) ScheduleEntry(ctx context.Context, study, participant string) (*trial.Due, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	c := &s.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key{study, participant}]
	if e == nil {
		return nil, fmt.Errorf("schedule entry of participant %s in study %s: %w", participant, study, trial.ErrNotFound)
	}
	d := *e
	return &d, nil
}

// putDelivery stores a delivery log and queues it if it is queued (with
// c.mu held).
func (c *clockState) putDelivery(d *trial.Delivery) {
	pk := key{d.Study, d.Participant}
	m := c.deliveries[pk]
	if m == nil {
		m = map[string]*trial.Delivery{}
		c.deliveries[pk] = m
	}
	cp := *d
	m[d.DecisionID] = &cp
	dk := deliveryKey{d.Study, d.Participant, d.DecisionID}
	if d.Terminal() {
		c.outbox.remove(dk)
	} else {
		c.outbox.set(dk, d.NextAttempt)
	}
}

// dropParticipant removes the participant's schedule entry and deliveries.
func (c *clockState) dropParticipant(study, participant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pk := key{study, participant}
	delete(c.entries, pk)
	c.due.remove(pk)
	for id := range c.deliveries[pk] {
		c.outbox.remove(deliveryKey{study, participant, id})
	}
	delete(c.deliveries, pk)
}

func (c *clockState) delivery(study, participant, decision string) *trial.Delivery {
	return c.deliveries[key{study, participant}][decision]
}

// ClaimDeliveries claims up to limit due queued deliveries (trial.Outbox).
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*trial.Delivery, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	c := &s.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	until := now.Add(lease)
	var out []*trial.Delivery
	for len(out) < limit {
		k, at, ok := c.outbox.first()
		if !ok || at.After(now) {
			break
		}
		d := c.delivery(k.study, k.participant, k.decision)
		cp := *d
		out = append(out, &cp)
		d.NextAttempt = until
		c.outbox.set(k, until)
	}
	return out, nil
}

// SaveDelivery stores an attempt's outcome (trial.Outbox); ErrNotFound if
// the decision has no delivery log (e.g. the participant was erased).
func (s *Store) SaveDelivery(ctx context.Context, d *trial.Delivery) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	c := &s.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.delivery(d.Study, d.Participant, d.DecisionID) == nil {
		return fmt.Errorf("saving delivery of decision %s in study %s: %w", d.DecisionID, d.Study, trial.ErrNotFound)
	}
	c.putDelivery(d)
	return nil
}

// Delivery returns a decision's delivery log (trial.Outbox).
func (s *Store) Delivery(ctx context.Context, study, participant, decisionID string) (*trial.Delivery, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	c := &s.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.delivery(study, participant, decisionID)
	if d == nil {
		return nil, fmt.Errorf("delivery of decision %s in study %s: %w", decisionID, study, trial.ErrNotFound)
	}
	cp := *d
	return &cp, nil
}

// Requeue does nothing but check that the delivery exists: a commit and its
// outbox entry are one write here (trial.Outbox).
func (s *Store) Requeue(ctx context.Context, study, participant, decisionID string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	c := &s.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.delivery(study, participant, decisionID)
	if d == nil {
		return fmt.Errorf("requeueing delivery of decision %s in study %s: %w", decisionID, study, trial.ErrNotFound)
	}
	if dk := (deliveryKey{study, participant, decisionID}); !d.Terminal() && !c.outbox.has(dk) {
		c.outbox.set(dk, d.NextAttempt)
	}
	return nil
}

// DeadLetters lists a study's failed and expired deliveries by (FailedAt,
// id) (trial.Outbox).
func (s *Store) DeadLetters(ctx context.Context, study string, limit int) ([]*trial.Delivery, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	c := &s.clock
	c.mu.Lock()
	var out []*trial.Delivery
	for pk, m := range c.deliveries {
		if pk.study != study {
			continue
		}
		for _, d := range m {
			if d.Status == trial.DeliveryFailed || d.Status == trial.DeliveryExpired {
				cp := *d
				out = append(out, &cp)
			}
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, cmpDeadLetter)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func cmpDeadLetter(a, b *trial.Delivery) int {
	if c := a.FailedAt.Compare(b.FailedAt); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// PutDevice creates or replaces a device of an enrolled participant
// (trial.Devices; ErrNotFound if not enrolled).
func (s *Store) PutDevice(ctx context.Context, study, participant string, d *trial.Device) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sh := s.shard(study, participant)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ps := sh.people[key{study, participant}]
	if ps == nil || ps.p == nil {
		return fmt.Errorf("registering a device of participant %s in study %s: %w", participant, study, trial.ErrNotFound)
	}
	if ps.devices == nil {
		ps.devices = map[string]*trial.Device{}
	}
	cp := *d
	ps.devices[d.ID] = &cp
	return nil
}

// DeleteDevice removes a device (trial.Devices).
func (s *Store) DeleteDevice(ctx context.Context, study, participant, id string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	sh := s.shard(study, participant)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ps := sh.people[key{study, participant}]
	if ps == nil || ps.devices[id] == nil {
		return fmt.Errorf("device %s of participant %s in study %s: %w", id, participant, study, trial.ErrNotFound)
	}
	delete(ps.devices, id)
	return nil
}

// Devices lists a participant's devices by id (trial.Devices).
func (s *Store) Devices(ctx context.Context, study, participant string) ([]*trial.Device, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sh := s.shard(study, participant)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ps := sh.people[key{study, participant}]
	if ps == nil {
		return nil, nil
	}
	out := make([]*trial.Device, 0, len(ps.devices))
	for _, d := range ps.devices {
		cp := *d
		out = append(out, &cp)
	}
	slices.SortFunc(out, func(a, b *trial.Device) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// UpdateParticipant changes the participant's settings (trial.Clock).
func (s *Store) UpdateParticipant(ctx context.Context, study, participant string, u trial.ParticipantUpdate) (*trial.Participant, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sh := s.shard(study, participant)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ps := sh.people[key{study, participant}]
	if ps == nil || ps.p == nil {
		return nil, fmt.Errorf("updating participant %s in study %s: %w", participant, study, trial.ErrNotFound)
	}
	p := cloneParticipant(ps.p)
	if u.Timezone != nil {
		p.Timezone = *u.Timezone
	}
	if u.Region != nil {
		p.Region = *u.Region
	}
	if u.Locale != nil {
		p.Locale = *u.Locale
	}
	ps.p = p
	return p, nil
}
