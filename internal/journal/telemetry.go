package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/telemetry"
)

// Headers of tether.telemetry.<device> messages; the payload is the
// message body as the device sent it.
const (
	HeaderEnqueuedTime     = "Tether-Enqueued-Time"     // RFC 3339, nanoseconds
	HeaderDeviceID         = "Tether-Device-Id"         // the sending device
	HeaderProperties       = "Tether-Properties"        // JSON object: application properties
	HeaderSystemProperties = "Tether-System-Properties" // JSON object: message-id, content-type …
)

// TelemetryMsg is m as a message for the Publisher: no id, since
// telemetry is not de-duplicated (a device's retry is a new message).
func TelemetryMsg(m telemetry.Message) Msg {
	return Msg{Subject: TelemetrySubject(m.DeviceID), Data: m.Payload, Header: TelemetryHeader(m)}
}

// TelemetryHeader is the header of m's journal message. Empty property
// maps are left out.
func TelemetryHeader(m telemetry.Message) nats.Header {
	h := nats.Header{}
	h.Set(HeaderEnqueuedTime, m.EnqueuedTime.Format(time.RFC3339Nano))
	h.Set(HeaderDeviceID, m.DeviceID)
	// A map[string]string always marshals.
	if len(m.Properties) > 0 {
		b, _ := json.Marshal(m.Properties)
		h.Set(HeaderProperties, string(b))
	}
	if len(m.SystemProperties) > 0 {
		b, _ := json.Marshal(m.SystemProperties)
		h.Set(HeaderSystemProperties, string(b))
	}
	return h
}

// DecodeTelemetry reads a TETHER_TELEMETRY message back (from a
// subscription or a consumer: pass its subject, header and data). The
// device id falls back to the subject's token. What is missing or
// malformed is left zero and reported in the error, which wraps
// ErrMalformed; the rest of m, the payload always, is still returned,
// since a message with a bad header is still the device's message.
func DecodeTelemetry(subject string, h nats.Header, data []byte) (telemetry.Message, error) {
	m := telemetry.Message{Payload: data, DeviceID: h.Get(HeaderDeviceID)}
	var errs []error
	if m.DeviceID == "" {
		tok, ok := strings.CutPrefix(subject, TelemetryPrefix)
		if id, decoded := DecodeToken(tok); ok && decoded && id != "" {
			m.DeviceID = id
		} else {
			errs = append(errs, fmt.Errorf("no %s header and subject %q names no device", HeaderDeviceID, subject))
		}
	}
	var err error
	if m.EnqueuedTime, err = enqueuedTime(h); err != nil {
		errs = append(errs, err)
	}
	if m.Properties, err = properties(h, HeaderProperties); err != nil {
		errs = append(errs, err)
	}
	if m.SystemProperties, err = properties(h, HeaderSystemProperties); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return m, fmt.Errorf("%w: telemetry on %s: %w", ErrMalformed, subject, errors.Join(errs...))
	}
	return m, nil
}

// TelemetryTime is the enqueued time in h, ok false when it has none
// that parses: all a consumer that only counts messages needs to read.
func TelemetryTime(h nats.Header) (t time.Time, ok bool) {
	t, err := enqueuedTime(h)
	return t, err == nil
}

func enqueuedTime(h nats.Header) (time.Time, error) {
	v := h.Get(HeaderEnqueuedTime)
	if v == "" {
		return time.Time{}, fmt.Errorf("no %s header", HeaderEnqueuedTime)
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", HeaderEnqueuedTime, err)
	}
	return t, nil
}

// properties is the JSON object in header name of h, nil when absent.
func properties(h nats.Header, name string) (map[string]string, error) {
	v := h.Get(name)
	if v == "" {
		return nil, nil
	}
	var p map[string]string
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}
