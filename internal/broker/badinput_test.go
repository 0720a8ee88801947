package broker

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/presence"
)

// Each kind of bad input on an established session ends it with a typed
// cause and a record; the hub sends MQTT 5 devices the reason code and
// never sends a DISCONNECT packet to a 3.1.1 device.
func TestBadPacketsEndTheSession(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 300<<10)
	cases := []struct {
		name    string
		version byte
		send    []byte
		reason  presence.Reason
		result  string
		detail  string
		v5      byte
	}{
		{"second CONNECT", 4, connectPacket(4, "d1", username("d1"), "x", 60, false), presence.ReasonProtocolError, "400000", "second CONNECT", 0},
		{"QoS 2 publish", 5, []byte{0x34, 7, 0, 3, 'a', '/', 'b', 0, 1}, presence.ReasonProtocolError, "400000", "QoS 2", v5QoSNotSupported},
		{"PUBREL", 4, []byte{0x62, 2, 0, 1}, presence.ReasonProtocolError, "400000", "QoS 2", 0},
		{"malformed UTF-8 topic", 4, []byte{0x30, 6, 0, 2, 0xff, 0xfe, 'h', 'i'}, presence.ReasonProtocolError, "400000", "malformed PUBLISH", 0},
		{"remaining length over 4 bytes", 4, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, presence.ReasonProtocolError, "400000", "malformed remaining length", 0},
		{"packet over the size limit", 5, []byte{0x30, 0xff, 0xff, 0xff, 0x7f}, presence.ReasonProtocolError, "400000", "packet too large", v5PacketTooLarge},
		{"message over 256 KiB", 4, publishPacket("devices/d1/messages/events/", 1, 1, big), presence.ReasonProtocolError, "400000", "IoT Hub's limit", 0},
		{"QoS 1 to another device", 5, publishPacketV(5, "devices/d2/messages/events/", 1, 1, []byte("spoof")), presence.ReasonProtocolError, "401003", "devices/d2/messages/events/", v5NotAuthorized},
		{"QoS 0 to another device", 4, publishPacket("devices/d2/messages/events/", 0, 0, []byte("spoof")), presence.ReasonProtocolError, "401003", "devices/d2", 0},
		{"QoS 1 to $SYS", 4, publishPacket("$SYS/x", 1, 1, []byte("x")), presence.ReasonProtocolError, "401003", "$SYS/x", 0},
		{"reserved flags", 4, []byte{0xC1, 0}, presence.ReasonProtocolError, "400000", "PINGREQ", 0},
		{"AUTH", 5, []byte{0xF0, 0}, presence.ReasonProtocolError, "400000", "AUTH", v5ProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startTestHub(t)
			cl, rc := h.connect("d1", tc.version)
			if rc != 0 {
				t.Fatalf("CONNACK %d", rc)
			}
			if tc.version == 5 {
				// The hub may stop reading mid-message: write from
				// another goroutine so a large packet cannot block the test.
				go func() { _, _ = cl.c.Write(tc.send) }()
				p, err := cl.tryRead()
				if err != nil || p.FixedHeader.Type != packets.Disconnect || p.ReasonCode != tc.v5 {
					t.Errorf("got %s 0x%02x (%v), want DISCONNECT 0x%02x", packets.PacketNames[p.FixedHeader.Type], p.ReasonCode, err, tc.v5)
				}
			} else {
				go func() { _, _ = cl.c.Write(tc.send) }()
				if p, err := cl.tryRead(); err == nil {
					t.Errorf("a 3.1.1 device got %s from the hub", packets.PacketNames[p.FixedHeader.Type])
				}
			}
			evs := h.waitEvents("d1", 2)
			ev := evs[1]
			if ev.Kind != presence.Disconnected || ev.Reason != tc.reason || ev.Result.Type != tc.result || !strings.Contains(ev.Detail, tc.detail) {
				t.Errorf("recorded %s %s %s %q; want %s %s containing %q", ev.Kind, ev.Reason, ev.Result.Type, ev.Detail, tc.reason, tc.result, tc.detail)
			}
		})
	}
}

