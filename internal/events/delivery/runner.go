package delivery

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
)

// runner delivers one subscription. One goroutine (run) owns every queue
// and timer; fetchers (one per consumer) decode and match messages and
// hand them over; senders (at most maxInFlight goroutines, each running
// Sender.Send of one batch at a time) report back. Nothing the runner does blocks a publisher: the journal
// is between them.
type runner struct {
	e     *Engine
	clock Clock
	log   *slog.Logger
	key   string
	name  string // the subscription's name (its definition, so fixed)
	def   string // the definition the runner was built for
	match *events.Matcher
	st    *counters
	// sender reaches the destination; kind and target name it.
	sender       Sender
	kind, target string
	maxInFlight  int
	// limit is how many sends may run now (catchup.go): it grows towards
	// maxInFlight while devices wait for a slot and shrinks back when
	// they no longer do.
	limit int

	streams []*stream
	in      chan item
	results chan result
	stored  chan func() // store writes done off the loop (runner_store.go)
	jobs    chan job
	wake    chan struct{}
	ctl     chan func()
	stopCh  chan struct{}
	done    chan struct{}

	fetchCtx    context.Context
	fetchCancel context.CancelFunc
	fetchWG     sync.WaitGroup
	sendCtx     context.Context
	sendCancel  context.CancelFunc
	stopOnce    sync.Once
	acks        *ackBook // acknowledgements of delivered events until JetStream stored them (handover.go)

	// Owned by run.
	sub          events.Subscription
	active       bool
	stopping     bool
	ttl          time.Duration
	grace        time.Duration
	devices      map[string]*device
	ready        []*device
	wakeups      wakeHeap
	held         heldHeap
	invisible    map[string]invisible
	replaying    map[uint64]bool
	buffered     int
	bytes        int
	inflight     int
	storing      int // store writes off the loop not yet reported (runner_store.go)
	workers      int // sendLoop goroutines started
	heldN        int
	retrying     int // queued entries that failed at least once
	age          ageQueue
	timer        Timer
	timerAt      time.Time
	watermark    time.Time
	connCaughtUp bool
}

// stream is one consumer of the runner.
type stream struct {
	idx  int
	kind streamKind
	name string
	cons jetstream.Consumer
	rec  *recovery
	// single: the consumer has one copy (no replicas), so JetStream
	// applies its acknowledgements in the order they were sent and one
	// confirmation answers all sent before it (ackBook).
	single bool
}

// invisible is a renewable disconnect the subscription's filter did not
// match: its renewal connect is not delivered either.
type invisible struct {
	seq   string
	until time.Time
}

// result is the outcome of one send, with what it was about.
type result struct {
	Result
	ents    []*entry
	devs    []*device
	attempt int
	start   time.Time
	took    time.Duration
}

