package events

import "encoding/json"

// CloudEvents constants.
const (
	SpecVersion = "1.0"
	// DataContentType is the datacontenttype of every Tether event: data
	// is always a JSON value.
	DataContentType = "application/json"
)

// CloudEvent is an event in the CloudEvents 1.0 JSON format, as Event Grid
// delivers IoT Hub events with eventDeliverySchema CloudEventSchemaV1_0
// (reference/iothub-facts.md §1.4): the same id and data as the Event Grid
// form, source = topic, type = eventType, time = eventTime; no
// dataVersion or metadataVersion.
type CloudEvent struct {
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Subject         string          `json:"subject"`
	Type            string          `json:"type"`
	Time            string          `json:"time"`
	Data            json.RawMessage `json:"data"`
	SpecVersion     string          `json:"specversion"`
	DataContentType string          `json:"datacontenttype"`
}

// CloudEvent is e in the CloudEvents 1.0 schema.
func (e Event) CloudEvent() CloudEvent {
	return CloudEvent{
		ID:              e.ID,
		Source:          e.Topic,
		Subject:         e.Subject,
		Type:            string(e.Type),
		Time:            FormatTime(e.Time),
		Data:            dataOrNull(e.Data),
		SpecVersion:     SpecVersion,
		DataContentType: DataContentType,
	}
}
