package cluster

import (
	"fmt"
	"testing"
	"time"
)

// A node killed for good stops counting in the survivor's majority once
// the survivor has renewed for a lease without it: the survivor, cut off
// from NATS later, is a majority of one and keeps its sessions (nobody
// is left to adopt them) instead of fencing itself.
func TestADeadNodeStopsCountingInTheMajority(t *testing.T) {
	srv := startServer(t)
	n1, p1 := joinCut(t, srv, "n1", partLease)
	n2 := joinWith(t, srv, "n2", withLease(partLease))
	n1.connect(t, "d1")
	eventually(t, time.Minute, func() error {
		n1.Node.mu.Lock()
		defer n1.Node.mu.Unlock()
		if _, ok := n1.beats["n2"]; !ok {
			return fmt.Errorf("n1 has not seen n2's heartbeat")
		}
		return nil
	})
	n2.die(t)
	eventually(t, time.Minute, func() error {
		n1.Node.mu.Lock()
		defer n1.Node.mu.Unlock()
		if gap := n1.renewedAt.Sub(n1.beats["n2"].at); gap <= partLease {
			return fmt.Errorf("n1 renewed %s after n2's last heartbeat", gap.Round(time.Millisecond))
		}
		return nil
	})
	p1.Blackhole()
	eventually(t, time.Minute, func() error {
		if n1.CutOff() {
			return nil // reported below
		}
		n1.Node.mu.Lock()
		since := n1.renewedAt
		n1.Node.mu.Unlock()
		if d := time.Since(since); d < 2*partLease {
			return fmt.Errorf("n1 renewed %s ago", d.Round(time.Millisecond))
		}
		return nil
	})
	if n1.CutOff() {
		t.Fatal("the survivor fenced itself counting a dead node")
	}
	if n1.liveOf("d1") == nil {
		t.Error("the survivor ended d1's session")
	}
	p1.Heal()
}
