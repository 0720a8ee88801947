package events

import (
	"encoding/json"

	"github.com/tether-hub/tether/internal/jsonenc"
)

// EventGridEvent is an event in the Event Grid schema, members in the order
// of IoT Hub's samples (reference/iothub-facts.md §1.2). Every member is
// always written: @azure/eventgrid requires all of them as strings (data
// present, metadataVersion "1"), and dataVersion "" is a valid value.
type EventGridEvent struct {
	ID              string          `json:"id"`
	Topic           string          `json:"topic"`
	Subject         string          `json:"subject"`
	EventType       string          `json:"eventType"`
	EventTime       string          `json:"eventTime"`
	Data            json.RawMessage `json:"data"`
	DataVersion     string          `json:"dataVersion"`
	MetadataVersion string          `json:"metadataVersion"`
}

// EventGrid is e in the Event Grid schema.
func (e Event) EventGrid() EventGridEvent {
	return EventGridEvent{
		ID:              e.ID,
		Topic:           e.Topic,
		Subject:         e.Subject,
		EventType:       string(e.Type),
		EventTime:       FormatTime(e.Time),
		Data:            dataOrNull(e.Data),
		DataVersion:     e.DataVersion,
		MetadataVersion: MetadataVersion,
	}
}

// dataOrNull keeps an Event built by hand without data encodable.
func dataOrNull(d json.RawMessage) json.RawMessage {
	if len(d) == 0 {
		return json.RawMessage("null")
	}
	return d
}

// appendEventGrid appends batch as encoding/json writes []EventGridEvent
// of it (the Event Grid POST body), without reflection and without
// re-compacting each event's data: events.Data comes from json.Marshal
// (FromConnection and the others), so it is compact already; data that
// might not be (jsonenc.IsCompact) takes encoding/json.
// TestEventGridBodyMatchesMarshal holds the two together.
func appendEventGrid(b []byte, batch []Event) []byte {
	b = append(b, '[')
	for i, e := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		data := dataOrNull(e.Data)
		if !jsonenc.IsCompact(data) {
			b = append(b, mustMarshal(e.EventGrid())...)
			continue
		}
		b = append(b, `{"id":`...)
		b = jsonenc.String(b, e.ID)
		b = append(b, `,"topic":`...)
		b = jsonenc.String(b, e.Topic)
		b = append(b, `,"subject":`...)
		b = jsonenc.String(b, e.Subject)
		b = append(b, `,"eventType":`...)
		b = jsonenc.String(b, string(e.Type))
		b = append(b, `,"eventTime":`...)
		b = jsonenc.String(b, FormatTime(e.Time))
		b = append(b, `,"data":`...)
		b = append(b, data...)
		b = append(b, `,"dataVersion":`...)
		b = jsonenc.String(b, e.DataVersion)
		b = append(b, `,"metadataVersion":"`+MetadataVersion+`"}`...)
	}
	return append(b, ']')
}
