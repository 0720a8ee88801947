package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/testnet"
)

// member is one node under test: a real Node and presence.Tracker on a
// real JetStream server; its "broker" is the map of live sessions, ended
// the way the broker ends one (Ending, then Disconnect).
type member struct {
	*Node
	nc      *nats.Conn
	tracker *presence.Tracker
	mu      sync.Mutex
	live    map[string]*presence.Session
	events  []presence.ConnectionEvent
	// onEvent, when set, sees each event as it is recorded.
	onEvent func(presence.ConnectionEvent)
}

func (m *member) sink(ev presence.ConnectionEvent) {
	m.mu.Lock()
	m.events = append(m.events, ev)
	hook := m.onEvent
	m.mu.Unlock()
	if hook != nil {
		hook(ev)
	}
	if ev.Recorded != nil {
		ev.Recorded(nil) // stored at once
	}
}

func (m *member) end(dev, sid string) bool {
	m.mu.Lock()
	s := m.live[dev]
	if s == nil || s.ID != sid {
		m.mu.Unlock()
		return false
	}
	delete(m.live, dev)
	m.mu.Unlock()
	go func() {
		if m.Ending(s) {
			m.tracker.Disconnect(s, presence.ReasonTakeover, presence.ResultTakeover, "test")
		}
	}()
	return true
}

// connect claims and connects a session of dev on m.
func (m *member) connect(t *testing.T, dev string) *presence.Session {
	t.Helper()
	s, err := m.tryConnect(dev)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tryConnect is connect, reporting a refused claim.
func (m *member) tryConnect(dev string) (*presence.Session, error) {
	s := &presence.Session{ID: presence.NewSessionID(), DeviceID: dev, Protocol: "MQTT"}
	if err := m.Claim(s); err != nil {
		return nil, err
	}
	m.tracker.Connect(s)
	m.mu.Lock()
	m.live[dev] = s
	m.mu.Unlock()
	return s, nil
}

// liveOf is m's live session of dev, or nil.
func (m *member) liveOf(dev string) *presence.Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[dev]
}

func (m *member) eventsOf(dev string) []presence.ConnectionEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []presence.ConnectionEvent
	for _, ev := range m.events {
		if ev.DeviceID == dev {
			out = append(out, ev)
		}
	}
	return out
}

func startServer(t *testing.T) *server.Server { return testnet.JetStream(t) }

func join(t *testing.T, srv *server.Server, name string) *member {
	t.Helper()
	return joinWith(t, srv, name, nil)
}

// joinWith is join with mod applied to the node's options.
func joinWith(t *testing.T, srv *server.Server, name string, mod func(*Options)) *member {
	t.Helper()
	return joinAt(t, srv.ClientURL(), name, mod)
}

// joinAt is joinWith reaching NATS at url (a testnet.Proxy, say).
func joinAt(t *testing.T, url, name string, mod func(*Options), opts ...nats.Option) *member {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	m := &member{nc: nc, live: map[string]*presence.Session{}}
	m.tracker = presence.NewTracker(presence.Options{Hub: "test", Epoch: 1, Sink: m.sink})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o := Options{JS: js, NC: nc, Node: name, Lease: time.Second, Epoch: 1000,
		End: m.end, Adopted: m.tracker.Adopted, Forget: m.tracker.Forget, Logger: testLogger(), TakeoverTimeout: 2 * time.Second}
	if mod != nil {
		mod(&o)
	}
	m.Node, err = Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if !nc.IsClosed() {
			_ = m.Close(ctx)
		}
		nc.Close()
	})
	return m
}

// halt stops the member's goroutines (it answers nothing more); its
// connection, subscriptions, records and lease stay.
func (m *member) halt() {
	m.cancel()
	m.wg.Wait()
}

// die stops a member the way kill -9 does: its connection goes, its
// records and lease stay behind. It returns once the server has dropped
// the connection's subscriptions (a killed process's socket closes at
// once; the server notices in its own time, which under load may be after
// the test's next request).
func (m *member) die(t *testing.T) {
	t.Helper()
	url := m.nc.ConnectedUrl()
	m.halt()
	m.nc.Close()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	eventually(t, 10*time.Second, func() error {
		_, err := nc.Request(takeoverSubject(m.o.Node), []byte("{}"), time.Second)
		if errors.Is(err, nats.ErrNoResponders) {
			return nil
		}
		return fmt.Errorf("%s's takeover subject still served after its connection closed (%v)", m.o.Node, err)
	})
}

