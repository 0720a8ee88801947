package delivery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
)

// streamKind is a journal stream a subscription reads.
type streamKind int

const (
	streamConn streamKind = iota
	streamRegistry
	streamTelemetry
	streamInsights // Tether.Insights.* (insights.go)
)

var streamKinds = []streamKind{streamConn, streamRegistry, streamTelemetry, streamInsights}

func (k streamKind) name() string {
	switch k {
	case streamRegistry:
		return journal.StreamRegistry
	case streamTelemetry:
		return journal.StreamTelemetry
	case streamInsights:
		return journal.StreamInsights
	}
	return journal.StreamConn
}

// subjects are the consumer's filter: only records that can become events
// (registry updates never do). TETHER_CONN and TETHER_TELEMETRY are read
// whole, filtered by the stream's own subject, and decode skips a refusal:
// a consumer filtered to some of the stream's subjects that falls behind
// makes the journal server match the filter against every device's
// subject in the block for each message it hands out (nats-server's
// firstMatchingMulti / fss.Match), a cost per message that grows with the
// fleet and with the lag, so a subscription that fell behind at thousands
// of events/s did not catch up (issue 21: a quarter of the hub's CPU at
// 5,000 events/s). With the stream's own subject it walks the stream in
// order. (Not nil: nats-server 2.15.2 updating a filtered consumer to no
// filter leaves it with no signal for new messages.)
func (k streamKind) subjects() []string {
	switch k {
	case streamRegistry:
		return []string{journal.RegistryPrefix + "*.created", journal.RegistryPrefix + "*.deleted"}
	case streamTelemetry:
		return []string{journal.TelemetryPrefix + ">"}
	case streamInsights:
		return insightSubjects()
	}
	return []string{journal.ConnPrefix + ">"}
}

// ConsumerPrefix starts the durable name of every subscription's
// consumers: ConsumerName(sub) on each stream it reads.
const ConsumerPrefix = "events-"

// ConsumerName is the durable consumer name of subscription sub (the same
// on each stream): "events-" and the name in lower case.
func ConsumerName(sub string) string { return ConsumerPrefix + events.NameKey(sub) }

// streamsFor lists the streams s reads: TETHER_CONN for DeviceConnected or
// DeviceDisconnected, TETHER_REGISTRY for DeviceCreated or DeviceDeleted,
// TETHER_TELEMETRY for DeviceTelemetry; no includedEventTypes means all.
func streamsFor(s events.Subscription) []streamKind {
	types := s.Filter.IncludedEventTypes
	has := func(ts ...events.EventType) bool {
		if len(types) == 0 {
			return true
		}
		for _, t := range ts {
			if slices.ContainsFunc(types, func(v events.EventType) bool { return strings.EqualFold(string(v), string(t)) }) {
				return true
			}
		}
		return false
	}
	var out []streamKind
	if has(events.DeviceConnected, events.DeviceDisconnected) {
		out = append(out, streamConn)
	}
	if has(events.DeviceCreated, events.DeviceDeleted) {
		out = append(out, streamRegistry)
	}
	if has(events.DeviceTelemetry) {
		out = append(out, streamTelemetry)
	}
	if wantsInsights(types) {
		out = append(out, streamInsights)
	}
	return out
}

// consumerConfig is the durable consumer of s on stream k. A new consumer
// starts with the events published after its creation (DeliverNew); an
// existing one keeps its position (CreateOrUpdateConsumer changes only the
// limits and filters).
func (e *Engine) consumerConfig(s events.Subscription, k streamKind) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        ConsumerName(s.Name),
		Description:    "Tether event subscription " + s.Name,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        e.o.AckWait,
		MaxDeliver:     -1,
		FilterSubjects: k.subjects(),
		MaxAckPending:  e.o.MaxAckPending,
		Metadata:       map[string]string{"tether-subscription": s.Name},
	}
}

// recoveryAckWait is a consumer's AckWait while its runner recovers from a
// crash. JetStream redelivers what the dead runner held once AckWait has
// passed since its delivery, and re-arms its timer when AckWait changes, so
// a short AckWait brings those messages back in about a second rather than
// after the normal AckWait (30 s), during which the subscription's newer
// events would wait. The normal value is restored before any is admitted.
const recoveryAckWait = time.Second

// setAckWait changes the AckWait of s's consumer on k.
func (e *Engine) setAckWait(ctx context.Context, s events.Subscription, k streamKind, d time.Duration) error {
	cfg := e.consumerConfig(s, k)
	cfg.AckWait = d
	if _, err := e.o.JS.CreateOrUpdateConsumer(ctx, k.name(), cfg); err != nil {
		return fmt.Errorf("delivery: consumer %s on %s: AckWait %v: %w", ConsumerName(s.Name), k.name(), d, err)
	}
	return nil
}

// ensureConsumer creates or updates the consumer of s on k and returns it
// with its state.
func (e *Engine) ensureConsumer(ctx context.Context, s events.Subscription, k streamKind) (jetstream.Consumer, *jetstream.ConsumerInfo, error) {
	c, err := e.o.JS.CreateOrUpdateConsumer(ctx, k.name(), e.consumerConfig(s, k))
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: consumer %s on %s: %w", ConsumerName(s.Name), k.name(), err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: consumer %s on %s: %w", ConsumerName(s.Name), k.name(), err)
	}
	return c, info, nil
}

// deleteConsumer removes the consumer of subscription key on k, if any.
func (e *Engine) deleteConsumer(ctx context.Context, name string, k streamKind) error {
	err := e.o.JS.DeleteConsumer(ctx, k.name(), ConsumerName(name))
	if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	return fmt.Errorf("delivery: deleting consumer %s on %s: %w", ConsumerName(name), k.name(), err)
}

// consumerKeys lists the subscription keys that have a consumer on any
// stream.
func (e *Engine) consumerKeys(ctx context.Context) (map[string]bool, error) {
	keys := map[string]bool{}
	for _, k := range streamKinds {
		s, err := e.o.JS.Stream(ctx, k.name())
		if err != nil {
			return nil, err
		}
		names := s.ConsumerNames(ctx)
		for n := range names.Name() {
			if key, ok := strings.CutPrefix(n, ConsumerPrefix); ok {
				keys[key] = true
			}
		}
		if err := names.Err(); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
