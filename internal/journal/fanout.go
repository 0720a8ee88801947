package journal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/presence"
)

// ConnFanout reads TETHER_CONN once per node and hands every connection
// event, decoded once, to the hub's in-memory readers (the metrics
// collector and the insight feed). Each of them used to have a JetStream
// consumer of its own, so the journal server loaded and sent each event
// to each, and the NATS client parsed, copied and dispatched it once per
// reader, which decoded it again: at 3,000 events/s the metrics
// collector's ordered consumer alone cost the journal server more than
// the log writer's (bench/results/2026-12-06-session9-journal9-*.md).
//
// One ephemeral pull consumer without acks (memory state; it goes away by
// itself when nobody asks: a crash) is pulled in batches: a pull returns
// what the stream holds (up to fanoutBatch) without waiting, and a pull
// that got less than it asked for is followed by a pause of PollEvery, so
// that a busy stream is read a batch per PollEvery instead of a delivery
// per event. A pull that finds nothing starts a Watch (Idle): an idle hub
// does not poll.
//
// Readers keep their own positions (the metrics history's, the insight
// snapshot's): each is added with the stream sequence it has applied, and
// is handed only the events after it. The consumer starts after the
// lowest; a reader added later with a lower position makes it start again
// from there (the others skip what they have). A gap in the consumer's
// delivery sequence (a pull whose answer was lost) likewise restarts it
// after the last event handed out, so each reader sees every event once,
// in stream order.
type ConnFanout struct {
	js        jetstream.JetStream
	log       *slog.Logger
	pollEvery time.Duration
	idleCheck time.Duration
	idleMax   time.Duration

	mu      sync.Mutex // readers, rewind, started
	readers []*fanReader
	// rewind: a reader was added while running (it may be behind what
	// the consumer delivers): the loop makes the consumer again from the
	// lowest reader position.
	rewind  bool
	started bool
	stop    context.CancelFunc
	done    chan struct{}

	// dispatch is held while readers are called, so that Remove returns
	// only once its reader is no longer being called.
	dispatch sync.Mutex

	pending  atomic.Uint64 // NumPending after the last pull
	watching atomic.Int32  // 1 while the loop waits for a publish
	events   atomic.Uint64 // events handed out (decoded), for tests and status
}

// ConnEvent is one TETHER_CONN message as a ConnFanout hands it out.
type ConnEvent struct {
	Seq     uint64 // stream sequence
	Subject string
	// Stored is when the journal stored it (a fallback for an event
	// without a time).
	Stored time.Time
	// Event is the decoded event; nil when Err says why it is not one.
	Event *presence.ConnectionEvent
	Err   error
}

// FanoutBatch is what a reader is handed: the events of one pull it has
// not seen (possibly none: the pull found the stream's end) and how many
// the stream held beyond them when they were read.
type FanoutBatch struct {
	Events  []ConnEvent
	Pending uint64
}

type fanReader struct {
	pos uint64 // the last sequence it was handed (or had at Add)
	fn  func(FanoutBatch)
}

// FanoutOptions configure NewConnFanout.
type FanoutOptions struct {
	// PollEvery is the pause after a pull that got less than a full
	// batch: how late a reader is behind a busy stream at most; default
	// 100 ms (the metrics collector's refresh).
	PollEvery time.Duration
	// IdleCheck is how soon a caught-up fanout pulls anyway; default
	// 2 s. A publish wakes it sooner (Idle); this bounds how stale the
	// live connected-device count can get if a wake-up is lost. Each
	// empty pull after a wait doubles the next wait, up to IdleMax
	// (default 30 s); events set it back to IdleCheck. A wake-up lost just
	// after activity (the likely case: a store slower than the pull) is
	// found within IdleCheck, and an idle hub pulls twice a minute, not
	// every 2 s.
	IdleCheck time.Duration
	IdleMax   time.Duration
	Logger    *slog.Logger
}

const (
	fanoutBatch     = 2000
	fanoutIdleBatch = 64 // pulls of a caught-up fanout (a pull allocates for its batch)
)

