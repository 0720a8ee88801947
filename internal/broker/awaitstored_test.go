package broker

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

// awaitStored's timers are pooled: a wait answered by the journal returns
// the journal's answer, one never answered returns nil after recordWait
// and is counted, and a timer that ran out hands no stale tick to the next
// wait, which again gets its own answer.
func TestAwaitStoredReusesItsTimer(t *testing.T) {
	t.Cleanup(func(d time.Duration) func() { return func() { recordWait = d } }(recordWait))
	b := &Broker{log: slog.New(slog.DiscardHandler)}
	refused := errors.New("not stored")
	answered := func(err error) <-chan error {
		ch := make(chan error, 1)
		ch <- err
		return ch
	}
	for round := range 3 {
		// A minute: an answer from another goroutine always comes first,
		// however loaded the machine.
		recordWait = time.Minute
		for i := range 200 {
			want := error(nil)
			if i%2 == 1 {
				want = refused
			}
			if got := b.awaitStored(answered(want), "d"); got != want {
				t.Fatalf("round %d, wait %d: %v, want %v", round, i, got, want)
			}
		}
		// An answer that comes after the wait began (from another goroutine).
		ch := make(chan error, 1)
		go func() { ch <- refused }()
		if got := b.awaitStored(ch, "d"); got != refused {
			t.Fatalf("round %d: a late answer gave %v", round, got)
		}
		// Nobody answers: the wait gives up and is counted; its timer,
		// run out, goes back to the pool for the next round.
		recordWait = 20 * time.Millisecond
		if got := b.awaitStored(make(chan error), "d"); got != nil {
			t.Fatalf("round %d: an unanswered wait returned %v", round, got)
		}
		if n := b.SlowRecords(); n != uint64(round+1) {
			t.Fatalf("round %d: %d slow records counted", round, n)
		}
	}
}
