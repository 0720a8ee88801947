package cluster

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/testnet"
)

// Devices that reconnect while the healed node is still recording the
// ends its fence left (settleCut) — at that node, or at another that asks
// it — each get their old session's end recorded once, node-lost, before
// the new session: the entries settleCut has not reached yet still say
// "ended by the fence". settleCut is held here by its first reapWorkers
// adoptions (their Adopted blocks), so the rest of its keys wait.
func TestDevicesReconnectingWhileTheHealedNodeSettlesKeepTheirEnds(t *testing.T) {
	srv := startServer(t)
	p1 := testnet.NewProxy(t, srv.Addr().String())
	var gmu sync.Mutex
	armed, blocked, gate := false, map[string]bool{}, make(chan struct{})
	n1 := joinAt(t, p1.URL(), "n1", func(o *Options) {
		o.Lease = partLease
		adopted := o.Adopted
		o.Adopted = func(s *presence.Session, r presence.Reason, res presence.Result, d string) {
			gmu.Lock()
			hold := armed && len(blocked) < reapWorkers
			if hold {
				blocked[s.DeviceID] = true
			}
			gmu.Unlock()
			if hold {
				<-gate
			}
			adopted(s, r, res, d)
		}
	})
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	defer release()
	const devices = reapWorkers + 8
	old := map[string]string{}
	for i := range devices {
		dev := fmt.Sprintf("d%d", i)
		old[dev] = n1.connect(t, dev).ID
	}
	fenceAlone(t, n1, p1)
	gmu.Lock()
	armed = true
	gmu.Unlock()
	p1.Heal()
	var pending []string
	eventually(t, time.Minute, func() error {
		gmu.Lock()
		defer gmu.Unlock()
		if len(blocked) < reapWorkers {
			return fmt.Errorf("settleCut holds %d adoptions, want %d", len(blocked), reapWorkers)
		}
		pending = pending[:0]
		for dev := range old {
			if !blocked[dev] {
				pending = append(pending, dev)
			}
		}
		return nil
	})
	// n2 joins after the heal: the devices it takes are asked of n1.
	n2 := joinWith(t, srv, "n2", withLease(partLease))
	for i, dev := range pending {
		at := n1
		if i%2 == 1 {
			at = n2
		}
		eventually(t, time.Minute, func() error {
			if _, err := at.tryConnect(dev); err != nil {
				return fmt.Errorf("%s at %s: %w", dev, at.o.Node, err)
			}
			return nil
		})
	}
	release()
	eventually(t, time.Minute, func() error {
		for dev, sid := range old {
			var ends []presence.ConnectionEvent
			for _, m := range []*member{n1, n2} {
				for _, ev := range m.eventsOf(dev) {
					if ev.Kind == presence.Disconnected && ev.SessionID == sid {
						ends = append(ends, ev)
					}
				}
			}
			if len(ends) != 1 || ends[0].Reason != presence.ReasonNodeLost {
				return fmt.Errorf("%s: the fenced session's ends %+v, want one node-lost", dev, ends)
			}
		}
		return nil
	})
	// Each reconnected device's end came before its new session (n1's
	// journal order; at n2 the adoption precedes the claim's write).
	for i, dev := range pending {
		if i%2 == 1 {
			continue
		}
		evs := n1.eventsOf(dev)
		if len(evs) != 3 || evs[1].Kind != presence.Disconnected || evs[2].Kind != presence.Connected {
			t.Errorf("%s at n1: %d events, want connected, disconnected, connected", dev, len(evs))
		}
	}
	if len(pending) == 0 {
		t.Fatal("no key left waiting in settleCut: the test tested nothing")
	}
}

// A partition that heals before the broker has closed the sessions the
// fence ended (their Forget is late: a v5 DISCONNECT behind a blocked
// writer, say) still records each end once: the adoption ends the
// session still current in presence, and the late Forget adds nothing.
func TestAHealBeforeTheFencedSessionsClosedRecordsTheirEnds(t *testing.T) {
	srv := startServer(t)
	p1 := testnet.NewProxy(t, srv.Addr().String())
	late := make(chan struct{})
	n1 := joinAt(t, p1.URL(), "n1", func(o *Options) {
		o.Lease = partLease
		forget := o.Forget
		o.Forget = func(s *presence.Session) { <-late; forget(s) }
	})
	var once sync.Once
	closeLate := func() { once.Do(func() { close(late) }) }
	defer closeLate()
	const devices = 5
	for i := range devices {
		n1.connect(t, fmt.Sprintf("d%d", i))
	}
	fenceAlone(t, n1, p1)
	p1.Heal()
	check := func() error {
		for i := range devices {
			evs := n1.eventsOf(fmt.Sprintf("d%d", i))
			if len(evs) != 2 || evs[1].Kind != presence.Disconnected || evs[1].Reason != presence.ReasonNodeLost {
				return fmt.Errorf("d%d: %d events, want connected then node-lost", i, len(evs))
			}
		}
		if c := n1.tracker.Connected(); c != 0 {
			return fmt.Errorf("presence counts %d connected", c)
		}
		return nil
	}
	eventually(t, time.Minute, check)
	closeLate()
	// The Forgets run now, in the broker's end goroutines; once the owner
	// records are released they are done or no-ops: check again after
	// the records are gone.
	eventually(t, time.Minute, func() error {
		if c := n1.Owners()["n1"]; c != 0 {
			return fmt.Errorf("%d records name n1", c)
		}
		return nil
	})
	if err := check(); err != nil {
		t.Error(err)
	}
}

