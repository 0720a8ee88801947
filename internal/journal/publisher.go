package journal

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is one message for the journal. Encode runs on the publisher's
// goroutine, so callers on hot paths hand over values, not bytes.
type Msg struct {
	Subject string
	ID      string // Nats-Msg-Id: the stream stores a retried publish once
	Header  nats.Header
	Encode  func() ([]byte, error)
	Data    []byte // used when Encode is nil
	// Done, when set, is called once from the publisher's goroutine: nil
	// when the stream has stored m, else the reason it never will. It must
	// not block.
	Done func(error)
}

// Publisher appends messages to JetStream in the order they were enqueued,
// from one goroutine, with a bounded window of asynchronous publishes. A
// publish the server rejected is retried synchronously (same msg id), which
// is the only case where order can differ from enqueue order.
type Publisher struct {
	js     jetstream.JetStream
	log    *slog.Logger
	queue  chan Msg
	done   chan struct{}
	closed atomic.Bool
	mu     sync.Mutex // guards closing queue against concurrent Publish

	published atomic.Uint64
	failed    atomic.Uint64
}

// NewPublisher starts a publisher with room for capacity queued messages.
func NewPublisher(js jetstream.JetStream, capacity int, log *slog.Logger) *Publisher {
	p := &Publisher{js: js, log: log, queue: make(chan Msg, capacity), done: make(chan struct{})}
	go p.run()
	return p
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("journal: publisher closed")

// Publish enqueues m. It blocks while the queue is full (backpressure).
func (p *Publisher) Publish(m Msg) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	p.queue <- m
	return nil
}

// Pending is the number of queued messages not yet handed to JetStream.
func (p *Publisher) Pending() int { return len(p.queue) }

// Published and Failed count messages stored and given up on.
func (p *Publisher) Published() uint64 { return p.published.Load() }
func (p *Publisher) Failed() uint64    { return p.failed.Load() }

type inflight struct {
	msg  *nats.Msg
	fut  jetstream.PubAckFuture
	done func(error)
}

func (in inflight) finish(err error) {
	if in.done != nil {
		in.done(err)
	}
}

const window = 256

func (p *Publisher) run() {
	defer close(p.done)
	var pending []inflight
	stored := func(in inflight) { p.published.Add(1); in.finish(nil) }
	settle := func(all bool) {
		for len(pending) > 0 && (all || len(pending) >= window) {
			in := pending[0]
			pending = pending[1:]
			select {
			case <-in.fut.Ok():
				stored(in)
			case err := <-in.fut.Err():
				in.finish(p.retry(in.msg, err))
			}
		}
		// Acks that have already arrived are reported now, not when the
		// window fills: a connecting device waits for its event's ack.
		for len(pending) > 0 {
			in := pending[0]
			select {
			case <-in.fut.Ok():
				stored(in)
			case err := <-in.fut.Err():
				in.finish(p.retry(in.msg, err))
			default:
				return
			}
			pending = pending[1:]
		}
	}
	for m := range p.queue {
		if in, ok := p.send(m); ok {
			pending = append(pending, in)
		}
		settle(len(p.queue) == 0) // settle everything when idle, else keep a window
	}
	settle(true)
}

// send encodes m and starts its asynchronous publish. When that cannot
// start, m is finished here (stored by a retry, or failed) and ok is false.
func (p *Publisher) send(m Msg) (in inflight, ok bool) {
	in.done = m.Done
	data := m.Data
	if m.Encode != nil {
		var err error
		if data, err = m.Encode(); err != nil {
			p.failed.Add(1)
			p.log.Error("journal: encoding message", "subject", m.Subject, "err", err)
			in.finish(err)
			return in, false
		}
	}
	in.msg = &nats.Msg{Subject: m.Subject, Data: data, Header: m.Header}
	if m.ID != "" {
		if in.msg.Header == nil {
			in.msg.Header = nats.Header{}
		}
		in.msg.Header.Set(jetstream.MsgIDHeader, m.ID)
	}
	fut, err := p.js.PublishMsgAsync(in.msg)
	if err != nil {
		in.finish(p.retry(in.msg, err))
		return in, false
	}
	in.fut = fut
	return in, true
}

// retry publishes synchronously with backoff until it succeeds or ~1 min
// has passed; the msg id makes a duplicate store impossible. It returns
// nil once stored, else the last error.
func (p *Publisher) retry(m *nats.Msg, first error) error {
	delay := 50 * time.Millisecond
	deadline := time.Now().Add(time.Minute)
	err := first
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = p.js.PublishMsg(ctx, m)
		cancel()
		if err == nil {
			p.published.Add(1)
			return nil
		}
		time.Sleep(delay)
		delay = min(delay*2, 2*time.Second)
	}
	p.failed.Add(1)
	p.log.Error("journal: giving up on a message", "subject", m.Subject, "first_err", first, "err", err)
	return err
}

// Close stops accepting messages and waits until the queued ones are
// stored or ctx ends.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed.Swap(true) {
		close(p.queue)
	}
	p.mu.Unlock()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
