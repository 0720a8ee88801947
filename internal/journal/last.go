package journal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LastConnState calls fn with the newest connected or disconnected event
// of every device in TETHER_CONN (its payload, for DecodeConnectionEvent), read with an ordered consumer
// that delivers the last message per subject. The hub uses it at start to
// find sessions a crash left open.
func (j *Journal) LastConnState(ctx context.Context, fn func(data []byte)) error {
	st, err := j.JS.Stream(ctx, StreamConn)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{ConnPrefix + "*.connected", ConnPrefix + "*.disconnected"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	// Keep, per device, whichever of its two subjects was written last.
	type last struct {
		seq  uint64
		data []byte
	}
	latest := map[string]last{}
	for done := false; !done; {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("journal: %w", err)
			}
			dev := strings.TrimPrefix(m.Subject(), ConnPrefix)
			dev = dev[:strings.LastIndexByte(dev, '.')]
			if cur, ok := latest[dev]; !ok || md.Sequence.Stream > cur.seq {
				latest[dev] = last{md.Sequence.Stream, m.Data()}
			}
			if md.NumPending == 0 {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("journal: %w", err)
		}
		if got == 0 || ctx.Err() != nil {
			done = true
		}
	}
	for _, l := range latest {
		fn(l.data)
	}
	return nil
}
