package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// migrations[i] takes the schema from user_version i to i+1. Append only.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE participants (
	study       TEXT NOT NULL,
	id          TEXT NOT NULL,
	ord         INTEGER NOT NULL, -- enrolment order within the study
	stratum     TEXT NOT NULL,
	seq         INTEGER NOT NULL, -- 0-based enrolment number within the stratum
	enrolled_ns INTEGER,
	doc         TEXT NOT NULL,    -- trial.Participant as JSON
	state       TEXT NOT NULL,    -- trial.State as JSON
	version     INTEGER NOT NULL, -- the state's version (authoritative)
	PRIMARY KEY (study, id)
);
CREATE UNIQUE INDEX participants_order ON participants (study, ord);

CREATE TABLE strata (
	study   TEXT NOT NULL,
	stratum TEXT NOT NULL,
	next    INTEGER NOT NULL, -- the next enrolment's seq
	PRIMARY KEY (study, stratum)
) WITHOUT ROWID;

CREATE TABLE events (
	study       TEXT NOT NULL,
	participant TEXT NOT NULL,
	id          TEXT NOT NULL,
	type        TEXT NOT NULL,
	time_ns     INTEGER,
	received_ns INTEGER,
	data        TEXT, -- the event's JSON payload
	PRIMARY KEY (study, participant, id)
) WITHOUT ROWID;
CREATE INDEX events_time ON events (study, participant, time_ns, id);

CREATE TABLE decisions (
	study       TEXT NOT NULL,
	id          TEXT NOT NULL,
	participant TEXT NOT NULL,
	time_ns     INTEGER NOT NULL,
	action      TEXT NOT NULL,
	record      TEXT NOT NULL, -- trial.Record as JSON
	PRIMARY KEY (study, id)
);
CREATE INDEX decisions_time ON decisions (study, time_ns, id);
CREATE INDEX decisions_participant_time ON decisions (study, participant, time_ns, id);

CREATE TABLE idempotency (
	study        TEXT NOT NULL,
	participant  TEXT NOT NULL,
	key          TEXT NOT NULL,
	request_hash TEXT NOT NULL,
	decision_id  TEXT NOT NULL,
	response     BLOB,
	created_ns   INTEGER,
	PRIMARY KEY (study, participant, key)
);
`,
	// 2: values pinned for a study once it has participants (trial.Pins).
	`
CREATE TABLE pins (
	study TEXT NOT NULL,
	name  TEXT NOT NULL,
	value BLOB NOT NULL,
	PRIMARY KEY (study, name)
);
`,
	// 3: the trial clock (trial.Clock): its schedule, the outbox and
	// delivery logs, and participants' devices.
	`
CREATE TABLE schedule (
	study       TEXT NOT NULL,
	participant TEXT NOT NULL,
	at_ns       INTEGER NOT NULL, -- when the entry is due
	from_ns     INTEGER,          -- the cursor (NULL: the zero time)
	lease_ns    INTEGER,          -- the At the latest claim set
	PRIMARY KEY (study, participant)
) WITHOUT ROWID;
CREATE INDEX schedule_due ON schedule (at_ns);

CREATE TABLE deliveries (
	study       TEXT NOT NULL,
	participant TEXT NOT NULL,
	decision_id TEXT NOT NULL,
	id          TEXT NOT NULL,
	status      TEXT NOT NULL,
	next_ns     INTEGER, -- NextAttempt while queued (the outbox); NULL once terminal
	failed_ns   INTEGER, -- FailedAt (the dead-letter order)
	doc         TEXT NOT NULL, -- trial.Delivery as JSON
	PRIMARY KEY (study, participant, decision_id)
);
CREATE INDEX deliveries_outbox ON deliveries (next_ns);
CREATE INDEX deliveries_dead ON deliveries (study, failed_ns, id) WHERE status IN ('failed', 'expired');

