package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"
)

var _ trial.Eraser = (*Store)(nil)

// Withdraw marks the participant withdrawn and bumps their state version,
// so that a decision in flight fails its version check, re-reads and sees
// the withdrawal; it removes their schedule entry, so that the clock fires
// no more points for them.
func (s *Store) Withdraw(ctx context.Context, study, participant string) (*trial.Participant, error) {
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
		p.Status = trial.StatusWithdrawn
		doc, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encoding participant: %w", err)
		}
		if _, err := s.wconn.ExecContext(bg, `UPDATE participants SET doc = ?3, version = version + 1 WHERE study = ?1 AND id = ?2`, study, participant, string(doc)); err != nil {
			return fmt.Errorf("updating participant: %w", err)
		}
		if _, err := w.clock.unschedule.ExecContext(bg, study, participant); err != nil {
			return fmt.Errorf("unscheduling participant: %w", err)
		}
		out = p
		return nil
	})
	s.cache.drop(study, participant)
	if err != nil {
		return nil, fmt.Errorf("withdrawing participant in study %s: %w", study, err)
	}
	return out, nil
}

// Erase deletes the participant, their events, idempotency entries,
// delivery logs, devices and schedule entry, and removes or anonymises
// their decision records, in one transaction.
func (s *Store) Erase(ctx context.Context, study, participant string, anonymise bool) (*trial.Erasure, error) {
	var out *trial.Erasure
	s.cache.drop(study, participant)
	err := s.write(ctx, func(w *writeStmts) error {
		bg := context.Background()
		res := &trial.Erasure{Anonymised: anonymise}
		var one int
		if err := w.participantExists.QueryRowContext(bg, study, participant).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return trial.ErrNotFound
			}
			return fmt.Errorf("checking participant: %w", err)
		}
		r, err := s.wconn.ExecContext(bg, `DELETE FROM events WHERE study = ?1 AND participant = ?2`, study, participant)
		if err != nil {
			return fmt.Errorf("deleting events: %w", err)
		}
		n, _ := r.RowsAffected()
		res.Events = int(n)
		if _, err := s.wconn.ExecContext(bg, `DELETE FROM idempotency WHERE study = ?1 AND participant = ?2`, study, participant); err != nil {
			return fmt.Errorf("deleting idempotency entries: %w", err)
		}
		// Delivery logs hold the participant id and are not needed once
		// their records are gone or anonymised.
		for _, table := range []string{"deliveries", "devices", "schedule"} {
			if _, err := s.wconn.ExecContext(bg, `DELETE FROM `+table+` WHERE study = ?1 AND participant = ?2`, study, participant); err != nil {
				return fmt.Errorf("deleting the participant's %s: %w", table, err)
			}
		}
		if anonymise {
			n, err := s.anonymiseRecords(bg, study, participant)
			if err != nil {
				return err
			}
			res.Records = n
		} else {
			r, err := s.wconn.ExecContext(bg, `DELETE FROM decisions WHERE study = ?1 AND participant = ?2`, study, participant)
			if err != nil {
				return fmt.Errorf("deleting decision records: %w", err)
			}
			n, _ := r.RowsAffected()
			res.Records = int(n)
		}
		// The stratum counter (strata) is kept: it holds no identifier and
		// the sequence numbers of later enrolments must not be reused.
		if _, err := s.wconn.ExecContext(bg, `DELETE FROM participants WHERE study = ?1 AND id = ?2`, study, participant); err != nil {
			return fmt.Errorf("deleting participant: %w", err)
		}
		out = res
		return nil
	})
	s.cache.drop(study, participant)
	if err != nil {
		return nil, fmt.Errorf("erasing participant in study %s: %w", study, err)
	}
	out.Copies = s.scrub(ctx)
	return out, nil
}

// scrub removes an erasure's bytes from the disk: secure_delete has zeroed
// the deleted cells, incremental_vacuum gives the freed pages back to the
// file system, and a TRUNCATE checkpoint copies the log into the database
// and empties it, so that no old page version survives in the log. It
// reports where the bytes are gone and, where not, when they will be.
func (s *Store) scrub(ctx context.Context) []trial.ErasedCopy {
	db := trial.ErasedCopy{Name: "database", Clean: true}
	wal := trial.ErasedCopy{Name: "write-ahead log", Clean: true}
	var truncated bool
	err := s.maintain(ctx, func(*writeStmts) error {
		if _, err := s.wconn.ExecContext(context.Background(), "PRAGMA incremental_vacuum"); err != nil {
			return fmt.Errorf("vacuuming freed pages: %w", err)
		}
		var err error
		truncated, err = s.truncateWAL(context.Background())
		return err
	})
	if err != nil || !truncated {
		s.log.Warn("erased data may stay in the write-ahead log until its next truncation", zap.Error(err))
		wal = trial.ErasedCopy{Name: "write-ahead log", When: "at the next truncating checkpoint: after the next erasure, when the log passes wal_limit_bytes, or when the server stops"}
	}
	// secure_delete zeroed the cells in the transaction itself; the pages
	// reach the database file when the log is checkpointed.
	if !truncated {
		db.Clean, db.When = false, wal.When
	}
	return []trial.ErasedCopy{db, wal}
}

