package journal

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Watch wakes a journal reader that has caught up when a message is
// published on the subjects it reads, so that an idle reader does not
// poll. A pull consumer asked every 100 ms costs a request, a
// subscription, a goroutine and ~32 KB of channels per fetch even when
// nothing comes, which is most of what an idle hub allocates; waiting on a
// Watch costs nothing until a message is published.
//
// The pattern (Idle runs it for connlog.Writer and the insight feed):
// when a fetch comes back empty, start a Watch and fetch once more; only
// if that comes back empty too, Wait. A message stored before the Watch's subscription reached the
// server is seen by that second fetch (the subscription and the fetch go
// out on the same connection, in that order); one published after it
// wakes the Wait. Stop the Watch as soon as a fetch returns messages: a
// busy reader keeps no subscription, so it adds no copy of each message.
//
// A Watch only sees publishes: a redelivery after AckWait is found by the
// next fetch after Wait's fallback period. A publish the reader was woken
// for but whose fetch found nothing (the store was slower than the fetch's
// wait: a loaded machine, a replicated stream) is looked for again soon:
// the Wait after a woken one ends after recheckFirst, then twice that, and
// so on up to the fallback.
type Watch struct {
	sub  *nats.Subscription
	wake chan struct{} // one wake-up pending at most
	// recheck is how soon the next Wait ends if nothing is published: 0
	// (the caller's fallback) unless the last Wait was woken.
	recheck time.Duration
}

// recheckFirst is the first re-look after a woken Wait whose fetch came back
// empty: long enough for a store under load, short beside the fallback.
const recheckFirst = 250 * time.Millisecond

// NewWatch subscribes to subject (a stream's subjects or a consumer's
// filter) on nc. The subscription is asynchronous with a callback that
// only signals: a synchronous one would allocate a channel of the
// connection's SubChanLen (64k entries, 512 KiB) per Watch, and a small
// channel of our own would mark the connection a slow consumer when full.
func NewWatch(nc *nats.Conn, subject string) (*Watch, error) {
	w := &Watch{wake: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(subject, func(*nats.Msg) {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	w.sub = sub
	return w, nil
}

// Wait blocks until a message was published on the subject since the
// Watch started or since the last Wait returned, or fallback has passed,
// or ctx ends. It reports whether ctx is still live. A publish during the
// fetch that follows a Wait makes the next Wait return at once, so a
// reader whose fetch found nothing (a store slower than its wait) looks
// again.
func (w *Watch) Wait(ctx context.Context, fallback time.Duration) bool {
	d := fallback
	if w.recheck > 0 {
		d = min(w.recheck, fallback)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.wake:
		w.recheck = recheckFirst
	case <-t.C:
		if w.recheck *= 2; w.recheck >= fallback {
			w.recheck = 0
		}
	case <-ctx.Done():
	}
	return ctx.Err() == nil
}

// Idle runs that pattern for one reader, so each reader does not spell it
// out: call Busy after a fetch that returned messages and Caught after one
// that returned none.
//
// Its Waits' fallback starts at check and doubles after each Wait whose
// fetch came back empty too, up to ceiling, so an idle hub is not woken every
// check by each of its readers; Busy sets it back to check. (The fallback
// only bounds how late a lost wake-up or a redelivery is found: a publish
// wakes the Wait at once.)
type Idle struct {
	nc             *nats.Conn
	subject        string
	waiting        *atomic.Int32 // readers in a Wait, for status (may be nil)
	check, ceiling time.Duration
	fallback       time.Duration // the next Wait's
	w              *Watch
}

// NewIdle prepares the Watch pattern on subject; nothing is subscribed
// until the reader has caught up. waiting (may be nil) counts the readers
// waiting in Caught. check and ceiling bound the Waits' fallback (a
// ceiling below check counts as check).
func NewIdle(nc *nats.Conn, subject string, waiting *atomic.Int32, check, ceiling time.Duration) *Idle {
	return &Idle{nc: nc, subject: subject, waiting: waiting, check: check, ceiling: ceiling, fallback: check}
}

// Watching reports whether the reader has caught up (its Watch runs): its
// fetches are the re-check or the one after a Wait, and may ask for less.
func (i *Idle) Watching() bool { return i.w != nil }

// Busy drops the Watch: a busy reader keeps no subscription, and its next
// idle spell starts again from the shortest fallback.
func (i *Idle) Busy() {
	i.w.Stop()
	i.w = nil
	i.fallback = i.check
}

// Caught follows a fetch that returned nothing. The first time it starts
// the Watch and returns at once, for the fetch once more; after that it
// waits for a publish, the fallback or ctx's end (Watch.Wait), and the
// next fallback doubles. An error means no Watch could start: the reader
// polls instead.
func (i *Idle) Caught(ctx context.Context) error {
	if i.w == nil {
		w, err := NewWatch(i.nc, i.subject)
		if err != nil {
			return err
		}
		i.w = w
		return nil
	}
	if i.waiting != nil {
		i.waiting.Add(1)
		defer i.waiting.Add(-1)
	}
	fallback := i.fallback
	i.fallback = min(2*fallback, max(i.ceiling, i.check))
	i.w.Wait(ctx, fallback)
	return nil
}

// Stop unsubscribes. Safe on a nil Watch.
func (w *Watch) Stop() {
	if w != nil {
		_ = w.sub.Unsubscribe()
	}
}

// StreamSubjects is the subject filter that covers everything stream
// holds ("" for a stream Tether does not create).
func StreamSubjects(stream string) string {
	switch stream {
	case StreamConn:
		return ConnPrefix + ">"
	case StreamRegistry:
		return RegistryPrefix + ">"
	case StreamTelemetry:
		return TelemetryPrefix + ">"
	case StreamOps:
		return OpsPrefix + ">"
	case StreamInsights:
		return InsightsPrefix + ">"
	}
	return ""
}

// Sleep waits for d or until ctx ends, and reports whether the whole d
// passed: the pause of a journal reader's retry and pacing loops.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
