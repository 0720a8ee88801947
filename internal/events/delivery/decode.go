package delivery

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

// connInfo is what the renewal filter needs of a connection event.
type connInfo struct {
	kind      presence.Kind
	reason    presence.Reason
	seq       string
	time      time.Time
	renewal   bool
	renewalOf string
}

// item is one journal message as the subscription's goroutine receives it:
// decoded and matched on the fetching goroutine.
type item struct {
	stream     int // index in runner.streams
	msg        jetstream.Msg
	sseq       uint64
	numPending uint64
	// delivered is JetStream's delivery count of msg (1: its first
	// delivery; 0: unknown).
	delivered uint64
	published time.Time
	dev       string
	// ok: the record is an event (refusals and registry updates are not).
	ok      bool
	ev      events.Event
	matched bool
	conn    *connInfo // connection events only
	size    int
	err     error
}

// decode turns msg of stream kind k into an item.
func (r *runner) decode(idx int, k streamKind, msg jetstream.Msg) item {
	it := item{stream: idx, msg: msg}
	if md, err := msg.Metadata(); err == nil {
		it.sseq, it.numPending, it.published, it.delivered = md.Sequence.Stream, md.NumPending, md.Timestamp, md.NumDelivered
	}
	res := r.e.o.Resource
	switch k {
	case streamConn:
		ce, err := journal.DecodeConnectionEventShared(msg.Data()) // the message's own copy
		if it.err = err; err != nil {
			return it
		}
		it.dev = ce.DeviceID
		it.ev, it.ok = events.FromConnection(res, ce, events.Marks{})
		it.conn = &connInfo{kind: ce.Kind, reason: ce.Reason, seq: ce.Sequence, time: ce.Time,
			renewal: ce.TokenRenewal, renewalOf: ce.RenewalOf}
	case streamRegistry:
		var c registry.Change
		if it.err = json.Unmarshal(msg.Data(), &c); it.err != nil {
			return it
		}
		it.dev = c.DeviceID
		it.ev, it.ok = events.FromChange(res, c)
	case streamTelemetry:
		h := msg.Headers()
		// A header the codec cannot read leaves its field zero; the
		// device's payload is still delivered.
		m, _ := journal.DecodeTelemetry(msg.Subject(), h, msg.Data())
		if m.EnqueuedTime.IsZero() {
			m.EnqueuedTime = it.published
		}
		src := h.Get(jetstream.MsgIDHeader)
		if src == "" {
			src = events.TelemetrySourceID(journal.StreamTelemetry, it.sseq)
		}
		it.dev = m.DeviceID
		it.ev, it.ok = events.FromTelemetry(res, r.e.o.HubHost, m, src), true
	case streamInsights:
		it.dev, it.ev, it.ok, it.err = decodeInsight(res, msg)
	}
	if it.ok {
		it.matched = r.match.Match(it.ev)
		it.size = len(it.ev.Data) + len(it.ev.Topic) + 256
	}
	return it
}
