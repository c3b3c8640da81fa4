package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

var (
	regionRe = regexp.MustCompile(`^[A-Z]{2}$`)
	localeRe = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
	deviceRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// UpdateRequest changes a participant's settings; absent fields keep theirs.
type UpdateRequest struct {
	Timezone *string `json:"timezone"`
	Region   *string `json:"region"`
	Locale   *string `json:"locale"`
}

// UpdateParticipant changes a participant's time zone (travel), region or
// locale, effective from their next point: points already due are decided
// in the old zone first, and the new zone's points are counted from now, so
// a move never makes a point fire twice or a past point count as missed.
func (e *Engine) UpdateParticipant(ctx context.Context, study, participant string, req UpdateRequest) (*trial.Participant, error) {
	rt, release, ok := e.acquire(study)
	defer release()
	if !ok {
		return nil, ErrUnknownStudy
	}
	if e.clock == nil {
		return nil, fmt.Errorf("updating participants: %w", ErrNotSupported)
	}
	if req.Timezone == nil && req.Region == nil && req.Locale == nil {
		return nil, trial.InputErrorf("timezone", "give at least one of timezone, region, locale")
	}
	if tz := req.Timezone; tz != nil {
		if _, err := e.zones.load(*tz); err != nil || *tz == "" || *tz == "Local" {
			return nil, trial.InputErrorf("timezone", "%q is not an IANA time zone such as Europe/London", *tz)
		}
	}
	if r := req.Region; r != nil && !regionRe.MatchString(*r) {
		return nil, trial.InputErrorf("region", "%q is not an ISO 3166-1 alpha-2 country code such as GB or US", *r)
	}
	if l := req.Locale; l != nil && !localeRe.MatchString(*l) {
		return nil, trial.InputErrorf("locale", "%q is not a BCP 47 language tag such as en-GB", *l)
	}
	p, err := e.participant(ctx, study, participant)
	if err != nil {
		return nil, err
	}
	if p.Status == trial.StatusWithdrawn {
		return nil, ErrWithdrawn
	}
	now := e.now()
	moved := req.Timezone != nil && *req.Timezone != p.Timezone
	if moved && hasScheduled(rt.Config) {
		// Settle the old zone's points up to now.
		if err := e.catchUp(ctx, rt, p, now); err != nil {
			return nil, err
		}
	}
	got, err := e.clock.UpdateParticipant(ctx, study, participant, trial.ParticipantUpdate{Timezone: req.Timezone, Region: req.Region, Locale: req.Locale})
	if errors.Is(err, trial.ErrNotFound) {
		return nil, ErrUnknownParticipant
	}
	if err != nil {
		return nil, fmt.Errorf("updating participant: %w", err)
	}
	if moved && hasScheduled(rt.Config) {
		if err := e.clock.Unschedule(ctx, study, participant); err != nil {
			return nil, fmt.Errorf("rescheduling participant: %w", err)
		}
		cursor := now.Add(time.Nanosecond)
		if next := e.nextDue(rt, got, e.location(rt, got), now); !next.IsZero() {
			if err := e.clock.Touch(ctx, study, participant, next, cursor); err != nil {
				return nil, fmt.Errorf("rescheduling participant: %w", err)
			}
		}
	}
	return got, nil
}

// catchUp resolves the participant's points from their schedule cursor up
// to now.
func (e *Engine) catchUp(ctx context.Context, rt *StudyRuntime, p *trial.Participant, now time.Time) error {
	entry, err := e.clock.ScheduleEntry(ctx, rt.Config.ID, p.ID)
	if errors.Is(err, trial.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading schedule: %w", err)
	}
	from := entry.From
	if from.Before(p.EnrolledAt) {
		from = p.EnrolledAt
	}
	loc := e.location(rt, p)
	for _, pt := range rt.Occurrences(p, loc, from, now.Add(time.Nanosecond)) {
		if _, err := e.firePoint(ctx, rt, p, loc, pt, now, nil); err != nil {
			return err
		}
	}
	return nil
}

// PutDevice registers (or replaces) a participant's push target.
func (e *Engine) PutDevice(ctx context.Context, study, participant string, d *trial.Device) error {
	if _, ok := e.Study(study); !ok {
		return ErrUnknownStudy
	}
	if e.clock == nil {
		return fmt.Errorf("registering devices: %w", ErrNotSupported)
	}
	if !deviceRe.MatchString(d.ID) {
		return trial.InputErrorf("device", "device ids are 1-128 letters, digits or . _ : -")
	}
	switch d.Platform {
	case "fcm", "apns":
		if d.Token == "" || len(d.Token) > 4096 {
			return trial.InputErrorf("token", "token is required: the %s device token (at most 4096 characters)", d.Platform)
		}
	case "webpush":
		if len(d.Token) < 8 || len(d.Token) > 4096 || d.Token[:8] != "https://" {
			return trial.InputErrorf("token", "token is required: the Web Push subscription endpoint (an https URL)")
		}
		if d.P256DH == "" || d.Auth == "" {
			return trial.InputErrorf("p256dh", "p256dh and auth are required: the subscription's keys")
		}
	default:
		return trial.InputErrorf("platform", "platform %q must be fcm, apns or webpush", d.Platform)
	}
	if _, err := e.participant(ctx, study, participant); err != nil {
		return err
	}
	d.UpdatedAt = e.now().UTC().Truncate(time.Microsecond)
	if err := e.clock.PutDevice(ctx, study, participant, d); err != nil {
		return fmt.Errorf("registering device: %w", err)
	}
	return nil
}

// DeleteDevice removes a participant's device.
func (e *Engine) DeleteDevice(ctx context.Context, study, participant, id string) error {
	if _, ok := e.Study(study); !ok {
		return ErrUnknownStudy
	}
	if e.clock == nil {
		return fmt.Errorf("removing devices: %w", ErrNotSupported)
	}
	err := e.clock.DeleteDevice(ctx, study, participant, id)
	if errors.Is(err, trial.ErrNotFound) {
		return trial.ErrNotFound
	}
	return err
}

// Delivery returns a decision's delivery log (ErrNotFound without one).
func (e *Engine) Delivery(ctx context.Context, study, participant, decisionID string) (*trial.Delivery, error) {
	if _, ok := e.Study(study); !ok {
		return nil, ErrUnknownStudy
	}
	if e.clock == nil {
		return nil, trial.ErrNotFound
	}
	return e.clock.Delivery(ctx, study, participant, decisionID)
}

// DeadLetters lists a study's failed and expired deliveries.
func (e *Engine) DeadLetters(ctx context.Context, study string, limit int) ([]*trial.Delivery, error) {
	if _, ok := e.Study(study); !ok {
		return nil, ErrUnknownStudy
	}
	if e.clock == nil {
		return nil, nil
	}
	return e.clock.DeadLetters(ctx, study, limit)
}

// participant reads an enrolled participant (ErrUnknownParticipant if none).
func (e *Engine) participant(ctx context.Context, study, participant string) (*trial.Participant, error) {
	p, err := e.store.Participant(ctx, study, participant)
	if errors.Is(err, trial.ErrNotFound) {
		return nil, ErrUnknownParticipant
	}
	if err != nil {
		return nil, fmt.Errorf("reading participant: %w", err)
	}
	return p, nil
}
