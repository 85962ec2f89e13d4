package schedule

import (
	"sync"
	"time"
)

// Clock tells the time and makes timers. The scheduler and everything that
// decides by the time take one, so tests can drive time by hand.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer made by a Clock.
type Timer interface {
	// C receives the time when the timer fires.
	C() <-chan time.Time
	// Stop stops the timer; it reports whether it was still pending.
	Stop() bool
}

// SystemClock is the real clock.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer.
func (SystemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }

// ManualClock is a Clock that moves only when told to, for tests.
type ManualClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  map[*manualTimer]struct{}
	changed chan struct{} // closed and replaced whenever the set of timers changes
}

var _ Clock = (*ManualClock)(nil)

// NewManualClock returns a ManualClock showing now.
func NewManualClock(now time.Time) *ManualClock {
	return &ManualClock{now: now, timers: map[*manualTimer]struct{}{}, changed: make(chan struct{})}
}

type manualTimer struct {
	c  *ManualClock
	at time.Time
	ch chan time.Time
}

func (t *manualTimer) C() <-chan time.Time { return t.ch }

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, pending := t.c.timers[t]
	if pending {
		delete(t.c.timers, t)
		t.c.notify()
	}
	return pending
}

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once the clock has been moved d past
// the current time.
func (c *ManualClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers[t] = struct{}{}
	c.notify()
	return t
}

// Set moves the clock to t and fires the timers that are due.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	for tm := range c.timers {
		if !tm.at.After(t) {
			tm.ch <- t
			delete(c.timers, tm)
		}
	}
	c.notify()
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Timers returns when the pending timers fire, and a channel that is
// closed when that may have changed, so a test can wait until the code under
// test sleeps.
func (c *ManualClock) Timers() ([]time.Time, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var at []time.Time
	for t := range c.timers {
		at = append(at, t.at)
	}
	return at, c.changed
}

func (c *ManualClock) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}
