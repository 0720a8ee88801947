package delivery

import (
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/insight"
	"github.com/tether-hub/tether/internal/journal"
)

// Tether's insight events (events.InsightEventTypes) come from
// TETHER_INSIGHTS. Only subscriptions that name one in includedEventTypes
// read that stream: a subscription with no types (or "All") gets IoT
// Hub's types, as it did before Tether had its own.

// insightOrderKey orders a subscription's insight events among themselves
// (they are about the fleet, not one device).
const insightOrderKey = "\x00insights"

// wantsInsights reports whether types names an insight event type.
func wantsInsights(types []events.EventType) bool {
	return slices.ContainsFunc(types, func(t events.EventType) bool {
		return slices.ContainsFunc(events.InsightEventTypes, func(v events.EventType) bool {
			return strings.EqualFold(string(t), string(v))
		})
	})
}

// insightSubjects are the TETHER_INSIGHTS subjects that become events
// (a device's flap change is a log record only).
func insightSubjects() []string {
	return []string{
		journal.InsightsPrefix + insight.KindMassDisconnect + ".*",
		journal.InsightsPrefix + insight.KindMassDisconnectResolved + ".*",
	}
}

// decodeInsight turns a TETHER_INSIGHTS message into its event.
func decodeInsight(res events.Resource, msg jetstream.Msg) (dev string, ev events.Event, ok bool, err error) {
	rec, err := insight.DecodeRecord(msg.Data())
	if err != nil {
		return "", events.Event{}, false, err
	}
	ev, ok = events.FromInsight(res, rec)
	return insightOrderKey, ev, ok, nil
}
