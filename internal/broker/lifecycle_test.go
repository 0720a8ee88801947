package broker

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/sas"
	"github.com/tether-hub/tether/internal/telemetry"
)

// C2D: queued while the device is offline, delivered on subscribe,
// redelivered with DUP after a reconnect until acknowledged; a persistent
// session keeps its subscription.
func TestC2DQueueAndRedelivery(t *testing.T) {
	h := startTestHub(t)
	ctx := context.Background()
	if err := h.b.SendC2D(ctx, "d1", []byte("early"), map[string]string{"a b": "c/d"}, "m1"); err != nil {
		t.Fatal(err)
	}
	cl, _ := h.connect("d1", 4)
	cl.send(appendSubscribe(1, "devices/d1/messages/devicebound/#"))
	var got []packets.Packet
	for len(got) < 2 {
		got = append(got, cl.read())
	}
	var pub packets.Packet
	for _, p := range got {
		if p.FixedHeader.Type == packets.Publish {
			pub = p
		}
	}
	if string(pub.Payload) != "early" || pub.TopicName != "devices/d1/messages/devicebound/%24.mid=m1&a%20b=c%2Fd" || pub.FixedHeader.Qos != 1 {
		t.Fatalf("C2D %q on %q", pub.Payload, pub.TopicName)
	}
	// Not acknowledged: after a reconnect (persistent session, no
	// re-subscribe) it comes again, marked DUP.
	cl.send(disconnectV3)
	cl.waitClosed()
	cl, _ = h.connect("d1", 4)
	again := cl.read()
	if again.FixedHeader.Type != packets.Publish || string(again.Payload) != "early" || !again.FixedHeader.Dup {
		t.Fatalf("redelivery: %s %q dup=%v", packets.PacketNames[again.FixedHeader.Type], again.Payload, again.FixedHeader.Dup)
	}
	cl.send([]byte{0x40, 2, byte(again.PacketID >> 8), byte(again.PacketID)})
	if err := h.b.SendC2D(ctx, "d1", []byte("live"), nil, ""); err != nil {
		t.Fatal(err)
	}
	if p := cl.read(); string(p.Payload) != "live" || p.FixedHeader.Dup {
		t.Fatalf("live C2D %q dup=%v", p.Payload, p.FixedHeader.Dup)
	}
	if err := h.b.SendC2D(ctx, "ghost", []byte("x"), nil, ""); err == nil {
		t.Error("C2D to an unknown device accepted")
	}
}

