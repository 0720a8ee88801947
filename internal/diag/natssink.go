package diag

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/journal"
)

// natsSink publishes records on a subject, one message per record in the
// storage shape, with the record's _ItemId as Nats-Msg-Id. It is a
// connlog.Sink driven by a durable journal consumer, so delivery to NATS is
// at least once:
//
//   - with a stream (NATS.RetentionDays > 0) every message is published
//     to JetStream and the batch is acked only when the stream has stored
//     all of them; the stream drops a redelivered record by its message id
//     (within its 2-minute duplicate window);
//   - without one, messages go out on core NATS and the batch is acked
//     after a flush (the server has them); subscribers that are not
//     connected miss them, and a redelivery may repeat some.
type natsSink struct {
	nc      *nats.Conn
	js      jetstream.JetStream // nil: core NATS
	subject string
}

// streamName is the JetStream stream of a setting's NATS destination.
func streamName(settingKey string) string {
	return "TETHER_DIAG_" + strings.ToUpper(strings.NewReplacer("-", "_").Replace(settingKey))
}

// ensureStream creates or updates the stream that keeps a NATS
// destination's messages for days.
func ensureStream(ctx context.Context, js jetstream.JetStream, settingKey, subject string, days int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        streamName(settingKey),
		Description: "Tether diagnostic setting " + settingKey + ": resource log records published on " + subject,
		Subjects:    []string{subject},
		MaxAge:      time.Duration(days) * 24 * time.Hour,
		Storage:     jetstream.FileStorage,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("diag: stream %s for subject %s: %w", streamName(settingKey), subject, err)
	}
	return nil
}

// flushTimeout bounds the wait for the server to confirm plain (core NATS)
// publishes when the caller set no deadline; the writer retries on error.
const flushTimeout = 10 * time.Second

// Append implements connlog.Sink.
func (s *natsSink) Append(ctx context.Context, records []connlog.Record) error {
	var futures []jetstream.PubAckFuture
	for _, r := range records {
		m := nats.NewMsg(s.subject)
		m.Data = AppendStorageJSON(nil, r)
		m.Header.Set(jetstream.MsgIDHeader, r.ItemID)
		if s.js == nil {
			if err := s.nc.PublishMsg(m); err != nil {
				return fmt.Errorf("diag: publish on %s: %w", s.subject, err)
			}
			continue
		}
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("diag: publish on %s: %w", s.subject, err)
		}
		futures = append(futures, f)
	}
	if s.js == nil {
		// FlushWithContext refuses a context without a deadline, and the
		// log writer's has none: bound the round trip here.
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, flushTimeout)
			defer cancel()
		}
		if err := s.nc.FlushWithContext(ctx); err != nil {
			return fmt.Errorf("diag: flush %s: %w", s.subject, err)
		}
		return nil
	}
	n, err := journal.AwaitAcks(ctx, futures)
	if n > 0 {
		return fmt.Errorf("diag: %d of %d records not stored on %s: %w", n, len(futures), s.subject, err)
	}
	return err
}

// DeleteBefore implements connlog.Sink: the stream's MaxAge expires
// messages; there is nothing to delete here.
func (s *natsSink) DeleteBefore(context.Context, time.Time) (int64, error) { return 0, nil }
