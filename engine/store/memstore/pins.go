package memstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/jitai/jitai/engine/trial"
)

// Pin stores value under (study, name) unless a value is stored there, and
// returns the stored value (trial.Pins).
func (s *Store) Pin(ctx context.Context, study, name string, value []byte) ([]byte, error) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	key := study + "\x00" + name
	if got, ok := s.pins[key]; ok {
		return slices.Clone(got), nil
	}
	if s.pins == nil {
		s.pins = map[string][]byte{}
	}
	s.pins[key] = slices.Clone(value)
	return slices.Clone(value), nil
}

// Pinned returns the value stored under (study, name), or trial.ErrNotFound
// (trial.Pins).
func (s *Store) Pinned(ctx context.Context, study, name string) ([]byte, error) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	got, ok := s.pins[study+"\x00"+name]
	if !ok {
		return nil, fmt.Errorf("%s of study %s: %w", name, study, trial.ErrNotFound)
	}
	return slices.Clone(got), nil
}
