package delivery

import (
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
)

// entry is one event on its way to a subscription's endpoint.
type entry struct {
	d         *device
	msg       jetstream.Msg // nil for a replayed dead letter
	stream    string        // journal stream and sequence of the record
	sseq      uint64
	ev        events.Event
	published time.Time
	size      int
	// ttlFrom starts eventTimeToLive: the event's time, or the replay.
	ttlFrom time.Time
	// dlSeq is the dead letter a replayed entry came from.
	dlSeq uint64

	attempts    int
	retrying    bool      // failed at least once and waits for another attempt
	nextAt      time.Time // not before: the retry delay
	lastAttempt time.Time
	lastStatus  int
	lastOutcome string
	lastErr     string

	// held: a disconnect kept back by the renewal filter until holdUntil.
	held      bool
	holdUntil time.Time
	// dead: the dead letter to store (a failed store is retried).
	dead    *DeadLetterRecord
	removed bool
	// ageFrom is when the entry started to count in the subscription's
	// lag (catchup.go): its event's time, or the end of its renewal hold.
	ageFrom time.Time
}

func (e *entry) expiry(ttl time.Duration) time.Time { return e.ttlFrom.Add(ttl) }

// device is one device's FIFO queue in one subscription.
type device struct {
	id string
	q  []*entry
	// sending is how many entries at the head of q are in flight (one
	// POST); 0 when none.
	sending int
	inReady bool
	// gen invalidates older wakeups of the device.
	gen uint64
	// parked are this device's messages handed back to JetStream (by
	// stream index), ascending by sequence: no later message of the device
	// on that stream is taken before them.
	parked map[int][]parkedMsg
	// parkSeen is when the oldest parked message of the device was last
	// seen (parked, or offered again).
	parkSeen time.Time
}

func (d *device) idle() bool {
	return len(d.q) == 0 && d.sending == 0 && !d.inReady && len(d.parked) == 0
}

// insert adds e in order: behind everything, except that a connection
// event goes before queued (not in-flight) connection events with a
// higher sequence number, should the journal hold them out of order.
func (d *device) insert(e *entry) {
	i := len(d.q)
	if s := e.ev.Sequence; s != "" {
		for i > d.sending && d.q[i-1].ev.Sequence != "" && d.q[i-1].ev.Sequence > s {
			i--
		}
	}
	d.q = slices.Insert(d.q, i, e)
}

func (d *device) remove(e *entry) bool {
	for i, x := range d.q {
		if x == e {
			d.q = slices.Delete(d.q, i, i+1)
			return true
		}
	}
	return false
}

// find returns the queued entry of a journal message.
func (d *device) find(stream string, sseq uint64) *entry {
	for _, e := range d.q {
		if e.sseq == sseq && e.stream == stream && e.msg != nil {
			return e
		}
	}
	return nil
}

// heldDisconnect is the disconnect the renewal filter holds, if any.
func (d *device) heldDisconnect() *entry {
	for i := len(d.q) - 1; i >= 0; i-- {
		if d.q[i].held {
			return d.q[i]
		}
	}
	return nil
}

// parkedMsg is a message handed back to JetStream with a delay, and the
// handle that can ask for it early (recallHead).
type parkedMsg struct {
	seq      uint64
	msg      jetstream.Msg
	recalled bool
}

func cmpParked(p parkedMsg, seq uint64) int {
	switch {
	case p.seq < seq:
		return -1
	case p.seq > seq:
		return 1
	}
	return 0
}

func (d *device) park(stream int, seq uint64, msg jetstream.Msg) {
	if d.parked == nil {
		d.parked = map[int][]parkedMsg{}
	}
	p := d.parked[stream]
	if len(p) == 0 || seq <= p[0].seq { // the oldest parked message (re)appears
		d.parkSeen = time.Now()
	}
	pm := parkedMsg{seq: seq, msg: msg}
	if i, found := slices.BinarySearchFunc(p, seq, cmpParked); found {
		p[i] = pm // offered again: the newer handle, not recalled yet
	} else {
		d.parked[stream] = slices.Insert(p, i, pm)
	}
}

func (d *device) unpark(stream int, seq uint64) {
	d.parkSeen = time.Now()
	p := d.parked[stream]
	if i, found := slices.BinarySearchFunc(p, seq, cmpParked); found {
		p = slices.Delete(p, i, i+1)
	}
	if len(p) == 0 {
		delete(d.parked, stream)
		if len(d.parked) == 0 {
			d.parked = nil
		}
		return
	}
	d.parked[stream] = p
}

// wakeup is a device's next due time (retry or time-to-live).
type wakeup struct {
	at  time.Time
	d   *device
	gen uint64
}

type wakeHeap []wakeup

func (h wakeHeap) Len() int           { return len(h) }
func (h wakeHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h wakeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *wakeHeap) Push(x any)        { *h = append(*h, x.(wakeup)) }
func (h *wakeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// heldHeap orders held disconnects by the end of their grace.
type heldHeap []*entry

func (h heldHeap) Len() int           { return len(h) }
func (h heldHeap) Less(i, j int) bool { return h[i].holdUntil.Before(h[j].holdUntil) }
func (h heldHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)        { *h = append(*h, x.(*entry)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