// NewConnFanout prepares a fanout of js's TETHER_CONN; Start starts it.
func NewConnFanout(js jetstream.JetStream, o FanoutOptions) *ConnFanout {
	if o.PollEvery <= 0 {
		o.PollEvery = 100 * time.Millisecond
	}
	if o.IdleCheck <= 0 {
		o.IdleCheck = 2 * time.Second
	}
	if o.IdleMax <= 0 {
		o.IdleMax = 30 * time.Second
	}
	o.IdleMax = max(o.IdleMax, o.IdleCheck)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &ConnFanout{js: js, log: o.Logger.With("component", "journal-fanout"), pollEvery: o.PollEvery, idleCheck: o.IdleCheck, idleMax: o.IdleMax}
}

// Add registers a reader that has applied the stream up to sequence pos
// (0: nothing). fn is called from the fanout's goroutine, one batch at a
// time, with the events after pos in stream order, and must not call Add
// or the returned remove. remove unregisters it and returns once fn is no
// longer running.
func (f *ConnFanout) Add(pos uint64, fn func(FanoutBatch)) (remove func()) {
	r := &fanReader{pos: pos, fn: fn}
	f.mu.Lock()
	f.readers = append(f.readers, r)
	if f.started {
		// The consumer may be past pos: start it again from there.
		f.rewind = true
	}
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.dispatch.Lock()
			f.mu.Lock()
			f.readers = slices.DeleteFunc(f.readers, func(x *fanReader) bool { return x == r })
			f.mu.Unlock()
			f.dispatch.Unlock()
		})
	}
}

// Start begins reading, after the lowest position of the readers added so
// far. Calling it again does nothing.
func (f *ConnFanout) Start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	f.started, f.stop, f.done = true, stop, make(chan struct{})
	go f.run(ctx)
}

// Stop ends the reading and deletes the consumer; no reader is called
// after it returns. Idempotent.
func (f *ConnFanout) Stop(ctx context.Context) error {
	f.mu.Lock()
	stop, done := f.stop, f.done
	f.stop = nil
	f.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pending is how many events the stream held beyond the last pull.
func (f *ConnFanout) Pending() uint64 { return f.pending.Load() }

// Watching reports whether the fanout has caught up and waits for a
// publish.
func (f *ConnFanout) Watching() bool { return f.watching.Load() > 0 }

// Decoded counts the events read and decoded so far (each once, however
// many readers).
func (f *ConnFanout) Decoded() uint64 { return f.events.Load() }

// startFrom is where the consumer starts: after the lowest reader
// position, or after a rewind's.
func (f *ConnFanout) startFrom() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rewind = false
	var low uint64
	for i, r := range f.readers {
		if i == 0 || r.pos < low {
			low = r.pos
		}
	}
	return low
}

func (f *ConnFanout) consumer(ctx context.Context, after uint64) (jetstream.Consumer, error) {
	cfg := ReaderConsumer("Tether connection-event fanout (metrics, insights)", after)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := f.js.CreateConsumer(cctx, StreamConn, cfg)
	if err != nil {
		return nil, fmt.Errorf("journal fanout: consumer on %s: %w", StreamConn, err)
	}
	return cons, nil
}

func (f *ConnFanout) deleteConsumer(cons jetstream.Consumer) {
	if cons == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = f.js.DeleteConsumer(ctx, StreamConn, cons.CachedInfo().Name)
	cancel()
}

func (f *ConnFanout) needRewind() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rewind
}

