package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is one message for the journal. Encode runs on one of the
// publisher's goroutines, so callers on hot paths hand over values, not
// bytes.
type Msg struct {
	Subject string
	ID      string // Nats-Msg-Id: the stream stores a retried publish once
	// Key, when set, orders m behind every earlier message with the same
	// key (a device's connection events): it is sent only once those are
	// stored or given up on (publisher_keyed.go).
	Key    string
	Header nats.Header
	Encode func() ([]byte, error)
	// Append, when set instead of Encode, appends the payload to a buffer
	// the publisher lends and takes back once m is finished: no payload
	// is allocated per message (connection events, two per reconnect).
	Append func([]byte) ([]byte, error)
	Data   []byte // used when Encode and Append are nil
	// Done, when set, is called once, from one of the publisher's
	// goroutines (acks come in publish order; a retried message's answer
	// comes later, and before that of a later message with its Key): nil
	// when the stream has stored m, else the reason it never will. It must
	// not block.
	Done func(error)
}

// Publisher appends messages to JetStream in the order they were enqueued,
// from one goroutine, with a bounded window of publishes awaiting their
// acks. Acks come back on one inbox subscription and are matched by a
// counter in the reply subject: no future, channels or JSON decoding per
// message (the telemetry path publishes one message per device PUBLISH and
// waits for its ack before the device's PUBACK). The sweep for lost acks
// runs only while publishes are outstanding. A publish the server
// rejected, or whose ack does not come within ackTimeout, is retried
// synchronously (same msg id), which is the only case where order can
// differ from enqueue order; messages with the same Key keep theirs
// (publisher_keyed.go).
type Publisher struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	log     *slog.Logger
	queue   *msgQueue
	done    chan struct{}
	closing chan struct{} // closed first by Close: a Publish waiting for room gives up
	once    sync.Once

	inbox string // acks arrive on inbox + "<n>"
	sub   *nats.Subscription
	// elections: new stream leaders announced (elected.go)
	elections *nats.Subscription
	slots     chan struct{}  // the window: a publish takes a slot, its ack gives it back
	retries   chan *inflight // failed publishes, for the retrier

	pmu     sync.Mutex
	pending map[uint64]*inflight
	next    uint64

	kmu  sync.Mutex
	keys map[string][]Msg // keys with a message in flight → the messages waiting behind it

	published atomic.Uint64
	failed    atomic.Uint64
	sweeps    atomic.Uint64 // ack sweeps run (tests: an idle publisher runs none)
}

// ackTimeout: a publish the stream leader never answers (it was killed,
// or stepped down, with the message in flight: nats-server drops the
// proposals of a leader that steps down) is retried after this long. In a
// cluster that is the wait after a node loss for whatever was in flight;
// at 30 s it held node-lost records back past the lease. Retries are
// deduplicated by message id.
const (
	window     = 1024
	ackTimeout = 10 * time.Second
	sweepEvery = time.Second
)

// NewPublisher starts a publisher with room for capacity queued messages.
func NewPublisher(js jetstream.JetStream, capacity int, log *slog.Logger) *Publisher {
	p := &Publisher{
		js: js, nc: js.Conn(), log: log, queue: newMsgQueue(capacity), done: make(chan struct{}), closing: make(chan struct{}),
		inbox: nats.NewInbox() + ".", slots: make(chan struct{}, window), retries: make(chan *inflight, window),
		pending: map[uint64]*inflight{}, keys: map[string][]Msg{},
	}
	sub, err := p.nc.Subscribe(p.inbox+"*", p.onAck)
	if err != nil {
		// Only a closed connection refuses a subscription: every publish
		// then fails through retry, with the reason in the log.
		log.Error("journal: cannot subscribe to publish acks", "err", err)
	}
	if sub != nil {
		_ = sub.SetPendingLimits(-1, -1) // the window bounds what is outstanding
	}
	p.sub = sub
	p.elections = p.watchElections()
	go p.run()
	go p.retrier()
	return p
}

// payloads are the buffers Msg.Append encodes into (*[]byte, so that
// putting one back allocates nothing).
var payloads = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledPayload: a buffer grown past this by an unusual message is
// left to the collector rather than kept in the pool.
const maxPooledPayload = 64 << 10

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("journal: publisher closed")

