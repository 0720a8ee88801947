package journal

import (
	"context"
	"errors"
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
// The pattern (connlog.Writer, the insight feed): when a fetch comes back
// empty, start a Watch and fetch once more; only if that comes back empty
// too, Wait. A message stored before the Watch's subscription reached the
// server is seen by that second fetch (the subscription and the fetch go
// out on the same connection, in that order); one published after it
// wakes the Wait. Stop the Watch as soon as a fetch returns messages: a
// busy reader keeps no subscription, so it adds no copy of each message.
//
// A Watch only sees publishes: what reaches a consumer without one (a
// redelivery after AckWait, or a store slower than the second fetch's
// wait) is found by the next fetch after Wait's fallback period.
type Watch struct {
	sub *nats.Subscription
}

// NewWatch subscribes to subject (a stream's subjects or a consumer's
// filter) on nc.
func NewWatch(nc *nats.Conn, subject string) (*Watch, error) {
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		return nil, err
	}
	return &Watch{sub: sub}, nil
}

// Wait blocks until a message was published on the subject since the
// Watch started (one wake-up per message published), or fallback has
// passed, or ctx ends. It reports whether ctx is still live.
func (w *Watch) Wait(ctx context.Context, fallback time.Duration) bool {
	wctx, cancel := context.WithTimeout(ctx, fallback)
	defer cancel()
	_, err := w.sub.NextMsgWithContext(wctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// The subscription is gone (connection closed): do not spin.
		select {
		case <-wctx.Done():
		case <-ctx.Done():
		}
	}
	// Wake-ups queued meanwhile stay: if the fetch that follows finds
	// nothing (a store slower than its wait), the next Wait returns at
	// once and the reader looks again.
	return ctx.Err() == nil
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