// A session between its claim and its place in the broker's table when
// the node fences itself (the fence's first ask finds nothing to end) is
// ended once it is there: the fence asks again until the session's end
// has run (review F9).
func TestAFenceEndsASessionThatWasNotLiveYetWhenItFenced(t *testing.T) {
	srv := startServer(t)
	n1, p1 := joinCut(t, srv, "n1", partLease)
	s := &presence.Session{ID: presence.NewSessionID(), DeviceID: "d", Protocol: "MQTT"}
	if err := n1.Claim(s); err != nil {
		t.Fatal(err)
	}
	fenceAlone(t, n1, p1)
	// The broker has it only now.
	n1.tracker.Connect(s)
	n1.mu.Lock()
	n1.live["d"] = s
	n1.mu.Unlock()
	eventually(t, 30*time.Second, func() error {
		if !n1.CutOff() {
			t.Fatal("n1 renewed while its connection is blackholed")
		}
		if n1.liveOf("d") != nil {
			return errors.New("d still live on the fenced n1")
		}
		return nil
	})
}

// A node that runs with a longer lease than another is adopted by it
// only after a share of its own lease: by then it fenced itself (review
// F6). n2's lease (4 s) would have it adopt n1 at 3.4 s; n1 (12 s)
// fences at 9 s.
func TestANodeWithALongerLeaseIsAdoptedByItsOwn(t *testing.T) {
	srv := startServer(t)
	n1, p1 := joinCut(t, srv, "n1", 12*time.Second)
	n2 := joinWith(t, srv, "n2", withLease(4*time.Second))
	log := holdAndWatch(t, n1, 3, n2)
	p1.Blackhole()
	eventually(t, time.Minute, func() error {
		for i := range 3 {
			if log.count(fmt.Sprintf("d%d", i)) == 0 {
				return fmt.Errorf("d%d: no end recorded yet", i)
			}
		}
		return nil
	})
	if !n1.CutOff() {
		t.Error("n1 did not fence itself")
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, b := range log.bad {
		t.Error(b)
	}
}

// A survivor's adoption round that is still going when the cut-off node
// heals must not adopt a session the healed node took since (same boot:
// a fenced node keeps its run): the round judges each record by the
// session it named when the node was found gone (review16 G7). n2's
// recording is held (a slow journal) after the first round's workers
// took their records; n1 heals and its device whose key n2 reads last
// connects again at n1; then n2 goes on.
func TestAnAdoptionRoundLeavesASessionTheHealedNodeTookSince(t *testing.T) {
	srv := startServer(t)
	n1, p1 := joinCut(t, srv, "n1", partLease)
	gate := make(chan struct{})
	n2 := joinWith(t, srv, "n2", func(o *Options) {
		o.Lease = partLease
		inner := o.Adopted
		o.Adopted = func(s *presence.Session, r presence.Reason, res presence.Result, d string) {
			<-gate
			inner(s, r, res, d)
		}
	})
	const devices = reapWorkers + 20
	holdAndWatch(t, n1, devices, n2)
	last := "d0"
	for i := range devices {
		if d := fmt.Sprintf("d%d", i); Key(d) > Key(last) {
			last = d
		}
	}
	p1.Blackhole()
	eventually(t, time.Minute, func() error {
		if a := n2.Stats().Adopted; a < reapWorkers {
			return fmt.Errorf("n2 took %d records so far", a)
		}
		return nil
	})
	p1.Heal()
	eventually(t, time.Minute, func() error {
		if n1.CutOff() {
			return errors.New("n1 not back yet")
		}
		return nil
	})
	again := n1.connect(t, last)
	// n2's index names the new session before its round reaches the key
	// (otherwise the round skips a key its index does not give n1).
	eventually(t, 30*time.Second, func() error {
		n2.Node.mu.Lock()
		defer n2.Node.mu.Unlock()
		if o := n2.index[Key(last)]; o.session != again.ID {
			return fmt.Errorf("n2's index has %+v for %s", o, last)
		}
		return nil
	})
	close(gate)
	eventually(t, time.Minute, func() error {
		if c := n2.Owners()["n1"]; c > 1 {
			return fmt.Errorf("%d records still name n1", c)
		}
		return nil
	})
	for _, ev := range n2.eventsOf(last) {
		if ev.Kind == presence.Disconnected && ev.SessionID == again.ID {
			t.Fatalf("n2 recorded %s's new session (live on n1 since the heal) ended: %s", last, ev.Reason)
		}
	}
	if n1.liveOf(last) != again {
		t.Errorf("%s's new session is not live on n1", last)
	}
}
