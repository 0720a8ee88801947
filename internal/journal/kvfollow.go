package journal

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// FollowKV hands each update of a KV watch to fn, in the watch's order,
// until ctx ends, the watch ends or fn returns false; then it stops the
// watch. A nil entry is the watch's marker that the initial values have
// all been sent (jetstream.KeyWatcher). It blocks: callers run it on
// their own goroutine, which owns w from then on.
func FollowKV(ctx context.Context, w jetstream.KeyWatcher, fn func(jetstream.KeyValueEntry) bool) {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok || !fn(e) {
				return
			}
		}
	}
}
