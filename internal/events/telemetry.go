package events

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tether-hub/tether/internal/telemetry"
)

// TelemetryData is data of DeviceTelemetry (reference/iothub-facts.md §1.6).
type TelemetryData struct {
	// Body is the message as JSON when its content type is
	// application/json and its encoding utf-8 (both without regard to
	// case) and it parses as JSON; otherwise the base64 of its bytes, as a
	// JSON string.
	Body             json.RawMessage   `json:"body"`
	Properties       map[string]string `json:"properties"`
	SystemProperties map[string]string `json:"systemProperties"`
}

// System property names of DeviceTelemetry (IoT Hub's names for the
// message's system properties when it reaches Event Grid).
const (
	SysContentType     = "iothub-content-type"
	SysContentEncoding = "iothub-content-encoding"
	SysDeviceID        = "iothub-connection-device-id"
	SysModuleID        = "iothub-connection-module-id"
	SysEnqueuedTime    = "iothub-enqueuedtime"
	SysMessageSource   = "iothub-message-source"
)

// TelemetrySourceID names a telemetry message by its position in the
// journal (stream and stream sequence), the only stable name such a
// message has: redelivering it gives the same event id. Use the message's
// Nats-Msg-Id instead when it has one.
func TelemetrySourceID(stream string, seq uint64) string {
	return stream + "/" + strconv.FormatUint(seq, 10)
}

// FromTelemetry is the DeviceTelemetry event of message m received by hub
// (host name). sourceID names the message stably (TelemetrySourceID).
//
// System properties: content-type and content-encoding become
// iothub-content-type and iothub-content-encoding; the hub adds
// iothub-connection-device-id (and -module-id), iothub-enqueuedtime and
// iothub-message-source "Telemetry"; other system properties the device
// set (message-id, correlation-id, …) keep their names.
// iothub-connection-auth-method and -auth-generation-id are not known to
// the telemetry path and are left out.
func FromTelemetry(r Resource, hub string, m telemetry.Message, sourceID string) Event {
	sys := make(map[string]string, len(m.SystemProperties)+5)
	for k, v := range m.SystemProperties {
		switch k {
		case "content-type":
			k = SysContentType
		case "content-encoding":
			k = SysContentEncoding
		}
		sys[k] = v
	}
	sys[SysDeviceID] = m.DeviceID
	if m.ModuleID != "" {
		sys[SysModuleID] = m.ModuleID
	}
	sys[SysEnqueuedTime] = FormatTime(m.EnqueuedTime)
	sys[SysMessageSource] = "Telemetry"
	props := m.Properties
	if props == nil {
		props = map[string]string{}
	}
	data := TelemetryData{
		Body:             renderBody(m.Payload, sys[SysContentType], sys[SysContentEncoding]),
		Properties:       props,
		SystemProperties: sys,
	}
	return Event{
		ID:          eventID(hub, sourceTelemetry, sourceID),
		Type:        DeviceTelemetry,
		Topic:       r.ID(hub),
		Subject:     Subject(m.DeviceID),
		Time:        m.EnqueuedTime,
		DataVersion: DataVersionTelemetry,
		Data:        mustMarshal(data),
		DeviceID:    m.DeviceID,
	}
}

// renderBody is the body member: the payload itself when it is declared and
// valid JSON in UTF-8, else a JSON string of its base64.
func renderBody(payload []byte, contentType, encoding string) json.RawMessage {
	if strings.EqualFold(strings.TrimSpace(contentType), "application/json") &&
		strings.EqualFold(strings.TrimSpace(encoding), "utf-8") &&
		len(payload) > 0 && utf8.Valid(payload) && json.Valid(payload) {
		return json.RawMessage(payload)
	}
	return mustMarshal(payload) // []byte encodes as a base64 string
}