// Connections that never become sessions: each is refused with a record
// (CONNACK code where the protocol has one), except a bare port probe.
func TestRefusedBeforeSession(t *testing.T) {
	cases := []struct {
		name    string
		send    []byte
		connack int // -1: none expected
		reason  presence.Reason
		result  string
		detail  string
	}{
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), -1, presence.ReasonProtocolError, "400000", "does not start a CONNECT"},
		{"PUBLISH first", []byte{0x30, 2, 0, 0}, -1, presence.ReasonProtocolError, "400000", "PUBLISH"},
		{"CONNECT claiming 256 MiB", []byte{0x10, 0xff, 0xff, 0xff, 0x7f, 0, 4, 'M', 'Q', 'T', 'T'}, -1, presence.ReasonProtocolError, "400000", "too large"},
		{"MQTT 3.1", connectPacket(3, "d1", username("d1"), "x", 60, false), 1, presence.ReasonProtocolError, "400000", "MQIsdp"},
		{"MQTT level 3", withLevel(connectPacket(4, "d1", username("d1"), "x", 60, false), 3), 1, presence.ReasonProtocolError, "400000", "level 3"},
		{"empty password 3.1.1", withEmptyPassword(4), 5, presence.ReasonAuthFailed, "401003", "SAS token is required"},
		{"empty password 5", withEmptyPassword(5), 0x86, presence.ReasonAuthFailed, "401003", "SAS token is required"},
		{"bad token", connectPacket(4, "d1", username("d1"), "SharedAccessSignature sr=x&sig=y&se=1", 60, false), 5, presence.ReasonAuthFailed, "401003", ""},
		{"disabled device", connectPacket(4, "off1", username("off1"), token(t, "off1"), 60, false), 5, presence.ReasonAuthFailed, "401003", "disabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := startTestHub(t)
			cl := h.dial()
			cl.send(tc.send)
			p, err := cl.tryRead()
			switch {
			case tc.connack < 0 && err == nil:
				t.Errorf("got %s, want the connection closed", packets.PacketNames[p.FixedHeader.Type])
			case tc.connack >= 0 && (err != nil || p.FixedHeader.Type != packets.Connack || int(p.ReasonCode) != tc.connack):
				t.Errorf("got %s %d (%v), want CONNACK %d", packets.PacketNames[p.FixedHeader.Type], p.ReasonCode, err, tc.connack)
			}
			var ev presence.ConnectionEvent
			h.waitFor("a refusal", func() bool {
				h.mu.Lock()
				defer h.mu.Unlock()
				if len(h.evs) > 0 {
					ev = h.evs[0]
				}
				return len(h.evs) > 0
			})
			if tc.reason == presence.ReasonAuthFailed && ev.AuthFailure == presence.AuthNone {
				t.Errorf("auth refusal without a typed AuthFailure: %q", ev.Detail)
			}
			if ev.Kind != presence.Refused || ev.Reason != tc.reason || ev.Result.Type != tc.result || !strings.Contains(ev.Detail, tc.detail) || ev.MaskedIP != "127.0.0.XXX" {
				t.Errorf("recorded %s %s %s %q %q; want refused %s %s containing %q", ev.Kind, ev.Reason, ev.Result.Type, ev.Detail, ev.MaskedIP, tc.reason, tc.result, tc.detail)
			}
		})
	}
}

func withLevel(connect []byte, level byte) []byte {
	// fixed header (2) + protocol name (6) → the level byte
	connect[8] = level
	return connect
}

func withEmptyPassword(version byte) []byte {
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: "d1", Keepalive: 60,
			UsernameFlag: true, Username: []byte(username("d1")), PasswordFlag: true},
	}
	var buf bytes.Buffer
	_ = pk.ConnectEncode(&buf)
	return buf.Bytes()
}

// A silent client and a half-open TLS client are closed at the connect
// timeout and recorded as 500008; a port probe (connect, close, nothing
// sent) is not recorded at all.
func TestSilentClientsTimeOut(t *testing.T) {
	h := startTestHub(t, withTLS)
	probe := h.dial()
	probe.c.Close()
	silent := h.dial()
	silent.waitClosed()
	half := h.dialAddr(h.b.TLSAddr())
	half.waitClosed()
	h.waitFor("two refusals", func() bool { return len(h.events("")) >= 2 })
	for _, ev := range h.events("") {
		if ev.Reason != presence.ReasonConnectTimeout || ev.Result.Type != "500008" {
			t.Errorf("recorded %s %s %q, want connect-timeout 500008", ev.Reason, ev.Result.Type, ev.Detail)
		}
	}
	if n := len(h.events("")); n != 2 {
		t.Errorf("%d refusals recorded, want 2 (the port probe is not news)", n)
	}
}
