package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

const epochKey = "epoch"

// NextEpoch returns a start epoch strictly larger than the one any earlier
// run used, and records it: candidate is normally the current time as a
// FILETIME, and a clock that went backwards still yields last+1. Uses a
// compare-and-set so two hubs sharing a cluster cannot take the same one.
func (j *Journal) NextEpoch(ctx context.Context, candidate uint64) (uint64, error) {
	for range 10 {
		var last, rev uint64
		// A starting node can ask while the bucket has a leader but no
		// replica answers direct gets yet ("no responders"): the wait for
		// stream leaders at open (waitStreamLeaders) does not cover that
		// window, so the read and the write retry as setup does. Without
		// this a cluster node failed to start in CI (session 11).
		var e jetstream.KeyValueEntry
		err := j.UntilReady(ctx, func(ctx context.Context) (err error) { e, err = j.State.Get(ctx, epochKey); return err })
		switch {
		case err == nil:
			if len(e.Value()) != 8 {
				return 0, fmt.Errorf("journal: stored epoch is %d bytes, want 8", len(e.Value()))
			}
			last, rev = binary.BigEndian.Uint64(e.Value()), e.Revision()
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return 0, fmt.Errorf("journal: reading epoch: %w", err)
		}
		next := max(candidate, last+1)
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], next)
		// A write retried after its answer was lost comes back as
		// "exists" or "wrong sequence": the loop reads again and takes
		// the next epoch, so no two runs share one.
		err = j.UntilReady(ctx, func(ctx context.Context) (err error) {
			if rev == 0 {
				_, err = j.State.Create(ctx, epochKey, buf[:])
			} else {
				_, err = j.State.Update(ctx, epochKey, buf[:], rev)
			}
			return err
		})
		if err == nil {
			return next, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) {
			return 0, fmt.Errorf("journal: storing epoch: %w", err)
		}
	}
	return 0, errors.New("journal: epoch kept changing under us")
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
