package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tether-hub/tether/internal/broker/brokertest"
	"github.com/tether-hub/tether/internal/certs"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/sas"
	"github.com/tether-hub/tether/internal/telemetry"
)

// The broker's own tests run it without the rest of the hub: a presence
// tracker whose sink keeps the events (and reports them stored at once), a
// registry of two functions, and a telemetry sink the test controls.

const testHubName, testKey = "localhost", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

type testHub struct {
	t        *testing.T
	b        *Broker
	presence *presence.Tracker

	mu  sync.Mutex
	evs []presence.ConnectionEvent

	// telemetry receives each D2C message with its stored callback when
	// holdTelemetry is set; otherwise messages are stored at once.
	holdTelemetry bool
	telemetry     chan heldMessage
}

type heldMessage struct {
	msg    telemetry.Message
	stored func(error)
}

// startTestHub starts a broker on plain TCP (and TLS when withTLS) for
// devices whose ids start with "d" (enabled) or "off" (disabled).
func startTestHub(t *testing.T, configure ...func(*testHub, *Options)) *testHub {
	t.Helper()
	h := &testHub{t: t, telemetry: make(chan heldMessage, 1024)}
	h.presence = presence.NewTracker(presence.Options{Hub: testHubName, Epoch: 1, Sink: func(ev presence.ConnectionEvent) {
		h.mu.Lock()
		h.evs = append(h.evs, ev)
		h.mu.Unlock()
		if ev.Recorded != nil {
			ev.Recorded(nil)
		}
	}})
	o := Options{
		HubName: testHubName, TCPAddr: "127.0.0.1:0", Presence: h.presence, Logger: slog.New(slog.DiscardHandler),
		ConnectTimeout: 2 * time.Second,
		Devices: func(id string) (Credentials, bool) {
			switch {
			case strings.HasPrefix(id, "d"):
				return Credentials{Keys: [2]string{testKey, ""}, Enabled: true}, true
			case strings.HasPrefix(id, "off"):
				return Credentials{Keys: [2]string{testKey, ""}}, true
			}
			return Credentials{}, false
		},
		Policies: func(string) ([2]string, bool, bool) { return [2]string{}, false, false },
		Telemetry: func(m telemetry.Message, stored func(error)) {
			if h.holdTelemetry {
				h.telemetry <- heldMessage{m, stored}
				return
			}
			select {
			case h.telemetry <- heldMessage{m, nil}:
			default:
			}
			if stored != nil {
				stored(nil)
			}
		},
	}
	for _, c := range configure {
		c(h, &o)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	h.b = b
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		brokertest.CheckNoSessionGoroutines(t)
	})
	return h
}

// withTLS serves MQTT/TLS too, with a dev certificate.
func withTLS(h *testHub, o *Options) {
	cert, err := certs.EnsureDev(h.t.TempDir(), []string{"localhost", "127.0.0.1"})
	if err != nil {
		h.t.Fatal(err)
	}
	o.TLSAddr, o.TLS = "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

func (h *testHub) events(device string) []presence.ConnectionEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []presence.ConnectionEvent
	for _, ev := range h.evs {
		if ev.DeviceID == device {
			out = append(out, ev)
		}
	}
	return out
}

// waitFor polls cond until it holds or 10 s pass (a wait for a condition,
// not a sleep for things to settle).
func (h *testHub) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitEvents waits until the device has n events and returns them.
func (h *testHub) waitEvents(device string, n int) []presence.ConnectionEvent {
	h.t.Helper()
	var evs []presence.ConnectionEvent
	h.waitFor("events of "+device, func() bool { evs = h.events(device); return len(evs) >= n })
	return evs
}

