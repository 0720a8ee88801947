package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/registry"
)

// EventTail delivers the hub's events as they are journalled, for
// GET /api/v1/events. The app implements it with a NATS subscription on
// the journal subjects (internal/journal: tether.conn.<device>.*,
// tether.registry.<device>.*, tether.telemetry.<device>), turning each
// record into its event (events.FromConnection, FromChange, FromTelemetry).
//
// Tail calls fn with the Event Grid schema JSON of each event
// (json.Marshal(events.Event.EventGrid()): id, topic, subject, eventType,
// eventTime, data, dataVersion, metadataVersion) of device deviceID ("":
// every device) whose type is in types, until ctx is done; it blocks until
// then and returns ctx.Err() or the error that stopped it. types holds
// canonical event type names (events.EventType values such as
// "Microsoft.Devices.DeviceConnected"), at least one, no duplicates.
// Events of one device come in journal order. fn does not block and
// copies what it keeps; it may be called from several goroutines.
type EventTail interface {
	Tail(ctx context.Context, deviceID string, types []string, fn func(json.RawMessage)) error
}

// DefaultTailTypes are the types GET /api/v1/events streams when the
// query names none: the connection events.
var DefaultTailTypes = []events.EventType{events.DeviceConnected, events.DeviceDisconnected}

// eventsBuffer bounds the events queued for one slow stream reader; beyond
// it events are dropped and the reader is told how many.
const eventsBuffer = 1024

// ParseTailTypes reads the type query parameters of GET /api/v1/events:
// comma-separated, repeatable, each a hub event type in full
// ("Microsoft.Devices.DeviceConnected") or short ("DeviceConnected"), in
// any case, or "All". Nothing given is DefaultTailTypes. The result is in
// events.HubEventTypes order, without duplicates.
func ParseTailTypes(vals []string) ([]events.EventType, error) {
	want := map[events.EventType]bool{}
	for _, v := range vals {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if strings.EqualFold(name, string(events.AllEventTypes)) {
				for _, t := range events.HubEventTypes {
					want[t] = true
				}
				continue
			}
			full := name
			if !strings.Contains(name, ".") {
				full = "Microsoft.Devices." + name
			}
			t, ok := events.ParseEventType(full)
			if !ok {
				return nil, fmt.Errorf("unknown event type %q: use %s or All", name, strings.Join(shortTypeNames(), ", "))
			}
			want[t] = true
		}
	}
	if len(want) == 0 {
		return slices.Clone(DefaultTailTypes), nil
	}
	var out []events.EventType
	for _, t := range events.HubEventTypes {
		if want[t] {
			out = append(out, t)
		}
	}
	return out, nil
}

// ShortTypeName is an event type without "Microsoft.Devices.".
func ShortTypeName(t string) string { return strings.TrimPrefix(t, "Microsoft.Devices.") }

func shortTypeNames() []string {
	out := make([]string, len(events.HubEventTypes))
	for i, t := range events.HubEventTypes {
		out[i] = ShortTypeName(string(t))
	}
	return out
}

// streamEvents serves GET /api/v1/events[?device=ID][&type=T,…] as
// Server-Sent Events. Each event is one "data:" line holding the event in
// the Event Grid schema, exactly as a webhook subscription in that schema
// receives it (one element of the delivered array): connection events carry
// data.deviceConnectionStateEventInfo.sequenceNumber and data.tether.
// Besides: "event: dropped" with {"dropped":n} after events were lost to a
// slow reader, "event: error" with {"message"} if the feed fails, and a
// comment line every Heartbeat. The device need not be registered (a
// tail may wait for its DeviceCreated). It ends when the client goes.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, registry.ServiceConnect, s.v1Error); !ok {
		return
	}
	if s.d.Events == nil {
		s.unavailable(w, r, "the event feed")
		return
	}
	q := r.URL.Query()
	if err := checkParams(q, "device", "type"); err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return
	}
	types, err := ParseTailTypes(q["type"])
	if err != nil {
		s.v1Error(w, r, http.StatusBadRequest, registry.CodeArgumentInvalid, err.Error())
		return
	}
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	device := q.Get("device")
	var buf bytes.Buffer
	serveFeed(s, w, r, "event", device, eventsBuffer,
		func(ctx context.Context, push func([]byte)) error {
			return s.d.Events.Tail(ctx, device, names, func(m json.RawMessage) { push(bytes.Clone(m)) })
		},
		// Each event is compacted onto one data line; a feed message that
		// is not JSON is logged and skipped.
		func(w http.ResponseWriter, m []byte) error {
			buf.Reset()
			if err := json.Compact(&buf, m); err != nil {
				s.log.Error("event stream: the feed sent an event that is not JSON", "err", err)
				return nil
			}
			_, err := fmt.Fprintf(w, "data: %s\n\n", buf.Bytes())
			return err
		})
}
