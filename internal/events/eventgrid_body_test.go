package events

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestEventGridBodyMatchesMarshal: the hand-written Event Grid body is
// what encoding/json makes of []EventGridEvent, for the events the hub
// makes and for hand-built ones (no data, spaced data, HTML characters).
func TestEventGridBodyMatchesMarshal(t *testing.T) {
	var batch []Event
	for _, ce := range []func() Event{
		func() Event { e, _ := FromConnection(testResource, connectedEvent(), Marks{}); return e },
		func() Event { e, _ := FromConnection(testResource, disconnectedEvent(), Marks{}); return e },
	} {
		batch = append(batch, ce())
	}
	odd := batch[1]
	odd.ID, odd.Subject, odd.DataVersion = "a<b>&\"c\u2028", "devices/é", ""
	batch = append(batch, odd,
		Event{ID: "no-data", Type: DeviceConnected, Time: t0},
		Event{ID: "spaced", Type: DeviceConnected, Time: t0.In(time.FixedZone("CET", 3600)), Data: json.RawMessage(`{ "a" : "<x>" }`)},
		Event{ID: "html", Type: DeviceConnected, Time: t0, Data: json.RawMessage(`{"a":"<&>"}`)})
	for n := 1; n <= len(batch); n++ {
		out := make([]EventGridEvent, n)
		for i, e := range batch[:n] {
			out[i] = e.EventGrid()
		}
		want, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendEventGrid(nil, batch[:n]); !bytes.Equal(got, want) {
			t.Errorf("%d events:\n got %s\nwant %s", n, got, want)
		}
	}
}

// TestDeliveryHeadersCanonical: the headers set without Header.Set are
// found by Get, as a client and the receiver look them up.
func TestDeliveryHeadersCanonical(t *testing.T) {
	e, _ := FromConnection(testResource, connectedEvent(), Marks{})
	s := Subscription{Name: "ops"}
	d, err := NewDelivery(s, []Event{e}, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	want := http.Header{}
	want.Set(HeaderEventType, EventTypeNotification)
	want.Set(HeaderSubscriptionName, "OPS")
	want.Set(HeaderDeliveryCount, "2")
	want.Set(HeaderDataVersion, e.DataVersion)
	want.Set(HeaderMetadataVersion, MetadataVersion)
	want.Set("Content-Type", ContentTypeEventGrid)
	for k := range want {
		if got := d.Header.Get(k); got != want.Get(k) || len(d.Header[k]) != 1 {
			t.Errorf("%s: %q, want %q", k, d.Header[k], want.Get(k))
		}
	}
	if len(d.Header) != len(want) {
		t.Errorf("headers %v, want %v", d.Header, want)
	}
}

func BenchmarkNewDelivery(b *testing.B) {
	e, _ := FromConnection(testResource, disconnectedEvent(), Marks{})
	s := Subscription{Name: "ops"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewDelivery(s, []Event{e}, 1, ""); err != nil {
			b.Fatal(err)
		}
	}
}
