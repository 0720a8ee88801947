package broker

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/sas"
)

// overtakeHub is a broker on plain TCP for one device, d1, with its
// connection events recorded.
type overtakeHub struct {
	t   *testing.T
	b   *Broker
	tok string
	mu  sync.Mutex
	evs []presence.ConnectionEvent
}

const overtakeHubName, overtakeDev, overtakeKey = "localhost", "d1", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func startOvertakeHub(t *testing.T) *overtakeHub {
	h := &overtakeHub{t: t}
	tr := presence.NewTracker(presence.Options{Hub: overtakeHubName, Epoch: 1, Sink: func(ev presence.ConnectionEvent) {
		h.mu.Lock()
		h.evs = append(h.evs, ev)
		h.mu.Unlock()
		if ev.Recorded != nil {
			ev.Recorded(nil)
		}
	}})
	b, err := New(Options{
		HubName: overtakeHubName, TCPAddr: "127.0.0.1:0", Presence: tr, Logger: slog.New(slog.DiscardHandler),
		Devices:  func(string) ([2]string, bool, bool) { return [2]string{overtakeKey, overtakeKey}, true, true },
		Policies: func(string) ([2]string, bool, bool) { return [2]string{}, false, false },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background()) })
	h.b = b
	h.tok, err = sas.Sign(sas.DeviceResource(overtakeHubName, overtakeDev), overtakeKey, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// connect opens a connection for d1 and reads its CONNACK.
func (h *overtakeHub) connect() net.Conn {
	h.t.Helper()
	c, err := net.Dial("tcp", h.b.TCPAddr())
	if err != nil {
		h.t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(mqttclient.ConnectPacket(overtakeDev, overtakeHubName+"/"+overtakeDev+"/?api-version=2021-04-12", h.tok, 60, true)); err != nil {
		h.t.Fatal(err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		h.t.Fatalf("CONNACK % x %v", ack, err)
	}
	return c
}

// renew does what an SDK does to renew its token: DISCONNECT on c, wait
// for the hub to close it, connect again at once.
func (h *overtakeHub) renew(c net.Conn) net.Conn {
	h.t.Helper()
	_, _ = c.Write([]byte{0xE0, 0})
	if _, err := io.Copy(io.Discard, c); err != nil {
		h.t.Fatalf("waiting for the hub to close: %v", err)
	}
	c.Close()
	return h.connect()
}

// delayCall returns a test hook that sleeps d on its nth call only.
func delayCall(nth int32, d time.Duration) func() {
	var calls atomic.Int32
	return func() {
		if calls.Add(1) == nth {
			time.Sleep(d)
		}
	}
}

// wantRenewal: the events are connected, disconnected (client), connected.
func (h *overtakeHub) wantRenewal() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	evs := h.evs
	if len(evs) != 3 || evs[0].Kind != presence.Connected || evs[1].Kind != presence.Disconnected ||
		evs[1].Reason != presence.ReasonClient || evs[2].Kind != presence.Connected {
		for _, e := range evs {
			h.t.Logf("%s %s %s %s", e.Kind, e.Reason, e.Result.Type, e.Detail)
		}
		h.t.Fatalf("got %d events, want connected, disconnected (client), connected", len(evs))
	}
}

// wantMapped: once the old connection's delayed cleanup is over, mochi's
// client map still holds the new, open connection.
func (h *overtakeHub) wantMapped(after time.Duration) {
	h.t.Helper()
	time.Sleep(after)
	if cl, ok := h.b.srv.Clients.Get(overtakeDev); !ok || cl.Closed() {
		h.t.Fatalf("mochi's client map lost the new connection (found %v)", ok)
	}
}

// A device that sends DISCONNECT and reconnects as soon as the hub closes
// its socket (the SDKs' SAS renewal) can reach the hub before mochi runs
// the old connection's OnDisconnect. Delaying that hook makes the race
// certain: the old session must still end as a client disconnect, before
// the new connect, and not as a 400027 takeover.
func TestReconnectOvertakingDisconnectHook(t *testing.T) {
	delay := delayCall(1, 500*time.Millisecond) // the first disconnect only
	testHookOnDisconnect = func(string) { delay() }
	t.Cleanup(func() { testHookOnDisconnect = nil }) // after the broker stops
	h := startOvertakeHub(t)
	c := h.renew(h.connect()) // reconnects while the old OnDisconnect is held up
	defer c.Close()
	h.wantRenewal()
	h.wantMapped(600 * time.Millisecond)
}

// Earlier still: the reconnect's CONNECT is handled before the old
// connection's goroutine has read the DISCONNECT (held off here for 50 ms
// as it starts its first Read after the CONNECT). The hub waits for the
// input it knows is coming, and the old session ends as a client
// disconnect, not as a 400027 takeover.
func TestReconnectBeforeDisconnectIsRead(t *testing.T) {
	// The second Read is the old connection's first after its CONNECT.
	testHookRead = delayCall(2, 50*time.Millisecond)
	t.Cleanup(func() { testHookRead = nil }) // after the broker stops
	h := startOvertakeHub(t)
	c := h.connect()
	_, _ = c.Write([]byte{0xE0, 0}) // DISCONNECT, then reconnect at once
	c.Close()
	c = h.connect()
	defer c.Close()
	h.wantRenewal()
}

// mochi's client map can lose a live connection's entry (a clean session
// ending while a reconnect takes it over; see OnDisconnect). The hub's
// own view still finds that connection when the device next renews, so
// its end is the client's disconnect, not a 400027 takeover.
func TestOvertakeFindsConnectionMochiLost(t *testing.T) {
	delay := delayCall(1, 300*time.Millisecond)
	testHookOnDisconnect = func(string) { delay() }
	t.Cleanup(func() { testHookOnDisconnect = nil }) // after the broker stops
	h := startOvertakeHub(t)
	c := h.connect()
	h.b.srv.Clients.Delete(overtakeDev) // what the race leaves behind
	c = h.renew(c)
	defer c.Close()
	h.wantRenewal()
	h.wantMapped(400 * time.Millisecond)
}

// The reconnect arrives while the old connection's end is being recorded
// (held up here between taking its state and telling presence): it waits
// for that record instead of finding the session still current and
// recording a 400027 takeover.
func TestReconnectWhileEndIsRecorded(t *testing.T) {
	testHookEndSession = delayCall(1, 200*time.Millisecond)
	t.Cleanup(func() { testHookEndSession = nil }) // after the broker stops
	h := startOvertakeHub(t)
	c := h.renew(h.connect())
	defer c.Close()
	h.wantRenewal()
	h.wantMapped(300 * time.Millisecond)
}
