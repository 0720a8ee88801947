package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tether-hub/tether/internal/presence"
)

// unanswering turns JetStream off on srv (every stream and bucket stops
// answering: "no responders", as while a Raft group elects a leader) and
// returns the call that turns it back on.
func unanswering(t *testing.T, srv *server.Server) (back func()) {
	t.Helper()
	cfg := srv.JetStreamConfig()
	// The config names the store's jetstream directory; EnableJetStream
	// wants its parent.
	cfg.StoreDir = filepath.Dir(cfg.StoreDir)
	if err := srv.ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := srv.EnableJetStream(cfg); err != nil {
			t.Fatal(err)
		}
	}
}

// recordOf reads dev's owner record from m.
func recordOf(t *testing.T, m *member, dev string) (uint64, Owner) {
	t.Helper()
	var rev uint64
	var o Owner
	eventually(t, 30*time.Second, func() (err error) {
		rev, o, err = m.get(context.Background(), Key(dev))
		return err
	})
	return rev, o
}

// An adoption does not replace the hold of a live session of the same
// device on this node (a stale read of the record, or a slow reaper
// worker): the session keeps its hold and its record, and nothing is
// recorded for it.
func TestAnAdoptionDoesNotReplaceALiveHold(t *testing.T) {
	srv := startServer(t)
	n := join(t, srv, "n")
	n.connect(t, "d")
	n.Node.mu.Lock()
	h := n.held["d"]
	n.Node.mu.Unlock()
	rev, cur := recordOf(t, n, "d")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nrev, err := n.adoptAt(ctx, Key("d"), rev, cur, presence.ReasonNodeLost, 0)
	if err != nil || nrev != 0 {
		t.Fatalf("adoptAt of a live session's record: revision %d, %v; want 0, nil", nrev, err)
	}
	n.Node.mu.Lock()
	still := n.held["d"]
	n.Node.mu.Unlock()
	if still != h {
		t.Fatal("the live session's hold was replaced")
	}
	if evs := n.eventsOf("d"); len(evs) != 1 {
		t.Fatalf("recorded %+v, want only the connect", evs)
	}
	if r, o := recordOf(t, n, "d"); r != rev || o.Ending {
		t.Fatalf("the record changed: revision %d→%d, ending %v", rev, r, o.Ending)
	}
}

// A round of adoptions stopped because the owners bucket did not answer
// is tried again only if the node is still gone: here it answers the
// probe (it was taken for gone while this node was the one cut off), so
// once the bucket answers again its records stay its own.
func TestAnAdoptionRetryRechecksThatTheNodeIsGone(t *testing.T) {
	srv := startServer(t)
	n1, n2 := joinLong(t, srv, "n1"), joinLong(t, srv, "n2")
	for i := range 3 {
		n1.connect(t, fmt.Sprintf("d%d", i))
	}
	eventually(t, 30*time.Second, func() error {
		if c := n2.Owners()["n1"]; c != 3 {
			return fmt.Errorf("n2 sees %d records of n1", c)
		}
		return nil
	})
	back := unanswering(t, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n2.adoptGone(context.Background(), "n1", "test", time.Now(), n2.nc.Stats().Reconnects,
			func(ctx context.Context, node string) bool {
				gone, _, _, _ := n2.goneByProbe(ctx, node)
				return gone
			})
	}()
	// The first round stops on its first read; give the retries a moment
	// of an unanswering bucket, then let it answer.
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	back()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the adoption round did not end")
	}
	for i := range 3 {
		if evs := n2.eventsOf(fmt.Sprintf("d%d", i)); len(evs) != 0 {
			t.Errorf("d%d: n2 recorded %+v for a node that answers", i, evs)
		}
		if n1.liveOf(fmt.Sprintf("d%d", i)) == nil {
			t.Errorf("d%d no longer live on n1", i)
		}
	}
}

// A release whose delete finds the owners bucket not answering (an
// election after a node loss) is retried until it answers: the record
// does not stay behind naming this run (its next start would record a
// second end).
func TestAReleaseIsRetriedWhileTheBucketDoesNotAnswer(t *testing.T) {
	srv := startServer(t)
	n := joinLong(t, srv, "n")
	s := n.connect(t, "d")
	back := unanswering(t, srv)
	if !n.end("d", s.ID) {
		t.Fatal("d not live")
	}
	// The end is recorded at once (the test's sink); its release's first
	// delete finds nobody.
	eventually(t, 10*time.Second, func() error {
		for _, ev := range n.eventsOf("d") {
			if ev.Kind == presence.Disconnected {
				return nil
			}
		}
		return errors.New("the end is not recorded yet")
	})
	time.Sleep(time.Second) // several deletes fail meanwhile
	back()
	eventually(t, time.Minute, func() error {
		rev, o, err := n.get(context.Background(), Key("d"))
		if err != nil || rev != 0 {
			return fmt.Errorf("the record is still there (revision %d, node %s, %v)", rev, o.Node, err)
		}
		return nil
	})
}
