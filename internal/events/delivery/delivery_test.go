package delivery

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
)

// Timeline: d1 connects at t0 and drops at t0+41s; the receiver has
// DeviceConnected{d1} then DeviceDisconnected{d1}, as Event Grid POSTs
// (array body, aeg-* headers), and the consumer has acknowledged both.
func TestDeliversConnectionEvents(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("ops-alerts", rc.URL)

	c := v.conn("d1", presence.Connected)
	// Delivered as the engine sees it (the answer is in), not only as the
	// receiver does: advancing the clock with the POST still in flight
	// would fire its 30 s timeout.
	eventually(t, "connect delivered", func() bool { return len(rc.delivered()) == 1 && v.stats("ops-alerts").Delivered == 1 })
	v.clock.Advance(41 * time.Second)
	d := v.conn("d1", presence.Disconnected)
	eventually(t, "both events", func() bool { return len(rc.delivered()) == 2 })

	if got := rc.deliveredIDs("d1"); !equal(got, ids(c, d)) {
		t.Fatalf("delivered %v, want %v", got, ids(c, d))
	}
	p := rc.all()[0]
	h := p.Header
	if h.Get("aeg-event-type") != "Notification" || h.Get("aeg-subscription-name") != "OPS-ALERTS" ||
		h.Get("aeg-delivery-count") != "0" || h.Get("aeg-data-version") != "1" || h.Get("aeg-metadata-version") != "1" ||
		h.Get("Content-Type") != events.ContentTypeEventGrid {
		t.Errorf("headers %v", h)
	}
	e := p.Events[0]
	if e.EventType != string(events.DeviceConnected) || e.Subject != "devices/d1" || e.Data.DeviceID != "d1" || e.Data.Info.Seq != c.Sequence {
		t.Errorf("event %+v", e)
	}
	if rc.all()[1].Events[0].EventType != string(events.DeviceDisconnected) {
		t.Errorf("second %+v", rc.all()[1])
	}
	eventually(t, "acknowledged", func() bool {
		i := v.consumerInfo(journal.StreamConn, "ops-alerts")
		return i.NumAckPending == 0 && i.AckFloor.Stream == 2
	})
	if s := v.stats("ops-alerts"); s.Delivered != 2 || s.Buffered != 0 {
		t.Errorf("stats %+v", s)
	}
}

// A subscription whose endpoint is not validated (Creating,
// AwaitingManualAction, Failed, or Disabled by an operator) delivers
// nothing, but its consumer keeps the events: once it is validated they
// arrive, in order.
func TestValidationGatesDelivery(t *testing.T) {
	for _, state := range []events.ProvisioningState{events.Creating, events.AwaitingManualAction, events.Failed, events.Disabled} {
		t.Run(string(state), func(t *testing.T) {
			v := newEnv(t)
			rc := newReceiver(t, v.clock, nil)
			v.start()
			v.sub("pending", rc.URL, func(s *events.Subscription) { s.ProvisioningState = state })

			a := v.conn("d1", presence.Connected)
			b := v.conn("d1", presence.Disconnected)
			c := v.conn("d2", presence.Connected)
			eventually(t, "events held", func() bool { return v.stats("pending").Buffered == 3 })
			if n := rc.count(); n != 0 {
				t.Fatalf("%d POSTs to an endpoint in state %s", n, state)
			}
			if s := v.stats("pending"); s.Active {
				t.Errorf("stats %+v", s)
			}

			v.update("pending", func(s *events.Subscription) { s.ProvisioningState = events.Succeeded })
			eventually(t, "held events delivered", func() bool { return len(rc.delivered()) == 3 })
			if got := rc.deliveredIDs("d1"); !equal(got, ids(a, b)) {
				t.Errorf("d1 got %v, want %v", got, ids(a, b))
			}
			if got := rc.deliveredIDs("d2"); !equal(got, ids(c)) {
				t.Errorf("d2 got %v", got)
			}
		})
	}
}

