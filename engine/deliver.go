package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
)

// ChannelFactory builds the delivery channels of a loaded study version, in
// the order of its delivery.channels. A notifier plugin named as a channel
// is not built here: the engine adds it from the study's plugins.
type ChannelFactory func(s *policies.Study) ([]delivery.Channel, error)

// attachChannels builds the study's delivery channels.
func (e *Engine) attachChannels(rt *StudyRuntime) error {
	d := rt.Config.Delivery
	if d == nil {
		return nil
	}
	var built []delivery.Channel
	if e.channelFactory != nil {
		var err error
		if built, err = e.channelFactory(rt.Study); err != nil {
			return fmt.Errorf("study %s: delivery channels: %w", rt.Config.ID, err)
		}
	}
	byName := map[string]delivery.Channel{}
	for _, ch := range built {
		byName[ch.Name()] = ch
	}
	rt.channels = []delivery.Channel{}
	for _, name := range d.Channels {
		if ch, ok := byName[name]; ok {
			rt.channels = append(rt.channels, ch)
		} else if n := e.notifierChannel(rt, name); n != nil {
			rt.channels = append(rt.channels, n)
		} else {
			e.log.Warn("delivery channel not available on this engine: its deliveries wait for another channel or expire",
				zap.String("study", rt.Config.ID), zap.String("channel", name))
		}
	}
	rt.needDevices = delivery.NeedsDevices(rt.channels)
	return nil
}

// notifierChannel is a notifier plugin of the study as a delivery channel.
func (e *Engine) notifierChannel(rt *StudyRuntime, name string) delivery.Channel {
	if rt.plugins == nil {
		return nil
	}
	n := rt.plugins.Notifier(name)
	if n == nil {
		return nil
	}
	return notifierChannel{name: name, n: n}
}

// notifierChannel hands a delivery to a notifier plugin, which delivers it
// at least once from its own spool.
type notifierChannel struct {
	name string
	n    Notifier
}

func (c notifierChannel) Name() string { return c.name }

// Deviceless implements delivery.Deviceless: a notifier plugin is given
// the decision, not the devices.
func (c notifierChannel) Deviceless() bool { return true }

func (c notifierChannel) Send(_ context.Context, m *delivery.Message) (delivery.Result, error) {
	c.n.Notify(Notification{ID: m.ID + "/" + c.name, Action: m.Action,
		Decision: pluginDecision(&trial.Record{ID: m.DecisionID, Study: m.Study, Participant: m.Participant, DecisionPoint: m.DecisionPoint, Time: m.Time})})
	return delivery.Result{MessageID: m.ID + "/" + c.name}, nil
}

// DeliverDue claims the deliveries due now and attempts each one on the
// study's channels in order. It returns how many it attempted.
func (e *Engine) DeliverDue(ctx context.Context) (int, error) {
	if e.clock == nil {
		return 0, ErrNoClock
	}
	now := e.now()
	ds, err := e.clock.ClaimDeliveries(ctx, now, e.clockOpts.Lease, e.clockOpts.Batch)
	if err != nil {
		return 0, fmt.Errorf("claiming deliveries: %w", err)
	}
	errs := e.parallel(len(ds), func(i int) error { return e.deliver(ctx, ds[i], now) })
	return len(ds), errors.Join(errs...)
}

// backoff is the wait before attempt n+1: 1s, 2s, 4s ... at most 5 minutes.
func backoff(attempts int) time.Duration {
	d := time.Second << min(max(attempts-1, 0), 9)
	return min(d, 5*time.Minute)
}

// deliver makes one attempt at one delivery and stores its outcome.
func (e *Engine) deliver(ctx context.Context, d *trial.Delivery, now time.Time) error {
	if !now.Before(d.ExpiresAt) {
		return e.finish(ctx, d, trial.DeliveryExpired, now, "the decision expired before any channel accepted it")
	}
	rt, release, ok := e.acquire(d.Study)
	defer release()
	if !ok {
		return e.retry(ctx, d, now, "study not loaded on this engine")
	}
	m, err := e.message(ctx, rt, d)
	if errors.Is(err, trial.ErrNotFound) {
		return e.finish(ctx, d, trial.DeliveryFailed, now, "the decision or participant is gone (erased)")
	}
	if err != nil {
		return e.retry(ctx, d, now, err.Error())
	}
	var transient, permanent []string
	for _, ch := range rt.channels {
		res, err := ch.Send(ctx, m)
		switch {
		case err == nil:
			d.Status, d.SentAt, d.Channel, d.MessageID, d.Error = trial.DeliverySent, now, ch.Name(), res.MessageID, ""
			d.Attempts++
			return e.saveDelivery(ctx, d)
		case errors.Is(err, delivery.ErrNoDevice):
			permanent = append(permanent, ch.Name()+": no registered device")
		case delivery.IsPermanent(err):
			permanent = append(permanent, ch.Name()+": "+err.Error())
		default:
			transient = append(transient, ch.Name()+": "+err.Error())
		}
	}
	if len(transient) == 0 && len(permanent) > 0 {
		d.Attempts++
		return e.finish(ctx, d, trial.DeliveryFailed, now, strings.Join(permanent, "; "))
	}
	d.Attempts++
	reason := strings.Join(append(transient, permanent...), "; ")
	if len(rt.channels) == 0 {
		reason = "no delivery channel is available on this engine"
	}
	return e.retry(ctx, d, now, reason)
}

