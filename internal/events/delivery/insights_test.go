package delivery

import (
	"slices"
	"testing"

	"github.com/tether-hub/tether/internal/events"
)

// Only subscriptions that name an insight type read TETHER_INSIGHTS:
// those written for IoT Hub's types (or none, or All) do not start
// receiving Tether's.
func TestInsightStreamOnlyWhenNamed(t *testing.T) {
	sub := func(types ...events.EventType) events.Subscription {
		var s events.Subscription
		s.Filter.IncludedEventTypes = types
		return s
	}
	for _, c := range []struct {
		s    events.Subscription
		want bool
	}{
		{sub(), false},
		{sub(events.DeviceConnected, events.DeviceDisconnected), false},
		{sub(events.MassDisconnect), true},
		{sub("tether.insights.massdisconnect", events.DeviceCreated), true},
	} {
		if got := slices.Contains(streamsFor(c.s), streamInsights); got != c.want {
			t.Errorf("types %v: reads insights %v, want %v", c.s.Filter.IncludedEventTypes, got, c.want)
		}
	}
	if got := streamsFor(sub(events.MassDisconnect)); len(got) != 1 {
		t.Errorf("an insight-only subscription reads %v", got)
	}
}
