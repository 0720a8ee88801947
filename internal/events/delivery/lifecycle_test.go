package delivery

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

func (v *env) hasConsumer(stream, name string) bool {
	_, err := v.j.JS.Consumer(v.ctx, stream, ConsumerName(name))
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		v.t.Fatal(err)
	}
	return err == nil
}

// DeviceCreated/DeviceDeleted come from TETHER_REGISTRY and
// DeviceTelemetry from TETHER_TELEMETRY, each read only by subscriptions
// that include those types.
func TestRegistryAndTelemetry(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, nil)
	v.start()
	v.sub("lifecycle", rc.URL, func(s *events.Subscription) {
		s.Filter.IncludedEventTypes = []events.EventType{events.DeviceCreated, events.DeviceDeleted, events.DeviceTelemetry}
	})
	if v.hasConsumer(journal.StreamConn, "lifecycle") || !v.hasConsumer(journal.StreamRegistry, "lifecycle") ||
		!v.hasConsumer(journal.StreamTelemetry, "lifecycle") {
		t.Fatal("consumers do not follow includedEventTypes")
	}
	cr := v.change("d1", registry.OpCreated)
	v.change("d1", registry.OpUpdated) // no event
	v.conn("d1", presence.Connected)   // not subscribed
	eventually(t, "created", func() bool { return len(rc.deliveredIDs("d1")) == 1 })
	v.telemetry("d1", `{"t":21.5}`)
	eventually(t, "telemetry", func() bool { return len(rc.deliveredIDs("d1")) == 2 })
	del := v.change("d1", registry.OpDeleted)
	eventually(t, "deleted", func() bool { return len(rc.deliveredIDs("d1")) == 3 })

	got := rc.delivered()
	if got[0].ID != changeID(cr) || got[0].EventType != string(events.DeviceCreated) || got[2].ID != changeID(del) ||
		got[1].EventType != string(events.DeviceTelemetry) {
		t.Errorf("%+v", got)
	}
	var body []struct {
		Data events.TelemetryData `json:"data"`
	}
	for _, p := range rc.all() {
		if p.Events[0].EventType == string(events.DeviceTelemetry) {
			_ = json.Unmarshal(p.Body, &body)
			if p.Header.Get("aeg-data-version") != "" {
				t.Errorf("telemetry aeg-data-version %q", p.Header.Get("aeg-data-version"))
			}
		}
	}
	if len(body) != 1 || string(body[0].Data.Body) != `{"t":21.5}` || body[0].Data.Properties["Status"] != "Active" ||
		body[0].Data.SystemProperties[events.SysDeviceID] != "d1" || body[0].Data.SystemProperties["message-id"] != "m-1" {
		t.Errorf("telemetry %+v (%s)", body, base64.StdEncoding.EncodeToString(body[0].Data.Body))
	}
}

// Create → consumers; update the definition → same consumers, same
// position (events published meanwhile are delivered); narrow the types →
// the other consumers go; delete → consumers and dead letters go. Start
// removes consumers whose subscription was deleted while the engine was
// down.
func TestSubscriptionLifecycle(t *testing.T) {
	v := newEnv(t)
	rc := newReceiver(t, v.clock, func(_ *http.Request, p post) int {
		if p.Events[0].Subject == "devices/dead" {
			return http.StatusNotFound
		}
		return http.StatusOK
	})
	v.start()
	v.sub("life", rc.URL)
	for _, s := range []string{journal.StreamConn, journal.StreamRegistry, journal.StreamTelemetry} {
		if !v.hasConsumer(s, "life") {
			t.Fatalf("no consumer on %s", s)
		}
	}
	a := v.conn("d1", presence.Connected)
	eventually(t, "a", func() bool { return len(rc.delivered()) == 1 })
	v.conn("dead", presence.Connected)
	eventually(t, "dead letter", func() bool { return v.stats("life").DeadLettered == 1 })

	v.update("life", func(s *events.Subscription) {
		s.Filter.IncludedEventTypes = []events.EventType{events.DeviceConnected, events.DeviceDisconnected}
		s.Filter.SubjectBeginsWith = "devices/d"
	})
	if !v.hasConsumer(journal.StreamConn, "life") || v.hasConsumer(journal.StreamRegistry, "life") ||
		v.hasConsumer(journal.StreamTelemetry, "life") {
		t.Fatal("consumers after narrowing the types")
	}
	b := v.conn("d1", presence.Disconnected)
	eventually(t, "b", func() bool { return equal(rc.deliveredIDs("d1"), ids(a, b)) })

	if _, err := v.j.JS.CreateOrUpdateConsumer(v.ctx, journal.StreamConn, jetstream.ConsumerConfig{Durable: ConsumerName("gone")}); err != nil {
		t.Fatal(err)
	}
	if err := v.store.Delete(v.ctx, "life", 0); err != nil {
		t.Fatal(err)
	}
	if err := v.eng.Reload(v.ctx, "life"); err != nil {
		t.Fatal(err)
	}
	if v.hasConsumer(journal.StreamConn, "life") {
		t.Error("consumer left after delete")
	}
	if _, ok := v.eng.StatsOf("life"); ok {
		t.Error("stats left after delete")
	}
	if l, _ := v.eng.DeadLetters(v.ctx, "life", 0); len(l) != 0 {
		t.Errorf("dead letters left after delete: %d", len(l))
	}
	if _, err := v.eng.Replay(v.ctx, "life"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("replay of a deleted subscription: %v", err)
	}

	// A second engine's Start removes the orphan consumer.
	v.start()
	if v.hasConsumer(journal.StreamConn, "gone") {
		t.Error("orphan consumer kept")
	}
}
