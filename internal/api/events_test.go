package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/api/apitest"
	"github.com/tether-hub/tether/internal/events"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

func TestParseTailTypes(t *testing.T) {
	tests := []struct {
		in   []string
		want []events.EventType
		err  string
	}{
		{in: nil, want: api.DefaultTailTypes},
		{in: []string{""}, want: api.DefaultTailTypes},
		{in: []string{"DeviceDisconnected"}, want: []events.EventType{events.DeviceDisconnected}},
		{in: []string{"devicetelemetry, Microsoft.Devices.DeviceCreated", "DeviceCreated"}, want: []events.EventType{events.DeviceCreated, events.DeviceTelemetry}},
		{in: []string{"all"}, want: events.HubEventTypes},
		{in: []string{"DeviceConnected,Telemetry"}, err: `unknown event type "Telemetry": use DeviceCreated, DeviceDeleted, DeviceConnected, DeviceDisconnected, DeviceTelemetry or All`},
		{in: []string{"Microsoft.EventGrid.SubscriptionValidationEvent"}, err: "unknown event type"},
	}
	for _, tc := range tests {
		got, err := api.ParseTailTypes(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

// tailEnv is an API server with a fake event feed, over real HTTP so the
// stream is read as it is written.
type tailEnv struct {
	*env
	feed *apitest.EventTail
	ts   *httptest.Server
}

func newTailEnv(t *testing.T) *tailEnv {
	feed := apitest.NewEventTail()
	e := newEnv(t, func(d *api.Deps) { d.Events = feed; d.Heartbeat = 20 * time.Millisecond })
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	return &tailEnv{env: e, feed: feed, ts: ts}
}

// open starts a stream and waits until the feed has its tail.
func (te *tailEnv) open(ctx context.Context, query string) (*bufio.Reader, apitest.TailCall, func()) {
	te.t.Helper()
	r, _ := http.NewRequestWithContext(ctx, "GET", te.ts.URL+"/api/v1/events"+query, nil)
	r.Header.Set("Authorization", te.token("service"))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		te.t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		te.t.Fatalf("status %d, %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var call apitest.TailCall
	select {
	case call = <-te.feed.Started():
	case <-time.After(5 * time.Second):
		te.t.Fatal("the feed was not tailed")
	}
	return bufio.NewReader(resp.Body), call, func() { resp.Body.Close() }
}

// nextEvent reads up to the next SSE event, skipping comments; it returns
// the event name and its data lines.
func nextEvent(t *testing.T, br *bufio.Reader) (string, []string) {
	t.Helper()
	var name string
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if len(data) > 0 {
				return name, data
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

func connEvent(t *testing.T, kind presence.Kind, device, seq string) events.Event {
	t.Helper()
	ce := presence.ConnectionEvent{ID: device + "/" + seq, Kind: kind, Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Hub: hub,
		DeviceID: device, Sequence: seq, Protocol: "MQTT", ProtocolVersion: 4}
	if kind == presence.Disconnected {
		ce.Reason, ce.Result = presence.ReasonKeepAlive, presence.ResultClosedRemotely
	}
	ev, ok := events.FromConnection(events.Resource{}, ce, events.Marks{})
	if !ok {
		t.Fatal("no event")
	}
	return ev
}

func TestEventsTail(t *testing.T) {
	te := newTailEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	br, call, closeBody := te.open(ctx, "?device=dev1")
	defer closeBody()
	if call.DeviceID != "dev1" || !slices.Equal(call.Types, []string{"Microsoft.Devices.DeviceConnected", "Microsoft.Devices.DeviceDisconnected"}) {
		t.Fatalf("tail %+v", call)
	}
	seq1, seq2 := strings.Repeat("0", 63)+"1", strings.Repeat("0", 63)+"2"
	connected, disconnected := connEvent(t, presence.Connected, "dev1", seq1), connEvent(t, presence.Disconnected, "dev1", seq2)
	te.feed.Publish(connected)
	te.feed.Publish(connEvent(t, presence.Connected, "dev2", seq1)) // another device: not for this tail
	te.feed.Publish(disconnected)
	// an event written across lines by the feed is still one data line
	indented, _ := json.MarshalIndent(connected.EventGrid(), "", "  ")
	te.feed.PublishRaw("dev1", string(events.DeviceConnected), indented)

	for i, want := range []events.Event{connected, disconnected, connected} {
		name, data := nextEvent(t, br)
		if name != "" || len(data) != 1 {
			t.Fatalf("event %d: %q %q", i, name, data)
		}
		var got events.EventGridEvent
		if err := json.Unmarshal([]byte(data[0]), &got); err != nil {
			t.Fatalf("event %d %q: %v", i, data[0], err)
		}
		wantJSON, _ := json.Marshal(want.EventGrid())
		gotJSON, _ := json.Marshal(got)
		if string(gotJSON) != string(wantJSON) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, gotJSON, wantJSON)
		}
	}
	// the client leaves: the tail ends
	closeBody()
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for te.feed.Publish(connected) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the tail did not end with the client")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEventsTailTypesAndFailure(t *testing.T) {
	te := newTailEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	br, call, closeBody := te.open(ctx, "?type=DeviceCreated&type=devicedeleted,DeviceTelemetry")
	defer closeBody()
	if call.DeviceID != "" || !slices.Equal(call.Types, []string{"Microsoft.Devices.DeviceCreated", "Microsoft.Devices.DeviceDeleted", "Microsoft.Devices.DeviceTelemetry"}) {
		t.Fatalf("tail %+v", call)
	}
	ev, _ := events.FromChange(events.Resource{}, registry.Change{ID: "c1", Op: registry.OpCreated, Time: time.Now(), Hub: hub, DeviceID: "dev9", Device: registry.Device{DeviceID: "dev9"}})
	if n := te.feed.Publish(ev); n != 1 {
		t.Fatalf("published to %d tails", n)
	}
	if _, data := nextEvent(t, br); !strings.Contains(data[0], `"eventType":"Microsoft.Devices.DeviceCreated"`) {
		t.Fatalf("data %q", data)
	}
	te.feed.Fail(errors.New("nats: connection closed"))
	name, data := nextEvent(t, br)
	if name != "error" || !strings.Contains(data[0], "the event feed failed: nats: connection closed") {
		t.Fatalf("failure: %q %q", name, data)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("the stream goes on after the failure")
	}
}

func TestEventsTailRequests(t *testing.T) {
	feed := apitest.NewEventTail()
	e := newEnv(t, func(d *api.Deps) { d.Events = feed })
	for _, tc := range []struct {
		rq     req
		status int
		msg    string
	}{
		{req{Method: "GET", Path: "/api/v1/events?type=Telemetry"}, 400, `unknown event type "Telemetry"`},
		{req{Method: "GET", Path: "/api/v1/events?devcie=dev1"}, 400, `unknown query parameter "devcie"`},
		{req{Method: "POST", Path: "/api/v1/events"}, 405, "use GET"},
		{req{Method: "GET", Path: "/api/v1/events", Auth: "-"}, 401, ""},
		{req{Method: "GET", Path: "/api/v1/events", Auth: e.token("registryRead")}, 401, ""},
	} {
		w := e.do(tc.rq)
		if _, msg := v1Code(t, w); w.Code != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s: %d %s", tc.rq.Method, tc.rq.Path, w.Code, w.Body)
		}
	}
	e = newEnv(t, nil)
	w := e.do(req{Method: "GET", Path: "/api/v1/events"})
	if _, msg := v1Code(t, w); w.Code != 503 || !strings.Contains(msg, "event feed") {
		t.Fatalf("without feed: %d %s", w.Code, w.Body)
	}
}
