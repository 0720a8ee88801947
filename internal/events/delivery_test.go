package events

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func orderedSamples() []Event {
	ev := sampleEvents()
	return []Event{ev["created"], ev["connected"], ev["disconnected"], ev["telemetry-json"]}
}

func TestDeliveryEventGrid(t *testing.T) {
	s := validSub()
	s.ApplyDefaults()
	batch := orderedSamples()
	d, err := NewDelivery(s, batch[:1], 1, "hub.example")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/json; charset=utf-8", "aeg-event-type": "Notification",
		"aeg-subscription-name": "OPS-ALERTS", "aeg-delivery-count": "0", "aeg-data-version": "1",
		"aeg-metadata-version": "1", "WebHook-Request-Origin": "",
	} {
		if got := d.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	var one []EventGridEvent
	if err := json.Unmarshal(d.Body, &one); err != nil || len(one) != 1 || one[0].ID != batch[0].ID {
		t.Errorf("one event is an array of one: %s", d.Body)
	}

	d, _ = NewDelivery(s, batch, 3, "")
	if d.Header.Get("aeg-delivery-count") != "2" {
		t.Errorf("third attempt: %q", d.Header.Get("aeg-delivery-count"))
	}
	var all []EventGridEvent
	if err := json.Unmarshal(d.Body, &all); err != nil || len(all) != 4 {
		t.Fatalf("%s %v", d.Body, err)
	}
	for i := range all {
		if all[i].ID != batch[i].ID {
			t.Errorf("order changed at %d", i)
		}
	}
	golden(t, "delivery/batch.eventgrid.json", json.RawMessage(d.Body))
	if _, err := NewDelivery(s, nil, 1, ""); !errors.Is(err, ErrEmptyBatch) {
		t.Error(err)
	}
}

func TestDeliveryCloudEvents(t *testing.T) {
	s := validSub()
	s.EventDeliverySchema = CloudEventSchemaV1_0
	s.ApplyDefaults()
	batch := orderedSamples()
	d, err := NewDelivery(s, batch[3:], 1, "hub.example")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"Content-Type": "application/cloudevents+json; charset=utf-8", "aeg-event-type": "Notification",
		"aeg-subscription-name": "OPS-ALERTS", "aeg-delivery-count": "0", "aeg-data-version": "",
		"aeg-metadata-version": "1.0", "WebHook-Request-Origin": "hub.example",
	} {
		if got := d.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	var one CloudEvent
	if err := json.Unmarshal(d.Body, &one); err != nil || one.ID != batch[3].ID || one.SpecVersion != "1.0" {
		t.Errorf("one event is an object: %s", d.Body)
	}
	golden(t, "delivery/single.cloudevents.json", json.RawMessage(d.Body))

	d, _ = NewDelivery(s, batch, 1, "")
	if got := d.Header.Get("Content-Type"); got != "application/cloudevents-batch+json; charset=utf-8" {
		t.Errorf("batch content type %q", got)
	}
	if d.Header.Get("WebHook-Request-Origin") != DefaultOrigin {
		t.Error("default origin")
	}
	var all []CloudEvent
	if err := json.Unmarshal(d.Body, &all); err != nil || len(all) != 4 || all[1].ID != batch[1].ID {
		t.Errorf("%s %v", d.Body, err)
	}
}

func TestBatches(t *testing.T) {
	mk := func(n int, dataBytes int) []Event {
		out := make([]Event, n)
		for i := range out {
			out[i] = Event{ID: string(rune('a' + i)), Type: DeviceConnected, Subject: "devices/d",
				Data: json.RawMessage(`"` + strings.Repeat("x", dataBytes) + `"`)}
		}
		return out
	}
	sizes := func(bs [][]Event) []int {
		var n []int
		for _, b := range bs {
			n = append(n, len(b))
		}
		return n
	}
	s := validSub()
	if got := sizes(Batches(s, mk(3, 10))); len(got) != 3 {
		t.Errorf("default: one event per batch, got %v", got)
	}
	s.Destination.Properties.MaxEventsPerBatch = 2
	if got := sizes(Batches(s, mk(5, 10))); len(got) != 3 || got[0] != 2 || got[2] != 1 {
		t.Errorf("max 2: %v", got)
	}
	// Size: 1 KB preferred, events of ~400 bytes: two fit, not three.
	s.Destination.Properties.MaxEventsPerBatch = 100
	s.Destination.Properties.PreferredBatchSizeInKilobytes = 1
	if got := sizes(Batches(s, mk(5, 250))); len(got) != 3 || got[0] != 2 {
		t.Errorf("1 KB: %v", got)
	}
	// An event larger than the preferred size still goes, alone.
	big := append(mk(1, 10), mk(1, 5000)...)
	big = append(big, mk(1, 10)...)
	if got := sizes(Batches(s, big)); len(got) != 3 || got[1] != 1 {
		t.Errorf("oversized: %v", got)
	}
	// Order is kept.
	flat := []string{}
	for _, b := range Batches(s, mk(5, 250)) {
		for _, e := range b {
			flat = append(flat, e.ID)
		}
	}
	if strings.Join(flat, "") != "abcde" {
		t.Errorf("order %v", flat)
	}
	if Batches(s, nil) != nil {
		t.Error("no events, no batches")
	}
}

func TestDeadLetterJSON(t *testing.T) {
	d := DeadLetter{
		Event: sampleEvents()["disconnected"], Reason: DeadLetterMaxAttempts, DeliveryAttempts: 30,
		LastDeliveryOutcome: "NotFound", LastHTTPStatus: 404, LastError: "404 Not Found",
		PublishTime:             time.Date(2018, 6, 2, 19, 18, 25, 500000000, time.UTC),
		LastDeliveryAttemptTime: time.Date(2018, 6, 3, 19, 18, 25, 0, time.UTC),
	}
	golden(t, "deadletter/disconnected.eventgrid.json", d.JSON(EventGridSchema))
	golden(t, "deadletter/disconnected.cloudevents.json", d.JSON(CloudEventSchemaV1_0))
}
