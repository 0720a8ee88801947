package broker

import (
	"sync"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// Refusals before a TLS handshake come by thousands a second in a storm
// (every device retrying), each costing an accept and a close — and, if
// each were journalled alone, a journal write, a log-writer message and a
// metrics message, which made them cost the hub as much as a connect.
// They have no device id, so the log cannot tell them apart beyond their
// reason and masked address: they are collected here and journalled as
// one event per reason, protocol and masked address every refusalFlush,
// with Count attempts (presence.ConnectionEvent.Count). The log writer
// writes a record per attempt and the metrics count each, so every
// attempt is still in both.

// refusalFlush is how often collected refusals are journalled.
const refusalFlush = 100 * time.Millisecond

type refusalKey struct {
	reason           presence.Reason
	protocol, masked string
}

type refusalBatch struct {
	mu      sync.Mutex
	pending map[refusalKey]*presence.ConnectionEvent
	arrived chan struct{} // signalled by the first refusal after a flush
	done    chan struct{} // closed when the flusher has flushed for the last time
}

// collect adds one refusal made before a TLS handshake.
func (b *Broker) collectRefusal(ev presence.ConnectionEvent) {
	rb := b.refusals
	k := refusalKey{ev.Reason, ev.Protocol, ev.MaskedIP}
	rb.mu.Lock()
	first := len(rb.pending) == 0
	if p := rb.pending[k]; p != nil {
		p.Count++
	} else {
		ev.Count = 1
		rb.pending[k] = &ev
	}
	rb.mu.Unlock()
	if first {
		select {
		case rb.arrived <- struct{}{}:
		default: // the flusher has been told already
		}
	}
}

// flushRefusals journals what was collected.
func (b *Broker) flushRefusals() {
	rb := b.refusals
	rb.mu.Lock()
	pending := rb.pending
	rb.pending = make(map[refusalKey]*presence.ConnectionEvent, len(pending))
	rb.mu.Unlock()
	for _, ev := range pending {
		b.opts.Presence.Refuse(*ev)
	}
}

// refusalFlusher flushes refusalFlush after the first refusal of a batch
// until the broker stops, then once more. Without refusals it sleeps: a
// ticker would wake an idle hub ten times a second.
func (b *Broker) refusalFlusher() {
	defer close(b.refusals.done)
	t := time.NewTimer(refusalFlush)
	t.Stop()
	for {
		select {
		case <-b.refusals.arrived:
			t.Reset(refusalFlush)
			select {
			case <-t.C:
				b.flushRefusals()
			case <-b.stopped:
				b.flushRefusals()
				return
			}
		case <-b.stopped:
			b.flushRefusals()
			return
		}
	}
}
