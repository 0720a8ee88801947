package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
)

// streamMetaKey marks the streams Stream subscriptions own (stream
// metadata: the subscription's key).
const streamMetaKey = "tether-subscription"

// streamDest is the Stream destination: events appended to a JetStream stream
// of the hub's NATS that the subscription owns.
type streamDest struct {
	js       jetstream.JetStream
	replicas int
}

// StreamSubject is the subject of event e in a stream subscription with
// subject prefix prefix: prefix.<device>.<kind>, kind one of connected,
// disconnected, created, deleted, telemetry; the device id encoded as a
// NATS token (journal.EncodeToken).
func StreamSubject(prefix string, e events.Event) string {
	kind := strings.ToLower(strings.TrimPrefix(string(e.Type), "Microsoft.Devices.Device"))
	return prefix + "." + journal.EncodeToken(e.DeviceID) + "." + kind
}

func (s *streamDest) config(sub events.Subscription) jetstream.StreamConfig {
	p := sub.Destination.Properties
	limit := func(v int64) int64 {
		if v <= 0 {
			return -1
		}
		return v
	}
	return jetstream.StreamConfig{
		Name:              p.StreamName,
		Description:       "Tether event subscription " + sub.Name + " (events in " + string(sub.EventDeliverySchema) + ")",
		Subjects:          []string{p.SubjectPrefix + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            time.Duration(p.RetentionInHours) * time.Hour,
		MaxMsgs:           limit(p.MaxMessages),
		MaxBytes:          limit(p.MaxBytes),
		MaxMsgsPerSubject: limit(p.MaxMessagesPerSubject),
		Storage:           jetstream.FileStorage,
		Replicas:          max(s.replicas, 1),
		// A retried batch stores each event once (Nats-Msg-Id).
		Duplicates: 2 * time.Minute,
		Metadata:   map[string]string{streamMetaKey: sub.Key()},
	}
}

// ensure creates sub's stream or brings its limits in line. A stream of
// that name that is not this subscription's is left alone: an error.
func (s *streamDest) ensure(ctx context.Context, sub events.Subscription) error {
	name := sub.Destination.Properties.StreamName
	if st, err := s.js.Stream(ctx, name); err == nil {
		if owner := st.CachedInfo().Config.Metadata[streamMetaKey]; owner != sub.Key() {
			if owner == "" {
				return fmt.Errorf("stream %s exists and was not made for a subscription; choose another streamName", name)
			}
			return fmt.Errorf("stream %s belongs to subscription %s; choose another streamName", name, owner)
		}
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	if _, err := s.js.CreateOrUpdateStream(ctx, s.config(sub)); err != nil {
		return fmt.Errorf("stream %s on %s.>: %w", name, sub.Destination.Properties.SubjectPrefix, err)
	}
	return nil
}

// Check creates or updates the stream, then deletes the subscription's
// other streams (it moved to another streamName).
func (s *streamDest) Check(ctx context.Context, sub events.Subscription) error {
	if err := s.ensure(ctx, sub); err != nil {
		return err
	}
	return s.removeWhere(ctx, sub.Key(), sub.Destination.Properties.StreamName)
}

func (s *streamDest) Open(_ events.Subscription, env SendEnv) Sender {
	return stateless{env: env, send: s.send}
}

// Remove deletes the streams of subscription key.
func (s *streamDest) Remove(ctx context.Context, key string) error {
	return s.removeWhere(ctx, key, "")
}

// removeWhere deletes the streams owned by subscription key, except keep.
func (s *streamDest) removeWhere(ctx context.Context, key, keep string) error {
	var errs []error
	list := s.js.ListStreams(ctx)
	var gone []string
	for info := range list.Info() {
		if info.Config.Metadata[streamMetaKey] == key && info.Config.Name != keep {
			gone = append(gone, info.Config.Name)
		}
	}
	if err := list.Err(); err != nil {
		return fmt.Errorf("listing streams: %w", err)
	}
	for _, n := range gone {
		if err := s.js.DeleteStream(ctx, n); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("deleting stream %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// send publishes one message per event and succeeds when the stream has
// stored all of them. A retry publishes the batch again; the stream keeps
// one copy of each (Nats-Msg-Id within its duplicate window). A missing
// stream (deleted behind the hub's back) is created again once.
func (s *streamDest) send(ctx context.Context, env SendEnv, b Batch) Result {
	ctx, stop := deadline(ctx, env.Clock, env.Timeout)
	err := s.publish(ctx, b)
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		if err = s.ensure(ctx, b.Sub); err == nil {
			err = s.publish(ctx, b)
		}
	}
	timedOut := stop()
	switch {
	case err == nil:
		return Result{OK: true}
	case timedOut:
		return Result{Outcome: OutcomeTimedOut, Err: "the stream did not store the events within " + env.Timeout.String()}
	case errors.Is(err, nats.ErrMaxPayload):
		return Result{Final: true, Outcome: "PayloadTooLarge", Err: err.Error()}
	}
	return Result{Outcome: "StreamUnavailable", Err: err.Error()}
}

func (s *streamDest) publish(ctx context.Context, b Batch) error {
	p := b.Sub.Destination.Properties
	futures := make([]jetstream.PubAckFuture, 0, len(b.Events))
	for _, e := range b.Events {
		m := nats.NewMsg(StreamSubject(p.SubjectPrefix, e))
		m.Data = events.Encode(b.Sub.EventDeliverySchema, e)
		m.Header.Set(jetstream.MsgIDHeader, e.ID)
		m.Header.Set("Content-Type", "application/json")
		m.Header.Set("Tether-Event-Type", string(e.Type))
		m.Header.Set("Tether-Device-Id", e.DeviceID)
		f, err := s.js.PublishMsgAsync(m, jetstream.WithExpectStream(p.StreamName))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	n, err := journal.AwaitAcks(ctx, futures)
	if n > 0 {
		return fmt.Errorf("%d of %d events not stored: %w", n, len(futures), err)
	}
	return err
}
