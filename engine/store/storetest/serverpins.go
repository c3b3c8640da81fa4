package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/jitai/jitai/engine/trial"
)

// testServerPins: a pin of no study (study "", a server-wide value such as
// the audit pseudonym key) holds any bytes exactly, first writer wins, it
// is apart from every study's pins, and it survives a reopen.
func (h *harness) testServerPins(t *testing.T) {
	s := h.store(t)
	key := []byte{0, 1, 2, 0xff, 0xfe, '{', '}', 0, 'k', 0x80}
	if _, err := s.Pinned(ctx(t), "", "audit-pseudonym-key"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Pinned before any pin: %v, want ErrNotFound", err)
	}
	got, err := s.Pin(ctx(t), "", "audit-pseudonym-key", key)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("first Pin = %x, %v; want %x", got, err, key)
	}
	if got, err = s.Pin(ctx(t), "", "audit-pseudonym-key", []byte("another")); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("second Pin = %x, %v; want the first value %x", got, err, key)
	}
	if _, err := s.Pinned(ctx(t), "s1", "audit-pseudonym-key"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("a study's pin of the same name: %v, want ErrNotFound", err)
	}
	if h.reopen == nil {
		return
	}
	h.reopenStore(t, s)
	if got, err = s.Pinned(ctx(t), "", "audit-pseudonym-key"); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Pinned after reopen = %x, %v; want %x", got, err, key)
	}
}
