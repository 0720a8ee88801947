package delivery

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/tether-hub/tether/internal/presence"
)

// slowDeadLetters holds each Put until released (or its context ends:
// then it records that it timed out).
type slowDeadLetters struct {
	DeadLetterStore
	started  chan struct{}
	release  chan struct{}
	timedOut atomic.Bool
}

func (s *slowDeadLetters) Put(ctx context.Context, r DeadLetterRecord) (uint64, error) {
	s.started <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
		s.timedOut.Store(true)
	}
	return s.DeadLetterStore.Put(ctx, r)
}

// A slow dead-letter store does not hold up the subscription's other
// sends: while one device's event is being written as a dead letter,
// another device's event is delivered; the first device waits (its order
// is kept) and its event is dead-lettered once the write answers.
func TestSlowDeadLetterStoreDoesNotBlockTheNextSend(t *testing.T) {
	v := newEnv(t)
	real, err := OpenDeadLetters(v.ctx, v.j.JS, DeadLetterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slow := &slowDeadLetters{DeadLetterStore: real, started: make(chan struct{}, 8), release: make(chan struct{})}
	v.opts.DeadLetters = slow
	rc := newReceiver(t, v.clock, func(_ *http.Request, p post) int {
		if p.Events[0].Subject == "devices/d1" {
			return http.StatusNotFound // final: dead-lettered
		}
		return http.StatusOK
	})
	v.start()
	v.sub("slowdl", rc.URL)
	v.conn("d1", presence.Connected)
	v.conn("d1", presence.Disconnected)
	eventually(t, "d1's dead letter being written", func() bool { return len(slow.started) == 1 })
	v.conn("d2", presence.Connected)
	eventually(t, "d2 delivered while d1's dead letter is written", func() bool { return len(rc.deliveredIDs("d2")) == 1 })
	if slow.timedOut.Load() {
		t.Fatal("d2 was delivered only after the dead letter's write timed out: the write held the sends up")
	}
	if n := len(rc.all()); n != 2 {
		t.Fatalf("%d POSTs while d1's head is being dead-lettered, want 2 (d1's first, d2's): d1's next event must wait", n)
	}
	close(slow.release)
	eventually(t, "both of d1's events dead-lettered in turn", func() bool { return v.stats("slowdl").DeadLettered == 2 })
	if ids := rc.deliveredIDs("d1"); len(ids) != 0 {
		t.Fatalf("d1 delivered %v", ids)
	}
}
