package storetest

import (
	"sync"
	"time"
)

// Clock is a clock a test moves by hand, for a store's injectable clock
// (such as redisstore.Options.Now): a test advances it past a lease or a
// grace period instead of sleeping through it. It starts at the real time
// it was made, so that it agrees with timestamps the store's server writes.
// It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock set to the current time.
func NewClock() *Clock { return &Clock{now: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
