package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jitai/jitai/engine/trial"
)

// Pin stores value under (study, name) unless a value is stored there, and
// returns the stored value (trial.Pins).
func (s *Store) Pin(ctx context.Context, study, name string, value []byte) ([]byte, error) {
	if got, err := s.Pinned(ctx, study, name); err == nil || !errors.Is(err, trial.ErrNotFound) {
		return got, err
	}
	var stored []byte
	err := s.write(ctx, func(w *writeStmts) error {
		bg := context.Background()
		if _, err := w.insertPin.ExecContext(bg, study, name, value); err != nil {
			return fmt.Errorf("inserting pin: %w", err)
		}
		return w.pinned.QueryRowContext(bg, study, name).Scan(&stored)
	})
	if err != nil {
		return nil, fmt.Errorf("pinning %s of study %s: %w", name, study, err)
	}
	return stored, nil
}

// Pinned returns the value stored under (study, name), or trial.ErrNotFound
// (trial.Pins). A database from before pins existed has none.
func (s *Store) Pinned(ctx context.Context, study, name string) ([]byte, error) {
	if s.closing.Load() {
		return nil, errClosed
	}
	var value []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT value FROM pins WHERE study = ?1 AND name = ?2`, study, name).Scan(&value)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("%s of study %s: %w", name, study, trial.ErrNotFound)
	case err != nil:
		return nil, s.readErr("reading the pinned "+name+" of study "+study, err)
	}
	return value, nil
}
