package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/journal"
)

// An acknowledgement lost on its way (a consumer leader that stopped
// before committing it): JetStream offers the events again after AckWait.
// The engine recognises them as delivered — their acknowledgements were
// never answered — and acknowledges them again instead of delivering them
// a second time.
func TestLostAcknowledgementsAreNotDeliveredTwice(t *testing.T) {
	var lose atomic.Bool
	lose.Store(true)
	ackLoss = func(ackKey) bool { return lose.Load() }
	t.Cleanup(func() { ackLoss = nil })
	v := newEnv(t) // AckWait 2 s
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("lost", rc.URL)
	want := v.publishRounds(3, 2)
	eventually(t, "all delivered", func() bool { return allDelivered(rc, want) })
	eventually(t, "the events offered again (their acknowledgements were lost)", func() bool {
		return v.stats("lost").Received >= 12
	})
	lose.Store(false)
	eventually(t, "consumer settled", func() bool {
		return v.consumerInfo(journal.StreamConn, "lost").NumAckPending == 0
	})
	if got := len(rc.delivered()); got != 6 {
		t.Errorf("%d events delivered, want each of the 6 once", got)
	}
	checkOrder(t, rc, want)
}

// Hand-over: once the engine's lead ends (its Fence), it starts no send;
// the next engine on the same consumers delivers what the first did not,
// and nothing the first delivered.
func TestFencedEngineStopsAndTheNextResumes(t *testing.T) {
	fence, end := context.WithCancel(context.Background())
	v := newEnv(t, func(o *Options) { o.Fence = fence })
	rc := newReceiver(t, v.clock, nil)
	e1 := v.start()
	v.sub("handover", rc.URL)
	first := v.publishRounds(3, 2)
	eventually(t, "first events delivered", func() bool { return allDelivered(rc, first) })

	end()
	more := v.publishRounds(3, 2)
	time.Sleep(300 * time.Millisecond)
	if got := len(rc.delivered()); got != 6 {
		t.Fatalf("%d events delivered after the fence, want the 6 from before it only", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e1.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	v.opts.Fence = nil
	v.start()
	eventually(t, "the rest delivered by the next engine", func() bool { return allDelivered(rc, more) })
	checkEachOnce(t, v, rc, "handover", 12)
}

// checkEachOnce waits until subscription sub's consumer has nothing
// unacknowledged and checks that the receiver got n events, each once.
func checkEachOnce(t *testing.T, v *env, rc *receiver, sub string, n int) {
	t.Helper()
	eventually(t, "consumer settled", func() bool {
		return v.consumerInfo(journal.StreamConn, sub).NumAckPending == 0
	})
	if got := len(rc.delivered()); got != n {
		t.Errorf("%d events delivered, want each of the %d once", got, n)
	}
}

// A paused engine (a lead fenced, not yet ended) starts no send but keeps
// what it holds; resumed, it delivers the rest, each event once, without
// a restart.
func TestPausedEngineResumesWithoutAStop(t *testing.T) {
	var pause atomic.Bool
	v := newEnv(t, func(o *Options) { o.Pause = pause.Load })
	rc := newReceiver(t, v.clock, nil)
	e := v.start()
	v.sub("pause", rc.URL)
	first := v.publishRounds(3, 2)
	eventually(t, "first events delivered", func() bool { return allDelivered(rc, first) })

	pause.Store(true)
	more := v.publishRounds(3, 2)
	eventually(t, "the paused engine holds the new events", func() bool { return v.stats("pause").Received >= 12 })
	if got := len(rc.delivered()); got != 6 {
		t.Fatalf("%d events delivered while paused, want the 6 from before only", got)
	}
	pause.Store(false)
	e.Resume()
	eventually(t, "the rest delivered once resumed", func() bool { return allDelivered(rc, more) })
	checkEachOnce(t, v, rc, "pause", 12)
}

// The book looks for acknowledgements to send again only while one is
// unanswered: an idle runner's book does not wake every ackBookTick.
func TestAckBookSleepsWhileNoneIsUnanswered(t *testing.T) {
	var answer atomic.Bool
	b := ackBookAnswering(t, func(m *nats.Msg) {
		if answer.Load() {
			_ = m.Respond(nil)
		}
	})
	time.Sleep(3 * ackBookTick)
	if n := b.ticks.Load(); n != 0 {
		t.Fatalf("an empty book looked %d times, want 0", n)
	}
	b.add(ackKey{"S", 1}, "test.ack.1", false) // unanswered: sent again each tick
	eventually(t, "the unanswered acknowledgement sent again", func() bool { return b.ticks.Load() >= 3 })
	answer.Store(true)
	eventually(t, "answered", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pending) == 0
	})
	eventually(t, "the book waits for work", func() bool { return b.idleWaits.Load() >= 2 })
	n := b.ticks.Load()
	time.Sleep(3 * ackBookTick)
	if got := b.ticks.Load(); got != n {
		t.Errorf("the book looked %d times more with nothing unanswered, want 0", got-n)
	}
	b.add(ackKey{"S", 2}, "test.ack.2", false) // answered at once
	eventually(t, "answered", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pending) == 0
	})
}