// Publish enqueues m. It blocks while the queue is full (backpressure).
func (p *Publisher) Publish(m Msg) error {
	return p.queue.push(m, p.closing)
}

// Pending is the number of queued messages not yet handed to JetStream.
func (p *Publisher) Pending() int { return p.queue.len() }

// Published and Failed count messages stored and given up on.
func (p *Publisher) Published() uint64 { return p.published.Load() }
func (p *Publisher) Failed() uint64    { return p.failed.Load() }

type inflight struct {
	msg  nats.Msg
	done func(error)
	key  string
	sent time.Time
	err  error   // why it is being retried
	buf  *[]byte // the lent payload buffer (Msg.Append), given back at finish
	// hdr is the Nats-Msg-Id header of a message that came without one,
	// kept with the record when it goes back to inflights.
	hdr nats.Header
}

// inflights are the records of finished publishes, reused: two per
// reconnect, each with its header map, were ~3 % of what the hub
// allocated at 5,000 events/s.
var inflights = sync.Pool{New: func() any { return new(inflight) }}

// recycle clears in (keeping its header map) and puts it back.
func recycle(in *inflight) {
	hdr := in.hdr
	if hdr != nil {
		hdr[jetstream.MsgIDHeader][0] = ""
	}
	*in = inflight{hdr: hdr}
	inflights.Put(in)
}

// finish reports in's outcome, sends the next message waiting behind it
// and gives its window slot back.
func (p *Publisher) finish(in *inflight, err error) {
	if in.done != nil {
		in.done(err)
	}
	if in.buf != nil {
		// The NATS client copied the payload when it was sent (and a
		// retry is over): the buffer is free again.
		if d := in.msg.Data; d != nil && cap(d) <= maxPooledPayload {
			*in.buf = d[:0]
		}
		in.msg.Data = nil
		payloads.Put(in.buf)
		in.buf = nil
	}
	key := in.key
	// Nothing refers to in any more: it left pending (take) or the
	// retrier before it was finished.
	recycle(in)
	if key != "" {
		p.unhold(key)
	}
	<-p.slots
}

func (p *Publisher) run() {
	defer close(p.done)
	sw := newSweeper()
	defer sw.t.Stop()
	for {
		m, ok, closed := p.queue.pop()
		switch {
		case ok:
			// A busy queue must not keep the sweep from its turn.
			select {
			case <-sw.t.C:
				p.swept(sw)
			default:
			}
			p.takeSlot(sw)
			p.send(m)
			sw.arm()
		case closed:
			p.drain(sw)
			return
		default:
			select {
			case <-p.queue.ready:
			case <-sw.t.C:
				p.swept(sw)
			}
		}
	}
}

// sweeper is the publisher's ack sweep: a timer that runs only while
// publishes await their acks, so an idle hub is not woken for it.
type sweeper struct {
	t     *time.Timer
	armed bool
}

func newSweeper() *sweeper {
	t := time.NewTimer(sweepEvery)
	t.Stop()
	return &sweeper{t: t}
}

// arm starts the sweep's timer unless it runs already.
func (s *sweeper) arm() {
	if !s.armed {
		s.t.Reset(sweepEvery)
		s.armed = true
	}
}

// swept runs the sweep its timer asked for, and arms it again while any
// publish is still awaiting its ack.
func (p *Publisher) swept(sw *sweeper) {
	sw.armed = false
	p.sweeps.Add(1)
	p.sweep()
	if len(p.slots) > 0 {
		sw.arm()
	}
}

// takeSlot waits for room in the window, sweeping lost acks meanwhile.
func (p *Publisher) takeSlot(sw *sweeper) {
	for {
		select {
		case p.slots <- struct{}{}:
			return
		case <-sw.t.C:
			p.swept(sw)
		}
	}
}

// drain waits until every publish has its ack (or was retried).
func (p *Publisher) drain(sw *sweeper) {
	for range window {
		p.takeSlot(sw)
	}
	close(p.retries)
	if p.sub != nil {
		_ = p.sub.Unsubscribe()
	}
	if p.elections != nil {
		_ = p.elections.Unsubscribe()
	}
}

// send publishes m, or queues it behind an unfinished message with its
// key. It holds a window slot, given back when m is finished.
func (p *Publisher) send(m Msg) {
	if m.Key != "" && p.hold(m) {
		return
	}
	p.transmit(m)
}

