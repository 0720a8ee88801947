package journal

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// AwaitAcks waits until the stream has stored or refused every message of
// futures (asynchronous publishes), or ctx ends. It returns how many were
// refused and their errors joined; or ctx's error if it ended first.
func AwaitAcks(ctx context.Context, futures []jetstream.PubAckFuture) (refused int, err error) {
	var errs []error
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return len(errs), errors.Join(errs...)
}
