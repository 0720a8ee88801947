package delivery

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// Handing over what the last engine delivered but could not get stored as
// delivered (handover.go keeps the acknowledgements; this keeps them past
// the engine).
//
// An event counts as delivered for the next engine once JetStream has
// stored its acknowledgement. When the delivering node's lead ends while
// the consumers' Raft groups elect (a node lost, a rolling restart),
// the acknowledgements of its last deliveries may stay unanswered past
// its Stop: JetStream then offers those events again, and the next engine
// would send them a second time. So:
//
//   - a node's engines share a Ledger: a runner's acknowledgement book is
//     in it while any of its acknowledgements is unanswered, also after
//     the runner stopped (the book goes on sending them until JetStream
//     answers, or gives up after ackGiveUp);
//   - a new engine first asks for the ledgers of every node
//     (Options.Handover: in a cluster, over NATS alone, which needs no
//     Raft leader), and takes an event it is offered again that one of
//     them lists for what it is: delivered, acknowledged again, not sent.
//
// What is still sent twice is what no ledger can tell: a node killed
// between the receiver's answer and its acknowledgement being stored (its
// ledger went with it), a node cut off from NATS (its ledger cannot be
// asked), and a send cut off by the end of its lead's term (its outcome
// is unknown: it may have reached the receiver).

// Unconfirmed lists delivered events of one consumer on one stream whose
// acknowledgements JetStream has not answered.
type Unconfirmed struct {
	Consumer string   `json:"consumer"`
	Stream   string   `json:"stream"`
	Seqs     []uint64 `json:"seqs"`
}

// Ledger is a node's record of the events its engines delivered whose
// acknowledgements are not yet stored (Options.Ledger). Its zero value is
// not usable: NewLedger.
type Ledger struct {
	mu    sync.Mutex
	books map[*ackBook]string // the consumer each book acknowledges for
	left  int                 // books of stopped runners still sending
	// idle is closed when left falls to 0 (Wait); a new one is made when
	// it rises from 0. A channel, not a WaitGroup: a Wait that gives up
	// leaves nothing behind (a goroutine waiting on the group lived until
	// every book closed, minutes, or for ever on a node that keeps some).
	idle chan struct{}
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{books: map[*ackBook]string{}} }

func (l *Ledger) add(b *ackBook, consumer string) {
	l.mu.Lock()
	l.books[b] = consumer
	l.mu.Unlock()
}

func (l *Ledger) remove(b *ackBook) {
	l.mu.Lock()
	delete(l.books, b)
	l.mu.Unlock()
}

// keep goes on with b, the book of a stopped runner with unanswered
// acknowledgements, until they are answered or given up on (ackGiveUp),
// then closes it.
func (l *Ledger) keep(b *ackBook) {
	l.mu.Lock()
	if l.left == 0 {
		l.idle = make(chan struct{})
	}
	l.left++
	l.mu.Unlock()
	go func() {
		if n := b.close(ackGiveUp); n > 0 {
			b.log.Warn("acknowledgements never answered; whoever delivers next may repeat these events", "events", n)
		}
		l.mu.Lock()
		delete(l.books, b)
		if l.left--; l.left == 0 {
			close(l.idle)
		}
		l.mu.Unlock()
	}()
}

// Wait waits until the books of stopped runners are closed or ctx ends
// (tests, and a stopping node that wants its acknowledgements stored).
func (l *Ledger) Wait(ctx context.Context) error {
	l.mu.Lock()
	idle := l.idle
	if l.left == 0 {
		idle = nil
	}
	l.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unconfirmed lists what the ledger's books hold unanswered, by consumer
// and stream, in stream order.
func (l *Ledger) Unconfirmed() []Unconfirmed {
	l.mu.Lock()
	books := make(map[*ackBook]string, len(l.books))
	for b, c := range l.books {
		books[b] = c
	}
	l.mu.Unlock()
	type key struct{ consumer, stream string }
	by := map[key][]uint64{}
	for b, c := range books {
		b.mu.Lock()
		for k := range b.pending {
			kk := key{c, k.stream}
			by[kk] = append(by[kk], k.sseq)
		}
		b.mu.Unlock()
	}
	out := make([]Unconfirmed, 0, len(by))
	for k, seqs := range by {
		slices.Sort(seqs)
		out = append(out, Unconfirmed{Consumer: k.consumer, Stream: k.stream, Seqs: slices.Compact(seqs)})
	}
	slices.SortFunc(out, func(a, b Unconfirmed) int {
		if a.Consumer != b.Consumer {
			if a.Consumer < b.Consumer {
				return -1
			}
			return 1
		}
		if a.Stream < b.Stream {
			return -1
		}
		if a.Stream > b.Stream {
			return 1
		}
		return 0
	})
	return out
}

// handKey is an event another engine delivered, as a new engine takes it
// from the ledgers: consumer, stream and stream sequence.
type handKey struct {
	consumer, stream string
	sseq             uint64
}

// handed is what a new engine took from the ledgers (Options.Handover).
type handed struct {
	mu    sync.Mutex
	keys  map[handKey]struct{}
	taken atomic.Uint64 // events taken as delivered (tests)
}

// takeHandover asks Options.Handover for what the previous engines
// delivered and could not get stored (bounded by ctx); a failure is
// logged and the engine starts without it (those events may go out again).
func (e *Engine) takeHandover(ctx context.Context) {
	if e.o.Handover == nil {
		return
	}
	list, err := e.o.Handover(ctx)
	if err != nil {
		e.log.Warn("could not learn what the previous delivering engine left unconfirmed; it may be delivered again", "err", err)
	}
	n := 0
	h := &e.hand
	h.mu.Lock()
	if h.keys == nil {
		h.keys = map[handKey]struct{}{}
	}
	for _, u := range list {
		for _, s := range u.Seqs {
			h.keys[handKey{u.Consumer, u.Stream, s}] = struct{}{}
			n++
		}
	}
	h.mu.Unlock()
	if n > 0 {
		e.log.Info("events delivered by the previous engine await their acknowledgement; taken as delivered when offered again", "events", n)
	}
}

// takeHanded reports whether an earlier engine delivered the event, and
// forgets it: it is acknowledged once by whoever asked.
func (e *Engine) takeHanded(k handKey) bool {
	h := &e.hand
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.keys[k]; ok {
		delete(h.keys, k)
		h.taken.Add(1)
		return true
	}
	return false
}