// transmit encodes m and publishes it with this publisher's ack inbox as
// the reply subject.
func (p *Publisher) transmit(m Msg) {
	in := inflights.Get().(*inflight)
	in.done, in.key = m.Done, m.Key
	data := m.Data
	var err error
	switch {
	case m.Encode != nil:
		data, err = m.Encode()
	case m.Append != nil:
		in.buf = payloads.Get().(*[]byte)
		data, err = m.Append((*in.buf)[:0])
		in.msg.Data = data // finish gives a grown buffer back
	}
	if err != nil {
		p.failed.Add(1)
		p.log.Error("journal: encoding message", "subject", m.Subject, "err", err)
		p.finish(in, err)
		return
	}
	in.msg = nats.Msg{Subject: m.Subject, Data: data, Header: m.Header}
	switch {
	case m.ID == "":
	case in.msg.Header == nil:
		// The record's own map of one key (Set would canonicalise it and
		// grow an empty map), for every connection event.
		if in.hdr == nil {
			in.hdr = nats.Header{jetstream.MsgIDHeader: make([]string, 1)}
		}
		in.hdr[jetstream.MsgIDHeader][0] = m.ID
		in.msg.Header = in.hdr
	default:
		in.msg.Header.Set(jetstream.MsgIDHeader, m.ID)
	}
	p.pmu.Lock()
	p.next++
	id := p.next
	in.sent = time.Now()
	p.pending[id] = in
	p.pmu.Unlock()
	in.msg.Reply = p.inbox + strconv.FormatUint(id, 10)
	if err := p.nc.PublishMsg(&in.msg); err != nil {
		if p.take(id) != nil {
			p.retryLater(in, err)
		}
	}
}

// take removes and returns the publish waiting under id (nil if none: it
// was answered or swept already).
func (p *Publisher) take(id uint64) *inflight {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	in := p.pending[id]
	delete(p.pending, id)
	return in
}

// onAck finishes the publish an ack answers. Acks of one stream arrive in
// publish order, on this one subscription goroutine.
func (p *Publisher) onAck(ack *nats.Msg) {
	id, err := strconv.ParseUint(ack.Subject[len(p.inbox):], 10, 64)
	if err != nil {
		return
	}
	in := p.take(id)
	if in == nil {
		return
	}
	if err := ackError(ack); err != nil {
		p.retryLater(in, err)
		return
	}
	p.published.Add(1)
	p.finish(in, nil)
}

// retryLater hands a publish that failed to the retrier, so that its retries
// (up to a minute) hold up neither the acks of the others nor new publishes.
// It keeps its window slot until finished.
func (p *Publisher) retryLater(in *inflight, err error) {
	in.msg.Reply = ""
	in.err = err
	p.retries <- in // room for the whole window: never blocks
}

// retrier retries failed publishes one at a time, in the order they failed.
func (p *Publisher) retrier() {
	for in := range p.retries {
		p.finish(in, p.retry(&in.msg, in.err))
	}
}

// ackError reads a JetStream publish ack: {"stream":…,"seq":…} when
// stored; {"error":{…}} or a status-only reply (no stream took the
// subject) when not.
func ackError(ack *nats.Msg) error {
	if status := ack.Header.Get("Status"); status != "" && len(ack.Data) == 0 {
		return fmt.Errorf("journal: publish answered with status %s %s", status, ack.Header.Get("Description"))
	}
	if bytes.Contains(ack.Data, []byte(`"error"`)) {
		return fmt.Errorf("journal: publish refused: %s", ack.Data)
	}
	if !bytes.Contains(ack.Data, []byte(`"seq"`)) {
		return fmt.Errorf("journal: not a publish ack: %q", ack.Data)
	}
	return nil
}

// sweep retries publishes whose ack has not come within ackTimeout (the
// connection to the server dropped it).
func (p *Publisher) sweep() {
	p.sweepOlder(ackTimeout, fmt.Sprintf("none within %s", ackTimeout))
}

// retry publishes synchronously with backoff until it succeeds or ~1 min
// has passed. A message with an id (connection events, registry changes)
// is stored once however often it is retried; telemetry has none, so a
// retried telemetry message whose first publish was stored after all (its
// ack lost) is stored twice: at least once, as IoT Hub's D2C. It returns
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
	p.once.Do(func() {
		close(p.closing) // publishers blocked on a full queue return
		p.queue.close()
	})
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
