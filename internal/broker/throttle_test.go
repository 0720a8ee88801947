package broker

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/throttle"
)

func withLimits(l throttle.Limits) func(*testHub, *Options) {
	return func(h *testHub, o *Options) {
		t, err := throttle.New(l, time.Now())
		if err != nil {
			h.t.Fatal(err)
		}
		o.Throttle = t
	}
}

// refusals are the recorded refusals with reason r.
func (h *testHub) refusals(r presence.Reason) []presence.ConnectionEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []presence.ConnectionEvent
	for _, ev := range h.evs {
		if ev.Kind == presence.Refused && ev.Reason == r {
			out = append(out, ev)
		}
	}
	return out
}

// connectCode connects device over plain TCP with MQTT version and
// returns the CONNACK code.
func (h *testHub) connectCode(device string, version byte) (*client, byte) {
	h.t.Helper()
	return h.connect(device, version)
}

// A TLS connection over the hub-wide rate is closed before its handshake
// and recorded without a device id; over TCP it gets CONNACK 3 / 0x89.
func TestThrottleHubRate(t *testing.T) {
	h := startTestHub(t, withTLS, withLimits(throttle.Limits{ConnectRate: 0.01, ConnectBurst: 1}))
	h.connectTLS("d1")
	_, err := tls.Dial("tcp", h.b.TLSAddr(), &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		t.Fatal("a TLS handshake over the hub-wide rate succeeded")
	}
	var ev presence.ConnectionEvent
	h.waitFor("the refusal", func() bool {
		evs := h.refusals(presence.ReasonThrottledHub)
		if len(evs) == 1 {
			ev = evs[0]
		}
		return len(evs) == 1
	})
	if ev.DeviceID != "" || ev.Result != presence.ResultThrottled || ev.MaskedIP != "127.0.0.XXX" || !strings.Contains(ev.Detail, "before the TLS handshake") {
		t.Fatalf("refusal %+v", ev)
	}
	for _, v := range []byte{4, 5} {
		cl, code := h.connectCode("d2", v)
		want := map[byte]byte{4: 3, 5: 0x89}[v]
		if code != want {
			t.Fatalf("MQTT %d over TCP: CONNACK 0x%02x, want 0x%02x", v, code, want)
		}
		cl.waitClosed()
	}
	if evs := h.refusals(presence.ReasonThrottledHub); len(evs) != 3 || evs[2].DeviceID != "d2" || evs[2].ProtocolVersion != 5 {
		t.Fatalf("refusals %+v", evs)
	}
}

// Under the rate with a queue, a burst is spread out, not refused.
func TestThrottleShapesConnects(t *testing.T) {
	h := startTestHub(t, withLimits(throttle.Limits{ConnectRate: 10, ConnectBurst: 1, ConnectQueue: 2 * time.Second}))
	start := time.Now()
	for i, id := range []string{"d1", "d2", "d3", "d4"} {
		if _, code := h.connectCode(id, 4); code != 0 {
			t.Fatalf("connect %d: CONNACK %d", i, code)
		}
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("4 connects at 10/s with a burst of 1 took %v, want ≥ 300 ms", d)
	}
	if n := len(h.refusals(presence.ReasonThrottledHub)); n != 0 {
		t.Fatalf("%d refused", n)
	}
}

func TestThrottleAddressAndDevice(t *testing.T) {
	h := startTestHub(t, withLimits(throttle.Limits{AddressRate: 0.001, AddressBurst: 3, DeviceRate: 0.001, DeviceBurst: 2}))
	for _, id := range []string{"d1", "d1"} {
		cl, code := h.connectCode(id, 4)
		if code != 0 {
			t.Fatalf("connect of %s: %d", id, code)
		}
		cl.send(disconnectV3)
		cl.waitClosed()
	}
	// The device's third connect: 429005, CONNACK 3 / MQTT 5 quota exceeded.
	cl, code := h.connectCode("d1", 5)
	if code != 0x97 {
		t.Fatalf("third connect of d1: CONNACK 0x%02x", code)
	}
	cl.waitClosed()
	evs := h.refusals(presence.ReasonThrottledDevice)
	if len(evs) != 1 || evs[0].DeviceID != "d1" || evs[0].Result != presence.ResultDeviceThrottled || !strings.Contains(evs[0].Detail, "reconnect loop") {
		t.Fatalf("device refusals %+v", evs)
	}
	// The address has used its 3: the next connection from it is refused.
	cl, code = h.connectCode("d2", 4)
	if code != 3 {
		t.Fatalf("fourth connection from the address: CONNACK %d", code)
	}
	cl.waitClosed()
	if evs := h.refusals(presence.ReasonThrottledAddress); len(evs) != 1 || evs[0].Result != presence.ResultThrottled {
		t.Fatalf("address refusals %+v", evs)
	}
}

