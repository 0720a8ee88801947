package app

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// The node that takes the delivery job retries starting its engine while
// its term lasts: a start that timed out (the replicated subscriptions
// bucket electing a Raft leader after a node loss) must not leave the
// cluster with nobody delivering until the next hand-over.
func TestDeliveryStartRetriedWhileLeading(t *testing.T) {
	term, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	var waits []int
	start := func(ctx context.Context) error {
		if ctx != term {
			t.Error("start not given the lead's term")
		}
		if calls.Add(1) < 3 {
			return context.DeadlineExceeded // as a bucket that does not answer
		}
		return nil
	}
	wait := func(attempt int) time.Duration { waits = append(waits, attempt); return time.Millisecond }
	if !retryWhileLeading(term, start, wait, slog.New(slog.DiscardHandler)) {
		t.Fatal("reported not started, want started on the third attempt")
	}
	if calls.Load() != 3 || len(waits) != 2 || waits[0] != 1 || waits[1] != 2 {
		t.Fatalf("%d attempts, waits after attempts %v; want 3 attempts, waits after 1 and 2", calls.Load(), waits)
	}
}

// When the term ends while the start keeps failing, the retries stop at
// once and report that nothing started.
func TestDeliveryStartRetryStopsWhenTheTermEnds(t *testing.T) {
	term, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	start := func(context.Context) error {
		calls.Add(1)
		go func() { time.Sleep(20 * time.Millisecond); cancel() }() // the lead is lost while waiting to retry
		return errors.New("subscriptions bucket: no response from stream")
	}
	done := make(chan bool, 1)
	go func() {
		done <- retryWhileLeading(term, start, func(int) time.Duration { return time.Hour }, slog.New(slog.DiscardHandler))
	}()
	select {
	case started := <-done:
		if started {
			t.Fatal("reported started")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still retrying 10 s after the term ended (it waits an hour between attempts: the end must cut the wait)")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d attempts, want 1 (none after the term ended)", n)
	}
	// An ended term: no attempt at all.
	calls.Store(0)
	if retryWhileLeading(term, start, deliveryRetryWait, slog.New(slog.DiscardHandler)) || calls.Load() != 0 {
		t.Fatalf("an ended term: %d attempts", calls.Load())
	}
}

func TestDeliveryRetryWaitGrowsToTenSeconds(t *testing.T) {
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 9: 9 * time.Second, 10: 10 * time.Second, 50: 10 * time.Second} {
		if got := deliveryRetryWait(attempt); got != want {
			t.Errorf("wait after attempt %d: %s, want %s", attempt, got, want)
		}
	}
}
