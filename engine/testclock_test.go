package engine_test

import (
	"sync"
	"time"
)

// testClock is an engine clock (Components.Now) that the test moves: the
// engine refuses decision times more than MaxClockSkew from its clock and
// before the participant's enrolment (which is at its clock), so a test
// enrols at a time before its decisions and sets the clock to each
// decision's time.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
