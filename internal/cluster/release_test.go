package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/presence"
)

// A session's record rewritten by another node while this node's release
// of it still waits for the bucket (an election after a node loss; seen in
// the loaded 3-process test: "close of closed channel" ended node 2) ends
// the hold once: the watch and the release both finish it, and neither
// panics.
func TestReleaseAfterAnotherNodeRewroteTheRecord(t *testing.T) {
	srv := startServer(t)
	a := join(t, srv, "a")
	b := join(t, srv, "b")
	a.connect(t, "dev-r")
	a.Node.mu.Lock()
	h := a.held["dev-r"]
	a.Node.mu.Unlock()
	if h == nil {
		t.Fatal("a does not hold dev-r after its claim")
	}
	// b writes the record as its own (as a node that took the session for
	// lost does), before a's release ran.
	other := &presence.Session{ID: presence.NewSessionID(), DeviceID: "dev-r", Protocol: "MQTT"}
	val, err := json.Marshal(Owner{Node: "b", Boot: b.boot, Session: other})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.owners.Put(ctx, Key("dev-r"), val); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		a.Node.mu.Lock()
		defer a.Node.mu.Unlock()
		if a.held["dev-r"] != nil {
			return fmt.Errorf("a still holds dev-r after b rewrote its record")
		}
		return nil
	})
	// The watch drops the hold from held, then finishes it (after the lock).
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the hold was not finished when the record was taken")
	}
	a.release("dev-r", h) // the session's end stored: panicked here before
	if got, err := b.owners.Get(ctx, Key("dev-r")); err != nil || got == nil {
		t.Errorf("b's record is gone after a's late release: %v", err)
	}
}

// A live hold whose record another node deleted (the adopter's write
// compacted away by its delete before this node's feed read it) is a
// takeover: the session ends here, else the device could be live on two
// nodes. This node's own release of a record is not.
func TestALiveHoldWhoseRecordAnotherNodeDeletedEnds(t *testing.T) {
	srv := startServer(t)
	a := join(t, srv, "a")
	b := join(t, srv, "b")
	a.connect(t, "dev-x")
	a.connect(t, "dev-own")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.owners.Delete(ctx, Key("dev-x")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.live["dev-x"] != nil {
			return errors.New("a's session of dev-x is still live after b deleted its record")
		}
		return nil
	})
	a.Node.mu.Lock()
	held := a.held["dev-x"]
	a.Node.mu.Unlock()
	if held != nil {
		t.Error("a still holds dev-x")
	}
	// dev-own ends here normally: released by a, whose feed then sees its
	// own delete; the next session of it is a's again and stays live.
	a.mu.Lock()
	s := a.live["dev-own"]
	a.mu.Unlock()
	if !a.end("dev-own", s.ID) {
		t.Fatal("dev-own not live on a")
	}
	eventually(t, 10*time.Second, func() error {
		if a.Owners()["a"] != 0 {
			return errors.New("dev-own's record not released yet")
		}
		return nil
	})
	a.connect(t, "dev-own")
	if evs := a.eventsOf("dev-x"); len(evs) != 1 || evs[0].Kind != presence.Connected {
		t.Errorf("a recorded %+v for dev-x, want only its connect (b recorded the end)", evs)
	}
}
