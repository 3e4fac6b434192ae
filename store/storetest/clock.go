package storetest

import (
	"sync"
	"time"
)

// Clock is a fake clock for stores and sessions that take an injected
// Now func() time.Time. It only moves when Advance is called, so expiry
// tests run instantly and deterministically.
//
// A Clock is safe for concurrent use. The zero value is not usable; call
// NewClock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's current time. Its signature matches the Now
// fields of memstore.Config and similar configs.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d. Its signature matches
// Harness.Advance.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