// A node killed a moment ago may still have its subscription in the
// server: a takeover request goes to it and is not answered. The claim
// then asks who serves the subject now and adopts the session when
// nobody does, instead of failing the connect.
func TestClaimAdoptsWhenTheTakeoverRequestGoesUnanswered(t *testing.T) {
	srv := startServer(t)
	n1, n2 := join(t, srv, "n1"), join(t, srv, "n2")
	n1.connect(t, "d")
	// n1 stops answering: its subscription stays while the claim's
	// request waits, and goes (the process's socket closed) before the
	// request's timeout, when the claim probes.
	n1.halt()
	if err := n1.sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	mute, err := n1.nc.Subscribe(takeoverSubject("n1"), func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(time.Second, func() { _ = mute.Unsubscribe(); _ = n1.nc.Flush() })
	n2.connect(t, "d")
	evs := n2.eventsOf("d")
	if len(evs) != 2 || evs[0].Reason != presence.ReasonNodeLost || evs[1].Kind != presence.Connected {
		t.Fatalf("node 2 recorded %+v, want node-lost then connected", evs)
	}
}

func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrossNodeTakeoverEndsTheSessionFirst(t *testing.T) {
	srv := startServer(t)
	n1, n2 := join(t, srv, "n1"), join(t, srv, "n2")
	s1 := n1.connect(t, "d")
	s2 := n2.connect(t, "d")
	evs := n1.eventsOf("d")
	if len(evs) != 2 || evs[1].Kind != presence.Disconnected || evs[1].Reason != presence.ReasonTakeover {
		t.Fatalf("node 1 recorded %+v, want connected then a takeover disconnect before node 2's claim returned", evs)
	}
	if s2.Epoch <= s1.Epoch {
		t.Errorf("epochs %d then %d: a later claim must have a larger one", s1.Epoch, s2.Epoch)
	}
	c2 := n2.eventsOf("d")[0]
	if c2.Sequence <= evs[1].Sequence {
		t.Errorf("node 2's connect %s is not after node 1's disconnect %s", c2.Sequence, evs[1].Sequence)
	}
}

func TestClaimOfALostNodesDeviceRecordsNodeLost(t *testing.T) {
	srv := startServer(t)
	n1, n2 := join(t, srv, "n1"), join(t, srv, "n2")
	n1.connect(t, "d")
	n1.die(t)
	start := time.Now()
	n2.connect(t, "d")
	if d := time.Since(start); d > time.Second {
		t.Errorf("claim of a dead node's device took %s: no responders should adopt at once", d)
	}
	evs := n2.eventsOf("d")
	if len(evs) != 2 || evs[0].Reason != presence.ReasonNodeLost || evs[0].Result.Type != "404104" || evs[1].Kind != presence.Connected {
		t.Fatalf("node 2 recorded %+v, want node-lost 404104 then connected", evs)
	}
	if evs[1].Sequence <= evs[0].Sequence {
		t.Errorf("sequence %s after %s", evs[1].Sequence, evs[0].Sequence)
	}
}

func TestReaperRecordsADeadNodesDevicesWithinTheLease(t *testing.T) {
	srv := startServer(t)
	n1, n2 := join(t, srv, "n1"), join(t, srv, "n2")
	for i := range 5 {
		n1.connect(t, fmt.Sprintf("d%d", i))
	}
	n1.die(t)
	killed := time.Now()
	eventually(t, time.Minute, func() error {
		for i := range 5 {
			evs := n2.eventsOf(fmt.Sprintf("d%d", i))
			if len(evs) != 1 || evs[0].Reason != presence.ReasonNodeLost {
				return fmt.Errorf("d%d: node 2 recorded %+v", i, evs)
			}
		}
		return nil
	})
	t.Logf("5 devices recorded node-lost %s after the node died (lease 1 s)", time.Since(killed).Round(time.Millisecond))
	eventually(t, time.Minute, func() error {
		if c := n2.Owners()["n1"]; c != 0 {
			return fmt.Errorf("%d records still name n1", c)
		}
		return nil
	})
}

func testLogger() *slog.Logger {
	if os.Getenv("TETHER_TEST_DEBUG") != "" || os.Getenv("TETHER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// A node whose lease lapsed while it still runs (the leases' bucket was
// electing a Raft leader, so nobody could renew) keeps its devices: the
// reaper asks NATS whether the node still serves its subject. Once it is
// really gone, its devices are recorded node-lost.
func TestALiveNodeWhoseLeaseLapsedKeepsItsDevices(t *testing.T) {
	srv := startServer(t)
	n1, n2 := join(t, srv, "n1"), join(t, srv, "n2")
	for i := range 3 {
		n1.connect(t, fmt.Sprintf("d%d", i))
	}
	// Heartbeat and campaigns stop; the takeover subject stays served.
	n1.halt()
	eventually(t, 5*time.Second, func() error {
		if _, ok, err := n2.lease(context.Background(), "n1"); err != nil || ok {
			return fmt.Errorf("n1's lease still there (%v)", err)
		}
		if !n2.Leads(JobReaper) {
			return fmt.Errorf("n2 does not lead the reaper yet")
		}
		return nil
	})
	time.Sleep(3 * time.Second) // three leases, fifteen reaper rounds
	for i := range 3 {
		if evs := n2.eventsOf(fmt.Sprintf("d%d", i)); len(evs) != 0 {
			t.Fatalf("d%d: node 2 recorded %+v for a device of a node that still runs", i, evs)
		}
	}
	if c := n2.Owners()["n1"]; c != 3 {
		t.Fatalf("%d records name n1, want its 3", c)
	}
	n1.nc.Close()
	gone := time.Now()
	eventually(t, time.Minute, func() error {
		for i := range 3 {
			if evs := n2.eventsOf(fmt.Sprintf("d%d", i)); len(evs) != 1 || evs[0].Reason != presence.ReasonNodeLost {
				return fmt.Errorf("d%d: node 2 recorded %+v", i, evs)
			}
		}
		return nil
	})
	t.Logf("recorded node-lost %s after n1's connection closed", time.Since(gone).Round(time.Millisecond))
}

// A device connecting on node 2 while node 1, whose lease lapsed, still
// holds it live is taken over (node 1 records the takeover), not adopted
// as node-lost.
func TestClaimAsksANodeWhoseLeaseLapsed(t *testing.T) {
	srv := startServer(t)
	n1, n2 := join(t, srv, "n1"), join(t, srv, "n2")
	n1.connect(t, "d")
	n1.halt()
	eventually(t, time.Minute, func() error {
		if _, ok, err := n2.lease(context.Background(), "n1"); err != nil || ok {
			return fmt.Errorf("n1's lease still there (%v)", err)
		}
		return nil
	})
	n2.connect(t, "d")
	evs := n1.eventsOf("d")
	if len(evs) != 2 || evs[1].Reason != presence.ReasonTakeover {
		t.Fatalf("node 1 recorded %+v, want connected then a takeover", evs)
	}
	if got := n2.eventsOf("d"); len(got) != 1 || got[0].Kind != presence.Connected {
		t.Fatalf("node 2 recorded %+v, want only its connect", got)
	}
}

// A record of a node's previous run is adopted (node-lost) when the node,
// started again, answers the takeover request with "gone".
func TestClaimOfAPreviousRunsSessionAdoptsIt(t *testing.T) {
	srv := startServer(t)
	n1, n2 := join(t, srv, "n1"), join(t, srv, "n2")
	n1.connect(t, "d")
	// The same node as if started again, before its start recorded its
	// previous run's sessions (heartbeat stopped first: it reads boot).
	n1.halt()
	n1.boot = newBoot()
	n2.connect(t, "d")
	evs := n2.eventsOf("d")
	if len(evs) != 2 || evs[0].Reason != presence.ReasonNodeLost || evs[1].Kind != presence.Connected {
		t.Fatalf("node 2 recorded %+v, want node-lost then connected", evs)
	}
}
