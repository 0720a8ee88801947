package broker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/sas"
)

// A device that sends DISCONNECT and reconnects as soon as the hub closes
// its socket (the SDKs' SAS renewal) can reach the hub before mochi runs
// the old connection's OnDisconnect. Delaying that hook makes the race
// certain: the old session must still end as a client disconnect, before
// the new connect, and not as a 400027 takeover.
func TestReconnectOvertakingDisconnectHook(t *testing.T) {
	const hub, dev, key = "localhost", "d1", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	var mu sync.Mutex
	var evs []presence.ConnectionEvent
	tr := presence.NewTracker(presence.Options{Hub: hub, Epoch: 1, Sink: func(ev presence.ConnectionEvent) {
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
		if ev.Recorded != nil {
			ev.Recorded(nil)
		}
	}})
	delayed := make(chan struct{}, 1)
	testHookOnDisconnect = func(string) {
		select {
		case delayed <- struct{}{}: // the first disconnect only
			time.Sleep(500 * time.Millisecond)
		default:
		}
	}
	defer func() { testHookOnDisconnect = nil }()
	b, err := New(Options{
		HubName: hub, TCPAddr: "127.0.0.1:0", Presence: tr, Logger: slog.New(slog.DiscardHandler),
		Devices:  func(string) ([2]string, bool, bool) { return [2]string{key, key}, true, true },
		Policies: func(string) ([2]string, bool, bool) { return [2]string{}, false, false },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())
	tok, err := sas.Sign(sas.DeviceResource(hub, dev), key, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	connect := func() net.Conn {
		c, err := net.Dial("tcp", b.TCPAddr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(mqttclient.ConnectPacket(dev, hub+"/"+dev+"/?api-version=2021-04-12", tok, 60, true)); err != nil {
			t.Fatal(err)
		}
		var ack [4]byte
		if _, err := io.ReadFull(c, ack[:]); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			t.Fatalf("CONNACK % x %v", ack, err)
		}
		return c
	}
	c := connect()
	_, _ = c.Write([]byte{0xE0, 0}) // DISCONNECT, then wait for the hub to close
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("waiting for the hub to close: %v", err)
	}
	c.Close()
	c = connect() // while the old OnDisconnect is held up
	defer c.Close()

	mu.Lock()
	defer mu.Unlock()
	if len(evs) != 3 || evs[0].Kind != presence.Connected || evs[1].Kind != presence.Disconnected ||
		evs[1].Reason != presence.ReasonClient || evs[2].Kind != presence.Connected {
		for _, e := range evs {
			t.Logf("%s %s %s %s", e.Kind, e.Reason, e.Result.Type, e.Detail)
		}
		t.Fatalf("got %d events, want connected, disconnected (client), connected", len(evs))
	}
}