// The queue holds IoT Hub's 50 messages per device; the 51st is refused.
func TestC2DQueueDepth(t *testing.T) {
	h := startTestHub(t)
	for i := range C2DQueueDepth {
		if err := h.b.SendC2D(context.Background(), "d1", []byte{byte(i)}, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.b.SendC2D(context.Background(), "d1", []byte("x"), nil, ""); err == nil {
		t.Error("a 51st queued message was accepted")
	}
}

// Subscriptions to anything but the device's own topics are refused.
func TestSubscribeOnlyOwnTopics(t *testing.T) {
	h := startTestHub(t)
	cl, _ := h.connect("d1", 4)
	cl.send(appendSubscribe(5, "devices/d2/messages/devicebound/#", "$iothub/twin/res/#", "#"))
	p := cl.read()
	if p.FixedHeader.Type != packets.Suback || string(p.ReasonCodes) != "\x80\x01\x80" {
		t.Errorf("SUBACK codes % x", p.ReasonCodes)
	}
}

func appendSubscribe(id uint16, filters ...string) []byte {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: id, ProtocolVersion: 4}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	var buf bytes.Buffer
	_ = pk.SubscribeEncode(&buf)
	return buf.Bytes()
}

// Keep-alive: nothing for 1.5 × keep-alive ends the session, 404104.
func TestKeepAliveLapse(t *testing.T) {
	h := startTestHub(t)
	cl := h.dial()
	cl.send(connectPacket(4, "d1", username("d1"), token(t, "d1"), 1, false))
	start := time.Now()
	if p := cl.read(); p.ReasonCode != 0 {
		t.Fatalf("CONNACK %d", p.ReasonCode)
	}
	cl.waitClosed()
	if d := time.Since(start); d < 1400*time.Millisecond {
		t.Errorf("closed after %v, before 1.5 × keep-alive", d)
	}
	evs := h.waitEvents("d1", 2)
	if evs[1].Reason != presence.ReasonKeepAlive || evs[1].Result.Type != "404104" {
		t.Errorf("recorded %s %s", evs[1].Reason, evs[1].Result.Type)
	}
}

// A token that expires closes the connection: token-expired, 404104.
func TestTokenExpiryEndsSession(t *testing.T) {
	h := startTestHub(t)
	tok, err := sas.Sign(sas.DeviceResource(testHubName, "d1"), testKey, "", time.Now().Add(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	cl := h.dial()
	cl.version = 5
	cl.send(connectPacket(5, "d1", username("d1"), tok, 60, false))
	if p := cl.read(); p.ReasonCode != 0 {
		t.Fatalf("CONNACK %d", p.ReasonCode)
	}
	if p := cl.read(); p.FixedHeader.Type != packets.Disconnect || p.ReasonCode != v5NotAuthorized {
		t.Errorf("got %s 0x%02x, want DISCONNECT 0x87", packets.PacketNames[p.FixedHeader.Type], p.ReasonCode)
	}
	evs := h.waitEvents("d1", 2)
	if evs[1].Reason != presence.ReasonTokenExpired || evs[1].Result.Type != "404104" {
		t.Errorf("recorded %s %s", evs[1].Reason, evs[1].Result.Type)
	}
}

// Kick (disabled, deleted) and Stop end live sessions with their causes.
func TestKickAndShutdown(t *testing.T) {
	h := startTestHub(t)
	a, _ := h.connect("d1", 4)
	b, _ := h.connect("d2", 4)
	if !h.b.Kick("d1", presence.ReasonDisabled) {
		t.Fatal("Kick found no session")
	}
	a.waitClosed()
	if err := h.b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.waitClosed()
	if ev := h.waitEvents("d1", 2)[1]; ev.Reason != presence.ReasonDisabled || ev.Result.Type != "401003" {
		t.Errorf("kick recorded %s %s", ev.Reason, ev.Result.Type)
	}
	if ev := h.waitEvents("d2", 2)[1]; ev.Reason != presence.ReasonServerShutdown {
		t.Errorf("shutdown recorded %s", ev.Reason)
	}
	if h.b.Kick("d2", presence.ReasonDeleted) {
		t.Error("Kick found a session after Stop")
	}
}

// A device that keeps sending faster than the hub handles it is still
// ended when the hub asks: the woken reader drains only what had arrived.
func TestFloodingDeviceIsStillEnded(t *testing.T) {
	h := startTestHub(t, func(_ *testHub, o *Options) {
		o.Telemetry = func(_ telemetry.Message, stored func(error)) {
			time.Sleep(20 * time.Microsecond) // a sink slower than the flood
			if stored != nil {
				stored(nil)
			}
		}
	})
	cl, _ := h.connect("d1", 4)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		msg := bytes.Repeat(publishPacket("devices/d1/messages/events/", 0, 0, []byte("x")), 64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := cl.c.Write(msg); err != nil {
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // let a backlog build up in the socket
	if !h.b.Kick("d1", presence.ReasonDisabled) {
		t.Fatal("no live session")
	}
	evs := h.waitEvents("d1", 2)
	if evs[1].Reason != presence.ReasonDisabled {
		t.Errorf("ended as %s, want disabled", evs[1].Reason)
	}
}

// A persistent session survives a takeover: the new connection is told
// the session is present and gets C2D without subscribing again.
func TestTakeoverKeepsPersistentSession(t *testing.T) {
	h := startTestHub(t)
	old, _ := h.connect("d1", 4)
	old.send(appendSubscribe(1, "devices/d1/messages/devicebound/#"))
	if p := old.read(); p.FixedHeader.Type != packets.Suback {
		t.Fatalf("got %s, want SUBACK", packets.PacketNames[p.FixedHeader.Type])
	}
	cl := h.dial()
	cl.send(connectPacket(4, "d1", username("d1"), token(t, "d1"), 60, false))
	if p := cl.read(); p.FixedHeader.Type != packets.Connack || !p.SessionPresent {
		t.Fatalf("CONNACK session present %v, want true", p.SessionPresent)
	}
	if err := h.b.SendC2D(context.Background(), "d1", []byte("after-takeover"), nil, ""); err != nil {
		t.Fatal(err)
	}
	if p := cl.read(); p.FixedHeader.Type != packets.Publish || string(p.Payload) != "after-takeover" {
		t.Fatalf("got %s %q, want the C2D message", packets.PacketNames[p.FixedHeader.Type], p.Payload)
	}
}

// Expired C2D messages and persistent sessions leave the table; a deleted
// device's queue goes at once.
func TestTableSweep(t *testing.T) {
	h := startTestHub(t)
	ctx := context.Background()
	for _, d := range []string{"d1", "d2"} {
		if err := h.b.SendC2D(ctx, d, []byte("x"), nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	h.b.Kick("d2", presence.ReasonDeleted)
	if n := entries(h.b.table); n != 1 {
		t.Fatalf("%d entries after deleting d2, want 1", n)
	}
	h.b.table.sweep(time.Now().Add(C2DTimeToLive + time.Second))
	if n := entries(h.b.table); n != 0 {
		t.Fatalf("%d entries after the messages expired, want 0", n)
	}
	cl, _ := h.connect("d3", 4) // clean-session 0: kept after it goes
	cl.send(disconnectV3)
	cl.waitClosed()
	h.waitEvents("d3", 2)
	// The end is recorded before the session leaves the table (the next
	// connection waits for the record, not for the table).
	h.waitFor("d3's session to leave the table", func() bool { return h.b.table.live("d3") == nil })
	h.b.table.sweep(time.Now())
	if n := entries(h.b.table); n != 1 {
		t.Fatalf("%d entries with d3's session kept, want 1", n)
	}
	h.b.table.sweep(time.Now().Add(7*24*time.Hour + time.Minute))
	if n := entries(h.b.table); n != 0 {
		t.Fatalf("%d entries after d3's session expired, want 0", n)
	}
}

func entries(t *table) int {
	n := 0
	for i := range t.shards {
		t.shards[i].mu.Lock()
		n += len(t.shards[i].devices)
		t.shards[i].mu.Unlock()
	}
	return n
}

// A device that subscribed to C2D at QoS 0 gets C2D at QoS 0, once.
func TestC2DAtTheGrantedQoS(t *testing.T) {
	h := startTestHub(t)
	cl, _ := h.connect("d1", 4)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1, ProtocolVersion: 4,
		Filters: packets.Subscriptions{{Filter: "devices/d1/messages/devicebound/#", Qos: 0}}}
	var buf bytes.Buffer
	_ = pk.SubscribeEncode(&buf)
	cl.send(buf.Bytes())
	if p := cl.read(); p.FixedHeader.Type != packets.Suback || string(p.ReasonCodes) != "\x00" {
		t.Fatalf("SUBACK % x", p.ReasonCodes)
	}
	if err := h.b.SendC2D(context.Background(), "d1", []byte("q0"), nil, ""); err != nil {
		t.Fatal(err)
	}
	if p := cl.read(); p.FixedHeader.Type != packets.Publish || p.FixedHeader.Qos != 0 || string(p.Payload) != "q0" {
		t.Fatalf("got %s QoS %d %q", packets.PacketNames[p.FixedHeader.Type], p.FixedHeader.Qos, p.Payload)
	}
	if n := entries(h.b.table); n != 1 {
		t.Fatalf("%d entries", n)
	}
	sh, e := h.b.table.lock("d1")
	queued := len(e.c2d.msgs)
	sh.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d messages still queued after a QoS 0 delivery", queued)
	}
}

// A will on the device's own telemetry topic is accepted, an empty payload
// too (legal MQTT), and published as telemetry when the connection drops.
func TestWillOnDrop(t *testing.T) {
	h := startTestHub(t)
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "d1", Keepalive: 60,
			UsernameFlag: true, Username: []byte(username("d1")), PasswordFlag: true, Password: []byte(token(t, "d1")),
			WillFlag: true, WillTopic: "devices/d1/messages/events/k=v", WillQos: 1}}
	var buf bytes.Buffer
	_ = pk.ConnectEncode(&buf)
	cl := h.dial()
	cl.send(buf.Bytes())
	if p := cl.read(); p.FixedHeader.Type != packets.Connack || p.ReasonCode != 0 {
		t.Fatalf("CONNACK %d", p.ReasonCode)
	}
	_ = cl.c.(*net.TCPConn).SetLinger(0)
	cl.c.Close() // a drop, not a DISCONNECT
	h.waitEvents("d1", 2)
	select {
	case m := <-h.telemetry:
		if m.msg.Properties["iothub-MessageType"] != "Will" || m.msg.Properties["k"] != "v" || len(m.msg.Payload) != 0 {
			t.Errorf("will message %+v", m.msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no will message")
	}
}
