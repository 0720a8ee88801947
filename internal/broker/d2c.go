package broker

import (
	"bytes"
	"strings"
	"sync/atomic"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/telemetry"
)

// Device-to-cloud telemetry, at least once: a QoS 1 message is
// acknowledged only after the journal stored it, as IoT Hub does, so a
// crash never loses a message the device was told was delivered.
// Acknowledgements are pipelined: the reader hands each message to the
// journal and goes on reading; the journal's callback queues the PUBACK,
// and whatever PUBACKs are queued go out in one write. A session has at
// most d2cInflight messages waiting for the journal; at the limit its
// reader stops reading (TCP back-pressure; MQTT 5 devices are told the
// limit as their receive maximum).

// d2cInflight is the per-session window of unacknowledged QoS 1 messages.
const d2cInflight = 64

type d2cState struct {
	inflight atomic.Int32
	// free is signalled when the window opens or the session is asked to
	// end. It is made by the first wait (waitChan): most sessions never
	// wait, and an idle one should not carry a channel.
	free atomic.Pointer[chan struct{}]
}

// waitChan returns free, made if needed. A caller that made it may have
// missed a signal: it looks at what it waits for again before waiting.
func (d *d2cState) waitChan() chan struct{} {
	if p := d.free.Load(); p != nil {
		return *p
	}
	c := make(chan struct{}, 1)
	if d.free.CompareAndSwap(nil, &c) {
		return c
	}
	return *d.free.Load()
}

// telemetry hands a telemetry PUBLISH to the journal.
func (s *session) telemetry(pk *packets.Packet) (cause, bool) {
	b := s.b
	if b.opts.Throttle != nil { // before any copy: a refused message costs nothing
		if c, over, dropped := s.throttleMessage(); over || dropped {
			return c, over
		}
	}
	// The packet aliases the read buffer; the message outlives it.
	topic := strings.Clone(pk.TopicName)
	_, _, props, sys, err := telemetry.ParseEventsTopic(topic)
	if err != nil {
		props = map[string]string{"tether-bad-properties": err.Error()}
	}
	if pk.FixedHeader.Retain {
		if props == nil {
			props = map[string]string{}
		}
		props["mqtt-retain"] = "true" // IoT Hub forwards, never stores, retained messages
	}
	m := telemetry.Message{
		DeviceID: s.id.deviceID, EnqueuedTime: b.opts.Now().UTC(),
		Payload: bytes.Clone(pk.Payload), Properties: props, SystemProperties: sys,
	}
	b.opts.Presence.Touch(s.id.deviceID)
	if pk.FixedHeader.Qos == 0 {
		b.opts.Telemetry(m, nil)
		return cause{}, false
	}
	if !s.acquireInflight() {
		// The session is ending: drop the message unacknowledged (the
		// device sends it again) and read on, so a DISCONNECT the device
		// sent before the end was asked for still counts.
		return cause{}, false
	}
	id := pk.PacketID
	b.opts.Telemetry(m, func(err error) { s.stored(id, err) })
	return cause{}, false
}

// acquireInflight takes a slot in the window, waiting while it is full;
// false if the session is asked to end meanwhile.
func (s *session) acquireInflight() bool {
	d := &s.d2c
	for d.inflight.Load() >= d2cInflight {
		free := d.waitChan()
		if d.inflight.Load() < d2cInflight {
			break
		}
		if s.requested() != nil {
			return false
		}
		<-free
	}
	d.inflight.Add(1)
	return true
}

// stored is the journal's answer for one message: queue its PUBACK, or end
// the session if the journal will never store it (the device sends it
// again on its next connection). It runs on the journal's goroutine and
// does not block.
func (s *session) stored(id uint16, err error) {
	d := &s.d2c
	if err != nil {
		s.requestEnd(cause{reason: presence.ReasonServerError, result: presence.ResultServerError, v5: v5ImplSpecific,
			detail: "the journal could not store a telemetry message: " + err.Error()})
	} else {
		var ack [4]byte
		s.send(appendPuback(ack[:0], id))
	}
	if d.inflight.Add(-1) == d2cInflight-1 {
		d.signal()
	}
}

// signal wakes a reader waiting in acquireInflight (at most one waits).
func (d *d2cState) signal() {
	if p := d.free.Load(); p != nil {
		select {
		case *p <- struct{}{}:
		default:
		}
	}
}
