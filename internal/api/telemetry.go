package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/tether-hub/tether/internal/registry"
)

// telemetryBuffer bounds the messages queued for one slow stream reader;
// beyond it messages are dropped and the reader is told how many.
const telemetryBuffer = 256

// TelemetryEvent is the JSON of one message on the telemetry stream
// (the data of an SSE event).
type TelemetryEvent struct {
	DeviceID     string    `json:"deviceId"`
	EnqueuedTime time.Time `json:"enqueuedTime"`
	// Payload is the body as text when it is valid UTF-8, else base64;
	// PayloadEncoding says which ("utf-8" or "base64").
	Payload          string            `json:"payload"`
	PayloadEncoding  string            `json:"payloadEncoding"`
	Properties       map[string]string `json:"properties"`
	SystemProperties map[string]string `json:"systemProperties"`
}

// NewTelemetryEvent converts a message for the wire.
func NewTelemetryEvent(m TelemetryMessage) TelemetryEvent {
	e := TelemetryEvent{
		DeviceID: m.DeviceID, EnqueuedTime: m.EnqueuedTime.UTC(),
		Properties: m.Properties, SystemProperties: m.SystemProperties,
	}
	if utf8.Valid(m.Payload) {
		e.Payload, e.PayloadEncoding = string(m.Payload), "utf-8"
	} else {
		e.Payload, e.PayloadEncoding = base64.StdEncoding.EncodeToString(m.Payload), "base64"
	}
	if e.Properties == nil {
		e.Properties = map[string]string{}
	}
	if e.SystemProperties == nil {
		e.SystemProperties = map[string]string{}
	}
	return e
}

// streamTelemetry serves GET /api/v1/telemetry[?device=ID] as Server-Sent
// Events: "data: <TelemetryEvent JSON>" per message, "event: dropped" with
// {"dropped":n} after messages were lost to a slow reader, "event: error"
// if the feed fails, and a comment line every Heartbeat so proxies keep the
// connection and a gone client is noticed. It ends when the client goes.
func (s *Server) streamTelemetry(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, registry.ServiceConnect, s.v1Error); !ok {
		return
	}
	if s.d.Telemetry == nil {
		s.unavailable(w, r, "the telemetry feed")
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "device"); err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return
	}
	device := q.Get("device")
	if device != "" {
		if _, ok := s.d.Registry.Device(device); !ok {
			s.v1Error(w, r, http.StatusNotFound, registry.CodeDeviceNotFound, fmt.Sprintf("device '%s' is not registered", device))
			return
		}
	}

	serveFeed(s, w, r, "telemetry", device, telemetryBuffer,
		func(ctx context.Context, push func(TelemetryMessage)) error {
			return s.d.Telemetry.Subscribe(ctx, device, push)
		},
		func(w http.ResponseWriter, m TelemetryMessage) error { return writeEvent(w, "", NewTelemetryEvent(m)) })
}

// writeEvent writes one SSE event; JSON has no raw newlines, so data is
// one line.
func writeEvent(w http.ResponseWriter, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if event != "" {
		if _, err := fmt.Fprintf(w, "event: %s\n", event); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "data: %s\n\n", b)
	return err
}
