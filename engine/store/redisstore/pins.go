package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/jitai/jitai/engine/trial"
)

// Pin stores value under (study, name) unless a value is stored there, and
// returns the stored value (trial.Pins). HSETNX makes the first writer win
// across engines.
func (s *Store) Pin(ctx context.Context, study, name string, value []byte) ([]byte, error) {
	what := "pinning " + name + " of study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	if err := s.rdb.HSetNX(ctx, s.k.study(study).pins(), name, value).Err(); err != nil {
		return nil, s.fail(what, err)
	}
	return s.Pinned(ctx, study, name)
}

// Pinned returns the value stored under (study, name), or trial.ErrNotFound
// (trial.Pins).
func (s *Store) Pinned(ctx context.Context, study, name string) ([]byte, error) {
	what := "reading the pinned " + name + " of study " + study
	if s.closed.Load() {
		return nil, fmt.Errorf("%s: %w", what, errClosed)
	}
	got, err := s.rdb.HGet(ctx, s.k.study(study).pins(), name).Bytes()
	if errors.Is(err, redis.Nil) {
		s.up()
		return nil, fmt.Errorf("%s of study %s: %w", name, study, trial.ErrNotFound)
	}
	if err != nil {
		return nil, s.fail(what, err)
	}
	s.up()
	return got, nil
}
