package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/jitai/jitai/engine/trial"
)

// CommitDecision stores the record, the idempotency entry, the new state
// and the delivery log (in the outbox if it is queued) in one write
// operation: the idempotency key is claimed first (ErrIdempotencyReplay if
// taken), then the state version is checked (ErrConflict, or ErrNotFound
// for an unknown participant), then the record and the delivery are
// inserted. Encoding happens on the caller's goroutine so that the writer
// only runs SQL.
func (s *Store) CommitDecision(ctx context.Context, c *trial.Commit) error {
	if err := c.Validate(); err != nil {
		return err
	}
	rec := c.Record
	// The record and the state share one pooled buffer; the statements cast
	// them to TEXT (the driver binds []byte as a BLOB), so that sqlite3 users
	// see JSON text, without a copy into a Go string.
	buf := getBuffer()
	defer putBuffer(buf)
	b, err := rec.AppendJSON(buf.b[:0])
	if err != nil {
		return fmt.Errorf("encoding decision record in study %s: %w", rec.Study, err)
	}
	n := len(b)
	if c.State != nil {
		if b, err = c.State.AppendJSON(b); err != nil {
			return fmt.Errorf("encoding state in study %s: %w", rec.Study, err)
		}
	}
	buf.b = b
	recJSON, stateJSON := b[:n:n], b[n:]
	var dl *deliveryRow
	if c.Delivery != nil {
		if dl, err = encodeDelivery(c.Delivery); err != nil {
			return err
		}
	}
	idem := c.Idempotency
	var idemHash uint64
	if idem != nil && s.idem != nil {
		idemHash = s.idem.hashString(rec.Study, rec.Participant, idem.Key)
	}

	err = s.write(ctx, func(w *writeStmts) error {
		bg := context.Background()
		if idem != nil {
			res, err := w.insertIdempotency.ExecContext(bg, rec.Study, rec.Participant, idem.Key, idem.RequestHash, idem.DecisionID, idem.Response, nanos(idem.CreatedAt))
			if err != nil {
				return fmt.Errorf("storing idempotency entry: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return fmt.Errorf("storing idempotency entry: %w", err)
			} else if n == 0 {
				return trial.ErrIdempotencyReplay
			}
			// Before the commit makes the key visible: the filter must
			// never say "unused" of a committed key.
			s.idem.add(idemHash)
		}
		if c.State != nil {
			res, err := w.casState.ExecContext(bg, rec.Study, rec.Participant, stateJSON, c.State.Version)
			if err != nil {
				return fmt.Errorf("updating state: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("updating state: %w", err)
			}
			if n == 0 {
				var one int
				switch err := w.participantExists.QueryRowContext(bg, rec.Study, rec.Participant).Scan(&one); {
				case errors.Is(err, sql.ErrNoRows):
					return trial.ErrNotFound
				case err != nil:
					return fmt.Errorf("checking participant: %w", err)
				}
				return trial.ErrConflict
			}
		}
		if _, err := w.insertDecision.ExecContext(bg, rec.Study, rec.ID, rec.Participant, rec.Time.UnixNano(), rec.Action, recJSON); err != nil {
			return fmt.Errorf("inserting decision record: %w", err)
		}
		if dl != nil {
			return dl.put(w, c.Delivery)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("committing decision in study %s: %w", rec.Study, err)
	}
	if c.State != nil {
		s.cache.putState(rec.Study, rec.Participant, c.State)
	}
	return nil
}

// Decision returns one record or trial.ErrNotFound.
func (s *Store) Decision(ctx context.Context, study, id string) (*trial.Record, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	var doc []byte
	if err := s.r.decision.QueryRowContext(ctx, study, id).Scan(&doc); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("decision %s in study %s: %w", id, study, trial.ErrNotFound)
		}
		return nil, s.readErr("reading decision in study "+study, err)
	}
	rec := &trial.Record{}
	if err := json.Unmarshal(doc, rec); err != nil {
		return nil, fmt.Errorf("decoding decision %s in study %s: %w", id, study, err)
	}
	return rec, nil
}

// ListDecisions lists records in (time, id) order.
func (s *Store) ListDecisions(ctx context.Context, q trial.DecisionQuery) ([]*trial.Record, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	since := int64(math.MinInt64)
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	afterTime, afterID := int64(math.MinInt64), ""
	if !q.AfterTime.IsZero() || q.AfterID != "" {
		if !q.AfterTime.IsZero() {
			afterTime = q.AfterTime.UnixNano()
		}
		afterID = q.AfterID
	}
	limit := int64(-1)
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	var (
		rows *sql.Rows
		err  error
	)
	if q.Participant == "" {
		rows, err = s.r.list.QueryContext(ctx, q.Study, since, afterTime, afterID, limit)
	} else {
		rows, err = s.r.listParticipant.QueryContext(ctx, q.Study, since, afterTime, afterID, limit, q.Participant)
	}
	if err != nil {
		return nil, s.readErr("listing decisions of study "+q.Study, err)
	}
	defer rows.Close()
	var out []*trial.Record
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, s.readErr("listing decisions of study "+q.Study, err)
		}
		rec := &trial.Record{}
		if err := json.Unmarshal(doc, rec); err != nil {
			return nil, fmt.Errorf("decoding decision in study %s: %w", q.Study, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, s.readErr("listing decisions of study "+q.Study, err)
	}
	return out, nil
}

// buffer is an encoding buffer, reused through bufferPool.
type buffer struct{ b []byte }

var bufferPool = sync.Pool{New: func() any { return &buffer{b: make([]byte, 0, 8192)} }}

func getBuffer() *buffer { return bufferPool.Get().(*buffer) }

// putBuffer returns buf to the pool unless it grew unusually large.
func putBuffer(buf *buffer) {
	if cap(buf.b) <= 1<<16 {
		bufferPool.Put(buf)
	}
}
