package delivery

import "time"

// Catching up (issue 21). A subscription that keeps up sends each event
// as it comes, alone, over a few connections. When it falls behind —
// devices are ready and every send slot is taken — its concurrency grows
// (doubling, up to MaxInFlightPerSub or a command's maxConcurrency), and
// since a batch takes the due head events of every ready device (collect),
// batches fill up to the subscription's maxEventsPerBatch by themselves: a
// backlog goes out in fewer, larger POSTs over more connections. When
// devices no longer wait, concurrency shrinks back. Neither changes the
// order of a device's events: a device is in at most one send.
//
// How far behind a subscription is shows as its lag: the age of the
// oldest event it holds undelivered, from the event's time (Stats.Lag, exposed as
// tether_event_subscription_lag_seconds). Held renewal disconnects and
// events waiting for a retry count too: either way the endpoint has not
// got them. Events JetStream keeps while the buffer is full are newer
// than everything buffered, so they do not change the figure.

// minInFlight is the concurrency a subscription starts with and shrinks
// back to.
const minInFlight = 4

// grow raises the concurrency limit while devices wait for a send slot;
// false when it is at its maximum.
func (r *runner) grow() bool {
	if r.limit >= r.maxInFlight {
		return false
	}
	r.limit = min(2*r.limit, r.maxInFlight)
	return true
}

// shrink halves the limit once a send ends with no device waiting and
// at most a quarter of the limit in use.
func (r *runner) shrink() {
	if len(r.ready) == 0 && r.inflight <= r.limit/4 && r.limit > minInFlight {
		r.limit = max(r.limit/2, min(minInFlight, r.maxInFlight))
	}
}

// ageQueue is the runner's undelivered events in the order it took them,
// for the lag: removed entries are dropped lazily from the front, and the
// queue is compacted when they pile up behind a stuck one (a device whose
// event waits hours for a retry while the others flow).
type ageQueue struct {
	q    []*entry
	head int
}

// push adds e, counting from from; buffered is how many events the
// runner holds (those not removed), which bounds the queue to a few times
// that.
func (a *ageQueue) push(e *entry, from time.Time, buffered int) {
	if n := len(a.q) - a.head; n >= 64 && n > 4*buffered {
		a.compact()
	}
	e.ageFrom = from
	a.q = append(a.q, e)
}

func (a *ageQueue) compact() {
	kept := a.q[:0]
	for _, e := range a.q[a.head:] {
		if !e.removed {
			kept = append(kept, e)
		}
	}
	clear(a.q[len(kept):])
	a.q, a.head = kept, 0
}

// oldest is when (Unix nanoseconds) the oldest undelivered event started
// to count, 0 when there is none: the event's own time, as the delivery
// latency (Options.ObserveLatency) counts from it, or its hold's end. The
// queue is in the order entries were pushed, which is their time order up
// to the journal's interleaving of streams.
func (a *ageQueue) oldest() int64 {
	for a.head < len(a.q) && a.q[a.head].removed {
		a.q[a.head] = nil
		a.head++
	}
	if a.head == len(a.q) {
		a.q, a.head = a.q[:0], 0
		return 0
	}
	return a.q[a.head].ageFrom.UnixNano()
}
