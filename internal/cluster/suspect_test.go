package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/testnet"
)

// longLease is a lease the tests' nodes cannot see lapse while they run:
// what they check happens after two missed heartbeats (12 s), long before.
const longLease = 30 * time.Second

func joinLong(t *testing.T, srv *server.Server, name string) *member {
	t.Helper()
	return joinWith(t, srv, name, func(o *Options) { o.Lease = longLease })
}

// leaseOf reports whether node's lease is still in the bucket as seen
// from m.
func leaseOf(t *testing.T, m *member, node string) bool {
	t.Helper()
	_, ok, err := m.lease(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// nodeLost waits until m recorded devices d0…d<count-1> node-lost, once
// each.
func nodeLost(t *testing.T, m *member, count int) {
	t.Helper()
	eventually(t, time.Minute, func() error {
		for i := range count {
			evs := m.eventsOf(fmt.Sprintf("d%d", i))
			if len(evs) != 1 || evs[0].Reason != presence.ReasonNodeLost || evs[0].Result.Type != "404104" {
				return fmt.Errorf("d%d: %s recorded %+v", i, m.o.Node, evs)
			}
		}
		return nil
	})
}

// A killed node (its connection closed, its lease left behind) is
// probed once it missed two heartbeats and its devices are recorded
// node-lost while its lease still stands: the survivors do not wait for
// it to lapse, nor for a reaper leader.
func TestAGoneNodesDevicesAreRecordedBeforeItsLeaseLapses(t *testing.T) {
	srv := startServer(t)
	n1, n2 := joinLong(t, srv, "n1"), joinLong(t, srv, "n2")
	for i := range 20 {
		n1.connect(t, fmt.Sprintf("d%d", i))
	}
	n1.die(t)
	nodeLost(t, n2, 20)
	if !leaseOf(t, n2, "n1") {
		t.Fatal("n1's lease lapsed before its devices were recorded: the test's lease is too short to tell")
	}
	if !n2.Silent("n1") {
		t.Error("n1's devices adopted while n2 does not count n1 silent")
	}
	eventually(t, time.Minute, func() error {
		if c := n2.Owners()["n1"]; c != 0 {
			return fmt.Errorf("%d records still name n1", c)
		}
		return nil
	})
}

// A silent node that still serves its subject (its heartbeats held up:
// the leases' bucket electing, a stalled writer) answers the probe and
// keeps its devices; once its connection goes, they are recorded
// node-lost, its lease still standing.
func TestASilentNodeThatAnswersTheProbeKeepsItsDevices(t *testing.T) {
	srv := startServer(t)
	n1, n2 := joinLong(t, srv, "n1"), joinLong(t, srv, "n2")
	for i := range 3 {
		n1.connect(t, fmt.Sprintf("d%d", i))
	}
	n1.halt() // no heartbeat any more; the takeover subject stays served
	eventually(t, time.Minute, func() error {
		if n2.Stats().Probes < 2 {
			return fmt.Errorf("n2 probed silent n1 %d times, want 2", n2.Stats().Probes)
		}
		return nil
	})
	for i := range 3 {
		if evs := n2.eventsOf(fmt.Sprintf("d%d", i)); len(evs) != 0 {
			t.Fatalf("d%d: node 2 recorded %+v for a device of a node that answers", i, evs)
		}
	}
	if c := n2.Owners()["n1"]; c != 3 {
		t.Fatalf("%d records name n1, want its 3", c)
	}
	n1.nc.Close()
	nodeLost(t, n2, 3)
	if !leaseOf(t, n2, "n1") {
		t.Fatal("n1's lease lapsed first: the test's lease is too short to tell")
	}
}

// Every survivor adopts a gone node's records at once; each device's end
// is recorded exactly once, by one of them.
func TestSurvivorsRecordEachLostDeviceOnce(t *testing.T) {
	srv := startServer(t)
	n1, n2, n3 := joinLong(t, srv, "n1"), joinLong(t, srv, "n2"), joinLong(t, srv, "n3")
	const devices = 60
	for i := range devices {
		n1.connect(t, fmt.Sprintf("d%d", i))
	}
	n1.die(t)
	// Every end recorded, and every adoption over (the index shows a
	// record adopted as soon as it is written over, before its end is
	// recorded): then no second end can come.
	eventually(t, time.Minute, func() error {
		for i := range devices {
			dev := fmt.Sprintf("d%d", i)
			if len(n2.eventsOf(dev))+len(n3.eventsOf(dev)) == 0 {
				return fmt.Errorf("%s: no end recorded yet", dev)
			}
		}
		if c := n2.Owners()["n1"] + n3.Owners()["n1"]; c != 0 {
			return fmt.Errorf("%d records still name n1", c)
		}
		if h := n2.holding() + n3.holding(); h != 0 {
			return fmt.Errorf("%d adoptions still in hand", h)
		}
		return nil
	})
	for i := range devices {
		dev := fmt.Sprintf("d%d", i)
		evs := append(n2.eventsOf(dev), n3.eventsOf(dev)...)
		if len(evs) != 1 || evs[0].Reason != presence.ReasonNodeLost {
			t.Errorf("%s: the survivors recorded %+v, want one node-lost", dev, evs)
		}
	}
	t.Logf("adopted by n2: %d, by n3: %d", n2.Stats().Adopted, n3.Stats().Adopted)
}

// A node that reconnects after its own NATS outage sees the others'
// heartbeats stale and may probe a node that has not reconnected yet (no
// responders, though it is alive). It must not take that node's devices:
// its silence clocks start again at its reconnect, and a node is gone
// only after two unanswered probes a reconnect pause apart.
func TestANodesOwnReconnectDoesNotMakeOthersGone(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	srv := testnet.NATS(t, opts)
	opts.Port = srv.Addr().(*net.TCPAddr).Port
	// The outage outlasts two of n2's heartbeats (12 s), as n1 counts them
	// from n2's last renewal, and with the restart and the reconnect stays
	// well short of n2's fence (22.5 s from that renewal, its quorum probes
	// from 20.5 s): n2 must keep its sessions, and n1 must not take them.
	// (n1 may fence itself: its last renewal can be a heartbeat older; a
	// node cut off takes nothing.)
	n1, n2 := joinLong(t, srv, "n1"), joinLong(t, srv, "n2")
	for i := range 3 {
		n2.connect(t, fmt.Sprintf("d%d", i))
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	eventually(t, time.Minute, func() error {
		if !n1.Silent("n2") {
			return errors.New("n1 does not find n2 silent yet")
		}
		return nil
	})
	testnet.NATS(t, opts)
	// Both back, and n1 hears n2 again: any wrong adoption was decided by
	// then (n1 probed n2 before n2 reconnected, or never).
	eventually(t, time.Minute, func() error {
		if !n1.nc.IsConnected() || !n2.nc.IsConnected() {
			return errors.New("not reconnected yet")
		}
		if n1.Silent("n2") {
			return errors.New("n1 does not hear n2 yet")
		}
		return nil
	})
	for i := range 3 {
		if evs := n1.eventsOf(fmt.Sprintf("d%d", i)); len(evs) != 0 {
			t.Fatalf("d%d: n1 recorded %+v for a live node's device after its own reconnect", i, evs)
		}
	}
	if a := n1.Stats().Adopted; a != 0 {
		t.Fatalf("n1 adopted %d records of a live node after its own reconnect", a)
	}
	// The records as stored (n1's index, rebuilt from a reopened feed
	// after the restart, lagged them in 2 of 20 -race runs: "2 records
	// name n2" while n1 had adopted nothing).
	for i := range 3 {
		_, o := recordOf(t, n1, fmt.Sprintf("d%d", i))
		if o.Node != "n2" || o.Ending {
			t.Errorf("d%d's record names %q (ending %v), want n2's live record", i, o.Node, o.Ending)
		}
	}
	n2.mu.Lock()
	live := len(n2.live)
	n2.mu.Unlock()
	if live != 3 {
		t.Fatalf("n2 has %d live sessions after its reconnect, want its 3", live)
	}
	// n1's index (OwnerOf's routing hints) follows the records: it may lag
	// them while its feed is recreated after the restart, but not for good.
	first := n1.Owners()["n2"]
	lag := time.Now()
	eventually(t, 30*time.Second, func() error {
		if c := n1.Owners()["n2"]; c != 3 {
			return fmt.Errorf("n1's index has %d records of n2, want 3", c)
		}
		return nil
	})
	if first != 3 {
		t.Logf("n1's index had %d records of n2 at first, 3 after %s", first, time.Since(lag).Round(time.Millisecond))
	}
}

// A claim right after this node's own reconnect to NATS whose takeover
// request finds no responders asks again once the owner could be back
// (it pauses between its own attempts): the owner, back by then, hands
// the session over (400027 on its side) instead of having it adopted as
// node-lost.
func TestAClaimRightAfterThisNodesReconnectWaitsForTheOwner(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	srv := testnet.NATS(t, opts)
	opts.Port = srv.Addr().(*net.TCPAddr).Port
	p2 := testnet.NewProxy(t, srv.Addr().String())
	// n1's pause between reconnect attempts is longer than the default
	// (its confirmGap 4 s, not 3 s): n2 must reconnect through the healed
	// proxy within what is left of it after the claim's wait began.
	n1 := joinAt(t, srv.ClientURL(), "n1", withLease(longLease), nats.ReconnectWait(3*time.Second))
	// n2 reaches NATS through a proxy held shut until n1 is back, and
	// tries often once it is open.
	n2 := joinAt(t, p2.URL(), "n2", withLease(longLease), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(500*time.Millisecond))
	n2.connect(t, "d")
	eventually(t, 30*time.Second, func() error {
		if n1.OwnerOf("d") != "n2" {
			return errors.New("n1 does not see n2's record yet")
		}
		return nil
	})
	p2.Blackhole()
	srv.Shutdown()
	srv.WaitForShutdown()
	testnet.NATS(t, opts)
	eventually(t, time.Minute, func() error {
		if !n1.nc.IsConnected() {
			return errors.New("n1 not reconnected yet")
		}
		return nil
	})
	// n1's claim finds no responders (n2 is still held off) and waits;
	// then n2 may come back.
	claimed := make(chan error, 1)
	go func() {
		_, err := n1.tryConnect("d")
		claimed <- err
	}()
	eventually(t, 30*time.Second, func() error {
		if n1.Stats().AskedAgain == 0 {
			return errors.New("n1's claim has not found n2 missing yet")
		}
		return nil
	})
	p2.Heal()
	if err := <-claimed; err != nil {
		t.Fatal(err)
	}
	if evs := n1.eventsOf("d"); len(evs) != 1 || evs[0].Kind != presence.Connected {
		t.Fatalf("n1 recorded %+v, want only its connect (n2 was back: a takeover, not node-lost)", evs)
	}
	evs := n2.eventsOf("d")
	if len(evs) != 2 || evs[1].Reason != presence.ReasonTakeover {
		t.Fatalf("n2 recorded %+v, want connected then a takeover", evs)
	}
}
