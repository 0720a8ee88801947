package delivery

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A Wait that gives up (its context ends while a stopped runner's book
// still waits for answers) leaves no goroutine behind: a stopping node
// may call it again and again while a book waits minutes (ackGiveUp).
func TestLedgerWaitThatGivesUpLeavesNothingBehind(t *testing.T) {
	v := newEnv(t)
	var answer atomic.Bool
	sub, err := v.j.NC.Subscribe("test.ack.>", func(m *nats.Msg) {
		if answer.Load() {
			_ = m.Respond(nil)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	b, err := newAckBook(v.j.NC, slog.New(slog.DiscardHandler), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLedger()
	l.add(b, "events-x")
	b.add(ackKey{"S", 1}, "test.ack.1", false) // unanswered for now
	l.keep(b)

	before := runtime.NumGoroutine()
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		if err := l.Wait(ctx); err == nil {
			t.Fatal("Wait returned nil with a book still waiting for an answer")
		}
		cancel()
	}
	// 200 leaked waiters would show; the test's other goroutines (the
	// NATS client's, the book's) come and go by a few at most.
	if after := runtime.NumGoroutine(); after > before+10 {
		t.Fatalf("%d goroutines after 200 Waits that gave up, %d before", after, before)
	}

	answer.Store(true) // the book's resend gets its answer within ackResend
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Wait(ctx); err != nil {
		t.Fatalf("the book answered, Wait: %v", err)
	}
	if left := l.Unconfirmed(); len(left) != 0 {
		t.Fatalf("the ledger still lists %+v", left)
	}
	// An idle ledger's Wait returns at once, and a second book kept
	// afterwards is waited for again.
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}