// retry queues d for its next attempt (never after it expires: the attempt
// at expiry marks it expired).
func (e *Engine) retry(ctx context.Context, d *trial.Delivery, now time.Time, reason string) error {
	d.Status, d.Error = trial.DeliveryQueued, reason
	d.NextAttempt = now.Add(backoff(d.Attempts))
	if d.NextAttempt.After(d.ExpiresAt) {
		d.NextAttempt = d.ExpiresAt
	}
	return e.saveDelivery(ctx, d)
}

// finish ends a delivery as failed or expired (the dead-letter list).
func (e *Engine) finish(ctx context.Context, d *trial.Delivery, status string, now time.Time, reason string) error {
	d.Status, d.FailedAt, d.Error = status, now, reason
	return e.saveDelivery(ctx, d)
}

func (e *Engine) saveDelivery(ctx context.Context, d *trial.Delivery) error {
	if err := e.clock.SaveDelivery(ctx, d); err != nil {
		return fmt.Errorf("saving delivery %s: %w", d.ID, err)
	}
	e.observeDelivery(d.Study, d.Status)
	return nil
}

// message builds the message of a delivery from its decision record.
func (e *Engine) message(ctx context.Context, rt *StudyRuntime, d *trial.Delivery) (*delivery.Message, error) {
	rec, err := e.store.Decision(ctx, d.Study, d.DecisionID)
	if err != nil {
		return nil, err
	}
	// Only push channels send to devices: a study that delivers by
	// webhook (or notifier plugins) alone does not read them.
	var devices []*trial.Device
	if rt.needDevices {
		if devices, err = e.clock.Devices(ctx, d.Study, d.Participant); err != nil {
			return nil, fmt.Errorf("reading devices: %w", err)
		}
	}
	levels := map[string]string{}
	for _, f := range rec.Factors {
		levels[f.Name] = f.Label
	}
	p, err := e.store.Participant(ctx, d.Study, d.Participant)
	if err != nil {
		return nil, err
	}
	body, err := e.answerBody(rt, rec, levels, p.Region)
	if err != nil {
		return nil, err
	}
	m := &delivery.Message{ID: d.ID, Study: d.Study, Participant: d.Participant, DecisionID: d.DecisionID,
		DecisionPoint: d.DecisionPoint, Trigger: rec.Trigger, Time: rec.Time, ExpiresAt: rec.ExpiresAt,
		Action: rec.Action, Answer: body, Devices: devices, Attempt: d.Attempts + 1}
	switch {
	case rec.Action == trial.ActionSafety:
		cr := e.crisisFor(rt, p.Region)
		m.Title, m.Body = cr.Title, cr.Text
	case rec.Intervention != nil:
		m.Title, m.Body = rec.Intervention.Title, rec.Intervention.Body
	}
	return m, nil
}

// ClockObserver is an optional interface of an Observer: it sees every
// scheduled or triggered point resolved to a new record (outcome decided or
// missed) and every delivery outcome (the delivery funnel).
type ClockObserver interface {
	PointRecorded(study, trigger, outcome string)
	DeliveryStatus(study, status string)
}

func (e *Engine) observePoint(study string, rec *trial.Record) {
	if co, ok := e.obs.(ClockObserver); ok {
		outcome := "decided"
		if len(rec.UnavailableReasons) == 1 && rec.UnavailableReasons[0] == trial.ReasonEngineUnavailable {
			outcome = "missed"
		}
		co.PointRecorded(study, rec.Trigger, outcome)
	}
}

func (e *Engine) observeDelivery(study, status string) {
	if co, ok := e.obs.(ClockObserver); ok {
		co.DeliveryStatus(study, status)
	}
}
