package cluster

import (
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
