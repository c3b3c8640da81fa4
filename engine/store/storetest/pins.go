package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/jitai/jitai/engine/trial"
)

// testPins: the first value pinned wins, later pins return it, pins are
// per study and name, concurrent pins agree on one value, and pins survive
// a reopen.
func (h *harness) testPins(t *testing.T) {
	s := h.store(t)
	if _, err := s.Pinned(ctx(t), "s1", "design"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Pinned before any pin: %v, want ErrNotFound", err)
	}
	got, err := s.Pin(ctx(t), "s1", "design", []byte(`{"runs":8}`))
	if err != nil || string(got) != `{"runs":8}` {
		t.Fatalf("first Pin = %q, %v", got, err)
	}
	got, err = s.Pin(ctx(t), "s1", "design", []byte(`{"runs":16}`))
	if err != nil || string(got) != `{"runs":8}` {
		t.Fatalf("second Pin = %q, %v; want the first value", got, err)
	}
	if _, err := s.Pinned(ctx(t), "s2", "design"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("another study's pin: %v, want ErrNotFound", err)
	}
	if _, err := s.Pinned(ctx(t), "s1", "seed"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("another name's pin: %v, want ErrNotFound", err)
	}

	values := make([]string, 8)
	var wg sync.WaitGroup
	for i := range values {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Pin(ctx(t), "s3", "design", []byte{'v', byte('0' + i)})
			if err != nil {
				t.Errorf("concurrent Pin: %v", err)
			}
			values[i] = string(v)
		}()
	}
	wg.Wait()
	for _, v := range values {
		if v != values[0] {
			t.Fatalf("concurrent pins returned different values: %q", values)
		}
	}

	if h.reopen == nil {
		return
	}
	h.reopenStore(t, s)
	got, err = s.Pinned(ctx(t), "s1", "design")
	if err != nil || string(got) != `{"runs":8}` {
		t.Fatalf("Pinned after reopen = %q, %v", got, err)
	}
}