func (e *Engine) newRunner(sub events.Subscription, def string, m *events.Matcher) *runner {
	r := &runner{
		e: e, clock: e.o.Clock, log: e.log.With("subscription", sub.Name), key: sub.Key(), name: sub.Name, def: def, match: m,
		kind: sub.Destination.Kind(), target: sub.Destination.Target(),
		maxInFlight: e.o.MaxInFlightPerSub,
		st:          e.counters(sub.Key()),
		in:          make(chan item),
		results:     make(chan result, e.o.MaxInFlightPerSub),
		stored:      make(chan func()),
		jobs:        make(chan job, e.o.MaxInFlightPerSub),
		wake:        make(chan struct{}, 1),
		ctl:         make(chan func()),
		stopCh:      make(chan struct{}),
		done:        make(chan struct{}),
		sub:         sub, active: sub.Active(),
		ttl:       time.Duration(sub.RetryPolicy.EventTimeToLiveInMinutes) * time.Minute,
		grace:     time.Duration(sub.Tether.RenewalGraceSeconds) * time.Second,
		devices:   map[string]*device{},
		invisible: map[string]invisible{},
		replaying: map[uint64]bool{},
	}
	if r.ttl <= 0 {
		r.ttl = events.DefaultEventTTLMinutes * time.Minute
	}
	if r.grace <= 0 {
		r.grace = events.DefaultRenewalGraceSeconds * time.Second
	}
	if n := sub.ConcurrencyLimit(); n > 0 && n < r.maxInFlight {
		r.maxInFlight = n
	}
	r.limit = min(minInFlight, r.maxInFlight)
	r.st.limit.Store(int64(r.limit))
	r.fetchCtx, r.fetchCancel = context.WithCancel(context.Background())
	// Sends run under the lead's term (Options.Fence), which in a cluster
	// is the hard deadline of the lead: it ends before the lead's key can
	// expire and another node be elected, so a send of this engine is
	// never in flight once another node's may start (handover.go). The
	// soft fence (Options.Pause, earlier) stops new sends, so a POST in
	// flight normally finishes well before; one still unanswered at the
	// term's end is cut off, its outcome unknown: not acknowledged, handed
	// back, sent again by the next lead (at-least-once, same event id).
	// Stop's deadline cancels the sends too (a single hub has no term).
	base := context.Background()
	if e.o.Fence != nil {
		base = e.o.Fence
	}
	r.sendCtx, r.sendCancel = context.WithCancel(base)
	env := SendEnv{Clock: e.o.Clock, Log: r.log, Timeout: e.o.Timeout}
	if d := e.o.Destinations[r.kind]; d != nil {
		r.sender = d.Open(sub, env)
	} else {
		r.sender = unavailable{kind: r.kind}
	}
	return r
}

// start runs the fetchers and the loop.
func (r *runner) start() {
	for _, s := range r.streams {
		if s.rec != nil {
			rec := s.rec
			// Unacknowledged messages come back once their AckWait has
			// passed (at once if the previous runner handed them back).
			rec.timer = time.AfterFunc(2*rec.ackWait+2*time.Second, func() {
				select {
				case r.ctl <- func() { r.finishRecovery(s, rec) }:
				case <-r.done:
				}
			})
		}
		r.fetchWG.Add(1)
		go r.fetch(s)
	}
	go r.run()
}

// stop ends the runner: no more fetching or new sends; sends in flight
// get until ctx ends to finish (then they are cancelled; sends that only
// wait return at once, see Sender); messages not delivered are handed
// back to JetStream for whoever consumes next.
func (r *runner) stop(ctx context.Context) {
	r.stopOnce.Do(func() { close(r.stopCh) })
	select {
	case <-r.done:
	case <-ctx.Done():
		r.sendCancel()
		<-r.done
	}
}

// call runs f on the runner's goroutine and waits for it.
func (r *runner) call(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case r.ctl <- func() { f(); close(ran) }:
	case <-r.done:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-r.done:
		return ErrNotRunning
	}
}

func (r *runner) run() {
	defer close(r.done)
	hb := time.NewTicker(max(r.e.o.AckWait/3, 10*time.Millisecond))
	defer hb.Stop()
	stopCh := r.stopCh
	for {
		var in chan item
		if r.canRead() {
			in = r.in
		}
		select {
		case it := <-in:
			r.onItem(it)
		case res := <-r.results:
			r.onResult(res)
		case done := <-r.stored:
			r.storing--
			if done != nil {
				done()
			}
		case <-r.wake:
			r.timerAt = time.Time{}
		case f := <-r.ctl:
			f()
		case <-hb.C:
			r.heartbeat()
		case <-stopCh:
			stopCh = nil
			r.stopping = true
			r.fetchCancel()
			r.sender.Close()
		}
		if r.stopping && r.inflight == 0 && r.storing == 0 {
			r.finish()
			return
		}
		r.process()
	}
}

func (r *runner) recovering() bool {
	for _, s := range r.streams {
		if s.rec != nil {
			return true
		}
	}
	return false
}

