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
	if len(batch) == 0 {
		return Delivery{}, ErrEmptyBatch
	}
	if attempt < 1 {
		attempt = 1
	}
	// Keys in canonical form, set directly: Header.Set would canonicalise
	// each on every POST (TestDeliveryHeadersCanonical).
	h := make(http.Header, 7)
	h[canonEventType] = []string{EventTypeNotification}
	h[canonSubscriptionName] = []string{s.HeaderName()}
	h[canonDeliveryCount] = []string{strconv.Itoa(attempt - 1)}
	h[canonDataVersion] = []string{batch[0].DataVersion}
	var body []byte
	if s.EventDeliverySchema == CloudEventSchemaV1_0 {
		h.Set(HeaderMetadataVersion, SpecVersion)
		if origin == "" {
			origin = DefaultOrigin
		}
		h.Set(HeaderWebHookOrigin, origin)
		if len(batch) == 1 {
			h.Set("Content-Type", ContentTypeCloudEvent)
			body = mustMarshal(batch[0].CloudEvent())
		} else {
			h.Set("Content-Type", ContentTypeCloudEventBatch)
			out := make([]CloudEvent, len(batch))
			for i, e := range batch {
				out[i] = e.CloudEvent()
			}
			body = mustMarshal(out)
		}
	} else {
		h[canonMetadataVersion] = []string{MetadataVersion}
		h["Content-Type"] = []string{ContentTypeEventGrid}
		body = appendEventGrid(make([]byte, 0, 1024*len(batch)), batch)
	}
	return Delivery{Header: h, Body: body}, nil
}

// The aeg-* header names as http.Header keys them.
var (
	canonEventType        = http.CanonicalHeaderKey(HeaderEventType)
	canonSubscriptionName = http.CanonicalHeaderKey(HeaderSubscriptionName)
	canonDeliveryCount    = http.CanonicalHeaderKey(HeaderDeliveryCount)
	canonDataVersion      = http.CanonicalHeaderKey(HeaderDataVersion)
	canonMetadataVersion  = http.CanonicalHeaderKey(HeaderMetadataVersion)
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