// Filters: event types, subject prefix and an advanced filter on
// data.tether.reason decide what is delivered; what is filtered out is
// acknowledged (not held).
func TestFilters(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("plant1-drops", rc.URL, func(s *events.Subscription) {
		s.Filter.IncludedEventTypes = []events.EventType{events.DeviceDisconnected}
		s.Filter.SubjectBeginsWith = "devices/plant1-"
		s.Filter.AdvancedFilters = []events.AdvancedFilter{{
			OperatorType: events.StringIn, Key: "data.tether.reason", Values: []any{"keep-alive", "network"},
		}}
	})

	v.conn("plant1-a", presence.Connected)                                         // type filtered
	want := v.conn("plant1-a", presence.Disconnected)                              // keep-alive: delivered
	v.conn("plant2-b", presence.Connected)                                         // type
	v.conn("plant2-b", presence.Disconnected)                                      // subject
	v.conn("plant1-c", presence.Connected)                                         // type
	v.conn("plant1-c", presence.Disconnected, func(ce *presence.ConnectionEvent) { // reason
		ce.Reason = presence.ReasonServerShutdown
	})
	want2 := v.conn("PLANT1-d", presence.Disconnected, func(ce *presence.ConnectionEvent) { // subject ignores case
		ce.Reason = presence.ReasonNetwork
	})
	eventually(t, "all read", func() bool { return v.stats("plant1-drops").Received == 7 })
	eventually(t, "two delivered", func() bool { return len(rc.delivered()) == 2 })
	var gotIDs []string
	for _, e := range rc.delivered() {
		gotIDs = append(gotIDs, e.ID)
	}
	if !equal(gotIDs, ids(want, want2)) && !equal(gotIDs, ids(want2, want)) {
		t.Errorf("delivered %v, want %v", gotIDs, ids(want, want2))
	}
	if s := v.stats("plant1-drops"); s.Filtered != 5 {
		t.Errorf("stats %+v", s)
	}
	eventually(t, "filtered acknowledged", func() bool {
		return v.consumerInfo(journal.StreamConn, "plant1-drops").NumAckPending == 0
	})
}

// Batching: while the endpoint is busy, events of several devices queue;
// then they go in batches of at most maxEventsPerBatch, each device's
// events in order and a device in one batch at a time.
func TestBatching(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.MaxInFlightPerSub = 1 })
	release := make(chan struct{})
	first := true
	rc := newReceiver(t, v.clock, func(r *http.Request, p post) int {
		if first {
			first = false
			<-release
		}
		return http.StatusOK
	})
	v.start()
	v.sub("batched", rc.URL, func(s *events.Subscription) { s.Destination.Properties.MaxEventsPerBatch = 3 })

	var all []presence.ConnectionEvent
	all = append(all, v.conn("a", presence.Connected)) // goes alone, blocks the endpoint
	eventually(t, "first POST in flight", func() bool { return v.stats("batched").InFlight == 1 })
	for i := 0; i < 3; i++ {
		all = append(all, v.conn("a", presence.Disconnected), v.conn("b", presence.Connected), v.conn("a", presence.Connected))
	}
	eventually(t, "queued", func() bool { return v.stats("batched").Buffered == 10 })
	close(release)
	eventually(t, "all delivered", func() bool { return len(rc.delivered()) == 10 })

	for _, p := range rc.all() {
		if len(p.Events) > 3 {
			t.Errorf("batch of %d events", len(p.Events))
		}
	}
	if n := rc.count(); n < 4 {
		t.Errorf("%d POSTs for 10 events in batches of 3", n)
	}
	var wantA, wantB []string
	for _, ce := range all {
		if ce.DeviceID == "a" {
			wantA = append(wantA, id(ce))
		} else {
			wantB = append(wantB, id(ce))
		}
	}
	if got := rc.deliveredIDs("a"); !equal(got, wantA) {
		t.Errorf("a: %v, want %v", got, wantA)
	}
	if got := rc.deliveredIDs("b"); !equal(got, wantB) {
		t.Errorf("b: %v, want %v", got, wantB)
	}
	if o := rc.overlaps(); len(o) > 0 {
		t.Errorf("devices with concurrent POSTs: %v", o)
	}
}

