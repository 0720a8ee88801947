package events

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Delivery is one webhook POST of a batch of events: body and headers
// (Content-Type included). The delivery engine sends it; 200–204 is
// success (reference/iothub-facts.md §1.9).
type Delivery struct {
	Header http.Header
	Body   []byte
}

// ErrEmptyBatch is returned for a batch without events.
var ErrEmptyBatch = errors.New("events: empty batch")

// NewDelivery builds the POST of batch for subscription s, for the
// attempt-th time (1 for the first), with these headers:
//
//	Content-Type           Event Grid: application/json; charset=utf-8
//	                       CloudEvents: application/cloudevents+json; charset=utf-8 (one event)
//	                                    application/cloudevents-batch+json; charset=utf-8 (several)
//	aeg-event-type         Notification
//	aeg-subscription-name  the name in upper case
//	aeg-delivery-count     attempts before this one: "0" on the first (as community samples show
//	                       Event Grid sending; Microsoft does not document the base)
//	aeg-data-version       dataVersion of the first event ("1", or "" for telemetry)
//	aeg-metadata-version   "1" (Event Grid schema) or "1.0" (CloudEvents: the spec version)
//	WebHook-Request-Origin origin, on CloudEvents deliveries (the webhook spec asks senders to
//	                       repeat the origin of the handshake on every delivery)
//
// Body: Event Grid, a JSON array of the events (one event is an array of
// one); CloudEvents, one event as a JSON object, several as an array.
func NewDelivery(s Subscription, batch []Event, attempt int, origin string) (Delivery, error) {
	fields, body, err := AppendDelivery(nil, nil, s, batch, attempt, origin)
	if err != nil {
		return Delivery{}, err
	}
	h := make(http.Header, len(fields))
	for _, f := range fields {
		h[f.Key] = []string{f.Value}
	}
	return Delivery{Header: h, Body: body}, nil
}

// HeaderField is one header of a delivery, its key in canonical form.
type HeaderField struct{ Key, Value string }

// AppendDelivery is NewDelivery with the headers appended to fields, in
// a fixed order, instead of put in a map: for a sender that writes them
// itself (the delivery engine's direct webhook sender, once per POST; the
// map and its value slices were a fifth of building a POST). An Event
// Grid body is appended to body[:0] (a buffer the sender reuses; nil
// makes one).
func AppendDelivery(fields []HeaderField, body []byte, s Subscription, batch []Event, attempt int, origin string) ([]HeaderField, []byte, error) {
	if len(batch) == 0 {
		return fields, nil, ErrEmptyBatch
	}
	if attempt < 1 {
		attempt = 1
	}
	// Keys in canonical form, set directly: canonicalising each on every
	// POST showed in profiles (TestDeliveryHeadersCanonical).
	fields = append(fields,
		HeaderField{canonEventType, EventTypeNotification},
		HeaderField{canonSubscriptionName, s.HeaderName()},
		HeaderField{canonDeliveryCount, strconv.Itoa(attempt - 1)},
		HeaderField{canonDataVersion, batch[0].DataVersion})
	if s.EventDeliverySchema == CloudEventSchemaV1_0 {
		if origin == "" {
			origin = DefaultOrigin
		}
		fields = append(fields, HeaderField{canonMetadataVersion, SpecVersion}, HeaderField{canonWebHookOrigin, origin})
		if len(batch) == 1 {
			fields = append(fields, HeaderField{"Content-Type", ContentTypeCloudEvent})
			body = mustMarshal(batch[0].CloudEvent())
		} else {
			fields = append(fields, HeaderField{"Content-Type", ContentTypeCloudEventBatch})
			out := make([]CloudEvent, len(batch))
			for i, e := range batch {
				out[i] = e.CloudEvent()
			}
			body = mustMarshal(out)
		}
	} else {
		fields = append(fields, HeaderField{canonMetadataVersion, MetadataVersion}, HeaderField{"Content-Type", ContentTypeEventGrid})
		if body == nil {
			body = make([]byte, 0, 1024*len(batch))
		}
		body = appendEventGrid(body[:0], batch)
	}
	return fields, body, nil
}

// The aeg-* header names as http.Header keys them.
var (
	canonEventType        = http.CanonicalHeaderKey(HeaderEventType)
	canonSubscriptionName = http.CanonicalHeaderKey(HeaderSubscriptionName)
	canonDeliveryCount    = http.CanonicalHeaderKey(HeaderDeliveryCount)
	canonDataVersion      = http.CanonicalHeaderKey(HeaderDataVersion)
	canonMetadataVersion  = http.CanonicalHeaderKey(HeaderMetadataVersion)
	canonWebHookOrigin    = http.CanonicalHeaderKey(HeaderWebHookOrigin)
)

// Batches splits events (already in delivery order) into POST batches
// under s's batching options, as Event Grid batches: at most
// maxEventsPerBatch events, and events are added while the batch stays
// within preferredBatchSizeInKilobytes; an event larger than that goes
// alone. Batching never waits for events; order is kept.
func Batches(s Subscription, events []Event) [][]Event {
	maxEvents := s.BatchLimit()
	kb := s.Destination.Properties.PreferredBatchSizeInKilobytes
	if kb <= 0 {
		kb = DefaultPreferredBatchSizeKB
	}
	limit := kb * 1024
	var (
		out  [][]Event
		cur  []Event
		size int
	)
	for _, e := range events {
		n := encodedSize(s.EventDeliverySchema, e)
		if len(cur) > 0 && (len(cur) == maxEvents || size+n > limit) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// encodedSize is the size of e in schema plus a separator.
func encodedSize(schema Schema, e Event) int { return len(Encode(schema, e)) + 1 }

// Encode is e as one JSON object in schema: a stream message, the event
// in a mail.
func Encode(schema Schema, e Event) json.RawMessage {
	if schema == CloudEventSchemaV1_0 {
		return mustMarshal(e.CloudEvent())
	}
	return mustMarshal(e.EventGrid())
}
