package journal

// Headers of tether.telemetry.<device> messages; the payload is the
// message body as the device sent it.
const (
	HeaderEnqueuedTime     = "Tether-Enqueued-Time"     // RFC 3339, nanoseconds
	HeaderDeviceID         = "Tether-Device-Id"         // the sending device
	HeaderProperties       = "Tether-Properties"        // JSON object: application properties
	HeaderSystemProperties = "Tether-System-Properties" // JSON object: message-id, content-type …
)
