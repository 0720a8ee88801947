package throttle

import (
	"sync/atomic"
	"time"
)

// Gate caps work in progress (TLS handshakes): at most n at once; others
// wait up to a bound, in no particular order.
type Gate struct {
	slots   chan struct{}
	waiting atomic.Int64
}

// NewGate returns a gate of n slots; n ≤ 0 means no cap (nil).
func NewGate(n int) *Gate {
	if n <= 0 {
		return nil
	}
	return &Gate{slots: make(chan struct{}, n)}
}

// Acquire takes a slot, waiting up to maxWait (or until stop closes); it
// reports whether it got one. A nil Gate always grants.
func (g *Gate) Acquire(maxWait time.Duration, stop <-chan struct{}) bool {
	if g == nil {
		return true
	}
	select {
	case g.slots <- struct{}{}:
		return true
	default:
	}
	if maxWait <= 0 {
		return false
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	t := time.NewTimer(maxWait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-stop:
	}
	return false
}

// Release gives back a slot Acquire granted.
func (g *Gate) Release() {
	if g != nil {
		<-g.slots
	}
}

// InProgress is how many slots are taken; Waiting how many callers wait.
func (g *Gate) InProgress() int {
	if g == nil {
		return 0
	}
	return len(g.slots)
}

// Waiting is how many Acquire calls are waiting for a slot.
func (g *Gate) Waiting() int {
	if g == nil {
		return 0
	}
	return int(g.waiting.Load())
}

// Cap is the number of slots (0: no cap).
func (g *Gate) Cap() int {
	if g == nil {
		return 0
	}
	return cap(g.slots)
}
