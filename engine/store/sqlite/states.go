package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jitai/jitai/engine/trial"
)

// Snapshot reads the participant, their state and the answer stored for
// idemKey in one query.
func (s *Store) Snapshot(ctx context.Context, study, participant, idemKey string) (*trial.Snapshot, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	if c, ok := s.cache.get(study, participant); ok {
		snap := &trial.Snapshot{Participant: c.p, State: c.st}
		if idemKey != "" && s.idem.mayContain(study, participant, idemKey) {
			var (
				reqHash, decisionID string
				response            []byte
				created             sql.NullInt64
			)
			err := s.r.idempotency.QueryRowContext(ctx, study, participant, idemKey).Scan(&reqHash, &decisionID, &response, &created)
			switch {
			case err == nil:
				snap.Replay = &trial.IdempotencyEntry{Key: idemKey, RequestHash: reqHash, DecisionID: decisionID, Response: response, CreatedAt: fromNanos(created)}
			case !errors.Is(err, sql.ErrNoRows):
				return nil, s.readErr("reading idempotency entry in study "+study, err)
			}
		}
		return snap, nil
	}
	var (
		doc, state          []byte
		version             int64
		reqHash, decisionID sql.NullString
		response            []byte
		created             sql.NullInt64
	)
	err := s.r.snapshot.QueryRowContext(ctx, study, participant, idemKey).
		Scan(&doc, &state, &version, &reqHash, &decisionID, &response, &created)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("snapshot in study %s: %w", study, trial.ErrNotFound)
		}
		return nil, s.readErr("reading snapshot in study "+study, err)
	}
	snap := &trial.Snapshot{Participant: &trial.Participant{}, State: &trial.State{}}
	if err := json.Unmarshal(doc, snap.Participant); err != nil {
		return nil, fmt.Errorf("decoding participant in study %s: %w", study, err)
	}
	if err := json.Unmarshal(state, snap.State); err != nil {
		return nil, fmt.Errorf("decoding state in study %s: %w", study, err)
	}
	snap.State.Version = version
	s.cache.put(study, participant, snap.Participant, snap.State)
	if decisionID.Valid {
		snap.Replay = &trial.IdempotencyEntry{
			Key:         idemKey,
			RequestHash: reqHash.String,
			DecisionID:  decisionID.String,
			Response:    response,
			CreatedAt:   fromNanos(created),
		}
	}
	return snap, nil
}

// AppendEvents stores the events whose ids are new for the participant and
// applies them to the state in the same write operation. apply is not
// called, and the state version does not change, when no event is new. An id
// stored with other content fails the operation (rolled back) with
// *trial.EventConflictError.
func (s *Store) AppendEvents(ctx context.Context, study, participant string, events []trial.Event, apply func(st *trial.State, fresh []trial.Event) error) (int, error) {
	for i := range events {
		if events[i].ID == "" {
			return 0, fmt.Errorf("appending events in study %s: event %d has no id", study, i)
		}
	}
	var (
		n        int
		newState *trial.State
	)
	err := s.write(ctx, func(w *writeStmts) error {
		bg := context.Background()
		var (
			state   []byte
			version int64
		)
		if err := w.participantState.QueryRowContext(bg, study, participant).Scan(&state, &version); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return trial.ErrNotFound
			}
			return fmt.Errorf("reading state: %w", err)
		}
		var fresh []trial.Event
		for _, ev := range events {
			var data any
			if ev.Data != nil {
				data = string(ev.Data)
			}
			res, err := w.insertEvent.ExecContext(bg, study, participant, ev.ID, ev.Type, nanos(ev.Time), nanos(ev.ReceivedAt), data)
			if err != nil {
				return fmt.Errorf("inserting event: %w", err)
			}
			if k, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("inserting event: %w", err)
			} else if k == 1 {
				fresh = append(fresh, ev)
			} else if err := sameAsStored(w, study, participant, &ev); err != nil {
				return err
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		st := &trial.State{}
		if err := json.Unmarshal(state, st); err != nil {
			return fmt.Errorf("decoding state: %w", err)
		}
		st.Version = version
		if apply != nil {
			if err := apply(st, fresh); err != nil {
				return fmt.Errorf("applying events to state: %w", err)
			}
		}
		st.Version = version + 1
		doc, err := st.AppendJSON(make([]byte, 0, 4096))
		if err != nil {
			return fmt.Errorf("encoding state: %w", err)
		}
		if _, err := w.setState.ExecContext(bg, study, participant, string(doc), st.Version); err != nil {
			return fmt.Errorf("updating state: %w", err)
		}
		n = len(fresh)
		newState = st
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("appending events in study %s: %w", study, err)
	}
	if newState != nil {
		s.cache.putState(study, participant, newState)
	}
	return n, nil
}

// sameAsStored checks that ev, whose id is stored already (by an earlier
// call or earlier in this one), says what the stored event says: a
// duplicate, not a *trial.EventConflictError.
func sameAsStored(w *writeStmts, study, participant string, ev *trial.Event) error {
	var (
		old  trial.Event
		at   sql.NullInt64
		data []byte
	)
	if err := w.storedEvent.QueryRowContext(context.Background(), study, participant, ev.ID).Scan(&old.Type, &at, &data); err != nil {
		return fmt.Errorf("reading stored event: %w", err)
	}
	old.Time, old.Data = fromNanos(at), data
	if !trial.SameEventContent(&old, ev) {
		return &trial.EventConflictError{ID: ev.ID}
	}
	return nil
}

// Events lists a participant's events in (time, id) order. An unknown
// participant has none.
func (s *Store) Events(ctx context.Context, study, participant string) ([]trial.Event, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	rows, err := s.r.events.QueryContext(ctx, study, participant)
	if err != nil {
		return nil, s.readErr("listing events in study "+study, err)
	}
	defer rows.Close()
	var out []trial.Event
	for rows.Next() {
		var (
			ev           trial.Event
			at, received sql.NullInt64
			data         []byte
		)
		if err := rows.Scan(&ev.ID, &ev.Type, &at, &received, &data); err != nil {
			return nil, s.readErr("listing events in study "+study, err)
		}
		ev.Time, ev.ReceivedAt = fromNanos(at), fromNanos(received)
		if data != nil {
			ev.Data = data
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("listing events in study "+study, err)
	}
	return out, nil
}