// canRead: take messages while recovering (to collect the redelivered
// ones) and while the buffer has room; otherwise JetStream keeps them.
func (r *runner) canRead() bool {
	if r.stopping {
		return false
	}
	return r.recovering() ||
		(r.buffered < r.e.o.MaxBufferedPerSub && r.bytes < r.e.o.MaxBufferedBytesPerSub)
}

// finish hands every message the runner holds back to JetStream (Nak: at
// once, so the next runner's recovery does not wait for AckWait) and waits
// for the fetchers, which do the same with what they had.
//
// Parked messages are recalled as well: each waits out its park delay
// (NakWithDelay), and the next runner's recovery may end before that; one
// that came back later would go out after its device's newer events.
func (r *runner) finish() {
	r.fetchCancel()
	var unrecalled int
	var lastErr error
	for _, d := range r.devices {
		for _, e := range d.q {
			if e.msg != nil {
				_ = e.msg.Nak()
			}
		}
		for _, p := range d.parked {
			for _, pm := range p {
				if pm.recalled {
					continue // asked for already (recallHead)
				}
				if err := r.recall(pm); err != nil {
					unrecalled, lastErr = unrecalled+1, err
				}
			}
		}
	}
	if unrecalled > 0 { // the connection is gone: one line, not one per message
		r.log.Warn("could not hand parked messages back; they return after their park delay", "messages", unrecalled, "err", lastErr)
	}
	for _, s := range r.streams {
		if s.rec != nil {
			if s.rec.timer != nil {
				s.rec.timer.Stop()
			}
			for _, it := range s.rec.old {
				_ = it.msg.Nak()
			}
		}
	}
	if r.timer != nil {
		r.timer.Stop()
	}
	r.sendCancel()
	r.settleAcks()
	// Fetchers may be blocked handing over a message: drain them.
	go func() {
		for it := range r.in {
			_ = it.msg.Nak()
		}
	}()
	r.fetchWG.Wait()
	close(r.in)
	r.publishGauges()
	r.st.inFlight.Store(0)
}

// process runs what is due after any input: wakeups, the end of renewal
// holds, new POSTs; then it re-arms the timer.
func (r *runner) process() {
	now := r.clock.Now()
	for len(r.wakeups) > 0 && !r.wakeups[0].at.After(now) {
		w := heap.Pop(&r.wakeups).(wakeup)
		if w.gen == w.d.gen && r.devices[w.d.id] == w.d {
			r.schedule(w.d, now)
		}
	}
	r.releaseHeld(now)
	r.pump(now)
	r.arm(now)
	r.publishGauges()
}

// schedule puts an idle device in the ready list if its head is due, or
// sets a wakeup for when it will be (retry delay or time-to-live).
func (r *runner) schedule(d *device, now time.Time) {
	if d.sending > 0 || d.inReady || len(d.q) == 0 || r.devices[d.id] != d {
		return
	}
	h := d.q[0]
	if h.held {
		return // releaseHeld
	}
	at := h.nextAt
	if h.dead == nil {
		if exp := h.expiry(r.ttl); exp.Before(at) {
			at = exp
		}
	}
	if !at.After(now) {
		d.inReady = true
		r.ready = append(r.ready, d)
		return
	}
	d.gen++
	heap.Push(&r.wakeups, wakeup{at: at, d: d, gen: d.gen})
}

// releaseHeld delivers held disconnects whose grace has passed without
// their renewal: once the clock is past the grace and the journal has
// been read past it too (the renewal connect, if any, would have been
// seen), so a backlog read after a restart still pairs them.
func (r *runner) releaseHeld(now time.Time) {
	for len(r.held) > 0 {
		e := r.held[0]
		if !e.held || e.removed {
			heap.Pop(&r.held)
			continue
		}
		// Past the grace, wait for the journal to be read past it too,
		// unless the buffer is full and nothing else can free it (a buffer
		// full of holds must not wait for itself).
		stuck := !r.canRead() && r.inflight == 0 && len(r.ready) == 0
		if now.Before(e.holdUntil) || (!r.connCaughtUp && r.watermark.Before(e.holdUntil) && !stuck) {
			return
		}
		heap.Pop(&r.held)
		r.unhold(e)
		r.schedule(e.d, now)
	}
}

