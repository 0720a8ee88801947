package delivery

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/telemetry"
)

// Telemetry headers: the journal's names.
const (
	headerEnqueuedTime     = journal.HeaderEnqueuedTime
	headerDeviceID         = journal.HeaderDeviceID
	headerProperties       = journal.HeaderProperties
	headerSystemProperties = journal.HeaderSystemProperties
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
	published  time.Time
	dev        string
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
		it.sseq, it.numPending, it.published = md.Sequence.Stream, md.NumPending, md.Timestamp
	}
	res := r.e.o.Resource
	switch k {
	case streamConn:
		var ce presence.ConnectionEvent
		if it.err = json.Unmarshal(msg.Data(), &ce); it.err != nil {
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
		m := telemetry.Message{DeviceID: h.Get(headerDeviceID), Payload: msg.Data()}
		if m.DeviceID == "" {
			tok := strings.TrimPrefix(msg.Subject(), journal.TelemetryPrefix)
			m.DeviceID, _ = journal.DecodeToken(tok)
		}
		m.EnqueuedTime, _ = time.Parse(time.RFC3339Nano, h.Get(headerEnqueuedTime))
		if m.EnqueuedTime.IsZero() {
			m.EnqueuedTime = it.published
		}
		if p := h.Get(headerProperties); p != "" {
			_ = json.Unmarshal([]byte(p), &m.Properties)
		}
		if p := h.Get(headerSystemProperties); p != "" {
			_ = json.Unmarshal([]byte(p), &m.SystemProperties)
		}
		src := h.Get(jetstream.MsgIDHeader)
		if src == "" {
			src = events.TelemetrySourceID(journal.StreamTelemetry, it.sseq)
		}
		it.dev = m.DeviceID
		it.ev, it.ok = events.FromTelemetry(res, r.e.o.HubHost, m, src), true
	}
	if it.ok {
		it.matched = r.match.Match(it.ev)
		it.size = len(it.ev.Data) + len(it.ev.Topic) + 256
	}
	return it
}
