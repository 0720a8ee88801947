package broker

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/broker/brokertest"
)

// countConnectors counts the connector goroutines of the process.
func countConnectors() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "internal/broker.(*connectors).worker")
}

// Connects one after another reuse the waiting connector instead of
// starting a goroutine each, and Stop ends the waiting ones.
func TestConnectorsReusedAndStopped(t *testing.T) {
	h := startTestHub(t)
	for i := range 30 {
		if i > 0 {
			// The previous connect's connector is back and waiting (on a
			// loaded machine the next CONNECT could otherwise come first
			// and start one more, as it should).
			h.waitFor("a connector to wait", func() bool { return h.b.connectors.idle.Load() >= 1 })
		}
		cl, rc := h.connect(fmt.Sprintf("d%02d", i), 4)
		if rc != 0 {
			t.Fatalf("CONNACK %d", rc)
		}
		cl.c.Close()
	}
	h.waitFor("sessions to end", func() bool { return len(h.b.table.all()) == 0 })
	// Each connect found the previous one's connector waiting, or (when
	// the next CONNECT came before that connector was back) started one
	// more: a handful at most, never one per connect, and at least one
	// waits for the next connection.
	if n := countConnectors(); n < 1 || n > 5 {
		t.Fatalf("%d connector goroutines after 30 sequential connects; want 1–5", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	brokertest.CheckNoSessionGoroutines(t)
}