func token(t testing.TB, device string) string {
	tok, err := sas.Sign(sas.DeviceResource(testHubName, device), testKey, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func username(device string) string { return testHubName + "/" + device + "/?api-version=2021-04-12" }

// connectPacket encodes a CONNECT with the mochi codec (any version).
func connectPacket(version byte, clientID, user, password string, keepAlive uint16, clean bool) []byte {
	pk := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: version,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Keepalive: keepAlive, Clean: clean,
			UsernameFlag: true, Username: []byte(user), PasswordFlag: password != "", Password: []byte(password),
		},
	}
	if version == 3 {
		pk.Connect.ProtocolName = []byte("MQIsdp")
	}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// client is a raw MQTT connection for tests.
type client struct {
	t       testing.TB
	c       net.Conn
	version byte
	rd      reader
}

func newClient(t testing.TB, c net.Conn) *client {
	cl := &client{t: t, c: c, version: 4}
	cl.rd.init(c, 1<<20)
	return cl
}

func (h *testHub) dial() *client {
	h.t.Helper()
	return h.dialAddr(h.b.TCPAddr())
}

func (h *testHub) dialAddr(addr string) *client {
	h.t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		h.t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	h.t.Cleanup(func() { c.Close() })
	return newClient(h.t, c)
}

// connect dials and connects device (3.1.1 unless version says otherwise),
// returning the client and the CONNACK's return code.
func (h *testHub) connect(device string, version byte) (*client, byte) {
	h.t.Helper()
	cl := h.dial()
	cl.version = version
	cl.send(connectPacket(version, device, username(device), token(h.t, device), 60, false))
	p := cl.read()
	if p.FixedHeader.Type != packets.Connack {
		h.t.Fatalf("want CONNACK, got %s", packets.PacketNames[p.FixedHeader.Type])
	}
	return cl, p.ReasonCode
}

func (c *client) send(b []byte) {
	c.t.Helper()
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads and decodes one packet from the hub.
func (c *client) read() packets.Packet {
	c.t.Helper()
	p, err := c.tryRead()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return p
}

func (c *client) tryRead() (packets.Packet, error) {
	header, body, err := c.rd.next()
	if err != nil {
		return packets.Packet{}, err
	}
	pk := packets.Packet{ProtocolVersion: c.version}
	if err := pk.FixedHeader.Decode(header); err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = len(body)
	body = bytes.Clone(body)
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	}
	return pk, err
}

// closed reports whether the hub closed the connection (reading anything
// it sends first).
func (c *client) waitClosed() {
	c.t.Helper()
	if _, err := io.Copy(io.Discard, c.c); err != nil && !isClosedError(err) {
		c.t.Fatalf("connection not closed by the hub: %v", err)
	}
}

func publishPacket(topic string, qos byte, id uint16, payload []byte) []byte {
	return publishPacketV(4, topic, qos, id, payload)
}

func publishPacketV(version byte, topic string, qos byte, id uint16, payload []byte) []byte {
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, PacketID: id, Payload: payload, ProtocolVersion: version}
	var buf bytes.Buffer
	if err := pk.PublishEncode(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

var (
	disconnectV3 = []byte{0xE0, 0}
	pingreq      = []byte{0xC0, 0}
)

// connectTLS connects device over MQTT/TLS (3.1.1) and checks the CONNACK.
func (h *testHub) connectTLS(device string) *client {
	h.t.Helper()
	c, err := tls.Dial("tcp", h.b.TLSAddr(), &tls.Config{InsecureSkipVerify: true}) // the test's own dev certificate
	if err != nil {
		h.t.Fatal(err)
	}
	return h.handshake(c, device)
}

// handshake connects device (3.1.1) over c, a connection a test dialled
// its own way, and checks the CONNACK.
func (h *testHub) handshake(c net.Conn, device string) *client {
	h.t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	h.t.Cleanup(func() { c.Close() })
	cl := newClient(h.t, c)
	cl.send(connectPacket(4, device, username(device), token(h.t, device), 60, false))
	if p := cl.read(); p.FixedHeader.Type != packets.Connack || p.ReasonCode != 0 {
		h.t.Fatalf("CONNACK %s %d", packets.PacketNames[p.FixedHeader.Type], p.ReasonCode)
	}
	return cl
}

// checkRenewals fails unless every session in evs ended as the client's
// disconnect (a renewal), never as a takeover or a drop.
func checkRenewals(t *testing.T, evs []presence.ConnectionEvent) {
	t.Helper()
	for k, ev := range evs {
		if ev.Kind == presence.Disconnected && ev.Reason != presence.ReasonClient {
			t.Fatalf("renewal %d ended as %s %s (%s), want a client disconnect", k/2, ev.Reason, ev.Result.Type, ev.Detail)
		}
	}
}
