package broker

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// After a burst of connects and a calm, the freed heap is released once;
// connects below the burst size release nothing, and nothing is released
// while a connection is in its connect phase.
func TestBurstReleaseAfterCalm(t *testing.T) {
	// Restored after the hub's Stop (cleanups run last first).
	t.Cleanup(func(n int64, d time.Duration) func() { return func() { burstMin, burstCalm = n, d } }(burstMin, burstCalm))
	burstMin, burstCalm = 3, 20*time.Millisecond
	h := startTestHub(t, func(_ *testHub, o *Options) { o.ConnectTimeout = time.Minute })
	var released atomic.Int32
	h.b.burst.release = func() { released.Add(1) }
	h.connect("d0", 4)
	h.connect("d1", 4)
	h.waitFor("the timer to see the calm", func() bool {
		h.b.burst.mu.Lock()
		defer h.b.burst.mu.Unlock()
		return h.b.burst.timer == nil
	})
	if n := released.Load(); n != 0 {
		t.Fatalf("released %d times after 2 connects, want none (a burst is %d)", n, burstMin)
	}
	// A connection still in its connect phase (here: silent) holds the
	// release off: a burst's connects may be waiting for the journal.
	silent := h.dial()
	h.waitFor("the silent connection to be accepted", func() bool { return h.b.burst.connecting.Load() == 1 })
	for i := 2; i < 6; i++ {
		h.connect(fmt.Sprintf("d%d", i), 4)
	}
	h.waitFor("the timer to look after the last connect", func() bool {
		h.b.burst.mu.Lock()
		defer h.b.burst.mu.Unlock()
		return h.b.burst.seen == h.b.burst.connects
	})
	if n := released.Load(); n != 0 {
		t.Fatalf("released %d times while a connection was connecting, want none", n)
	}
	silent.c.Close()
	h.waitFor("the release after the burst", func() bool { return released.Load() == 1 })
	h.b.burst.mu.Lock()
	left := h.b.burst.connects
	h.b.burst.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d connects counted after the release, want 0", left)
	}
}