// run pulls until ctx ends; see ConnFanout for the pacing.
func (f *ConnFanout) run(ctx context.Context) {
	defer close(f.done)
	var cons jetstream.Consumer
	defer func() { f.deleteConsumer(cons) }()
	idle := NewIdle(f.js.Conn(), StreamSubjects(StreamConn), &f.watching, f.idleCheck, f.idleMax)
	defer idle.Busy()
	// last is the last stream sequence handed out, nextDelivery the
	// consumer sequence expected next.
	var last, nextDelivery uint64
	first := true
	evs := make([]ConnEvent, 0, fanoutBatch)
	for ctx.Err() == nil {
		if rewind := f.needRewind(); cons == nil || rewind {
			f.deleteConsumer(cons)
			cons = nil
			// Everything up to last has been handed to every reader; a
			// reader added behind it (or the first start) moves the
			// start back to the lowest reader position. Readers skip
			// what they have.
			from := last
			if first || rewind {
				from = f.startFrom()
			}
			var err error
			if cons, err = f.consumer(ctx, from); err != nil {
				f.log.Warn("journal fanout: cannot follow the journal; retrying", "err", err)
				if !Sleep(ctx, time.Second) {
					return
				}
				continue
			}
			first, last, nextDelivery = false, from, 1
		}
		size := fanoutBatch
		if idle.Watching() {
			size = fanoutIdleBatch
		}
		batch, err := cons.FetchNoWait(size)
		if err != nil {
			f.log.Warn("journal fanout: reading the journal failed; retrying", "err", err)
			if ConsumerGone(err) {
				cons = nil
			}
			if !Sleep(ctx, time.Second) {
				return
			}
			continue
		}
		evs = evs[:0]
		gap := false
		pending := f.pending.Load()
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				f.log.Warn("journal fanout: message without metadata", "subject", m.Subject(), "err", err)
				continue
			}
			if md.Sequence.Consumer != nextDelivery {
				gap = true
			}
			nextDelivery = md.Sequence.Consumer + 1
			if gap || md.Sequence.Stream <= last {
				continue
			}
			last, pending = md.Sequence.Stream, md.NumPending
			evs = append(evs, decodeConnEvent(m, md))
		}
		failed := false
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			f.log.Warn("journal fanout: reading the journal failed; retrying", "err", err)
			failed = true
			if ConsumerGone(err) {
				cons = nil
			}
		}
		if gap {
			// A delivery never reached us: start again after the last
			// event handed out.
			f.log.Warn("journal fanout: a delivery went missing; reading again after the last event handed out", "after", last)
			f.deleteConsumer(cons)
			cons = nil
		}
		n := len(evs)
		caught := n == 0 && !failed && !gap && cons != nil
		if caught {
			pending = 0
		}
		f.pending.Store(pending)
		f.events.Add(uint64(n))
		if n > 0 || caught {
			f.hand(FanoutBatch{Events: evs, Pending: pending})
		}
		switch {
		case cons == nil:
		case failed:
			if !Sleep(ctx, time.Second) {
				return
			}
		case n > 0:
			idle.Busy()
			if n < size && !Sleep(ctx, f.pollEvery) {
				return
			}
		default:
			if err := idle.Caught(ctx); err != nil {
				f.log.Warn("journal fanout: cannot watch the journal; polling", "err", err)
				if !Sleep(ctx, f.pollEvery) {
					return
				}
			}
		}
	}
}

// hand gives each reader the events of b it has not seen.
func (f *ConnFanout) hand(b FanoutBatch) {
	f.dispatch.Lock()
	defer f.dispatch.Unlock()
	f.mu.Lock()
	readers := slices.Clone(f.readers)
	f.mu.Unlock()
	for _, r := range readers {
		evs := b.Events
		i := 0
		for i < len(evs) && evs[i].Seq <= r.pos {
			i++
		}
		evs = evs[i:]
		if len(evs) > 0 {
			r.pos = evs[len(evs)-1].Seq
		}
		r.fn(FanoutBatch{Events: evs, Pending: b.Pending})
	}
}

func decodeConnEvent(m jetstream.Msg, md *jetstream.MsgMetadata) ConnEvent {
	ce := ConnEvent{Seq: md.Sequence.Stream, Subject: m.Subject(), Stored: md.Timestamp}
	ev, err := DecodeConnectionEventShared(m.Data()) // the message's own copy
	if err != nil {
		ce.Err = err
	} else {
		ce.Event = &ev
	}
	return ce
}

// ConsumerGone reports whether err says the consumer no longer exists (a pull to a
// deleted consumer finds no responders), so it is made again.
func ConsumerGone(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoHeartbeat)
}

// ReaderConsumer is the configuration of an in-memory reader's consumer:
// ephemeral, without acks (the reader keeps its own position and starts
// again from it), delivering the stream after position after (0: from
// its start), and gone by itself five minutes after its reader stops
// asking (a crash).
func ReaderConsumer(description string, after uint64) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Description:       description,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 5 * time.Minute,
		MemoryStorage:     true,
	}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	return cfg
}
