package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// Enroll creates the participant unless it exists. For a new participant
// it sets p.Seq to the next sequence number of p.Stratum, calls assign and
// stores p, all in one write operation; an error from assign stores nothing
// and consumes no sequence number.
func (s *Store) Enroll(ctx context.Context, p *trial.Participant, assign func(seq int64) error) (*trial.Participant, bool, error) {
	if p == nil || p.Study == "" || p.ID == "" {
		return nil, false, errors.New("enrolling participant: study and participant id are required")
	}
	// Most enrolment requests for a known participant are retries: answer
	// them from a read connection without queueing a write.
	if got, err := s.Participant(ctx, p.Study, p.ID); err == nil {
		return got, false, nil
	} else if !errors.Is(err, trial.ErrNotFound) {
		return nil, false, err
	}

	var (
		out     *trial.Participant
		created bool
	)
	err := s.write(ctx, func(w *writeStmts) error {
		bg := context.Background()
		var doc []byte
		switch err := w.participantDoc.QueryRowContext(bg, p.Study, p.ID).Scan(&doc); {
		case err == nil:
			existing := &trial.Participant{}
			if err := json.Unmarshal(doc, existing); err != nil {
				return fmt.Errorf("decoding stored participant: %w", err)
			}
			out = existing
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("looking up participant: %w", err)
		}

		var seq int64
		if err := w.stratumNext.QueryRowContext(bg, p.Study, p.Stratum).Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("reading stratum counter: %w", err)
		}
		p.Seq = seq
		if assign != nil {
			if err := assign(seq); err != nil {
				return fmt.Errorf("assigning participant: %w", err)
			}
		}
		doc, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encoding participant: %w", err)
		}
		if _, err := w.setStratumNext.ExecContext(bg, p.Study, p.Stratum, seq+1); err != nil {
			return fmt.Errorf("advancing stratum counter: %w", err)
		}
		if _, err := w.insertParticipant.ExecContext(bg, p.Study, p.ID, p.Stratum, seq, nanos(p.EnrolledAt), string(doc)); err != nil {
			return fmt.Errorf("inserting participant: %w", err)
		}
		out, created = p, true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("enrolling participant in study %s: %w", p.Study, err)
	}
	return out, created, nil
}

// Participant returns one participant or trial.ErrNotFound.
func (s *Store) Participant(ctx context.Context, study, id string) (*trial.Participant, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	var doc []byte
	if err := s.r.participant.QueryRowContext(ctx, study, id).Scan(&doc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("participant in study %s: %w", study, trial.ErrNotFound)
		}
		return nil, s.readErr("reading participant in study "+study, err)
	}
	p := &trial.Participant{}
	if err := json.Unmarshal(doc, p); err != nil {
		return nil, fmt.Errorf("decoding participant in study %s: %w", study, err)
	}
	return p, nil
}

// Participants lists a study's participants in enrolment order.
func (s *Store) Participants(ctx context.Context, study string) ([]*trial.Participant, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	rows, err := s.r.participants.QueryContext(ctx, study)
	if err != nil {
		return nil, s.readErr("listing participants of study "+study, err)
	}
	defer rows.Close()
	var out []*trial.Participant
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, s.readErr("listing participants of study "+study, err)
		}
		p := &trial.Participant{}
		if err := json.Unmarshal(doc, p); err != nil {
			return nil, fmt.Errorf("decoding participant in study %s: %w", study, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("listing participants of study "+study, err)
	}
	return out, nil
}

// nanos encodes t as Unix nanoseconds, or NULL for the zero time.
func nanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

// fromNanos decodes what nanos stored, in UTC.
func fromNanos(ns sql.NullInt64) time.Time {
	if !ns.Valid {
		return time.Time{}
	}
	return time.Unix(0, ns.Int64).UTC()
}
