package redisstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"
)

// putDeviceSrc stores a device of an enrolled participant; it returns 0
// for a participant whose hash has no doc.
//
// KEYS: participant doc, devices. ARGV: device id, device JSON.
const putDeviceSrc = `
if redis.call('HEXISTS', KEYS[1], 'p') == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`

// swapParticipantSrc replaces the participant's doc if it is still the one
// read; it returns 0 otherwise.
//
// KEYS: participant doc. ARGV: doc read, new doc.
const swapParticipantSrc = `
if redis.call('HGET', KEYS[1], 'p') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'p', ARGV[2])
return 1
`

// reregisterSrc replaces a participant's doc in the register if they are
// registered (an erasure in between removed them for good).
//
// KEYS: register. ARGV: participant, doc.
const reregisterSrc = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`

// PutDevice creates or replaces a device of an enrolled participant in
// their devices hash (trial.Devices; ErrNotFound if not enrolled).
func (s *Store) PutDevice(ctx context.Context, study, participant string, d *trial.Device) error {
	what := "registering a device in study " + study
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	doc, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	pk := s.k.participant(study, participant)
	for repaired := false; ; repaired = true {
		n, err := s.eval(ctx, call{s.sc.putDevice, []string{pk.doc(), pk.devices()}, []any{d.ID, doc}})[0].Int()
		if err != nil {
			return s.fail(what, err)
		}
		if n == 1 {
			s.up()
			return nil
		}
		if repaired {
			return fmt.Errorf("%s: participant: %w", what, trial.ErrNotFound)
		}
		if found, err := s.repair(ctx, study, participant); err != nil {
			return s.fail(what, err)
		} else if found == "" {
			s.up()
			return fmt.Errorf("%s: participant: %w", what, trial.ErrNotFound)
		}
	}
}

// DeleteDevice removes a device (trial.Devices).
func (s *Store) DeleteDevice(ctx context.Context, study, participant, id string) error {
	what := "deleting a device in study " + study
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, errClosed)
	}
	n, err := s.rdb.HDel(ctx, s.k.participant(study, participant).devices(), id).Result()
	if err != nil {
		return s.fail(what, err)
	}
	s.up()
	if n == 0 {
		return fmt.Errorf("%s: device: %w", what, trial.ErrNotFound)
	}
	return nil
}

// Devices lists a participant's devices by id (trial.Devices).
func (s *Store) Devices(ctx context.Context, study, participant string) ([]*trial.Device, error) {
	what := "listing devices in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	all, err := s.rdb.HGetAll(ctx, s.k.participant(study, participant).devices()).Result()
	if err != nil {
		return nil, s.fail(what, err)
	}
	s.up()
	out := make([]*trial.Device, 0, len(all))
	for _, doc := range all {
		d := &trial.Device{}
		if err := json.Unmarshal([]byte(doc), d); err != nil {
			return nil, fmt.Errorf("%s: decoding a device: %w", what, err)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *trial.Device) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// updateAttempts bounds how often UpdateParticipant starts over when the
// participant changes under it.
const updateAttempts = 50

// UpdateParticipant changes the participant's settings in their own hash
// (compared and swapped with the doc read) and then in the study's
// register (trial.Clock).
func (s *Store) UpdateParticipant(ctx context.Context, study, participant string, u trial.ParticipantUpdate) (*trial.Participant, error) {
	what := "updating participant in study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	pk := s.k.participant(study, participant)
	for range updateAttempts {
		old, err := s.rdb.HGet(ctx, pk.doc(), "p").Result()
		if errors.Is(err, redis.Nil) {
			if old, err = s.repair(ctx, study, participant); err == nil && old == "" {
				s.up()
				return nil, fmt.Errorf("%s: %w", what, trial.ErrNotFound)
			}
		}
		if err != nil {
			return nil, s.fail(what, err)
		}
		p, err := decodeParticipant(old)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		applyUpdate(p, u)
		doc, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		n, err := s.eval(ctx, call{s.sc.swapParticipant, []string{pk.doc()}, []any{old, doc}})[0].Int()
		if err != nil {
			return nil, s.fail(what, err)
		}
		if n == 0 {
			continue
		}
		if err := s.reregister(ctx, study, participant, doc); err != nil {
			return nil, s.fail(what, err)
		}
		s.up()
		return p, nil
	}
	return nil, fmt.Errorf("%s: the participant kept changing: %w", what, trial.ErrConflict)
}

// reregister replaces a registered participant's doc in the register.
func (s *Store) reregister(ctx context.Context, study, participant string, doc []byte) error {
	return s.eval(ctx, call{s.sc.reregister, []string{s.k.study(study).participants()}, []any{participant, doc}})[0].Err()
}

// applyUpdate applies u's set fields to p.
func applyUpdate(p *trial.Participant, u trial.ParticipantUpdate) {
	if u.Timezone != nil {
		p.Timezone = *u.Timezone
	}
	if u.Region != nil {
		p.Region = *u.Region
	}
	if u.Locale != nil {
		p.Locale = *u.Locale
	}
}