// unhold ends e's renewal hold. From now on it counts in the lag, as if
// it had just been journalled: the hold was the subscription's choice, not
// delivery falling behind.
func (r *runner) unhold(e *entry) {
	if e.held {
		e.held = false
		r.heldN--
		if !e.removed {
			r.age.push(e, r.clock.Now(), r.buffered)
		}
	}
}

// arm sets the timer to the earliest wakeup or hold end.
func (r *runner) arm(now time.Time) {
	for len(r.wakeups) > 0 {
		w := r.wakeups[0]
		if w.gen == w.d.gen && r.devices[w.d.id] == w.d {
			break
		}
		heap.Pop(&r.wakeups)
	}
	for len(r.held) > 0 && (!r.held[0].held || r.held[0].removed) {
		heap.Pop(&r.held)
	}
	var next time.Time
	if len(r.wakeups) > 0 {
		next = r.wakeups[0].at
	}
	if len(r.held) > 0 {
		if at := r.held[0].holdUntil; at.After(now) && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	if r.timer != nil && r.timerAt.Equal(next) {
		return
	}
	if r.timer != nil {
		r.timer.Stop()
		r.timer, r.timerAt = nil, time.Time{}
	}
	if next.IsZero() {
		return
	}
	r.timerAt = next
	r.timer = r.clock.AfterFunc(next.Sub(now), func() {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	})
}

// pump starts sends while devices are ready and the subscription has room.
func (r *runner) pump(now time.Time) {
	if !r.active || r.stopping || r.fenced() || r.paused() {
		return
	}
	for len(r.ready) > 0 {
		if r.inflight >= r.limit && !r.grow() {
			return
		}
		ents, devs := r.collect(now)
		if len(ents) > 0 {
			r.send(ents, devs, now)
		}
	}
}

// collect takes the next batch from the ready devices, in the order they
// became ready. Batching rule: a batch holds the due head entries of one or
// more devices, each device's entries consecutive and in queue order, at
// most maxEventsPerBatch events and (events.Batches) about
// preferredBatchSizeInKilobytes; a device is in at most one batch at a
// time. So batching never reorders a device's events, and a batch never
// waits to be filled.
func (r *runner) collect(now time.Time) ([]*entry, []*device) {
	maxEv := r.sub.BatchLimit()
	var ents []*entry
	for len(ents) < maxEv && len(r.ready) > 0 {
		d := r.ready[0]
		r.ready[0] = nil
		r.ready = r.ready[1:]
		d.inReady = false
		if r.devices[d.id] != d {
			continue
		}
		n := 0
		for n < len(d.q) && len(ents) < maxEv {
			e := d.q[n]
			if e.held {
				break
			}
			expired := e.dead == nil && !now.Before(e.expiry(r.ttl))
			if !expired && e.nextAt.After(now) {
				break
			}
			if expired || e.dead != nil {
				if n > 0 {
					break
				}
				if expired {
					r.deadLetter(e, events.DeadLetterTTL)
				} else {
					r.storeDead(e)
				}
				if !e.removed {
					break // its dead letter is being stored: the device waits
				}
				continue // dropped (the subscription keeps no dead letters): the head changed
			}
			ents = append(ents, e)
			n++
		}
		if n > 0 {
			d.sending = n
		} else {
			r.schedule(d, now)
			r.cleanup(d)
		}
	}
	if maxEv > 1 && len(ents) > 1 {
		evs := make([]events.Event, len(ents))
		for i, e := range ents {
			evs[i] = e.ev
		}
		first := len(events.Batches(r.sub, evs)[0])
		for i := len(ents) - 1; i >= first; i-- {
			d := ents[i].d
			if d.sending--; d.sending == 0 {
				d.inReady = true
				r.ready = append([]*device{d}, r.ready...)
			}
		}
		ents = ents[:first]
	}
	var devs []*device
	for _, e := range ents {
		if len(devs) == 0 || devs[len(devs)-1] != e.d {
			devs = append(devs, e.d)
		}
	}
	return ents, devs
}

// send starts one delivery of ents on the sender.
func (r *runner) send(ents []*entry, devs []*device, now time.Time) {
	attempt := 0
	evs := make([]events.Event, len(ents))
	for i, e := range ents {
		attempt = max(attempt, e.attempts)
		e.attempts++
		e.lastAttempt = now
		evs[i] = e.ev
	}
	r.inflight++
	if r.workers < r.inflight {
		// One more long-lived sender: a goroutine per send would grow a
		// fresh stack through net/http on every POST (issue 21: ~4 % of
		// the hub's CPU at 5,000 events/s).
		r.workers++
		go r.sendLoop()
	}
	r.jobs <- job{b: Batch{Sub: r.sub, Events: evs, Attempt: attempt + 1}, ents: ents, devs: devs}
}

// job is one send handed to a sender goroutine.
type job struct {
	b    Batch
	ents []*entry
	devs []*device
}

// sendLoop runs sends until the runner is done. There are as many as
// sends were ever in flight at once (at most maxInFlight), so r.jobs
// (buffered to maxInFlight) never blocks run; run ends only once every
// send has reported, so no job is left when they return.
func (r *runner) sendLoop() {
	for {
		select {
		case j := <-r.jobs:
			start := r.clock.Now()
			res := r.sender.Send(r.sendCtx, j.b)
			if !res.OK && r.sendCtx.Err() != nil {
				// Cancelled by the stop or the term's end, not a failure of
				// the destination: its outcome is unknown (the receiver may
				// have taken it), so the event is handed back, not
				// acknowledged.
				res.Aborted = true
			}
			r.results <- result{Result: res, ents: j.ents, devs: j.devs, attempt: j.b.Attempt, start: start, took: r.clock.Now().Sub(start)}
		case <-r.done:
			return
		}
	}
}

// onResult settles a send: delivered, retried later, or dead-lettered.
func (r *runner) onResult(res result) {
	r.inflight--
	r.shrink()
	now := r.clock.Now()
	for _, d := range res.devs {
		d.sending = 0
	}
	r.st.log.add(attemptOf(res.ents, res.attempt, res.Result, res.start, res.took))
	switch {
	case res.Aborted:
		for _, e := range res.ents {
			e.attempts--
		}
		if r.fenced() && res.Err != "" {
			r.log.Warn("send cut off at the end of the lead's term; its outcome is unknown and the next delivering node sends it again",
				"events", len(res.ents), "err", res.Err)
		}
	case res.OK:
		for _, e := range res.ents {
			r.delivered(e, now)
		}
	default:
		r.st.failed.Add(1)
		r.log.Debug("delivery failed", "events", len(res.ents), "status", res.Status, "outcome", res.Outcome, "err", res.Err)
		final := events.DeadLetterNonRetriableError
		if res.Status != 0 {
			final = events.DeadLetterNonRetriable
		}
		for _, e := range res.ents {
			e.lastStatus, e.lastOutcome, e.lastErr = res.Status, res.Outcome, res.Err
			switch {
			case res.Final:
				r.deadLetter(e, final)
			case e.attempts >= r.sub.RetryPolicy.MaxDeliveryAttempts:
				r.deadLetter(e, events.DeadLetterMaxAttempts)
			default:
				e.nextAt = now.Add(backoff(r.e.o.Schedule, e.attempts, r.e.o.Jitter, r.e.rand()))
				if !e.retrying {
					e.retrying = true
					r.retrying++
				}
			}
		}
	}
	for _, d := range res.devs {
		r.schedule(d, now)
		r.cleanup(d)
	}
}

func (r *runner) delivered(e *entry, now time.Time) {
	r.drop(e)
	if e.msg != nil {
		r.ack(e)
	}
	r.st.delivered.Add(1)
	if f := r.e.o.ObserveLatency; f != nil && e.dlSeq == 0 {
		f(r.sub.Name, e.ev.Type, now.Sub(e.ev.Time))
	}
	if e.dlSeq != 0 {
		r.deleteDead(e.dlSeq)
	}
}

// deadLetter ends e's delivery for reason: stored as a dead letter (or
// dropped when the subscription keeps none), acknowledged, out of its
// device's queue, so the device's next event goes.
func (r *runner) deadLetter(e *entry, reason string) {
	rec := &DeadLetterRecord{
		Subscription: r.sub.Name,
		DeadLetter: events.DeadLetter{
			Event: e.ev, Reason: reason, DeliveryAttempts: e.attempts,
			LastDeliveryOutcome: e.lastOutcome, LastHTTPStatus: e.lastStatus, LastError: e.lastErr,
			PublishTime: e.published, LastDeliveryAttemptTime: e.lastAttempt,
		},
		Stream: e.stream, StreamSeq: e.sseq,
	}
	if !r.sub.DeadLettering() {
		r.log.Warn("event dropped", "reason", reason, "event", e.ev.ID, "device", e.ev.DeviceID)
		r.retire(e)
		r.st.dropped.Add(1)
		return
	}
	e.dead = rec
	r.storeDead(e)
}

// drop takes e out of its device's queue and the buffer.
func (r *runner) drop(e *entry) {
	if e.removed {
		return
	}
	e.removed = true
	r.unhold(e)
	if e.retrying {
		r.retrying--
	}
	e.d.remove(e)
	if len(e.d.q) < r.e.o.MaxQueuePerDevice {
		for stream := range e.d.parked { // what a full queue turned away
			r.recallHead(e.d, stream)
		}
	}
	r.buffered--
	r.bytes -= e.size
	if e.dlSeq != 0 {
		delete(r.replaying, e.dlSeq)
	}
}

// cleanup forgets a device that holds nothing.
func (r *runner) cleanup(d *device) {
	if d.idle() && r.devices[d.id] == d {
		delete(r.devices, d.id)
	}
}

// heartbeat keeps held messages from being redelivered (InProgress resets
// their AckWait) and forgets renewal candidates past their grace.
func (r *runner) heartbeat() {
	for _, d := range r.devices {
		for _, e := range d.q {
			if e.msg != nil {
				_ = e.msg.InProgress()
			}
		}
	}
	for _, s := range r.streams {
		if s.rec != nil {
			for _, it := range s.rec.old {
				_ = it.msg.InProgress()
			}
		}
	}
	// A parked message that has not come back for long is gone from the
	// stream (age limit): stop waiting for it.
	for _, d := range r.devices {
		if len(d.parked) > 0 && time.Since(d.parkSeen) > 2*r.e.o.ParkDelay+r.e.o.AckWait {
			r.log.Warn("parked messages did not come back; no longer waiting for them", "device", d.id)
			d.parked = nil
			r.schedule(d, r.clock.Now())
			r.cleanup(d)
		}
	}
	for k, v := range r.invisible {
		if r.watermark.After(v.until) {
			delete(r.invisible, k)
		}
	}
}

func (r *runner) publishGauges() {
	r.st.buffered.Store(int64(r.buffered))
	r.st.bufferedBytes.Store(int64(r.bytes))
	r.st.inFlight.Store(int64(r.inflight))
	r.st.devices.Store(int64(len(r.devices)))
	r.st.held.Store(int64(r.heldN))
	r.st.retrying.Store(int64(r.retrying))
	r.st.recovering.Store(r.recovering())
	r.st.active.Store(r.active)
	r.st.limit.Store(int64(r.limit))
	r.st.oldest.Store(r.age.oldest())
}

// setSub takes a new revision of the subscription whose definition is
// unchanged: only its state (validated, disabled) matters.
func (r *runner) setSub(s events.Subscription) {
	r.sub = s
	r.active = s.Active()
}

// ErrNotRunning: the subscription has no running delivery (unknown, or the
// engine is stopped).
var ErrNotRunning = errors.New("delivery: subscription not running")
