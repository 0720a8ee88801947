package events

import (
	"encoding/json"
	"strings"
	"time"
)

// EventType is an Event Grid event type.
type EventType string

// IoT Hub event types (reference/iothub-facts.md §1.1) and Event Grid's own
// validation event.
const (
	DeviceCreated      EventType = "Microsoft.Devices.DeviceCreated"
	DeviceDeleted      EventType = "Microsoft.Devices.DeviceDeleted"
	DeviceConnected    EventType = "Microsoft.Devices.DeviceConnected"
	DeviceDisconnected EventType = "Microsoft.Devices.DeviceDisconnected"
	DeviceTelemetry    EventType = "Microsoft.Devices.DeviceTelemetry"

	SubscriptionValidationEvent EventType = "Microsoft.EventGrid.SubscriptionValidationEvent"
)

// HubEventTypes are the types a subscription can ask for, in the order
// IoT Hub's documentation lists them.
var HubEventTypes = []EventType{DeviceCreated, DeviceDeleted, DeviceConnected, DeviceDisconnected, DeviceTelemetry}

// ParseEventType returns the canonical spelling of a hub event type (or of
// one of Tether's InsightEventTypes), matched without regard to case; ok is
// false for anything else.
func ParseEventType(s string) (EventType, bool) {
	for _, t := range append(HubEventTypes[:len(HubEventTypes):len(HubEventTypes)], InsightEventTypes...) {
		if strings.EqualFold(s, string(t)) {
			return t, true
		}
	}
	return "", false
}

// Data versions (dataVersion) by event type: "1" for connection and
// lifecycle events as in IoT Hub's samples, "" for telemetry.
const (
	DataVersionHub       = "1"
	DataVersionTelemetry = ""
)

// MetadataVersion is Event Grid's envelope version.
const MetadataVersion = "1"

// Event is one event, independent of the wire schema. Build it with
// FromConnection, FromChange or FromTelemetry; encode it with EventGrid,
// CloudEvent or NewDelivery.
type Event struct {
	// ID is stable for the source record (see id.go).
	ID   string
	Type EventType
	// Topic is the hub's resource id (Event Grid "topic", CloudEvents
	// "source").
	Topic string
	// Subject is "devices/{deviceId}".
	Subject     string
	Time        time.Time
	DataVersion string
	// Data is the encoded data object, the same in both schemas.
	Data json.RawMessage

	// DeviceID and Sequence are for the delivery engine's per-device
	// ordering; they are not written on the wire as such (both appear in
	// Data where IoT Hub has them). Sequence is empty for events other than
	// DeviceConnected/DeviceDisconnected.
	DeviceID string
	Sequence string
}

// Subject is the Event Grid subject of a device's events.
func Subject(deviceID string) string { return "devices/" + deviceID }