// preferredBatchSizeInKilobytes closes a batch before it grows past the
// size; an event larger than the size goes alone.
func TestBatchSize(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.MaxInFlightPerSub = 1 })
	release := make(chan struct{})
	first := true
	rc := newReceiver(t, v.clock, func(r *http.Request, p post) int {
		if first {
			first = false
			<-release
		}
		return http.StatusOK
	})
	v.start()
	v.sub("sized", rc.URL, func(s *events.Subscription) {
		s.Destination.Properties.MaxEventsPerBatch = 100
		s.Destination.Properties.PreferredBatchSizeInKilobytes = 2
	})
	v.conn("x", presence.Connected)
	eventually(t, "first POST in flight", func() bool { return v.stats("sized").InFlight == 1 })
	for i := 0; i < 6; i++ {
		v.conn("x", presence.Disconnected, func(ce *presence.ConnectionEvent) { ce.Detail = strings.Repeat("z", 200) })
		v.conn("x", presence.Connected)
	}
	big := v.conn("x", presence.Disconnected, func(ce *presence.ConnectionEvent) { ce.Detail = strings.Repeat("z", 3000) })
	v.conn("x", presence.Connected)
	eventually(t, "queued", func() bool { return v.stats("sized").Buffered == 15 })
	close(release)
	eventually(t, "all delivered", func() bool { return len(rc.delivered()) == 15 })
	alone := false
	for _, p := range rc.all() {
		if len(p.Body) > 2048 && len(p.Events) > 1 {
			t.Errorf("batch of %d events, %d bytes", len(p.Events), len(p.Body))
		}
		if len(p.Events) == 1 && p.Events[0].ID == id(big) {
			alone = true
		}
	}
	if !alone {
		t.Error("the event larger than the preferred size did not go alone")
	}
	if n := rc.count(); n < 5 || n > 12 {
		t.Errorf("%d POSTs for 15 events", n)
	}
}

// CloudEvents subscriptions get application/cloudevents+json, one event
// per POST.
func TestCloudEventsDelivery(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("ce-hook", rc.URL, func(s *events.Subscription) { s.EventDeliverySchema = events.CloudEventSchemaV1_0 })
	c := v.conn("d1", presence.Connected)
	eventually(t, "delivered", func() bool { return len(rc.delivered()) == 1 })
	p := rc.all()[0]
	if p.Header.Get("Content-Type") != events.ContentTypeCloudEvent || p.Header.Get("aeg-metadata-version") != "1.0" ||
		p.Header.Get("WebHook-Request-Origin") != events.DefaultOrigin {
		t.Errorf("headers %v", p.Header)
	}
	var ce map[string]any
	if err := json.Unmarshal(p.Body, &ce); err != nil || ce["specversion"] != "1.0" || ce["id"] != id(c) {
		t.Errorf("body %s", p.Body)
	}
}

// Should the journal hold a device's connection events out of sequence
// order, those still queued are delivered in sequence order.
func TestSequenceOrderRestored(t *testing.T) {
	v := newEnv(t, func(o *Options) { o.MaxInFlightPerSub = 1 })
	release := make(chan struct{})
	first := true
	rc := newReceiver(t, v.clock, func(*http.Request, post) int {
		if first {
			first = false
			<-release
		}
		return http.StatusOK
	})
	v.start()
	v.sub("seq", rc.URL)
	v.conn("other", presence.Connected)
	eventually(t, "endpoint busy", func() bool { return v.stats("seq").InFlight == 1 })
	mk := func(n int, kind presence.Kind) presence.ConnectionEvent {
		seq := strings.Repeat("0", 63) + string(rune('0'+n))
		return presence.ConnectionEvent{ID: "d1/" + seq, Kind: kind, Time: v.clock.Now(), Hub: testHub, DeviceID: "d1", Sequence: seq}
	}
	e1, e2, e3 := mk(1, presence.Connected), mk(2, presence.Disconnected), mk(3, presence.Connected)
	for _, ce := range []presence.ConnectionEvent{e1, e3, e2} {
		v.publishConn(ce)
	}
	eventually(t, "queued", func() bool { return v.stats("seq").Buffered == 4 })
	close(release)
	eventually(t, "delivered", func() bool { return len(rc.delivered()) == 4 })
	if got := rc.deliveredIDs("d1"); !equal(got, ids(e1, e2, e3)) {
		t.Errorf("%v, want %v", got, ids(e1, e2, e3))
	}
}
