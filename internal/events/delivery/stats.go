package delivery

import (
	"sort"
	"sync/atomic"

	"github.com/tether-hub/tether/internal/events"
)

// Stats are one subscription's counters (since the engine started) and
// gauges, for metrics.
type Stats struct {
	Subscription string
	// Active: validated and not disabled. Recovering: waiting for the
	// messages a previous run left unacknowledged.
	Active, Recovering bool

	// Received messages from the journal; Filtered by the subscription's
	// filter; Suppressed by the renewal filter (both halves counted).
	Received, Filtered, Suppressed uint64
	// Delivered events; FailedAttempts are failed POSTs (a batch counts
	// once); DeadLettered and Dropped (no dead-lettering) events.
	Delivered, FailedAttempts, DeadLettered, Dropped uint64
	// Parked messages (handed back to JetStream for a full device queue or
	// during recovery); Undecodable journal records skipped.
	Parked, Undecodable uint64

	// Buffered events (queued, held or in flight) and their approximate
	// bytes; InFlight POSTs; Devices with state; Held disconnects.
	Buffered, BufferedBytes, InFlight, Devices, Held int64
}

type counters struct {
	received, filtered, suppressed                   atomic.Uint64
	delivered, failed, deadLettered, dropped         atomic.Uint64
	parked, undecodable                              atomic.Uint64
	buffered, bufferedBytes, inFlight, devices, held atomic.Int64
	active, recovering                               atomic.Bool
}

func (e *Engine) counters(key string) *counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.stats[key]
	if c == nil {
		c = &counters{}
		e.stats[key] = c
	}
	return c
}

// Stats returns the counters of every running subscription, by name.
func (e *Engine) Stats() []Stats {
	e.mu.Lock()
	out := make([]Stats, 0, len(e.runners))
	for k, r := range e.runners {
		c := e.stats[k]
		if c == nil {
			continue
		}
		out = append(out, Stats{
			Subscription: r.name, Active: c.active.Load(), Recovering: c.recovering.Load(),
			Received: c.received.Load(), Filtered: c.filtered.Load(), Suppressed: c.suppressed.Load(),
			Delivered: c.delivered.Load(), FailedAttempts: c.failed.Load(), DeadLettered: c.deadLettered.Load(),
			Dropped: c.dropped.Load(), Parked: c.parked.Load(), Undecodable: c.undecodable.Load(),
			Buffered: c.buffered.Load(), BufferedBytes: c.bufferedBytes.Load(), InFlight: c.inFlight.Load(),
			Devices: c.devices.Load(), Held: c.held.Load(),
		})
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return events.NameKey(out[i].Subscription) < events.NameKey(out[j].Subscription) })
	return out
}

// StatsOf returns the counters of subscription name.
func (e *Engine) StatsOf(name string) (Stats, bool) {
	for _, s := range e.Stats() {
		if events.NameKey(s.Subscription) == events.NameKey(name) {
			return s, true
		}
	}
	return Stats{}, false
}
