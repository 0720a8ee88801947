package delivery

import (
	"container/heap"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/presence"
)

// recovery is a consumer's restart: the messages a previous runner took
// and did not acknowledge come back (redelivered), and they must go before
// anything newer of the same device. Until all of them are back (or a
// deadline passes), newer messages are parked, and the returning ones are
// collected and then taken in stream order.
type recovery struct {
	delivered uint64 // highest stream sequence delivered before
	need      int    // messages pending acknowledgement before
	old       map[uint64]item
	timer     *time.Timer
	ackWait   time.Duration                   // the consumer's AckWait during recovery
	restore   func(ctx context.Context) error // sets the normal AckWait again; nil if unchanged
}

// fetch pulls one consumer's messages and hands them to the loop, decoded
// and matched. When the runner stops, what the iterator still buffered is
// handed back to JetStream (Nak).
func (r *runner) fetch(s *stream) {
	defer r.fetchWG.Done()
	ctx := r.fetchCtx
	batch := min(256, r.e.o.MaxBufferedPerSub)
	for ctx.Err() == nil {
		it, err := s.cons.Messages(jetstream.PullMaxMessages(batch))
		if err != nil {
			r.log.Error("consuming failed; retrying", "stream", s.name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		stop := context.AfterFunc(ctx, it.Drain)
		for {
			msg, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					break
				}
				r.log.Debug("consumer", "stream", s.name, "err", err)
				if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
					it.Stop()
				}
				continue
			}
			if ctx.Err() != nil {
				_ = msg.Nak()
				continue
			}
			x := r.decode(s.idx, s.kind, msg)
			select {
			case r.in <- x:
			case <-ctx.Done():
				_ = msg.Nak()
			}
		}
		stop()
	}
}

// onItem takes one message from a fetcher.
func (r *runner) onItem(it item) {
	s := r.streams[it.stream]
	r.st.received.Add(1)
	if r.redelivered(s, it) {
		return
	}
	if s.kind == streamConn {
		r.connCaughtUp = it.numPending == 0
	}
	if rec := s.rec; rec != nil {
		if it.sseq <= rec.delivered {
			rec.old[it.sseq] = it
			if len(rec.old) >= rec.need {
				r.finishRecovery(s, rec)
			}
			return
		}
		if it.err != nil || !it.ok {
			r.admit(it)
			return
		}
		r.park(r.device(it.dev), it)
		return
	}
	r.admit(it)
}

// finishRecovery takes the returned messages in stream order; parked newer
// ones follow as JetStream offers them again.
func (r *runner) finishRecovery(s *stream, rec *recovery) {
	if s.rec != rec {
		return
	}
	s.rec = nil
	rec.timer.Stop()
	if rec.restore != nil {
		// Before anything is admitted: held messages are kept alive on
		// the normal AckWait's schedule.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := rec.restore(ctx); err != nil {
			r.log.Error("could not restore the consumer's AckWait after recovery; held events may be redelivered early", "stream", s.name, "err", err)
		}
		cancel()
	}
	seqs := make([]uint64, 0, len(rec.old))
	for q := range rec.old {
		seqs = append(seqs, q)
	}
	slices.Sort(seqs)
	if len(seqs) < rec.need {
		r.log.Warn("recovery ended before every unacknowledged message came back", "stream", s.name,
			"back", len(seqs), "pending", rec.need)
	}
	for _, q := range seqs {
		r.admit(rec.old[q])
	}
	// What recovery parked is not waited for: JetStream dates a delayed
	// Nak as now − AckWait + delay with the AckWait in force then, so
	// after the restore it would stay away for a whole normal AckWait.
	for _, d := range r.devices {
		r.recallHead(d, s.idx)
	}
}

// recallHead asks JetStream for the device's oldest parked message on
// stream at once, instead of after its park delay: it is the one the
// device's later messages wait for. Called when what it waited for is
// gone (its predecessor was taken, the device's queue has room again,
// recovery ended); each recalled message recalls the next when taken.
func (r *runner) recallHead(d *device, stream int) {
	p := d.parked[stream]
	if len(p) == 0 || p[0].recalled {
		return
	}
	p[0].recalled = true
	if err := r.recall(p[0]); err != nil {
		r.log.Warn("could not recall a parked message; it returns after its park delay", "stream", r.streams[stream].name, "seq", p[0].seq, "err", err)
	}
}

// recall asks JetStream for a parked message at once. The jetstream.Msg
// of a parked message refuses a second acknowledgement, so the Nak goes
// to its reply subject directly.
func (r *runner) recall(pm parkedMsg) error {
	return r.e.o.JS.Conn().Publish(pm.msg.Reply(), []byte("-NAK"))
}

func (r *runner) device(id string) *device {
	d := r.devices[id]
	if d == nil {
		d = &device{id: id}
		r.devices[id] = d
	}
	return d
}

// park hands it back to JetStream for later, remembering that the device's
// later messages on that stream must wait for it.
func (r *runner) park(d *device, it item) {
	d.park(it.stream, it.sseq, it.msg)
	delay := r.e.o.ParkDelay
	if rec := r.streams[it.stream].rec; rec != nil && rec.restore != nil {
		// Recovering with a short AckWait: it ends within seconds.
		delay = rec.ackWait
	}
	_ = it.msg.NakWithDelay(delay)
	r.st.parked.Add(1)
}