// Acknowledgements on a consumer with one copy go out without a reply, and
// one confirmation answers all those sent before it.
func TestAckBookConfirmsBatches(t *testing.T) {
	var plain, asked atomic.Int64
	b := ackBookAnswering(t, func(m *nats.Msg) {
		if m.Reply == "" {
			plain.Add(1)
			return
		}
		asked.Add(1)
		_ = m.Respond(nil)
	})
	for i := range uint64(200) {
		b.add(ackKey{"S", i + 1}, fmt.Sprintf("test.ack.%d", i+1), true)
	}
	eventually(t, "all answered", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.pending) == 0
	})
	if p, a := plain.Load(), asked.Load(); p != 200 || a > 2 {
		t.Errorf("%d acknowledgements without a reply and %d asking for one, want 200 and at most 2", p, a)
	}
	if !b.again(ackKey{"S", 7}, "test.ack.7") {
		t.Error("a copy of an answered acknowledgement's event not recognised")
	}
}

// ackBookAnswering is an ack book over a test journal whose
// acknowledgements (subjects test.ack.>) reach answer, closed at the end
// of the test.
func ackBookAnswering(t *testing.T, answer nats.MsgHandler) *ackBook {
	t.Helper()
	v := newEnv(t)
	sub, err := v.j.NC.Subscribe("test.ack.>", answer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	b, err := newAckBook(v.j.NC, slog.New(slog.DiscardHandler), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.close(0) })
	return b
}

// Hand-over while the consumer cannot store acknowledgements (its Raft
// group electing after a node was lost): the first engine delivered every
// event, but none of their acknowledgements was answered when its lead
// ended and it stopped. The next engine, offered the events again, learns
// from the first one's Ledger that they were delivered and acknowledges
// them instead of sending them a second time. (Without the Ledger and
// Handover, the next engine sent all 6 again.)
func TestHandOverWithUnstoredAcknowledgementsSendsNothingTwice(t *testing.T) {
	var lose atomic.Bool
	lose.Store(true)
	ackLoss = func(ackKey) bool { return lose.Load() }
	t.Cleanup(func() { ackLoss = nil })
	ledger := NewLedger()
	fence, end := context.WithCancel(context.Background())
	v := newEnv(t, func(o *Options) { o.Fence, o.Ledger = fence, ledger })
	rc := newReceiver(t, v.clock, nil)
	e1 := v.start()
	v.sub("handover", rc.URL)
	first := v.publishRounds(3, 2)
	eventually(t, "first events delivered", func() bool { return allDelivered(rc, first) })

	// The lead ends mid-run: no acknowledgement was stored.
	end()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	left := ledger.Unconfirmed()
	if len(left) != 1 || len(left[0].Seqs) != 6 || left[0].Consumer != ConsumerName("handover") {
		t.Fatalf("the ledger holds %+v after the stop, want the 6 delivered events of consumer %s", left, ConsumerName("handover"))
	}

	// The next engine (another node's: it asks for the ledger).
	v.opts.Fence = nil
	v.opts.Ledger = NewLedger()
	v.opts.Handover = func(context.Context) ([]Unconfirmed, error) { return ledger.Unconfirmed(), nil }
	e2 := v.start()
	eventually(t, "the delivered events offered to the next engine", func() bool { return e2.hand.taken.Load() == 6 })
	lose.Store(false)
	more := v.publishRounds(3, 2)
	eventually(t, "the new events delivered by the next engine", func() bool { return allDelivered(rc, more) })
	checkEachOnce(t, v, rc, "handover", 12)
	for dev, ids := range more {
		first[dev] = append(first[dev], ids...)
	}
	checkOrder(t, rc, first)
	if err := ledger.Wait(ctx); err != nil {
		t.Errorf("the first engine's book still waits for answers: %v", err)
	}
}

