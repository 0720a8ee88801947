package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A KV change feed ends without anyone asking: its subscription closes
// when the connection does for good, and an ordered consumer that cannot
// be recreated (a stream leader change, a reconnect, while the stream has
// no leader) leaves its channel silent or closed. A follower that stops
// there keeps a view that no longer changes — an owner index that still
// names a lost node's devices, a history that stops growing — with
// nothing in the logs. Follow opens the feed again until its context
// ends.

// followRetry is the pause between attempts to open a feed again.
const followRetry = time.Second

// Follow applies bucket's change feed to apply until ctx ends. w is a
// feed already opened (its current values already read), or nil; open
// opens a new one, which is done at once for nil and whenever the feed
// ends (its channel closed, or none). A new feed delivers every key's
// current value first; once those are read, present (when not nil) is
// called with the keys that have one, so the follower can drop keys deleted
// while no feed ran. apply is never given nil.
func Follow(ctx context.Context, log *slog.Logger, bucket string, w jetstream.KeyWatcher,
	open func(context.Context) (jetstream.KeyWatcher, error), apply func(jetstream.KeyValueEntry), present func(map[string]bool)) {
	initial := w == nil
	var seen map[string]bool
	for {
		if w == nil {
			var err error
			if w, err = open(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warn("a bucket's change feed could not be opened; retrying", "bucket", bucket, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(followRetry):
				}
				continue
			}
			initial, seen = true, map[string]bool{}
		}
		if ended := follow(ctx, w, func(e jetstream.KeyValueEntry) {
			if e == nil {
				if initial && present != nil {
					present(seen)
				}
				initial, seen = false, nil
				return
			}
			if initial && e.Operation() == jetstream.KeyValuePut {
				seen[e.Key()] = true
			}
			apply(e)
		}); !ended {
			return
		}
		_ = w.Stop()
		w = nil
		log.Warn("a bucket's change feed ended; opening it again", "bucket", bucket)
	}
}

// follow hands w's entries (nil marks the end of the current values) to
// fn until ctx ends (false) or the feed does (true).
func follow(ctx context.Context, w jetstream.KeyWatcher, fn func(jetstream.KeyValueEntry)) bool {
	updates := w.Updates()
	if updates == nil {
		return true
	}
	for {
		select {
		case <-ctx.Done():
			_ = w.Stop()
			return false
		case e, ok := <-updates:
			if !ok {
				return true
			}
			fn(e)
		}
	}
}
