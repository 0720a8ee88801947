package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
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

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server WriteTimeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": telemetry stream open\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		s.log.Error("telemetry stream: response cannot be flushed", "err", err)
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	msgs := make(chan TelemetryMessage, telemetryBuffer)
	var dropped atomic.Int64
	done := make(chan error, 1)
	subscribed := true
	go func() {
		done <- s.d.Telemetry.Subscribe(ctx, device, func(m TelemetryMessage) {
			select {
			case msgs <- m:
			default:
				dropped.Add(1)
			}
		})
	}()
	defer func() {
		cancel()
		if !subscribed {
			return
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.log.Warn("telemetry stream: subscription did not end after its context", "device", device)
		}
	}()

	tick := time.NewTicker(s.d.Heartbeat)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case serr := <-done:
			subscribed = false
			if serr != nil && ctx.Err() == nil {
				s.log.Error("telemetry stream: subscription failed", "device", device, "err", serr)
				writeEvent(w, "error", map[string]string{"message": "the telemetry feed failed: " + serr.Error()})
				_ = rc.Flush()
			}
			return
		case m := <-msgs:
			err = s.writeMessages(w, m, msgs, &dropped)
		case <-tick.C:
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return // the client went away
		}
	}
}

// writeMessages writes m and whatever else is already queued, so one
// flush covers a burst.
func (s *Server) writeMessages(w http.ResponseWriter, m TelemetryMessage, more <-chan TelemetryMessage, dropped *atomic.Int64) error {
	for {
		if n := dropped.Swap(0); n > 0 {
			if err := writeEvent(w, "dropped", map[string]int64{"dropped": n}); err != nil {
				return err
			}
		}
		if err := writeEvent(w, "", NewTelemetryEvent(m)); err != nil {
			return err
		}
		select {
		case m = <-more:
		default:
			return nil
		}
	}
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
