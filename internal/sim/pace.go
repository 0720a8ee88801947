package sim

import (
	"sync"
	"time"
)

// pacer spaces a process's connect attempts, first connects and
// reconnects alike, at most Config.ConnectRate a second (the process's
// share of it): a hub crash or a node's stop otherwise sends its devices
// back all at once (each with its own backoff), a storm of TLS handshakes
// that can overload a small machine running the hub beside the
// simulator (connects past the hub's connect timeout, 500008) instead of
// testing it. Attempts take the next free slot in arrival order; nil
// paces nothing.
type pacer struct {
	every time.Duration
	mu    sync.Mutex
	next  time.Time
}

// newPacer paces the devices from…to of c's fleet: their share of
// c.ConnectRate; nil when it is 0 (unpaced).
func newPacer(c *Config, from, to int) *pacer {
	if c.ConnectRate <= 0 || to <= from {
		return nil
	}
	rate := c.ConnectRate * float64(to-from) / float64(c.Devices)
	return &pacer{every: time.Duration(float64(time.Second) / rate)}
}

// slot reserves the next connect slot and returns how long to wait for it.
func (p *pacer) slot(now time.Time) time.Duration {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	at := now
	if p.next.After(now) {
		at = p.next
	}
	p.next = at.Add(p.every)
	return at.Sub(now)
}

// paced waits for the device's next connect slot; false: the run ended.
func (f *fleet) paced() bool { return f.sleep(f.pace.slot(time.Now())) }
