package delivery

import (
	"context"
	"time"
)

// The runner's writes to the dead-letter store run off its loop: the loop
// starts every send of the subscription, and a store that answers slowly
// (a replicated stream electing its leader) held up all of them for as
// long as the write took (up to storeTimeout per dead letter). A device
// whose head is being dead-lettered waits meanwhile (its order is kept:
// the write counts in device.sending, as a send would); the others go on.

// storeTimeout bounds one write to the dead-letter store.
const storeTimeout = 5 * time.Second

// background runs work off the loop; the function it returns (nil: none)
// runs on the loop once it is done. The runner does not finish before
// every write it started has reported (run).
func (r *runner) background(work func() func()) {
	r.storing++
	go func() { r.stored <- work() }()
}

// storeDead writes e's dead letter (e.dead). Stored, e is acknowledged
// and leaves its device's queue; if the store fails, it is tried again in
// 10 s, the device waiting.
func (r *runner) storeDead(e *entry) {
	rec := *e.dead
	e.d.sending++
	r.background(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		_, err := r.e.dl.Put(ctx, rec)
		return func() { r.deadStored(e, err) }
	})
}

// deadStored settles the write of e's dead letter, on the loop.
func (r *runner) deadStored(e *entry, err error) {
	d := e.d
	d.sending--
	now := r.clock.Now()
	if err != nil {
		r.log.Error("storing a dead letter failed; retrying", "event", e.ev.ID, "err", err)
		e.nextAt = now.Add(10 * time.Second)
	} else {
		r.log.Info("event dead-lettered", "reason", e.dead.Reason, "event", e.ev.ID, "device", e.ev.DeviceID,
			"attempts", e.attempts, "outcome", e.lastOutcome)
		r.retire(e)
		r.st.deadLettered.Add(1)
	}
	r.schedule(d, now)
	r.cleanup(d)
}

// retire ends e's delivery without delivering it (dead-lettered or
// dropped): out of its device's queue, acknowledged, and its earlier dead
// letter (a replay's) removed.
func (r *runner) retire(e *entry) {
	r.drop(e)
	if e.msg != nil {
		_ = e.msg.Ack()
	}
	if e.dlSeq != 0 {
		r.deleteDead(e.dlSeq)
	}
}

// deleteDead removes the dead letter at seq (its event was delivered on
// replay, or dead-lettered again under a new one).
func (r *runner) deleteDead(seq uint64) {
	name := r.sub.Name
	r.background(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := r.e.dl.Delete(ctx, name, seq); err != nil {
			return func() { r.log.Warn("removing a replayed dead letter failed", "seq", seq, "err", err) }
		}
		return nil
	})
}
