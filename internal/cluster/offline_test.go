package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A node whose NATS connection is closed (both sides know it, and it
// cannot reconnect) is found gone by the others' probes at once — nobody
// serves its subject — long before its lease lapses. It must have ended
// its sessions (fenced) before they record them node-lost. At the
// default lease the others' no-route adoption (silent two heartbeats,
// 4.8 s, then two probes finding no responders a heartbeat apart, their
// reconnect pause being shorter: 7.2–7.8 s after its last renewal) comes
// before its lease fence (9 s): only the fence on the closed connection
// is in time.
func TestANodeWhoseConnectionClosedFencesBeforeTheOthersAdopt(t *testing.T) {
	const lease = DefaultLease
	srv := startServer(t)
	n1, p1 := joinCut(t, srv, "n1", lease)
	quick := nats.ReconnectWait(500 * time.Millisecond)
	n2 := joinAt(t, srv.ClientURL(), "n2", withLease(lease), quick)
	n3 := joinAt(t, srv.ClientURL(), "n3", withLease(lease), quick)
	const devices = 5
	log := holdAndWatch(t, n1, devices, n2, n3)
	cut := time.Now()
	p1.Drop()
	eventually(t, time.Minute, func() error {
		for i := range devices {
			if log.count(fmt.Sprintf("d%d", i)) == 0 {
				return fmt.Errorf("d%d: no end recorded yet", i)
			}
		}
		return nil
	})
	took := time.Since(cut)
	if !n1.CutOff() || n1.Stats().Fences != 1 {
		t.Errorf("n1: cut off %v, fences %d; want fenced once", n1.CutOff(), n1.Stats().Fences)
	}
	if g := n2.Stats().GoneByRoute + n3.Stats().GoneByRoute; g == 0 {
		t.Errorf("n1's devices were not taken by the no-route path (lease path: %d)", n2.Stats().GoneByLease+n3.Stats().GoneByLease)
	}
	for i := range devices {
		if c := log.count(fmt.Sprintf("d%d", i)); c != 1 {
			t.Errorf("d%d: %d ends recorded, want 1", i, c)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, b := range log.bad {
		t.Error(b)
	}
	t.Logf("connection closed at 0; every device recorded node-lost by %s (lease %s)", took.Round(time.Millisecond), lease)
}
