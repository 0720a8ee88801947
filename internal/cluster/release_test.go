package cluster

import (
	"context"
	"encoding/json"
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
