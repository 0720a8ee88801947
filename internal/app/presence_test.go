package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

type wantEvent struct {
	kind   presence.Kind
	reason presence.Reason
	result string
}

// checkEvents asserts kinds, reasons, results and strictly increasing
// sequence numbers.
func checkEvents(t *testing.T, got []presence.ConnectionEvent, want ...wantEvent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events (%s), want %d", len(got), describe(got), len(want))
	}
	prev := ""
	for i, w := range want {
		ev := got[i]
		if ev.Kind != w.kind || ev.Reason != w.reason || ev.Result.Type != w.result {
			t.Errorf("event %d = %s/%s/%q, want %s/%s/%q (%s)", i, ev.Kind, ev.Reason, ev.Result.Type, w.kind, w.reason, w.result, ev.Detail)
		}
		if ev.Kind != presence.Refused {
			if len(ev.Sequence) != 64 || ev.Sequence <= prev {
				t.Errorf("event %d sequence %s does not follow %s", i, ev.Sequence, prev)
			}
			prev = ev.Sequence
		}
	}
}

type wantRecord struct {
	op, level, result, desc string
}

func checkRecords(t *testing.T, got []connlog.Record, want ...wantRecord) {
	t.Helper()
	if len(got) != len(want) {
		var ops []string
		for _, r := range got {
			ops = append(ops, r.OperationName+"/"+r.ResultType)
		}
		t.Fatalf("got %d records %v, want %d", len(got), ops, len(want))
	}
	for i, w := range want {
		r := got[i]
		if r.OperationName != w.op || r.Level != w.level || r.ResultType != w.result || r.ResultDescription != w.desc {
			t.Errorf("record %d = %s %s %q %q, want %+v", i, r.OperationName, r.Level, r.ResultType, r.ResultDescription, w)
		}
		if r.Category != "Connections" || r.ResourceProvider != "MICROSOFT.DEVICES" || r.ResourceType != "IOTHUBS" {
			t.Errorf("record %d columns %s %s %s", i, r.Category, r.ResourceProvider, r.ResourceType)
		}
	}
}

func props(t *testing.T, r connlog.Record) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Properties), &m); err != nil {
		t.Fatalf("properties_s %q: %v", r.Properties, err)
	}
	return m
}

var (
	connectInfo    = wantRecord{"deviceConnect", "Information", "", ""}
	disconnectInfo = wantRecord{"deviceDisconnect", "Information", "", ""}
	closedRemotely = wantRecord{"deviceDisconnect", "Error", "404104", "DeviceConnectionClosedRemotely"}
)

func TestClientDisconnectIsInformation(t *testing.T) {
	h := startHub(t)
	key := h.device("d1")
	c, rc := h.v3("d1", username("d1"), h.token("d1", key, time.Hour))
	if rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	c.Disconnect(100)
	evs := h.waitEvents("d1", 2)
	checkEvents(t, evs, wantEvent{presence.Connected, "", ""}, wantEvent{presence.Disconnected, presence.ReasonClient, ""})
	if evs[0].Protocol != "MQTT" || evs[0].ProtocolVersion != 4 || evs[0].SDKVersion != "tether-test/1.0" || evs[0].SessionID == "" || evs[1].SessionID != evs[0].SessionID {
		t.Errorf("connect event %+v", evs[0])
	}
	if evs[1].DurationMs < 0 || evs[1].ConnectedAt.IsZero() {
		t.Errorf("disconnect has no duration: %+v", evs[1])
	}
	recs := h.waitLogs("d1", 2)
	checkRecords(t, recs, connectInfo, disconnectInfo)
	p := props(t, recs[0])
	if p["protocol"] != "Mqtt" || p["sdkVersion"] != "tether-test/1.0" || p["maskedIpAddress"] != "127.0.0.XXX" || p["deviceId"] != "d1" {
		t.Errorf("connect properties_s = %s", recs[0].Properties)
	}
	if recs[0].SequenceNumber != evs[0].Sequence {
		t.Errorf("record sequence %s, event %s", recs[0].SequenceNumber, evs[0].Sequence)
	}
}