CREATE TABLE devices (
	study       TEXT NOT NULL,
	participant TEXT NOT NULL,
	id          TEXT NOT NULL,
	doc         TEXT NOT NULL, -- trial.Device as JSON (holds the push token)
	PRIMARY KEY (study, participant, id)
) WITHOUT ROWID;
`,
}

// migrate brings the schema to the latest version in one transaction.
func migrate(ctx context.Context, conn *sql.Conn, log *zap.Logger) (err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("locking for migration: %w", err)
	}
	defer func() {
		if err != nil {
			_, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
			err = errors.Join(err, rbErr)
		}
	}()
	var version int
	if err := conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this jitai knows (%d): upgrade jitai", version, len(migrations))
	}
	if version == len(migrations) {
		_, err := conn.ExecContext(ctx, "COMMIT")
		return err
	}
	for v := version; v < len(migrations); v++ {
		if _, err := conn.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrating schema from version %d: %w", v, err)
		}
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("setting schema version: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("committing migration: %w", err)
	}
	log.Info("sqlite store schema migrated", zap.Int("from", version), zap.Int("to", len(migrations)))
	return nil
}

// writeStmts are prepared once on the writer's connection.
type writeStmts struct {
	begin, commit, rollback          *sql.Stmt
	savepoint, release, rollbackTo   *sql.Stmt
	participantDoc, participantState *sql.Stmt
	participantExists                *sql.Stmt
	stratumNext, setStratumNext      *sql.Stmt
	insertParticipant                *sql.Stmt
	insertEvent                      *sql.Stmt
	storedEvent                      *sql.Stmt
	setState, casState               *sql.Stmt
	insertIdempotency                *sql.Stmt
	insertDecision                   *sql.Stmt
	insertPin, pinned                *sql.Stmt
	clock                            clockStmts
	all                              []*sql.Stmt
}

// clockStmts are the writer's statements of the trial clock (clock.go).
type clockStmts struct {
	touch, dueSelect, dueClaim *sql.Stmt
	complete, completeRemove   *sql.Stmt
	completeCursor, unschedule *sql.Stmt
	putDelivery, saveDelivery  *sql.Stmt
	outboxSelect, outboxClaim  *sql.Stmt
	putDevice, deleteDevice    *sql.Stmt
	participantUpdate          *sql.Stmt
}

// readStmts are prepared once on the read pool.
type readStmts struct {
	participant, participants *sql.Stmt
	snapshot                  *sql.Stmt
	idempotency               *sql.Stmt
	events                    *sql.Stmt
	decision                  *sql.Stmt
	list, listParticipant     *sql.Stmt
	ping                      *sql.Stmt
	all                       []*sql.Stmt
}

// preparer is a *sql.Conn or a *sql.DB.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// prepareAll prepares each query into its statement pointer.
func prepareAll(ctx context.Context, p preparer, qs map[**sql.Stmt]string) ([]*sql.Stmt, error) {
	all := make([]*sql.Stmt, 0, len(qs))
	for dst, q := range qs {
		st, err := p.PrepareContext(ctx, q)
		if err != nil {
			for _, s := range all {
				s.Close()
			}
			return nil, fmt.Errorf("preparing %q: %w", q, err)
		}
		*dst = st
		all = append(all, st)
	}
	return all, nil
}

func prepareWrite(ctx context.Context, conn *sql.Conn) (*writeStmts, error) {
	w := &writeStmts{}
	var err error
	w.all, err = prepareAll(ctx, conn, map[**sql.Stmt]string{
		&w.begin:             `BEGIN IMMEDIATE`,
		&w.commit:            `COMMIT`,
		&w.rollback:          `ROLLBACK`,
		&w.savepoint:         `SAVEPOINT op`,
		&w.release:           `RELEASE op`,
		&w.rollbackTo:        `ROLLBACK TO op`,
		&w.participantDoc:    `SELECT doc FROM participants WHERE study = ?1 AND id = ?2`,
		&w.participantState:  `SELECT state, version FROM participants WHERE study = ?1 AND id = ?2`,
		&w.participantExists: `SELECT 1 FROM participants WHERE study = ?1 AND id = ?2`,
		&w.stratumNext:       `SELECT next FROM strata WHERE study = ?1 AND stratum = ?2`,
		&w.setStratumNext: `INSERT INTO strata (study, stratum, next) VALUES (?1, ?2, ?3)
			ON CONFLICT (study, stratum) DO UPDATE SET next = excluded.next`,
		&w.insertParticipant: `INSERT INTO participants (study, id, ord, stratum, seq, enrolled_ns, doc, state, version)
			VALUES (?1, ?2, (SELECT COALESCE(MAX(ord), -1) + 1 FROM participants WHERE study = ?1), ?3, ?4, ?5, ?6, '{}', 0)`,
		&w.insertEvent: `INSERT INTO events (study, participant, id, type, time_ns, received_ns, data)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING`,
		&w.storedEvent: `SELECT type, time_ns, data FROM events WHERE study = ?1 AND participant = ?2 AND id = ?3`,
		&w.setState:    `UPDATE participants SET state = ?3, version = ?4 WHERE study = ?1 AND id = ?2`,
		&w.casState:    `UPDATE participants SET state = CAST(?3 AS TEXT), version = ?4 WHERE study = ?1 AND id = ?2 AND version = ?4 - 1`,
		&w.insertIdempotency: `INSERT INTO idempotency (study, participant, key, request_hash, decision_id, response, created_ns)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING`,
		&w.insertDecision: `INSERT INTO decisions (study, id, participant, time_ns, action, record) VALUES (?1, ?2, ?3, ?4, ?5, CAST(?6 AS TEXT))`,
		&w.insertPin:      `INSERT INTO pins (study, name, value) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING`,
		&w.pinned:         `SELECT value FROM pins WHERE study = ?1 AND name = ?2`,

		&w.clock.touch: `INSERT INTO schedule (study, participant, at_ns, from_ns) VALUES (?1, ?2, ?3, ?4)
			ON CONFLICT (study, participant) DO UPDATE SET at_ns = MIN(at_ns, excluded.at_ns)`,
		&w.clock.dueSelect: `SELECT study, participant, at_ns, from_ns FROM schedule WHERE at_ns <= ?1 ORDER BY at_ns LIMIT ?2`,
		&w.clock.dueClaim:  `UPDATE schedule SET at_ns = ?3, lease_ns = ?3 WHERE study = ?1 AND participant = ?2`,
		// ?3 from, ?4 the claim's lease, ?5 next (not NULL).
		&w.clock.complete: `UPDATE schedule SET from_ns = ?3,
			at_ns = CASE WHEN at_ns = ?4 THEN ?5 ELSE MIN(at_ns, ?5) END,
			lease_ns = CASE WHEN at_ns = ?4 THEN NULL ELSE lease_ns END
			WHERE study = ?1 AND participant = ?2`,
		&w.clock.completeRemove: `DELETE FROM schedule WHERE study = ?1 AND participant = ?2 AND at_ns = ?3`,
		&w.clock.completeCursor: `UPDATE schedule SET from_ns = ?3 WHERE study = ?1 AND participant = ?2`,
		&w.clock.unschedule:     `DELETE FROM schedule WHERE study = ?1 AND participant = ?2`,
		&w.clock.putDelivery: `INSERT INTO deliveries (study, participant, decision_id, id, status, next_ns, failed_ns, doc)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CAST(?8 AS TEXT))
			ON CONFLICT (study, participant, decision_id) DO UPDATE SET id = excluded.id, status = excluded.status,
			next_ns = excluded.next_ns, failed_ns = excluded.failed_ns, doc = excluded.doc`,
		&w.clock.saveDelivery: `UPDATE deliveries SET id = ?4, status = ?5, next_ns = ?6, failed_ns = ?7, doc = CAST(?8 AS TEXT)
			WHERE study = ?1 AND participant = ?2 AND decision_id = ?3`,
		&w.clock.outboxSelect: `SELECT study, participant, decision_id, doc FROM deliveries WHERE next_ns <= ?1 ORDER BY next_ns LIMIT ?2`,
		&w.clock.outboxClaim: `UPDATE deliveries SET next_ns = ?4, doc = json_set(doc, '$.next_attempt', ?5)
			WHERE study = ?1 AND participant = ?2 AND decision_id = ?3`,
		&w.clock.putDevice: `INSERT INTO devices (study, participant, id, doc) VALUES (?1, ?2, ?3, CAST(?4 AS TEXT))
			ON CONFLICT (study, participant, id) DO UPDATE SET doc = excluded.doc`,
		&w.clock.deleteDevice:      `DELETE FROM devices WHERE study = ?1 AND participant = ?2 AND id = ?3`,
		&w.clock.participantUpdate: `UPDATE participants SET doc = ?3 WHERE study = ?1 AND id = ?2`,
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

func prepareRead(ctx context.Context, db *sql.DB) (*readStmts, error) {
	r := &readStmts{}
	const list = `SELECT record FROM decisions
		WHERE study = ?1 AND time_ns >= ?2 AND (time_ns, id) > (?3, ?4) %s
		ORDER BY time_ns, id LIMIT ?5`
	var err error
	r.all, err = prepareAll(ctx, db, map[**sql.Stmt]string{
		&r.participant:  `SELECT doc FROM participants WHERE study = ?1 AND id = ?2`,
		&r.participants: `SELECT doc FROM participants WHERE study = ?1 ORDER BY ord`,
		&r.snapshot: `SELECT p.doc, p.state, p.version, i.request_hash, i.decision_id, i.response, i.created_ns
			FROM participants p
			LEFT JOIN idempotency i ON i.study = p.study AND i.participant = p.id AND i.key = ?3
			WHERE p.study = ?1 AND p.id = ?2`,
		&r.idempotency: `SELECT request_hash, decision_id, response, created_ns FROM idempotency
			WHERE study = ?1 AND participant = ?2 AND key = ?3`,
		&r.events: `SELECT id, type, time_ns, received_ns, data FROM events
			WHERE study = ?1 AND participant = ?2 ORDER BY time_ns, id`,
		&r.decision:        `SELECT record FROM decisions WHERE study = ?1 AND id = ?2`,
		&r.list:            fmt.Sprintf(list, ""),
		&r.listParticipant: fmt.Sprintf(list, "AND participant = ?6"),
		&r.ping:            `PRAGMA user_version`,
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func closeStmts(all []*sql.Stmt) error {
	var errs []error
	for _, s := range all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

func (w *writeStmts) close() error { return closeStmts(w.all) }
func (r *readStmts) close() error  { return closeStmts(r.all) }