// admit takes a message into its device's queue, in order: after the
// device's parked messages on the same stream, and only if the queue has
// room (else it is parked too).
func (r *runner) admit(it item) {
	if it.err != nil {
		r.log.Error("undecodable journal record skipped", "stream", r.streams[it.stream].name, "seq", it.sseq, "err", it.err)
		r.st.undecodable.Add(1)
		_ = it.msg.Ack()
		return
	}
	if !it.ok { // refusal or registry update: no event
		_ = it.msg.Ack()
		return
	}
	d := r.device(it.dev)
	if p := d.parked[it.stream]; len(p) > 0 {
		switch {
		case it.sseq > p[0].seq:
			r.park(d, it)
			return
		case it.sseq == p[0].seq:
			if len(d.q) >= r.e.o.MaxQueuePerDevice {
				r.park(d, it)
				return
			}
			d.unpark(it.stream, it.sseq)
			defer r.recallHead(d, it.stream) // the next one waited for this
		}
	}
	name := r.streams[it.stream].name
	if dup := d.find(name, it.sseq); dup != nil { // redelivered while held
		dup.msg = it.msg
		return
	}
	if len(d.q) >= r.e.o.MaxQueuePerDevice {
		r.park(d, it)
		return
	}
	r.enqueue(d, it)
}

// renewable: a disconnect that a token renewal can follow (presence marks
// the reconnect after a client DISCONNECT or a token expiry).
func renewable(c *connInfo) bool {
	return c.kind == presence.Disconnected &&
		(c.reason == presence.ReasonClient || c.reason == presence.ReasonTokenExpired)
}

// enqueue applies the renewal filter and the subscription's filter, then
// queues the event.
//
// Renewal filter (Tether.SuppressRenewals): a renewable disconnect that
// matches is held for the grace (from its event time). The device's next
// connection event settles it: a connect marked TokenRenewal with
// RenewalOf = its sequence, within the grace, suppresses both; anything
// else releases it at once (it is delivered, in order, before that event).
// Without a next event, releaseHeld delivers it when the grace has passed.
// A renewable disconnect the filter does not match is remembered, so that
// its renewal connect is not delivered either: the subscriber never saw
// the device go.
func (r *runner) enqueue(d *device, it item) {
	now := r.clock.Now()
	c := it.conn
	suppress := r.sub.Tether.SuppressRenewals
	if c != nil {
		if c.time.After(r.watermark) {
			r.watermark = c.time
		}
		if suppress {
			inv, hadInv := r.invisible[d.id]
			delete(r.invisible, d.id)
			renewalOf := func(seq string, until time.Time) bool {
				return c.kind == presence.Connected && c.renewal && c.renewalOf == seq && !c.time.After(until)
			}
			if h := d.heldDisconnect(); h != nil {
				if renewalOf(h.ev.Sequence, h.holdUntil) {
					r.drop(h)
					_ = h.msg.Ack()
					_ = it.msg.Ack()
					r.st.suppressed.Add(2)
					r.schedule(d, now)
					r.cleanup(d)
					return
				}
				r.unhold(h)
				r.schedule(d, now)
			} else if hadInv && renewalOf(inv.seq, inv.until) {
				_ = it.msg.Ack()
				r.st.suppressed.Add(1)
				r.cleanup(d)
				return
			}
		}
	}
	if !it.matched {
		if c != nil && suppress && renewable(c) {
			r.invisible[d.id] = invisible{seq: c.seq, until: c.time.Add(r.grace)}
		}
		_ = it.msg.Ack()
		r.st.filtered.Add(1)
		r.cleanup(d)
		return
	}
	e := &entry{
		d: d, msg: it.msg, stream: r.streams[it.stream].name, sseq: it.sseq, ev: it.ev,
		published: it.published, size: it.size, ttlFrom: it.ev.Time,
	}
	if c != nil && suppress && renewable(c) {
		e.held, e.holdUntil = true, c.time.Add(r.grace)
		r.heldN++
		heap.Push(&r.held, e)
	}
	d.insert(e)
	r.buffered++
	r.bytes += e.size
	if !e.held {
		r.age.push(e, e.ev.Time, r.buffered) // a held one when its hold ends (unhold)
	}
	r.schedule(d, now)
}

// replay queues dead letters again, behind what their devices hold; their
// time-to-live starts now. Records already being replayed are skipped.
func (r *runner) replay(recs []DeadLetterRecord) int {
	now := r.clock.Now()
	n := 0
	for _, rec := range recs {
		if r.replaying[rec.Seq] {
			continue
		}
		r.replaying[rec.Seq] = true
		d := r.device(rec.Event.DeviceID)
		e := &entry{
			d: d, stream: rec.Stream, sseq: rec.StreamSeq, ev: rec.Event, published: rec.PublishTime,
			size: len(rec.Event.Data) + 256, ttlFrom: now, dlSeq: rec.Seq,
		}
		d.q = append(d.q, e)
		r.buffered++
		r.bytes += e.size
		r.schedule(d, now)
		n++
	}
	return n
}
