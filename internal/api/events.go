package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

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

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server WriteTimeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": event stream open\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		s.log.Error("event stream: response cannot be flushed", "err", err)
		return
	}

	ctx, cancel := context.WithCancel(r.Context())
	queue := make(chan []byte, eventsBuffer)
	var dropped atomic.Int64
	done := make(chan error, 1)
	go func() {
		done <- s.d.Events.Tail(ctx, device, names, func(m json.RawMessage) {
			b := bytes.Clone(m)
			select {
			case queue <- b:
			default:
				dropped.Add(1)
			}
		})
	}()
	tailing := true
	defer func() {
		cancel()
		if !tailing {
			return
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.log.Warn("event stream: tail did not end after its context", "device", device)
		}
	}()

	tick := time.NewTicker(s.d.Heartbeat)
	defer tick.Stop()
	var buf bytes.Buffer
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case terr := <-done:
			tailing = false
			if terr != nil && ctx.Err() == nil {
				s.log.Error("event stream: tail failed", "device", device, "err", terr)
				_ = writeEvent(w, "error", map[string]string{"message": "the event feed failed: " + terr.Error()})
				_ = rc.Flush()
			}
			return
		case m := <-queue:
			err = s.writeEvents(w, &buf, m, queue, &dropped)
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

// writeEvents writes m and whatever else is queued, so one flush covers a
// burst. Each event is compacted onto one data line; a feed message that
// is not JSON is logged and skipped.
func (s *Server) writeEvents(w http.ResponseWriter, buf *bytes.Buffer, m []byte, more <-chan []byte, dropped *atomic.Int64) error {
	for {
		if n := dropped.Swap(0); n > 0 {
			if err := writeEvent(w, "dropped", map[string]int64{"dropped": n}); err != nil {
				return err
			}
		}
		buf.Reset()
		if err := json.Compact(buf, m); err != nil {
			s.log.Error("event stream: the feed sent an event that is not JSON", "err", err)
		} else if _, err := fmt.Fprintf(w, "data: %s\n\n", buf.Bytes()); err != nil {
			return err
		}
		select {
		case m = <-more:
		default:
			return nil
		}
	}
}
