package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// The trial clock (trial.Clock): the schedule, the outbox and delivery
// logs and devices live in tables of their own (schema version 3). Claims
// run in the writer, so a claim's select and update are one transaction
// and no two callers claim the same entry.

var _ trial.Clock = (*Store)(nil)

// atNanos encodes a time the clock orders by; the zero time sorts first.
func atNanos(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

// fromAtNanos decodes what atNanos stored.
func fromAtNanos(ns int64) time.Time {
	if ns == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// Touch inserts the participant's schedule entry or lowers its At
// (trial.Schedule).
func (s *Store) Touch(ctx context.Context, study, participant string, at, from time.Time) error {
	err := s.write(ctx, func(w *writeStmts) error {
		_, err := w.clock.touch.ExecContext(context.Background(), study, participant, atNanos(at), nanos(from))
		return err
	})
	if err != nil {
		return fmt.Errorf("scheduling participant in study %s: %w", study, err)
	}
	return nil
}

// ClaimDue claims up to limit due entries of every study in At order
// (trial.Schedule).
func (s *Store) ClaimDue(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]trial.Due, error) {
	if limit <= 0 {
		return nil, nil
	}
	until := now.Add(lease)
	var out []trial.Due
	err := s.write(ctx, func(w *writeStmts) error {
		out = out[:0] // the op may run again
		bg := context.Background()
		rows, err := w.clock.dueSelect.QueryContext(bg, atNanos(now), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				d    trial.Due
				at   int64
				from sql.NullInt64
			)
			if err := rows.Scan(&d.Study, &d.Participant, &at, &from); err != nil {
				rows.Close()
				return err
			}
			d.At, d.From, d.Lease = fromAtNanos(at), fromNanos(from), until
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range out {
			if _, err := w.clock.dueClaim.ExecContext(bg, d.Study, d.Participant, atNanos(until)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claiming due schedule entries: %w", err)
	}
	return out, nil
}

// Complete ends a claim (trial.Schedule). An entry removed meanwhile stays
// removed.
func (s *Store) Complete(ctx context.Context, d trial.Due, from, next time.Time) error {
	err := s.write(ctx, func(w *writeStmts) error {
		bg := context.Background()
		lease := nanos(d.Lease)
		if next.IsZero() {
			if _, err := w.clock.completeRemove.ExecContext(bg, d.Study, d.Participant, lease); err != nil {
				return err
			}
			_, err := w.clock.completeCursor.ExecContext(bg, d.Study, d.Participant, nanos(from))
			return err
		}
		_, err := w.clock.complete.ExecContext(bg, d.Study, d.Participant, nanos(from), lease, atNanos(next))
		return err
	})
	if err != nil {
		return fmt.Errorf("completing the schedule entry of a participant in study %s: %w", d.Study, err)
	}
	return nil
}

// Unschedule removes the participant's schedule entry (trial.Schedule).
func (s *Store) Unschedule(ctx context.Context, study, participant string) error {
	err := s.write(ctx, func(w *writeStmts) error {
		_, err := w.clock.unschedule.ExecContext(context.Background(), study, participant)
		return err
	})
	if err != nil {
		return fmt.Errorf("unscheduling participant in study %s: %w", study, err)
	}
	return nil
}

// ScheduleEntry returns one schedule entry or ErrNotFound (trial.Schedule).
func (s *Store) ScheduleEntry(ctx context.Context, study, participant string) (*trial.Due, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	var (
		at          int64
		from, lease sql.NullInt64
	)
	err := s.rdb.QueryRowContext(ctx, `SELECT at_ns, from_ns, lease_ns FROM schedule WHERE study = ?1 AND participant = ?2`, study, participant).Scan(&at, &from, &lease)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("schedule entry of a participant in study %s: %w", study, trial.ErrNotFound)
	case err != nil:
		return nil, s.readErr("reading a schedule entry in study "+study, err)
	}
	return &trial.Due{Study: study, Participant: participant, At: fromAtNanos(at), From: fromNanos(from), Lease: fromNanos(lease)}, nil
}

// deliveryRow is a delivery log as its row stores it.
type deliveryRow struct {
	id, status string
	next       any // NULL once terminal
	failed     any
	doc        []byte
}

func encodeDelivery(d *trial.Delivery) (*deliveryRow, error) {
	doc, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encoding delivery of decision %s: %w", d.DecisionID, err)
	}
	r := &deliveryRow{id: d.ID, status: d.Status, doc: doc}
	if !d.Terminal() {
		r.next = atNanos(d.NextAttempt)
	}
	if d.Status == trial.DeliveryFailed || d.Status == trial.DeliveryExpired {
		r.failed = nanos(d.FailedAt)
	}
	return r, nil
}

// put writes a commit's delivery log (in the commit's write operation).
func (r *deliveryRow) put(w *writeStmts, d *trial.Delivery) error {
	if _, err := w.clock.putDelivery.ExecContext(context.Background(), d.Study, d.Participant, d.DecisionID, r.id, r.status, r.next, r.failed, r.doc); err != nil {
		return fmt.Errorf("storing delivery: %w", err)
	}
	return nil
}

// ClaimDeliveries claims up to limit due queued deliveries of every study
// (trial.Outbox).
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*trial.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	until := now.Add(lease)
	untilJSON := until.UTC().Format(time.RFC3339Nano)
	type claimed struct {
		study, participant, decision string
		doc                          []byte
	}
	var docs []claimed
	err := s.write(ctx, func(w *writeStmts) error {
		docs = docs[:0]
		bg := context.Background()
		rows, err := w.clock.outboxSelect.QueryContext(bg, atNanos(now), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c claimed
			if err := rows.Scan(&c.study, &c.participant, &c.decision, &c.doc); err != nil {
				rows.Close()
				return err
			}
			docs = append(docs, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range docs {
			if _, err := w.clock.outboxClaim.ExecContext(bg, c.study, c.participant, c.decision, atNanos(until), untilJSON); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claiming deliveries: %w", err)
	}
	out := make([]*trial.Delivery, len(docs))
	for i, c := range docs {
		out[i] = &trial.Delivery{}
		if err := json.Unmarshal(c.doc, out[i]); err != nil {
			return nil, fmt.Errorf("decoding delivery of decision %s in study %s: %w", c.decision, c.study, err)
		}
	}
	return out, nil
}

// SaveDelivery stores an attempt's outcome (trial.Outbox); ErrNotFound if
// the decision has no delivery log (e.g. the participant was erased).
func (s *Store) SaveDelivery(ctx context.Context, d *trial.Delivery) error {
	r, err := encodeDelivery(d)
	if err != nil {
		return err
	}
	err = s.write(ctx, func(w *writeStmts) error {
		res, err := w.clock.saveDelivery.ExecContext(context.Background(), d.Study, d.Participant, d.DecisionID, r.id, r.status, r.next, r.failed, r.doc)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return trial.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("saving delivery of decision %s in study %s: %w", d.DecisionID, d.Study, err)
	}
	return nil
}

// Delivery returns a decision's delivery log (trial.Outbox).
func (s *Store) Delivery(ctx context.Context, study, participant, decisionID string) (*trial.Delivery, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	var doc []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT doc FROM deliveries WHERE study = ?1 AND participant = ?2 AND decision_id = ?3`, study, participant, decisionID).Scan(&doc)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("delivery of decision %s in study %s: %w", decisionID, study, trial.ErrNotFound)
	case err != nil:
		return nil, s.readErr("reading a delivery in study "+study, err)
	}
	d := &trial.Delivery{}
	if err := json.Unmarshal(doc, d); err != nil {
		return nil, fmt.Errorf("decoding delivery of decision %s in study %s: %w", decisionID, study, err)
	}
	return d, nil
}

// Requeue only checks that the delivery exists: a commit and its outbox
// entry are one transaction here (trial.Outbox).
func (s *Store) Requeue(ctx context.Context, study, participant, decisionID string) error {
	_, err := s.Delivery(ctx, study, participant, decisionID)
	return err
}

// DeadLetters lists a study's failed and expired deliveries by (FailedAt,
// id) (trial.Outbox).
func (s *Store) DeadLetters(ctx context.Context, study string, limit int) ([]*trial.Delivery, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT doc FROM deliveries WHERE study = ?1 AND status IN ('failed', 'expired')
		ORDER BY failed_ns, id LIMIT ?2`, study, limit)
	if err != nil {
		return nil, s.readErr("listing dead letters of study "+study, err)
	}
	return scanDocs[trial.Delivery](s, rows, "listing dead letters of study "+study, nil)
}

// PutDevice creates or replaces a device of an enrolled participant
// (trial.Devices; ErrNotFound if not enrolled).
func (s *Store) PutDevice(ctx context.Context, study, participant string, d *trial.Device) error {
	doc, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding device: %w", err)
	}
	err = s.write(ctx, func(w *writeStmts) error {
		bg := context.Background()
		var one int
		switch err := w.participantExists.QueryRowContext(bg, study, participant).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return trial.ErrNotFound
		case err != nil:
			return fmt.Errorf("checking participant: %w", err)
		}
		_, err := w.clock.putDevice.ExecContext(bg, study, participant, d.ID, doc)
		return err
	})
	if err != nil {
		return fmt.Errorf("registering a device in study %s: %w", study, err)
	}
	return nil
}

// DeleteDevice removes a device (trial.Devices).
func (s *Store) DeleteDevice(ctx context.Context, study, participant, id string) error {
	err := s.write(ctx, func(w *writeStmts) error {
		res, err := w.clock.deleteDevice.ExecContext(context.Background(), study, participant, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return trial.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting a device in study %s: %w", study, err)
	}
	return nil
}

// Devices lists a participant's devices by id (trial.Devices).
func (s *Store) Devices(ctx context.Context, study, participant string) ([]*trial.Device, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT doc FROM devices WHERE study = ?1 AND participant = ?2 ORDER BY id`, study, participant)
	if err != nil {
		return nil, s.readErr("listing devices in study "+study, err)
	}
	return scanDocs[trial.Device](s, rows, "listing devices in study "+study, []*trial.Device{})
}

// UpdateParticipant changes the participant's settings (trial.Clock).
func (s *Store) UpdateParticipant(ctx context.Context, study, participant string, u trial.ParticipantUpdate) (*trial.Participant, error) {
	var out *trial.Participant
	err := s.write(ctx, func(w *writeStmts) error {
		bg := context.Background()
		var doc []byte
		if err := w.participantDoc.QueryRowContext(bg, study, participant).Scan(&doc); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return trial.ErrNotFound
			}
			return fmt.Errorf("reading participant: %w", err)
		}
		p := &trial.Participant{}
		if err := json.Unmarshal(doc, p); err != nil {
			return fmt.Errorf("decoding participant: %w", err)
		}
		applyUpdate(p, u)
		doc, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encoding participant: %w", err)
		}
		if _, err := w.clock.participantUpdate.ExecContext(bg, study, participant, string(doc)); err != nil {
			return fmt.Errorf("updating participant: %w", err)
		}
		out = p
		return nil
	})
	s.cache.drop(study, participant)
	if err != nil {
		return nil, fmt.Errorf("updating participant in study %s: %w", study, err)
	}
	return out, nil
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

// scanDocs decodes rows of one JSON document column, appending to out.
func scanDocs[T any](s *Store, rows *sql.Rows, what string, out []*T) ([]*T, error) {
	defer rows.Close()
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, s.readErr(what, err)
		}
		v := new(T)
		if err := json.Unmarshal(doc, v); err != nil {
			return nil, fmt.Errorf("%s: decoding a row: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr(what, err)
	}
	return out, nil
}