// With every handshake slot held by a silent client, a TLS connection
// waits for a slot, then is refused before its handshake.
func TestThrottleHandshakeCap(t *testing.T) {
	h := startTestHub(t, withTLS, withLimits(throttle.Limits{Handshakes: 1, HandshakeQueue: 200 * time.Millisecond}))
	silent, err := net.Dial("tcp", h.b.TLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	h.waitFor("the silent handshake to hold the slot", func() bool { n, _ := h.b.opts.Throttle.Handshakes(); return n == 1 })
	start := time.Now()
	if _, err := tls.Dial("tcp", h.b.TLSAddr(), &tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Fatal("a handshake while the only slot is held")
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("refused after %v, without waiting for a slot", d)
	}
	h.waitFor("the refusal", func() bool { return len(h.refusals(presence.ReasonThrottledHandshake)) == 1 })
	silent.Close()
	h.waitFor("the slot to free", func() bool { n, _ := h.b.opts.Throttle.Handshakes(); return n == 0 })
	h.connectTLS("d1")
}

// Messages over the device's rate are held back up to the queue, then the
// session ends (429001; MQTT 5: DISCONNECT quota exceeded).
func TestThrottleMessages(t *testing.T) {
	h := startTestHub(t, withLimits(throttle.Limits{MessageRate: 5, MessageBurst: 1, MessageQueue: time.Second}))
	cl, _ := h.connect("d1", 4)
	start := time.Now()
	for i := range 3 {
		cl.send(publishPacket("devices/d1/messages/events/", 1, uint16(i+1), []byte("m")))
	}
	for range 3 {
		if p := cl.read(); p.FixedHeader.Type != packets.Puback {
			t.Fatalf("%s instead of PUBACK", packets.PacketNames[p.FixedHeader.Type])
		}
	}
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Fatalf("3 messages at 5/s with a burst of 1 acknowledged within %v", d)
	}
	// 10 at once: the queue holds 1 s (5 messages); the next ends the session.
	for i := range 10 {
		cl.send(publishPacket("devices/d1/messages/events/", 1, uint16(10+i), []byte("m")))
	}
	cl.waitClosed()
	evs := h.waitEvents("d1", 2)
	if ev := evs[1]; ev.Reason != presence.ReasonThrottledMessages || ev.Result != presence.ResultThrottled {
		t.Fatalf("ended %+v", ev)
	}
	cl5, _ := h.connect("d2", 5)
	for range 10 {
		cl5.send(publishPacketV(5, "devices/d2/messages/events/", 0, 0, []byte("m")))
	}
	if code := readDisconnect(t, cl5); code != 0x97 {
		t.Fatalf("MQTT 5: DISCONNECT 0x%02x, want quota exceeded", code)
	}
}

// The hub-wide message rate ends a session with 429001, MQTT 5
// DISCONNECT server busy; the daily quota ends the session that sends
// past it: 403002, DISCONNECT quota exceeded.
func TestThrottleHubMessages(t *testing.T) {
	h := startTestHub(t, withLimits(throttle.Limits{HubMessageRate: 0.001, HubMessageBurst: 2}))
	cl, _ := h.connect("d1", 5)
	for i := range 2 { // the hub's two tokens, acknowledged before d2 sends
		cl.send(publishPacketV(5, "devices/d1/messages/events/", 1, uint16(i+1), []byte("m")))
		if p := cl.read(); p.FixedHeader.Type != packets.Puback {
			t.Fatalf("%s instead of PUBACK", packets.PacketNames[p.FixedHeader.Type])
		}
	}
	cl2, _ := h.connect("d2", 5)
	cl2.send(publishPacketV(5, "devices/d2/messages/events/", 0, 0, []byte("m")))
	if code := readDisconnect(t, cl2); code != 0x89 {
		t.Fatalf("over the hub's rate: DISCONNECT 0x%02x, want server busy", code)
	}
	if ev := h.waitEvents("d2", 2)[1]; ev.Reason != presence.ReasonThrottledHubMsgs || ev.Result != presence.ResultThrottled {
		t.Fatalf("d2 ended %+v", ev)
	}
}

func TestThrottleDailyQuota(t *testing.T) {
	q := startTestHub(t, withLimits(throttle.Limits{DailyQuota: 3}))
	c3, _ := q.connect("d3", 5)
	for range 4 {
		c3.send(publishPacketV(5, "devices/d3/messages/events/", 0, 0, []byte("m")))
	}
	if code := readDisconnect(t, c3); code != 0x97 {
		t.Fatalf("over the quota: DISCONNECT 0x%02x, want quota exceeded", code)
	}
	if ev := q.waitEvents("d3", 2)[1]; ev.Reason != presence.ReasonQuotaExceeded || ev.Result != presence.ResultQuotaExceeded || !strings.Contains(ev.Detail, "daily quota of 3") {
		t.Fatalf("d3 ended %+v", ev)
	}
}

// readDisconnect reads until the hub's DISCONNECT and returns its reason.
func readDisconnect(t *testing.T, c *client) byte {
	t.Helper()
	for {
		p, err := c.tryRead()
		if err != nil {
			t.Fatalf("no DISCONNECT before the close: %v", err)
		}
		if p.FixedHeader.Type == packets.Disconnect {
			return p.ReasonCode
		}
	}
}

// Refusals before the TLS handshake are journalled together: a burst of
// them is a few events whose counts add up to the attempts.
func TestThrottleRefusalsBatched(t *testing.T) {
	h := startTestHub(t, withTLS, withLimits(throttle.Limits{ConnectRate: 0.001, ConnectBurst: 1}))
	h.connectTLS("d1")
	const n = 30
	for range n {
		if c, err := tls.Dial("tcp", h.b.TLSAddr(), &tls.Config{InsecureSkipVerify: true}); err == nil {
			c.Close()
			t.Fatal("a handshake past the rate")
		}
	}
	var evs []presence.ConnectionEvent
	h.waitFor("the refusals", func() bool {
		evs = h.refusals(presence.ReasonThrottledHub)
		sum := 0
		for _, ev := range evs {
			sum += ev.Attempts()
		}
		return sum == n
	})
	if len(evs) >= n/2 {
		t.Fatalf("%d events for %d refusals: not batched", len(evs), n)
	}
	for _, ev := range evs {
		if ev.DeviceID != "" || ev.MaskedIP != "127.0.0.XXX" || ev.Count < 1 {
			t.Fatalf("event %+v", ev)
		}
	}
}
