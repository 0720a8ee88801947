package events

import "encoding/json"

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