// vacuumLimit is the largest database file converted to auto_vacuum
// INCREMENTAL (a full VACUUM) when opened.
const vacuumLimit = 64 << 20

// autoVacuum sets auto_vacuum INCREMENTAL on a new database. A database
// created without it (before erasure scrubbing) is converted with a VACUUM
// when it is small enough for that to be quick; a larger one, or one that
// cannot be written, is left as it is, with a warning: secure_delete still
// zeroes erased data, but freed pages stay in the file until an offline
// VACUUM (docs/erasure.md).
func autoVacuum(ctx context.Context, conn *sql.Conn, log *zap.Logger) error {
	var mode, pages, size int64
	if err := conn.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return fmt.Errorf("reading auto_vacuum: %w", err)
	}
	if mode != 0 {
		return fastSecureDelete(ctx, conn)
	}
	var tables int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&tables); err != nil {
		return fmt.Errorf("reading the schema: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return fmt.Errorf("reading page_count: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
		return fmt.Errorf("reading page_size: %w", err)
	}
	if pages*size > vacuumLimit {
		log.Warn("the database has no auto_vacuum: erased participants' pages stay in the file (zeroed) until an offline VACUUM; see docs/erasure.md", zap.Int64("bytes", pages*size))
		return nil
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		log.Warn("cannot turn on auto_vacuum", zap.Error(err))
		return nil
	}
	if pages == 0 {
		// An empty file: the pragma takes effect with the first table.
		return fastSecureDelete(ctx, conn)
	}
	if _, err := conn.ExecContext(ctx, "VACUUM"); err != nil {
		log.Warn("cannot vacuum to turn on auto_vacuum; erased pages stay in the file (zeroed) until an offline VACUUM", zap.Error(err))
		return nil
	}
	if tables > 0 { // else a new file, whose header journal_mode WAL wrote
		log.Info("database converted to auto_vacuum incremental", zap.Int64("bytes", pages*size))
	}
	return fastSecureDelete(ctx, conn)
}

// fastSecureDelete turns secure_delete from ON to FAST on a database with
// auto_vacuum: FAST zeroes deleted content inside the pages a write touches
// anyway, but does not write freed pages out as zeros (extra I/O on every
// update that frees an overflow page). Freed pages keep old content until
// the incremental_vacuum after an erasure, which overwrites or truncates
// every free page; without auto_vacuum they would keep it, so such a
// database stays on ON.
func fastSecureDelete(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "PRAGMA secure_delete = FAST"); err != nil {
		return fmt.Errorf("setting secure_delete: %w", err)
	}
	return nil
}

// drop forgets a participant (after withdrawal or erasure).
func (c *stateCache) drop(study, participant string) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	delete(c.m, cacheKey(study, participant))
	c.mu.Unlock()
}

// anonymiseRecords rewrites the participant's records under one surrogate.
func (s *Store) anonymiseRecords(ctx context.Context, study, participant string) (int, error) {
	rows, err := s.wconn.QueryContext(ctx, `SELECT id, record FROM decisions WHERE study = ?1 AND participant = ?2`, study, participant)
	if err != nil {
		return 0, fmt.Errorf("reading decision records: %w", err)
	}
	type rec struct{ id, doc string }
	var recs []rec
	for rows.Next() {
		var r rec
		if err := rows.Scan(&r.id, &r.doc); err != nil {
			rows.Close()
			return 0, fmt.Errorf("reading decision records: %w", err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reading decision records: %w", err)
	}
	surrogate := trial.NewSurrogate()
	for _, r := range recs {
		var d trial.Record
		if err := json.Unmarshal([]byte(r.doc), &d); err != nil {
			return 0, fmt.Errorf("decoding decision record %s: %w", r.id, err)
		}
		trial.AnonymiseRecord(&d, surrogate)
		doc, err := json.Marshal(&d)
		if err != nil {
			return 0, fmt.Errorf("encoding decision record %s: %w", r.id, err)
		}
		if _, err := s.wconn.ExecContext(ctx, `UPDATE decisions SET participant = ?3, record = ?4 WHERE study = ?1 AND id = ?2`, study, r.id, surrogate, string(doc)); err != nil {
			return 0, fmt.Errorf("anonymising decision record %s: %w", r.id, err)
		}
	}
	return len(recs), nil
}
