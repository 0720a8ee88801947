package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
)

func TestHealth(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(req{Method: "GET", Path: "/api/v1/health", Auth: "-"})
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"status":"ok"}` {
		t.Fatalf("health: %d %s", w.Code, w.Body)
	}
	w = e.do(req{Method: "DELETE", Path: "/api/v1/health", Auth: "-"})
	if w.Code != 405 {
		t.Fatalf("DELETE health: %d", w.Code)
	}
	if code, _ := v1Code(t, w); code != "MethodNotAllowed" {
		t.Fatalf("code %s", code)
	}
	w = e.do(req{Method: "GET", Path: "/api/v1/nothing"})
	if code, _ := v1Code(t, w); w.Code != 404 || code != "NotFound" {
		t.Fatalf("unknown: %d %s", w.Code, code)
	}
}

type fakeLogs struct {
	got  api.LogFilter
	recs []map[string]any
	err  error
}

func (f *fakeLogs) Find(ctx context.Context, lf api.LogFilter) ([]map[string]any, error) {
	f.got = lf
	return f.recs, f.err
}

func TestLogs(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		query  string
		auth   string // policy; "" owner
		status int
		code   string
		want   api.LogFilter
	}{
		{name: "defaults", query: "", status: 200, want: api.LogFilter{Limit: 100}},
		{name: "all filters", query: "device=dev1&category=Connections&level=Error&since=1h&until=2026-03-01T11:30:00Z&limit=5", status: 200,
			want: api.LogFilter{DeviceID: "dev1", Category: "Connections", Level: "Error", Since: now.Add(-time.Hour), Until: now.Add(-30 * time.Minute), Limit: 5}},
		{name: "days", query: "since=7d", status: 200, want: api.LogFilter{Since: now.Add(-7 * 24 * time.Hour), Limit: 100}},
		{name: "registryRead may read", query: "", auth: "registryRead", status: 200, want: api.LogFilter{Limit: 100}},
		{name: "service may not", query: "", auth: "service", status: 401, code: "IotHubUnauthorizedAccess"},
		{name: "bad since", query: "since=yesterday", status: 400, code: "ArgumentInvalid"},
		{name: "negative since", query: "since=-1h", status: 400, code: "ArgumentInvalid"},
		{name: "since after until", query: "since=1h&until=2h", status: 400, code: "ArgumentInvalid"},
		{name: "bad limit", query: "limit=0", status: 400, code: "ArgumentInvalid"},
		{name: "huge limit is capped", query: "limit=1000000", status: 200, want: api.LogFilter{Limit: 10000}},
		{name: "unknown parameter", query: "devcie=dev1", status: 400, code: "ArgumentInvalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &fakeLogs{recs: []map[string]any{{"Category": "Connections", "OperationName": "deviceConnect"}}}
			e := newEnv(t, func(d *api.Deps) { d.Logs = logs; d.Now = func() time.Time { return now } })
			auth := ""
			if tc.auth != "" {
				auth = e.token(tc.auth)
			}
			w := e.do(req{Method: "GET", Path: "/api/v1/logs?" + tc.query, Auth: auth})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.code != "" {
				if code, msg := v1Code(t, w); code != tc.code {
					t.Fatalf("code %s (%s), want %s", code, msg, tc.code)
				}
				return
			}
			if !logs.got.Since.Equal(tc.want.Since) || !logs.got.Until.Equal(tc.want.Until) {
				t.Fatalf("times %v..%v, want %v..%v", logs.got.Since, logs.got.Until, tc.want.Since, tc.want.Until)
			}
			logs.got.Since, logs.got.Until, tc.want.Since, tc.want.Until = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if logs.got != tc.want {
				t.Fatalf("filter %+v, want %+v", logs.got, tc.want)
			}
			body := decode[struct{ Records []map[string]any }](t, w)
			if len(body.Records) != 1 || body.Records[0]["OperationName"] != "deviceConnect" {
				t.Fatalf("records %+v", body.Records)
			}
		})
	}
}

func TestLogsUnavailableAndFailing(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(req{Method: "GET", Path: "/api/v1/logs"})
	if code, msg := v1Code(t, w); w.Code != 503 || code != "ServiceUnavailable" || !strings.Contains(msg, "log store") {
		t.Fatalf("nil Logs: %d %s %s", w.Code, code, msg)
	}
	e = newEnv(t, func(d *api.Deps) { d.Logs = &fakeLogs{err: errors.New("sqlite: disk I/O error")} })
	w = e.do(req{Method: "GET", Path: "/api/v1/logs"})
	code, msg := v1Code(t, w)
	if w.Code != 500 || code != "ServerError" || strings.Contains(msg, "sqlite") || !strings.Contains(msg, w.Header().Get("x-ms-request-id")) {
		t.Fatalf("failing Logs: %d %s %s", w.Code, code, msg)
	}
	e = newEnv(t, func(d *api.Deps) { d.Logs = &fakeLogs{} })
	w = e.do(req{Method: "GET", Path: "/api/v1/logs"})
	if strings.TrimSpace(w.Body.String()) != `{"records":[]}` {
		t.Fatalf("no records: %s", w.Body)
	}
}

type sent struct {
	device  string
	payload []byte
	props   map[string]string
	id      string
}

type fakeC2D struct {
	mu   sync.Mutex
	msgs []sent
	err  error
}

func (f *fakeC2D) SendC2D(ctx context.Context, deviceID string, payload []byte, props map[string]string, messageID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.msgs = append(f.msgs, sent{deviceID, payload, props, messageID})
	return nil
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		body   string
		auth   string
		err    error // from the sender
		status int
		code   string
		want   *sent
	}{
		{name: "text", body: `{"payload":"hello","properties":{"k":"v"},"messageId":"m-1"}`, status: 202,
			want: &sent{"dev1", []byte("hello"), map[string]string{"k": "v"}, "m-1"}},
		{name: "base64", body: `{"payloadBase64":"AAH/"}`, status: 202, want: &sent{device: "dev1", payload: []byte{0, 1, 0xff}}},
		{name: "empty payload", body: `{}`, status: 202, want: &sent{device: "dev1"}},
		{name: "both payloads", body: `{"payload":"a","payloadBase64":"YQ=="}`, status: 400, code: "ArgumentInvalid"},
		{name: "bad base64", body: `{"payloadBase64":"!!"}`, status: 400, code: "ArgumentInvalid"},
		{name: "unknown field", body: `{"payload":"a","properites":{}}`, status: 400, code: "ArgumentInvalid"},
		{name: "bad JSON", body: `{"payload":`, status: 400, code: "ArgumentInvalid"},
		{name: "empty property name", body: `{"properties":{"":"v"}}`, status: 400, code: "ArgumentInvalid"},
		{name: "too large", body: `{"payload":"` + strings.Repeat("x", 70000) + `"}`, status: 413, code: "MessageTooLarge"},
		{name: "unknown device", path: "/api/v1/devices/ghost/messages", body: `{}`, status: 404, code: "DeviceNotFound"},
		{name: "sender says not found", body: `{}`, err: fmt.Errorf("broker: %w", registry.ErrNotFound), status: 404, code: "DeviceNotFound"},
		{name: "sender throttled", body: `{}`, err: fmt.Errorf("queue full: %w", api.ErrThrottled), status: 429, code: "ThrottlingException"},
		{name: "sender fails", body: `{}`, err: errors.New("boom"), status: 500, code: "ServerError"},
		{name: "registryRead may not", body: `{}`, auth: "registryRead", status: 401, code: "IotHubUnauthorizedAccess"},
		{name: "service may", body: `{"payload":"x"}`, auth: "service", status: 202, want: &sent{device: "dev1", payload: []byte("x")}},
		{name: "GET not allowed", path: "", body: "", status: 405, code: "MethodNotAllowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c2d := &fakeC2D{err: tc.err}
			e := newEnv(t, func(d *api.Deps) { d.C2D = c2d })
			path := tc.path
			if path == "" {
				path = "/api/v1/devices/dev1/messages"
			}
			method := "POST"
			if tc.name == "GET not allowed" {
				method = "GET"
			}
			auth := ""
			if tc.auth != "" {
				auth = e.token(tc.auth)
			}
			w := e.do(req{Method: method, Path: path, Body: tc.body, Auth: auth})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.code != "" {
				if code, msg := v1Code(t, w); code != tc.code {
					t.Fatalf("code %s (%s), want %s", code, msg, tc.code)
				}
				if tc.err == nil && len(c2d.msgs) != 0 {
					t.Fatal("refused message was sent")
				}
				return
			}
			resp := decode[struct{ MessageID string }](t, w)
			if len(c2d.msgs) != 1 {
				t.Fatalf("%d messages sent", len(c2d.msgs))
			}
			got := c2d.msgs[0]
			if resp.MessageID == "" || resp.MessageID != got.id {
				t.Fatalf("answered messageId %q, sent %q", resp.MessageID, got.id)
			}
			if tc.want.id != "" && got.id != tc.want.id {
				t.Fatalf("message id %q, want %q", got.id, tc.want.id)
			}
			if got.device != tc.want.device || string(got.payload) != string(tc.want.payload) || fmt.Sprint(got.props) != fmt.Sprint(tc.want.props) {
				t.Fatalf("sent %+v, want %+v", got, *tc.want)
			}
		})
	}
	e := newEnv(t, nil)
	w := e.do(req{Method: "POST", Path: "/api/v1/devices/dev1/messages", Body: `{}`})
	if code, _ := v1Code(t, w); w.Code != 503 || code != "ServiceUnavailable" {
		t.Fatalf("nil C2D: %d %s", w.Code, code)
	}
}

func TestMessagesEncodedID(t *testing.T) {
	c2d := &fakeC2D{}
	e := newEnv(t, func(d *api.Deps) { d.C2D = c2d })
	if _, err := e.reg.Create(context.Background(), registry.Device{DeviceID: "a#b"}, ""); err != nil {
		t.Fatal(err)
	}
	w := e.do(req{Method: "POST", Path: "/api/v1/devices/a%23b/messages", Body: `{"payload":"x"}`})
	if w.Code != 202 || len(c2d.msgs) != 1 || c2d.msgs[0].device != "a#b" {
		t.Fatalf("%d %s %+v", w.Code, w.Body, c2d.msgs)
	}
}

// fakeFeed hands out the subscriber's fn and records when it ends.
type fakeFeed struct {
	subs  chan func(api.TelemetryMessage)
	ended chan string
	err   error
}

func newFakeFeed() *fakeFeed {
	return &fakeFeed{subs: make(chan func(api.TelemetryMessage), 1), ended: make(chan string, 1)}
}

func (f *fakeFeed) Subscribe(ctx context.Context, deviceID string, fn func(api.TelemetryMessage)) error {
	if f.err != nil {
		return f.err
	}
	f.subs <- fn
	<-ctx.Done()
	f.ended <- deviceID
	return ctx.Err()
}

// sseReader reads events off a stream.
type sseReader struct {
	t  *testing.T
	sc *bufio.Scanner
}

// next returns the next event's name and data, skipping comments;
// comments are returned as ("comment", text) when wantComments.
func (r *sseReader) next(wantComments bool) (event, data string) {
	r.t.Helper()
	for r.sc.Scan() {
		line := r.sc.Text()
		switch {
		case line == "":
			if data != "" || event != "" {
				return event, data
			}
		case strings.HasPrefix(line, ":"):
			if wantComments {
				return "comment", strings.TrimSpace(line[1:])
			}
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		}
	}
	r.t.Fatalf("stream ended: %v", r.sc.Err())
	return
}

func openStream(t *testing.T, e *env, query string) (*http.Response, *sseReader, context.CancelFunc) {
	t.Helper()
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	r, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/telemetry"+query, nil)
	r.Header.Set("Authorization", e.token("service"))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, &sseReader{t: t, sc: bufio.NewScanner(resp.Body)}, cancel
}

func TestTelemetryStream(t *testing.T) {
	feed := newFakeFeed()
	e := newEnv(t, func(d *api.Deps) { d.Telemetry = feed })
	resp, sse, cancel := openStream(t, e, "?device=dev1")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	fn := <-feed.subs
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fn(api.TelemetryMessage{DeviceID: "dev1", EnqueuedTime: at, Payload: []byte(`{"t":21.5}`), Properties: map[string]string{"alert": "no"},
		SystemProperties: map[string]string{"content-type": "application/json"}})
	fn(api.TelemetryMessage{DeviceID: "dev1", EnqueuedTime: at, Payload: []byte{0xff, 0x00}})

	var got []api.TelemetryEvent
	for range 2 {
		ev, data := sse.next(false)
		if ev != "" {
			t.Fatalf("event %q", ev)
		}
		var m api.TelemetryEvent
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatalf("data %q: %v", data, err)
		}
		got = append(got, m)
	}
	if g := got[0]; g.DeviceID != "dev1" || !g.EnqueuedTime.Equal(at) || g.Payload != `{"t":21.5}` || g.PayloadEncoding != "utf-8" ||
		g.Properties["alert"] != "no" || g.SystemProperties["content-type"] != "application/json" {
		t.Fatalf("first %+v", g)
	}
	if g := got[1]; g.Payload != "/wA=" || g.PayloadEncoding != "base64" || g.Properties == nil {
		t.Fatalf("second %+v", g)
	}

	cancel() // the client goes away: the subscription must end
	select {
	case dev := <-feed.ended:
		if dev != "dev1" {
			t.Fatalf("subscribed to %q", dev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription still running after the client left")
	}
}

func TestTelemetryHeartbeatAndAllDevices(t *testing.T) {
	feed := newFakeFeed()
	e := newEnv(t, func(d *api.Deps) { d.Telemetry = feed; d.Heartbeat = 10 * time.Millisecond })
	_, sse, _ := openStream(t, e, "")
	<-feed.subs
	if ev, text := sse.next(true); ev != "comment" || text != "telemetry stream open" {
		t.Fatalf("first %q %q", ev, text)
	}
	if ev, text := sse.next(true); ev != "comment" || text != "keep-alive" {
		t.Fatalf("second %q %q", ev, text)
	}
}

func TestTelemetryErrors(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(req{Method: "GET", Path: "/api/v1/telemetry"})
	if code, _ := v1Code(t, w); w.Code != 503 || code != "ServiceUnavailable" {
		t.Fatalf("nil feed: %d %s", w.Code, code)
	}
	feed := newFakeFeed()
	e = newEnv(t, func(d *api.Deps) { d.Telemetry = feed })
	for _, tc := range []struct {
		path, auth string
		status     int
		code       string
	}{
		{"/api/v1/telemetry?device=ghost", "", 404, "DeviceNotFound"},
		{"/api/v1/telemetry?dev=dev1", "", 400, "ArgumentInvalid"},
		{"/api/v1/telemetry", e.token("registryRead"), 401, "IotHubUnauthorizedAccess"},
	} {
		w := e.do(req{Method: "GET", Path: tc.path, Auth: tc.auth})
		if code, msg := v1Code(t, w); w.Code != tc.status || code != tc.code {
			t.Errorf("%s: %d %s (%s), want %d %s", tc.path, w.Code, code, msg, tc.status, tc.code)
		}
	}

	// A feed that fails says so on the stream.
	feed.err = errors.New("consumer deleted")
	_, sse, _ := openStream(t, e, "")
	if ev, data := sse.next(false); ev != "error" || !strings.Contains(data, "consumer deleted") {
		t.Fatalf("failed feed: %q %q", ev, data)
	}
}
