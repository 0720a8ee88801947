package broker

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
)

func holdTelemetry(h *testHub, _ *Options) { h.holdTelemetry = true }

// A QoS 1 message is acknowledged only once the journal stored it: the
// PINGREQ sent after it is answered first, the PUBACK follows the store.
func TestPubackAfterStore(t *testing.T) {
	h := startTestHub(t, holdTelemetry)
	cl, _ := h.connect("d1", 4)
	cl.send(publishPacket("devices/d1/messages/events/%24.mid=m1&k=v", 1, 7, []byte("21.5")))
	cl.send(pingreq)
	if p := cl.read(); p.FixedHeader.Type != packets.Pingresp {
		t.Fatalf("got %s before the message was stored, want PINGRESP", packets.PacketNames[p.FixedHeader.Type])
	}
	held := <-h.telemetry
	if string(held.msg.Payload) != "21.5" || held.msg.Properties["k"] != "v" || held.msg.SystemProperties["message-id"] != "m1" || held.msg.DeviceID != "d1" {
		t.Errorf("message %+v", held.msg)
	}
	held.stored(nil)
	if p := cl.read(); p.FixedHeader.Type != packets.Puback || p.PacketID != 7 {
		t.Fatalf("got %s %d, want PUBACK 7", packets.PacketNames[p.FixedHeader.Type], p.PacketID)
	}
}

// QoS 0 messages go to the journal with no acknowledgement to wait for.
func TestQoS0Telemetry(t *testing.T) {
	h := startTestHub(t, holdTelemetry)
	cl, _ := h.connect("d1", 4)
	cl.send(publishPacket("devices/d1/messages/events/", 0, 0, []byte("a")))
	if held := <-h.telemetry; held.stored != nil || string(held.msg.Payload) != "a" {
		t.Errorf("QoS 0 message %q with stored callback %v", held.msg.Payload, held.stored != nil)
	}
}

// Many messages in flight, acknowledged in order as the journal stores
// them; past the window the session stops reading until one is stored.
func TestPipelinedAcksAndBackPressure(t *testing.T) {
	h := startTestHub(t, holdTelemetry)
	cl, _ := h.connect("d1", 4)
	const n = d2cInflight + 1
	for i := 1; i <= n; i++ {
		cl.send(publishPacket("devices/d1/messages/events/", 1, uint16(i), fmt.Appendf(nil, "%d", i)))
	}
	cl.send(pingreq)
	var held []heldMessage
	for range d2cInflight {
		held = append(held, <-h.telemetry)
	}
	select {
	case m := <-h.telemetry:
		t.Fatalf("message %q taken beyond the window of %d", m.msg.Payload, d2cInflight)
	default:
	}
	held[0].stored(nil) // the window opens: the last message and the PINGREQ are read
	last := <-h.telemetry
	if string(last.msg.Payload) != fmt.Sprint(n) {
		t.Fatalf("got %q after the window opened", last.msg.Payload)
	}
	for _, m := range held[1:] {
		m.stored(nil)
	}
	last.stored(nil)
	want := uint16(1)
	sawPing := false
	for want <= n {
		p := cl.read()
		switch p.FixedHeader.Type {
		case packets.Pingresp:
			sawPing = true
		case packets.Puback:
			if p.PacketID != want {
				t.Fatalf("PUBACK %d, want %d", p.PacketID, want)
			}
			want++
		}
	}
	if !sawPing && cl.read().FixedHeader.Type != packets.Pingresp {
		t.Error("no PINGRESP")
	}
}

// A message the journal cannot store is never acknowledged: the session
// ends with a server error and the device sends it again on reconnect.
func TestJournalFailureEndsSession(t *testing.T) {
	h := startTestHub(t, holdTelemetry)
	cl, _ := h.connect("d1", 4)
	cl.send(publishPacket("devices/d1/messages/events/", 1, 3, []byte("x")))
	(<-h.telemetry).stored(errors.New("journal closed"))
	cl.waitClosed()
	evs := h.waitEvents("d1", 2)
	if evs[1].Reason != presence.ReasonServerError || evs[1].Result.Type != "500001" {
		t.Errorf("recorded %s %s", evs[1].Reason, evs[1].Result.Type)
	}
}

// A reader waiting for the journal's window still reads the DISCONNECT the
// device sent before a takeover: client disconnect, not 400027.
func TestDisconnectBehindAFullWindow(t *testing.T) {
	h := startTestHub(t, holdTelemetry)
	cl, _ := h.connect("d1", 4)
	for i := 1; i <= d2cInflight+1; i++ {
		cl.send(publishPacket("devices/d1/messages/events/", 1, uint16(i), []byte("x")))
	}
	cl.send(disconnectV3)
	for range d2cInflight {
		<-h.telemetry // the window is full; the reader waits with the 65th message read
	}
	_, rc := h.connect("d1", 4)
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	if ev := h.waitEvents("d1", 2)[1]; ev.Reason != presence.ReasonClient {
		t.Errorf("ended as %s %s, want a client disconnect", ev.Reason, ev.Result.Type)
	}
}
