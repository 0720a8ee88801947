package delivery

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/tether-hub/tether/internal/events"
)

// Stats are one subscription's counters (since the engine started) and
// gauges, for metrics.
type Stats struct {
	Subscription string
	// Kind and Target name the destination (events.Destination.Kind,
	// Target).
	Kind, Target string
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
	// bytes; InFlight sends; Devices with state; Held disconnects;
	// Retrying events that failed and wait for another attempt.
	Buffered, BufferedBytes, InFlight, Devices, Held, Retrying int64
	// Concurrency is how many sends may run at once now: it grows up to
	// MaxInFlightPerSub while the subscription is behind (catchup.go).
	Concurrency int64
	// Lag is the age of the oldest event the subscription has not yet
	// delivered (from its time to the Stats call, on Options.Clock), 0
	// when it holds none.
	Lag time.Duration

	// LastDelivered is when the last delivery succeeded; LastError what
	// the last failed one said, at LastErrorTime (zero: none since start).
	LastDelivered time.Time
	LastError     string
	LastErrorTime time.Time
}

type counters struct {
	received, filtered, suppressed                             atomic.Uint64
	delivered, failed, deadLettered, dropped                   atomic.Uint64
	parked, undecodable                                        atomic.Uint64
	buffered, bufferedBytes, inFlight, devices, held, retrying atomic.Int64
	limit                                                      atomic.Int64
	oldest                                                     atomic.Int64 // Unix nanoseconds; 0: nothing undelivered
	active, recovering                                         atomic.Bool
	log                                                        deliveryLog
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
		ok, lastErr, errAt := c.log.last()
		var lag time.Duration
		if o := c.oldest.Load(); o != 0 {
			lag = max(0, r.clock.Now().Sub(time.Unix(0, o)))
		}
		out = append(out, Stats{
			Concurrency: c.limit.Load(), Lag: lag,
			Subscription: r.name, Kind: r.kind, Target: r.target, Active: c.active.Load(), Recovering: c.recovering.Load(),
			Received: c.received.Load(), Filtered: c.filtered.Load(), Suppressed: c.suppressed.Load(),
			Delivered: c.delivered.Load(), FailedAttempts: c.failed.Load(), DeadLettered: c.deadLettered.Load(),
			Dropped: c.dropped.Load(), Parked: c.parked.Load(), Undecodable: c.undecodable.Load(),
			Buffered: c.buffered.Load(), BufferedBytes: c.bufferedBytes.Load(), InFlight: c.inFlight.Load(),
			Devices: c.devices.Load(), Held: c.held.Load(), Retrying: c.retrying.Load(),
			LastDelivered: ok, LastError: lastErr, LastErrorTime: errAt,
		})
	}
	e.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return events.NameKey(out[i].Subscription) < events.NameKey(out[j].Subscription) })
	return out
}

// Status is subscription name's figures as operators read them
// (events.DeliveryStatus); Running is false when the engine does not
// deliver it (unknown, or not started yet).
func (e *Engine) Status(name string) events.DeliveryStatus {
	s, ok := e.StatsOf(name)
	if !ok {
		return events.DeliveryStatus{}
	}
	return events.DeliveryStatus{
		EndpointType: s.Kind, Target: s.Target, Running: true, Active: s.Active, Recovering: s.Recovering,
		Delivered: s.Delivered, Retrying: s.Retrying, DeadLettered: s.DeadLettered, Dropped: s.Dropped,
		FailedAttempts: s.FailedAttempts, Received: s.Received, Filtered: s.Filtered, Suppressed: s.Suppressed,
		Queued: s.Buffered, InFlight: s.InFlight, Held: s.Held,
		LastDeliveryTime: s.LastDelivered, LastError: s.LastError, LastErrorTime: s.LastErrorTime,
	}
}

// Deliveries returns up to n of subscription name's last delivery
// attempts, newest first (the delivery log: in memory, at most
// DeliveryLogSize, since the engine started; kept across definition
// changes, dropped with the subscription).
func (e *Engine) Deliveries(name string, n int) []events.DeliveryAttempt {
	e.mu.Lock()
	c := e.stats[events.NameKey(name)]
	e.mu.Unlock()
	if c == nil {
		return []events.DeliveryAttempt{}
	}
	return c.log.recent(n)
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
