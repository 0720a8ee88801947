package events

import "strings"

// Schema is a subscription's eventDeliverySchema.
type Schema string

const (
	EventGridSchema      Schema = "EventGridSchema"
	CloudEventSchemaV1_0 Schema = "CloudEventSchemaV1_0"
)

// ParseSchema returns the canonical spelling of a delivery schema, matched
// without regard to case. Event Grid's CustomInputSchema is not offered:
// ok is false for it and anything else.
func ParseSchema(s string) (Schema, bool) {
	for _, v := range []Schema{EventGridSchema, CloudEventSchemaV1_0} {
		if strings.EqualFold(s, string(v)) {
			return v, true
		}
	}
	return "", false
}

// Content types of webhook bodies (reference/iothub-facts.md §1.4).
const (
	ContentTypeEventGrid       = "application/json; charset=utf-8"
	ContentTypeCloudEvent      = "application/cloudevents+json; charset=utf-8"
	ContentTypeCloudEventBatch = "application/cloudevents-batch+json; charset=utf-8"
)
