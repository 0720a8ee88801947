package cluster

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/presence"
)

// lateAck is an owners bucket whose first Update is stored but reported
// as timed out, as a PubAck that does not come within the bound.
type lateAck struct {
	jetstream.KeyValue
	lost atomic.Bool
}

func (l *lateAck) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	nrev, err := l.KeyValue.Update(ctx, key, value, rev)
	if err == nil && l.lost.CompareAndSwap(false, true) {
		return 0, context.DeadlineExceeded
	}
	return nrev, err
}

// An adoption write that times out but was stored is finished: the end
// recorded and the record released, not left naming the adopter.
func TestAnAdoptionWhoseWriteTimedOutButWasStoredIsFinished(t *testing.T) {
	srv := startServer(t)
	n1, n2 := join(t, srv, "n1"), join(t, srv, "n2")
	n1.connect(t, "d")
	n1.die(t)
	// n2's own goroutines stopped: the adoption below is the only one,
	// and n2's bucket can be swapped.
	n2.halt()
	late := &lateAck{KeyValue: n2.owners}
	n2.owners = late
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lost := func(o Owner) (presence.Reason, bool) { return presence.ReasonNodeLost, o.Node == "n1" }
	ok, err := n2.reapKey(ctx, Key("d"), lost)
	if !late.lost.Load() {
		t.Fatal("the adoption wrote nothing")
	}
	if err != nil || !ok {
		t.Fatalf("reapKey: adopted %v, err %v; want the stored adoption finished", ok, err)
	}
	evs := n2.eventsOf("d")
	if len(evs) != 1 || evs[0].Reason != presence.ReasonNodeLost {
		t.Fatalf("n2 recorded %+v, want d's node-lost end", evs)
	}
	rev, cur, err := n2.get(ctx, Key("d"))
	if err != nil || rev != 0 {
		t.Fatalf("the record after the adoption: rev %d, %+v, err %v; want it released", rev, cur, err)
	}
}