func TestNetworkDropIs404104(t *testing.T) {
	h := startHub(t)
	key := h.device("d1")
	c, err := dialRaw(h.MQTTAddr(), h.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := c.connect("d1", username("d1"), h.token("d1", key, time.Hour), 60); err != nil || rc != 0 {
		t.Fatalf("connect: %d %v", rc, err)
	}
	_ = c.Close() // no DISCONNECT
	checkEvents(t, h.waitEvents("d1", 2), wantEvent{presence.Connected, "", ""}, wantEvent{presence.Disconnected, presence.ReasonNetwork, "404104"})
	recs := h.waitLogs("d1", 2)
	checkRecords(t, recs, connectInfo, closedRemotely)
	if p := props(t, recs[1]); p["statusCode"] != "404" || !strings.Contains(p["errorMessage"].(string), "https://aka.ms/iothub404104") {
		t.Errorf("properties_s = %s", recs[1].Properties)
	}
}

func TestKeepAliveLossIs404104(t *testing.T) {
	h := startHub(t)
	key := h.device("d1")
	c, err := dialRaw(h.TCPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if rc, err := c.connect("d1", username("d1"), h.token("d1", key, time.Hour), 1); err != nil || rc != 0 {
		t.Fatalf("connect: %d %v", rc, err)
	}
	// Say nothing: the hub must close at 1.5 × keep-alive.
	if !c.waitClosed(5 * time.Second) {
		t.Fatal("hub did not close a silent connection")
	}
	if el := time.Since(start); el < 1400*time.Millisecond {
		t.Errorf("closed after %s, before 1.5 × keep-alive", el)
	}
	checkEvents(t, h.waitEvents("d1", 2), wantEvent{presence.Connected, "", ""}, wantEvent{presence.Disconnected, presence.ReasonKeepAlive, "404104"})
	checkRecords(t, h.waitLogs("d1", 2), connectInfo, closedRemotely)
}

func TestTakeoverIs400027(t *testing.T) {
	h := startHub(t)
	key := h.device("d1")
	lost := make(chan error, 1)
	first, _ := h.v3("d1", username("d1"), h.token("d1", key, time.Hour), func(o *pahov3.ClientOptions) {
		o.SetConnectionLostHandler(func(_ pahov3.Client, err error) { lost <- err })
	})
	second, rc := h.v3("d1", username("d1"), h.token("d1", key, time.Hour))
	if rc != 0 || second == nil {
		t.Fatalf("second connect: %d", rc)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the first connection was not closed")
	}
	_ = first
	evs := h.waitEvents("d1", 3)
	checkEvents(t, evs,
		wantEvent{presence.Connected, "", ""},
		wantEvent{presence.Disconnected, presence.ReasonTakeover, "400027"},
		wantEvent{presence.Connected, "", ""})
	if evs[1].SessionID != evs[0].SessionID || evs[2].SessionID == evs[0].SessionID {
		t.Errorf("sessions: %s %s %s", evs[0].SessionID, evs[1].SessionID, evs[2].SessionID)
	}
	checkRecords(t, h.waitLogs("d1", 3), connectInfo,
		wantRecord{"deviceDisconnect", "Error", "400027", "ConnectionForcefullyClosedOnNewConnection"}, connectInfo)
	if n := h.Presence().Connected(); n != 1 {
		t.Errorf("connected = %d, want 1", n)
	}
}

func TestTokenExpiryClosesTheConnection(t *testing.T) {
	h := startHub(t)
	key := h.device("d1")
	c, err := dialRaw(h.MQTTAddr(), h.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := c.connect("d1", username("d1"), h.token("d1", key, 2*time.Second), 60); err != nil || rc != 0 {
		t.Fatalf("connect: %d %v", rc, err)
	}
	if !c.waitClosed(6 * time.Second) {
		t.Fatal("hub kept a connection whose token expired")
	}
	evs := h.waitEvents("d1", 2)
	checkEvents(t, evs, wantEvent{presence.Connected, "", ""}, wantEvent{presence.Disconnected, presence.ReasonTokenExpired, "404104"})
	if evs[0].TokenExpiry.IsZero() {
		t.Error("connect event has no token expiry")
	}
	// IoT Hub logs 401003 then 404104 for an expired token.
	checkRecords(t, h.waitLogs("d1", 3), connectInfo,
		wantRecord{"deviceDisconnect", "Error", "401003", "IoTHubUnauthorized"}, closedRemotely)
}

func TestDisableAndDeleteDisconnect(t *testing.T) {
	h := startHub(t)
	ctx := context.Background()
	for _, tc := range []struct {
		id     string
		change func(id string)
		reason presence.Reason
	}{
		{"to-disable", func(id string) {
			d, _ := h.Registry().Get(ctx, id)
			d.Status = registry.Disabled
			if _, err := h.Registry().Replace(ctx, d, "*", "test"); err != nil {
				t.Fatal(err)
			}
		}, presence.ReasonDisabled},
		{"to-delete", func(id string) {
			if err := h.Registry().Delete(ctx, id, "*", "test"); err != nil {
				t.Fatal(err)
			}
		}, presence.ReasonDeleted},
	} {
		key := h.device(tc.id)
		c, err := dialRaw(h.MQTTAddr(), h.tlsConfig())
		if err != nil {
			t.Fatal(err)
		}
		if rc, err := c.connect(tc.id, username(tc.id), h.token(tc.id, key, time.Hour), 60); err != nil || rc != 0 {
			t.Fatalf("connect: %d %v", rc, err)
		}
		h.waitEvents(tc.id, 1)
		tc.change(tc.id)
		if !c.waitClosed(5 * time.Second) {
			t.Fatalf("%s: still connected", tc.id)
		}
		checkEvents(t, h.waitEvents(tc.id, 2), wantEvent{presence.Connected, "", ""}, wantEvent{presence.Disconnected, tc.reason, "401003"})
		checkRecords(t, h.waitLogs(tc.id, 2), connectInfo, wantRecord{"deviceDisconnect", "Error", "401003", "IoTHubUnauthorized"})
		// And it cannot come back.
		c2, _ := dialRaw(h.MQTTAddr(), h.tlsConfig())
		if rc, _ := c2.connect(tc.id, username(tc.id), h.token(tc.id, key, time.Hour), 60); rc != 5 {
			t.Errorf("%s reconnect CONNACK %d, want 5", tc.id, rc)
		}
		_ = c2.Close()
	}
}

// 5 simultaneous CONNECTs for each of 100 ids leave exactly 100 live
// (through the whole hub; internal/broker checks the event order too).
func TestSimultaneousConnectsLeaveOnePerDevice(t *testing.T) {
	h := startHub(t)
	const ids, per = 100, 5
	keys := make([]string, ids)
	for i := range ids {
		keys[i] = h.device(devName(i))
	}
	conns := make([]*rawConn, ids*per)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ids * per {
		dev := devName(i / per)
		c, err := dialRaw(h.TCPAddr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		pkt := connectPacket(dev, username(dev), h.token(dev, keys[i/per], time.Hour), 60, false)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _ = c.Write(pkt)
		}()
	}
	close(start)
	wg.Wait()
	// Let every CONNECT settle, then count connections answering PINGREQ.
	eventually(t, 15*time.Second, func() error {
		live := 0
		for _, c := range conns {
			if c.alive(500 * time.Millisecond) {
				live++
			}
		}
		if live != ids {
			return errorf("%d live connections, want %d", live, ids)
		}
		return nil
	})
	if n := h.Presence().Connected(); n != ids {
		t.Fatalf("presence says %d connected, want %d", n, ids)
	}
	// A burst of ≥ 50 connects followed by a quiet second compacts memory.
	eventually(t, 5*time.Second, func() error {
		if h.Compactions() == 0 {
			return errorf("no compaction after a burst of %d connects", h.Presence().Connects())
		}
		return nil
	})
	began := time.Now()
	eventually(t, 60*time.Second, func() error {
		if h.SettleCompactions() == 0 {
			return errorf("no compaction once the hub settled after the burst")
		}
		return nil
	})
	t.Logf("settled %s after the burst's compaction", time.Since(began))
	// Every device's events alternate connect/disconnect and end connected.
	eventually(t, 10*time.Second, func() error {
		for i := range ids {
			evs := h.events.forDevice(devName(i))
			if len(evs) == 0 || evs[len(evs)-1].Kind != presence.Connected {
				return errorf("%s: events %s", devName(i), describe(evs))
			}
			for j, ev := range evs {
				wantKind := presence.Connected
				if j%2 == 1 {
					wantKind = presence.Disconnected
				}
				if ev.Kind != wantKind {
					return errorf("%s: events %s do not alternate", devName(i), describe(evs))
				}
			}
		}
		return nil
	})
	for _, c := range conns {
		_ = c.Close()
	}
}

func TestSequenceGrowsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	key := h.device("d1")
	c, _ := h.v3("d1", username("d1"), h.token("d1", key, time.Hour))
	c.Disconnect(100)
	before := h.waitEvents("d1", 2)
	h.stop()

	h2 := startHubIn(t, dir)
	c2, rc := h2.v3("d1", username("d1"), h2.token("d1", key, time.Hour))
	if rc != 0 {
		t.Fatalf("after restart: CONNACK %d", rc)
	}
	after := h2.waitEvents("d1", 1)
	if !(after[0].Sequence > before[1].Sequence) {
		t.Fatalf("sequence after restart %s is not after %s", after[0].Sequence, before[1].Sequence)
	}
	c2.Disconnect(100)
}

func TestShutdownRecordsServerShutdown(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	key := h.device("d1")
	if _, rc := h.v3("d1", username("d1"), h.token("d1", key, time.Hour)); rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	h.waitEvents("d1", 1)
	h.stop()
	// The log writer may stop before it reads the last event; after a
	// restart it resumes from its durable position.
	h2 := startHubIn(t, dir)
	recs := h2.waitLogs("d1", 2)
	checkRecords(t, recs, connectInfo, disconnectInfo)
	if p := props(t, recs[1]); p["reason"] != "server-shutdown" {
		t.Errorf("shutdown record properties_s = %s", recs[1].Properties)
	}
}

func devName(i int) string { return "dev-" + string(rune('a'+i/26)) + string(rune('a'+i%26)) }

// TestResetBeforeConnackEndsTheSession: a client that sends CONNECT and
// resets the socket at once makes the CONNACK write fail. The hub still
// records connect then disconnect
// (the connect is journalled before the CONNACK is sent), drops the live
// session and lets the device reconnect at once.
func TestResetBeforeConnackEndsTheSession(t *testing.T) {
	h := startHub(t)
	key := h.device("d1")
	tok := h.token("d1", key, time.Hour)
	for i := 0; i < 20 && len(h.events.forDevice("d1")) == 0; i++ {
		c, err := net.Dial("tcp", h.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).SetLinger(0) // Close sends RST
		if _, err := c.Write(connectPacket("d1", username("d1"), tok, 60, true)); err != nil {
			t.Fatal(err)
		}
		_ = c.Close()
		// Either the hub saw the reset before reading CONNECT (nothing
		// recorded; try again) or it recorded the connect.
		time.Sleep(50 * time.Millisecond)
	}
	// An attempt recorded after the loop's last look adds its own pair: on
	// a busy machine the first pair may take longer than 50 ms to appear.
	// Every recorded attempt must be a connect and its network disconnect.
	var evs []presence.ConnectionEvent
	eventually(t, 10*time.Second, func() error {
		if evs = h.events.forDevice("d1"); len(evs) < 2 || len(evs)%2 != 0 {
			return fmt.Errorf("%d events (%s), want connect/disconnect pairs", len(evs), describe(evs))
		}
		return nil
	})
	var want []wantEvent
	for range len(evs) / 2 {
		want = append(want, wantEvent{presence.Connected, "", ""}, wantEvent{presence.Disconnected, presence.ReasonNetwork, "404104"})
	}
	checkEvents(t, evs, want...)
	if n := h.Presence().Connected(); n != 0 {
		t.Fatalf("%d devices still counted as connected", n)
	}
	// The device lock was released: a new CONNECT is answered at once, not
	// after the lock's 15 s safety timer.
	start := time.Now()
	c, err := dialRaw(h.TCPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rc, err := c.connect("d1", username("d1"), tok, 60); err != nil || rc != 0 {
		t.Fatalf("reconnect: %d %v", rc, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("reconnect took %v: the device lock was still held", d)
	}
}
