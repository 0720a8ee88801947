package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/telemetry"
)

// Cloud-to-device messages, as IoT Hub keeps them: a queue per device in
// the cloud, whatever the device's session, delivered at QoS 1 while the
// device is connected and subscribed to devices/{id}/messages/devicebound/#
// and redelivered (DUP) after a reconnect until the device acknowledges
// them. The queue lives in the hub's memory: a hub restart loses it.

// ErrUnknownDevice is returned for a message to a device the registry does
// not hold.
var ErrUnknownDevice = errors.New("no such device")

// ErrQueueFull is returned when a device already has C2DQueueDepth
// messages waiting (IoT Hub: 403004 DeviceMaximumQueueDepthExceeded).
var ErrQueueFull = errors.New("the device's cloud-to-device queue is full")

// Queue limits (IoT Hub's defaults: 50 messages, 1 hour time to live).
const (
	C2DQueueDepth = 50
	C2DTimeToLive = time.Hour
	// c2dInflight bounds messages sent to a device and not yet
	// acknowledged.
	c2dInflight = 16
)

type c2dMsg struct {
	topic   string
	payload []byte
	expires time.Time
	id      uint16 // packet id while sent and unacknowledged; 0 = not sent
	sent    bool   // sent before: a resend carries DUP
}

// c2dQueue is a device's queued and unacknowledged messages, oldest first.
type c2dQueue struct{ msgs []*c2dMsg }

func (q *c2dQueue) empty() bool { return len(q.msgs) == 0 }

// unsend forgets packet ids of a connection that is gone: everything
// unacknowledged is sent again on the next one.
func (q *c2dQueue) unsend() {
	for _, m := range q.msgs {
		m.id = 0
	}
}

// ack removes the message sent with packet id; false if none was.
func (q *c2dQueue) ack(id uint16) bool {
	for i, m := range q.msgs {
		if m.id == id {
			q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
			return true
		}
	}
	return false
}

// dropExpired removes messages past their time to live.
func (q *c2dQueue) dropExpired(now time.Time) {
	kept := q.msgs[:0]
	for _, m := range q.msgs {
		if now.Before(m.expires) {
			kept = append(kept, m)
		}
	}
	clear(q.msgs[len(kept):])
	q.msgs = kept
}

// SendC2D queues a cloud-to-device message for the device; it is
// published at QoS 1 on devices/{id}/messages/devicebound/{props} as soon
// as the device is connected and subscribed.
func (b *Broker) SendC2D(_ context.Context, deviceID string, payload []byte, props map[string]string, messageID string) error {
	if _, found := b.opts.Devices(deviceID); !found {
		return fmt.Errorf("%w: %q", ErrUnknownDevice, deviceID)
	}
	if len(payload) > b.opts.MaxMessageSize {
		return fmt.Errorf("message is %d bytes; the limit is %d", len(payload), b.opts.MaxMessageSize)
	}
	now := b.opts.Now()
	m := &c2dMsg{topic: telemetry.C2DTopic(deviceID, props, messageID), payload: bytes.Clone(payload), expires: now.Add(C2DTimeToLive)}
	sh, e := b.table.lock(deviceID)
	e.c2d.dropExpired(now)
	if len(e.c2d.msgs) >= C2DQueueDepth {
		sh.mu.Unlock()
		return fmt.Errorf("%w: %d messages wait for %q (403004 DeviceMaximumQueueDepthExceeded)", ErrQueueFull, C2DQueueDepth, deviceID)
	}
	e.c2d.msgs = append(e.c2d.msgs, m)
	live := e.live
	sh.mu.Unlock()
	if live != nil {
		live.pushC2D()
	}
	return nil
}

// pushC2D sends the device's queued messages that are not in flight, up to
// the in-flight limit, if s is live and subscribed. Any goroutine may call
// it; writes go through the session's write lock.
func (s *session) pushC2D() {
	// Held across the write so that messages reach the device in the
	// order their packet ids were given.
	s.c2dMu.Lock()
	defer s.c2dMu.Unlock()
	sh, e := s.b.table.lock(s.deviceID())
	if e.live != s || e.subs&subC2D == 0 || !s.established.Load() {
		sh.mu.Unlock()
		return
	}
	e.c2d.dropExpired(s.b.opts.Now())
	inflight := 0
	var out bytes.Buffer
	for _, m := range e.c2d.msgs {
		if m.id != 0 {
			inflight++
		}
	}
	kept := e.c2d.msgs[:0]
	for i, m := range e.c2d.msgs {
		if inflight >= int(s.receiveMax) || m.id != 0 {
			kept = append(kept, m)
			if inflight >= int(s.receiveMax) {
				kept = append(kept, e.c2d.msgs[i+1:]...)
				break
			}
			continue
		}
		pk := packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: e.c2dQoS, Dup: m.sent && e.c2dQoS > 0},
			TopicName:       m.topic,
			Payload:         m.payload,
			ProtocolVersion: s.version,
		}
		if e.c2dQoS > 0 {
			// Acknowledged later: stays queued under its packet id.
			m.id = s.nextPacketID(&e.c2d)
			pk.PacketID = m.id
			m.sent = true
			inflight++
			kept = append(kept, m)
		} // QoS 0, as the device subscribed: sent once and done.
		if err := pk.PublishEncode(&out); err != nil {
			s.b.log.Error("encoding a C2D message", "device", s.deviceID(), "err", err)
		}
	}
	clear(e.c2d.msgs[len(kept):])
	e.c2d.msgs = kept
	sh.mu.Unlock()
	if out.Len() > 0 {
		s.send(out.Bytes())
	}
}

// nextPacketID picks an id no message in q is waiting on; the shard lock
// is held.
func (s *session) nextPacketID(q *c2dQueue) uint16 {
	for {
		s.lastPacketID++
		if s.lastPacketID == 0 {
			continue
		}
		inUse := false
		for _, m := range q.msgs {
			if m.id == s.lastPacketID {
				inUse = true
				break
			}
		}
		if !inUse {
			return s.lastPacketID
		}
	}
}

// c2dAcked handles the device's PUBACK for a C2D message: the message
// leaves the queue and the next one may go.
func (s *session) c2dAcked(id uint16) {
	sh, e := s.b.table.lock(s.deviceID())
	acked := e.live == s && e.c2d.ack(id)
	sh.mu.Unlock()
	if acked {
		s.pushC2D()
	}
}
