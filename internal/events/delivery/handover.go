package delivery

import (
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Handing delivery over between the nodes of a cluster (one node
// delivers; cluster.JobDelivery) without delivering an event twice:
//
//   - the old engine stops sending before the new one starts, by
//     construction, with every time counted from the start of the lead's
//     last successful renewal (R) on the old node's own clock: no send
//     starts from R + 0.6 lease (Options.Pause, the lead's fence); every
//     send still in flight is cancelled at R + 0.9 lease (Options.Fence,
//     the term's end: its outcome is unknown, the event handed back); the
//     lead's key lives a lease from when the bucket stored that renewal,
//     which is after R, and no other node can be elected before it
//     expired (its creation fails while the key exists). So once another
//     node may send (after R + 1 lease), this one has sent nothing for
//     0.1 lease, answered or not, reachable or not. A POST in flight at
//     the fence has 0.3 lease to finish; its acknowledgement goes to the
//     ledger if JetStream cannot store it in time, and the next engine
//     starts only once this node answered for its ledger, or the node is
//     unreachable (ledger.go). Assumed: this node's timers are not late
//     by more than 0.1 lease (a stalled process could send late), and the
//     NATS servers' clocks, which expire the key, do not run fast by that
//     much;
//   - the delivered position is the consumers' acknowledgements, and an
//     event counts as delivered only once JetStream has stored its
//     acknowledgement: in a cluster that is a Raft write, lost if the
//     consumer's leader stops or dies before it is committed (the event
//     would come back to whoever delivers next). So a delivered event's
//     acknowledgement asks for a reply, which a replicated consumer sends
//     once the acknowledgement is applied; until then it is sent again
//     (ackBook), a copy of the event JetStream offers meanwhile (or sent
//     just before) is taken for what it is (acknowledged again, not
//     delivered), and the
//     engine's Stop waits for the replies before it returns, so the next
//     engine resumes exactly after the last event the receiver
//     acknowledged.
//
// A consumer with one copy (a single node, or R1) applies acknowledgements
// in the order they arrive, and none is lost on its way (one connection):
// its acknowledgements go out without a reply, and the book asks for one
// reply per ackConfirmEvery instead, by acknowledging again the newest one
// sent; that reply answers every acknowledgement sent before it. A
// replicated consumer's acknowledgement each asks for its own reply.
//
// What remains is a delivery whose outcome is truly unknown: the node is
// killed (or cut off and fenced) between the receiver's 2xx and its
// acknowledgement being stored, or its POST is cut off at the term's end
// unanswered; those events go out again from the next leader
// (at-least-once, with the same event ids).

// Timing of the acknowledgement book.
const (
	ackResend   = time.Second     // an unanswered acknowledgement is sent again after this
	ackGiveUp   = 2 * time.Minute // and given up after this (logged)
	ackSettle   = 3 * time.Second // Stop waits this long for the answers
	ackBookTick = time.Second / 2 // how often the book looks for what to resend
	// how often the book asks for a confirmation of the acknowledgements
	// sent without a reply (consumers with one copy)
	ackConfirmEvery = 50 * time.Millisecond
	// A copy JetStream sent before an acknowledgement was stored can
	// arrive after it was answered (it waited in the pull buffer, or a
	// stale recall re-offered it): answered acknowledgements are kept
	// this long (at most ackRecentMax of them) to recognise those.
	ackRecentMax = 1 << 16
)

// fenced reports whether the engine's lead has ended: no send may start.
func (r *runner) fenced() bool { return r.e.o.Fence != nil && r.e.o.Fence.Err() != nil }

// paused reports whether Options.Pause holds the sends back for now.
func (r *runner) paused() bool { return r.e.o.Pause != nil && r.e.o.Pause() }

// Resume wakes every runner to start the sends Options.Pause held back.
func (e *Engine) Resume() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.runners {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// ackBook holds the acknowledgements of a runner's delivered events until
// JetStream has answered them: each is published with a reply subject
// <inbox>.a.<stream>.<stream sequence>, answered (an empty message) once
// stored; or, on a consumer with one copy, without one, and answered by a
// confirmation, <inbox>.c.<stream>.<n>, which answers every
// acknowledgement of the stream added before it (the nth).
type ackBook struct {
	nc    *nats.Conn
	log   *slog.Logger
	inbox string
	sub   *nats.Subscription
	stop  chan struct{}
	done  chan struct{}
	wake  chan struct{} // an acknowledgement added to an empty book

	linger time.Duration // how long answered acknowledgements are kept

	mu      sync.Mutex
	n       uint64            // acknowledgements added
	unasked map[string]ackKey // per stream: the newest batched acknowledgement no confirmation covers yet
	pending map[ackKey]*ackState
	drained chan struct{} // closed when pending empties, if someone waits
	// The answered ones, with when (Unix ns). Up to ackRecentMax of them
	// live for the linger: at 5,000 events/s the book holds the full 65,536
	// from ~13 s on, so they are kept without pointers (the stream as an
	// index into streams), which the GC then does not scan: with the stream
	// name in the key and a time.Time value they were ~10 MB of the hub's
	// scanned heap (issue 21, heap21).
	recent     map[recentKey]int64
	recentQ    []recentKey // recent's keys, oldest first from recentHead
	recentHead int
	streams    []string // the names recentKey.stream indexes

	ticks, idleWaits atomic.Uint64 // for tests: resend's looks, and its waits for work
}

type ackKey struct {
	stream string
	sseq   uint64
}

// recentKey is an ackKey with its stream as an index into ackBook.streams.
type recentKey struct {
	stream uint32
	sseq   uint64
}

// recentKey returns k's recentKey, adding its stream to b.streams if new;
// b.mu held. A runner's book sees its subscription's few streams.
func (b *ackBook) recentKey(k ackKey) recentKey {
	for i, s := range b.streams {
		if s == k.stream {
			return recentKey{uint32(i), k.sseq}
		}
	}
	b.streams = append(b.streams, k.stream)
	return recentKey{uint32(len(b.streams) - 1), k.sseq}
}

type ackState struct {
	subject     string // the message's acknowledgement subject
	first, last time.Time
	n           uint64 // its place among the book's acknowledgements
	batched     bool   // sent without a reply, answered by a confirmation
}

func newAckBook(nc *nats.Conn, log *slog.Logger, linger time.Duration) (*ackBook, error) {
	b := &ackBook{nc: nc, log: log, inbox: nc.NewInbox(), stop: make(chan struct{}), done: make(chan struct{}),
		wake: make(chan struct{}, 1), linger: linger, unasked: map[string]ackKey{}, pending: map[ackKey]*ackState{}, recent: map[recentKey]int64{}}
	sub, err := nc.Subscribe(b.inbox+".>", b.onReply)
	if err != nil {
		return nil, err
	}
	b.sub = sub
	go b.resend()
	return b, nil
}

// ack acknowledges delivered entry e and keeps it until JetStream
// answered. Without a book (it could not subscribe) the acknowledgement
// is sent without waiting for an answer.
func (r *runner) ack(e *entry) {
	r.ackMsg(e.stream, e.sseq, e.msg.Reply(), e.msg.Ack)
}

// ackMsg acknowledges message sseq of stream (its acknowledgement subject
// reply) through the book; ack sends it unconfirmed if there is no book.
func (r *runner) ackMsg(stream string, sseq uint64, reply string, ack func() error) {
	if r.acks == nil {
		b, err := newAckBook(r.e.o.JS.Conn(), r.log, 2*r.e.o.AckWait)
		if err != nil {
			r.log.Warn("acknowledgements sent without confirmation", "err", err)
			_ = ack()
			return
		}
		r.acks = b
		if l := r.e.o.Ledger; l != nil {
			l.add(b, ConsumerName(r.name))
		}
	}
	r.acks.add(ackKey{stream, sseq}, reply, r.singleCopy(stream))
}

// singleCopy reports whether the runner's consumer on stream has one copy.
func (r *runner) singleCopy(stream string) bool {
	for _, s := range r.streams {
		if s.name == stream {
			return s.single
		}
	}
	return false
}

// redelivered reports whether it is a copy of an event delivered here:
// its acknowledgement is not answered yet (it was lost on its way, and
// JetStream offered the event again), or was answered moments ago (the
// copy was sent before). The copy is acknowledged instead.
//
// A message on its first delivery cannot be a copy of one delivered
// here (a copy is a redelivery, which JetStream counts), so the book is
// not looked at for it: at one lookup in each of its two maps per event,
// that was ~1 % of the hub's CPU at 5,000 events/s (issue 21).
//
// Or an earlier engine (on this node or another) delivered it, and its
// acknowledgement was not answered when this engine started (ledger.go):
// it is acknowledged here, through the book, and not sent.
func (r *runner) redelivered(s *stream, it item) bool {
	if it.msg == nil || it.delivered == 1 {
		return false
	}
	if r.acks != nil && r.acks.again(ackKey{s.name, it.sseq}, it.msg.Reply()) {
		return true
	}
	if !r.e.takeHanded(handKey{ConsumerName(r.name), s.name, it.sseq}) {
		return false
	}
	r.log.Debug("event delivered by the previous engine offered again; acknowledged, not sent", "stream", s.name, "seq", it.sseq)
	r.ackMsg(s.name, it.sseq, it.msg.Reply(), it.msg.Ack)
	// A runner recovering waits for the unacknowledged messages to come
	// back: this one is back, and settled.
	if rec := s.rec; rec != nil && it.sseq <= rec.delivered {
		rec.need--
		if len(rec.old) >= rec.need {
			r.finishRecovery(s, rec)
		}
	}
	return true
}

// settleAcks waits (up to ackSettle) until every acknowledgement is
// answered, then closes the book: called as the runner stops, so the next
// runner, here or on another node, does not get those events again. With
// a Ledger, a book still waiting for answers goes on in it (the next
// engine learns of those events from it, ledger.go).
func (r *runner) settleAcks() {
	b := r.acks
	if b == nil {
		return
	}
	r.acks = nil
	l := r.e.o.Ledger
	if l == nil {
		if left := b.close(ackSettle); left > 0 {
			r.log.Warn("acknowledgements not confirmed on stopping; whoever delivers next may repeat these events", "events", left)
		}
		return
	}
	if !b.settle(ackSettle) {
		r.log.Warn("acknowledgements not confirmed on stopping; kept in the ledger for the next delivering engine", "events", b.unanswered())
		l.keep(b)
		return
	}
	b.close(0)
	l.remove(b)
}

// add sends the acknowledgement of k on subject and keeps it until it is
// answered: batched (a consumer with one copy), by the next confirmation.
func (b *ackBook) add(k ackKey, subject string, batched bool) {
	now := time.Now()
	b.mu.Lock()
	first := len(b.pending) == 0
	b.n++
	b.pending[k] = &ackState{subject: subject, first: now, last: now, n: b.n, batched: batched}
	if batched {
		b.unasked[k.stream] = k
	}
	b.mu.Unlock()
	if first {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	if !batched {
		b.publish(k, subject)
		return
	}
	if ackLoss != nil && ackLoss(k) {
		return
	}
	if err := b.nc.Publish(subject, []byte("+ACK")); err != nil {
		b.log.Debug("acknowledgement not sent; retrying", "stream", k.stream, "seq", k.sseq, "err", err)
	}
}

// confirm asks for one reply covering every batched acknowledgement of
// k's stream up to the nth, by acknowledging k (the newest) again.
func (b *ackBook) confirm(k ackKey, subject string, n uint64) {
	if ackLoss != nil && ackLoss(k) {
		return
	}
	reply := b.inbox + ".c." + k.stream + "." + strconv.FormatUint(n, 10)
	if err := b.nc.PublishRequest(subject, reply, []byte("+ACK")); err != nil {
		b.log.Debug("confirmation not asked; retrying", "stream", k.stream, "err", err)
	}
}

func (b *ackBook) again(k ackKey, subject string) bool {
	b.mu.Lock()
	st := b.pending[k]
	if st != nil {
		st.subject, st.last = subject, time.Now()
	}
	_, answered := b.recent[b.recentKey(k)]
	b.mu.Unlock()
	switch {
	case st != nil:
		b.publish(k, subject)
	case answered:
		// Stored already; acknowledging the copy changes nothing but
		// keeps it from coming back after AckWait.
		if err := b.nc.Publish(subject, []byte("+ACK")); err != nil {
			b.log.Debug("acknowledgement of a copy not sent", "stream", k.stream, "seq", k.sseq, "err", err)
		}
	default:
		return false
	}
	return true
}

// ackLoss, set by tests, drops an acknowledgement the way a lost
// network message or an uncommitted Raft write does.
var ackLoss func(k ackKey) bool

func (b *ackBook) publish(k ackKey, subject string) {
	if ackLoss != nil && ackLoss(k) {
		return
	}
	reply := b.inbox + ".a." + k.stream + "." + strconv.FormatUint(k.sseq, 10)
	if err := b.nc.PublishRequest(subject, reply, []byte("+ACK")); err != nil {
		b.log.Debug("acknowledgement not sent; retrying", "stream", k.stream, "seq", k.sseq, "err", err)
	}
}

// onReply takes an answer. A status message (no responders: the
// consumer has no leader right now) is not one: the acknowledgement is
// sent again later.
func (b *ackBook) onReply(m *nats.Msg) {
	if m.Header != nil && m.Header.Get("Status") != "" {
		return
	}
	rest := strings.TrimPrefix(m.Subject, b.inbox+".")
	kind, rest, _ := strings.Cut(rest, ".")
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return
	}
	num, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil {
		return
	}
	stream := rest[:i]
	now := time.Now()
	b.mu.Lock()
	switch kind {
	case "a":
		b.answered(ackKey{stream, num}, now)
	case "c":
		for k, st := range b.pending {
			if k.stream == stream && st.batched && st.n <= num {
				b.answered(k, now)
			}
		}
	}
	if len(b.pending) == 0 && b.drained != nil {
		close(b.drained)
		b.drained = nil
	}
	b.mu.Unlock()
}

// answered moves k, if pending, to the answered ones; b.mu held.
func (b *ackBook) answered(k ackKey, now time.Time) {
	if _, ok := b.pending[k]; ok {
		delete(b.pending, k)
		rk := b.recentKey(k)
		b.recent[rk] = now.UnixNano()
		b.recentQ = append(b.recentQ, rk)
		b.forget(now)
	}
}

// forget drops the answered acknowledgements kept longer than linger,
// or beyond ackRecentMax; b.mu held.
func (b *ackBook) forget(now time.Time) {
	for b.recentHead < len(b.recentQ) {
		k := b.recentQ[b.recentHead]
		if len(b.recentQ)-b.recentHead <= ackRecentMax && now.UnixNano()-b.recent[k] < int64(b.linger) {
			break
		}
		delete(b.recent, k)
		b.recentHead++
	}
	if b.recentHead > 1024 && b.recentHead > len(b.recentQ)/2 {
		b.recentQ = append(b.recentQ[:0], b.recentQ[b.recentHead:]...)
		b.recentHead = 0
	}
}

// resend asks for the confirmations of batched acknowledgements (every
// ackConfirmEvery while some are unasked) and sends unanswered
// acknowledgements again (looking every ackBookTick), until the book
// closes. It sleeps while none is unanswered (an idle runner does not wake
// for it).
func (b *ackBook) resend() {
	defer close(b.done)
	t := time.NewTimer(ackBookTick)
	defer t.Stop()
	lastScan := time.Now()
	for {
		b.mu.Lock()
		empty := len(b.pending) == 0
		b.mu.Unlock()
		if empty {
			b.idleWaits.Add(1)
			select {
			case <-b.stop:
				return
			case <-b.wake:
			}
		}
		b.mu.Lock()
		d := ackBookTick
		if len(b.unasked) > 0 {
			d = ackConfirmEvery
		}
		b.mu.Unlock()
		t.Reset(d)
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		b.ticks.Add(1)
		now := time.Now()
		type send struct {
			k       ackKey
			subject string
			n       uint64
		}
		var confirms, due []send
		b.mu.Lock()
		for _, k := range b.unasked {
			if st := b.pending[k]; st != nil {
				confirms = append(confirms, send{k, st.subject, st.n})
			}
		}
		clear(b.unasked)
		if now.Sub(lastScan) >= ackBookTick {
			lastScan = now
			b.forget(now)
			for k, st := range b.pending {
				switch {
				case now.Sub(st.first) > ackGiveUp:
					b.log.Warn("acknowledgement never answered; the event may be delivered again", "stream", k.stream, "seq", k.sseq)
					delete(b.pending, k)
					if len(b.pending) == 0 && b.drained != nil {
						close(b.drained)
						b.drained = nil
					}
				case now.Sub(st.last) >= ackResend:
					st.last = now
					due = append(due, send{k, st.subject, 0})
				}
			}
		}
		b.mu.Unlock()
		for _, s := range confirms {
			b.confirm(s.k, s.subject, s.n)
		}
		for _, s := range due {
			b.publish(s.k, s.subject)
		}
	}
}

// settle waits up to wait until every acknowledgement is answered and
// reports whether they are.
func (b *ackBook) settle(wait time.Duration) bool {
	b.mu.Lock()
	var drained chan struct{}
	if len(b.pending) > 0 {
		if b.drained == nil {
			b.drained = make(chan struct{})
		}
		drained = b.drained
	}
	b.mu.Unlock()
	if drained == nil {
		return true
	}
	select {
	case <-drained:
		return true
	case <-time.After(wait):
		return false
	}
}

// unanswered is how many acknowledgements wait for an answer.
func (b *ackBook) unanswered() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// close waits up to wait for the answers, stops the book and returns how
// many acknowledgements stayed unanswered.
func (b *ackBook) close(wait time.Duration) int {
	b.settle(wait)
	close(b.stop)
	<-b.done
	_ = b.sub.Unsubscribe()
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}