// A POST in flight when the lead is fenced (Pause: no send starts) is
// not cut off: it finishes before the term's end, its event counts as
// delivered, and the next engine does not send it a second time.
func TestPostInFlightAtTheFenceFinishesAndIsNotSentAgain(t *testing.T) {
	ledger := NewLedger()
	var paused atomic.Bool
	fence, end := context.WithCancel(context.Background())
	v := newEnv(t, func(o *Options) { o.Fence, o.Pause, o.Ledger = fence, paused.Load, ledger })
	arrived := make(chan struct{}, 64)
	release := make(chan struct{})
	cut := make(chan struct{}, 64)
	rc := newReceiver(t, v.clock, func(r *http.Request, _ post) int {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done(): // the sender gave up on it
			cut <- struct{}{}
			<-release
		}
		return http.StatusOK
	})
	e1 := v.start()
	v.sub("inflight", rc.URL)
	first := v.publishRounds(1, 1)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first POST did not arrive")
	}
	paused.Store(true) // the fence, with the POST in flight
	more := v.publishRounds(1, 1)
	eventually(t, "the paused engine holds the new event", func() bool { return v.stats("inflight").Received >= 2 })
	close(release)
	eventually(t, "the POST in flight at the fence answered", func() bool { return allDelivered(rc, first) })
	end() // the term's end, after the POST finished
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if len(cut) != 0 || len(rc.delivered()) != 1 {
		t.Fatalf("%d POSTs cut off, %d events delivered; want the one in flight at the fence answered, nothing sent after it", len(cut), len(rc.delivered()))
	}

	v.opts.Fence, v.opts.Pause = nil, nil
	v.opts.Ledger = NewLedger()
	v.opts.Handover = func(context.Context) ([]Unconfirmed, error) { return ledger.Unconfirmed(), nil }
	v.start()
	eventually(t, "the held event delivered by the next engine", func() bool { return allDelivered(rc, more) })
	checkEachOnce(t, v, rc, "inflight", 2)
}

// The term's end is the lead's hard deadline: a POST still in flight is
// cut off at once (the receiver sees its connection close), not left to
// run into the next lead's term, where two nodes would deliver at once;
// its outcome is unknown, so it is not taken as delivered and the next
// engine sends it again (at-least-once, the same event id).
func TestTermsEndCutsOffPostsInFlight(t *testing.T) {
	ledger := NewLedger()
	fence, end := context.WithCancel(context.Background())
	v := newEnv(t, func(o *Options) { o.Fence, o.Ledger = fence, ledger })
	var ended, second atomic.Bool
	arrived := make(chan struct{}, 64)
	cut := make(chan struct{}, 64)
	var late atomic.Int32 // POSTs of the first engine that arrived after its term's end
	rc := newReceiver(t, v.clock, func(r *http.Request, _ post) int {
		if second.Load() {
			return http.StatusOK
		}
		if ended.Load() {
			late.Add(1)
		}
		arrived <- struct{}{}
		<-r.Context().Done() // never answered: only the sender's cancel ends it
		cut <- struct{}{}
		return http.StatusServiceUnavailable // nobody reads it
	})
	e1 := v.start()
	v.sub("cut", rc.URL)
	first := v.publishRounds(1, 1)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the first POST did not arrive")
	}
	ended.Store(true)
	end()
	select {
	case <-cut:
	case <-time.After(20 * time.Second):
		t.Fatal("the POST in flight at the term's end was not cut off (20 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if n := late.Load(); n != 0 {
		t.Fatalf("%d POSTs started after the term's end", n)
	}
	if left := ledger.Unconfirmed(); len(left) != 0 {
		t.Fatalf("the ledger lists %+v: a POST cut off must not count as delivered", left)
	}

	// The next engine (another node's) sends the event again.
	second.Store(true)
	v.opts.Fence = nil
	v.opts.Ledger = NewLedger()
	v.opts.Handover = func(context.Context) ([]Unconfirmed, error) { return ledger.Unconfirmed(), nil }
	v.start()
	eventually(t, "the cut-off event delivered by the next engine", func() bool { return allDelivered(rc, first) })
	checkEachOnce(t, v, rc, "cut", 1)
}
