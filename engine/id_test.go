package engine

import (
	"testing"
	"time"
)

func TestIDsSortByTimeAndDiffer(t *testing.T) {
	s := newIDSource(nil)
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	a, b := s.next(t0), s.next(t0.Add(time.Millisecond))
	c := s.next(t0)
	if len(a) != 26 || a >= b || a == c {
		t.Fatalf("ids %s %s %s", a, b, c)
	}
}
