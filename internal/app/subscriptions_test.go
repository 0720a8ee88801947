package app_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a webhook endpoint that answers Event Grid's validation
// handshake and records the events it is sent.
type receiver struct {
	mu     sync.Mutex
	events []map[string]any
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var batch []map[string]any
	if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	if r.Header.Get("aeg-event-type") == "SubscriptionValidation" {
		code := batch[0]["data"].(map[string]any)["validationCode"]
		_ = json.NewEncoder(w).Encode(map[string]any{"validationResponse": code})
		return
	}
	rc.mu.Lock()
	rc.events = append(rc.events, batch...)
	rc.mu.Unlock()
}

func (rc *receiver) got() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.events...)
}

func (h *hub) api(method, path string, body any) (int, []byte) {
	h.t.Helper()
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	return h.apiRaw(method, path, raw, nil)
}

// A webhook subscription created through the API is validated, then gets
// the device's DeviceConnected and DeviceDisconnected in sequence order.
func TestSubscriptionDeliversConnectionEvents(t *testing.T) {
	h := startHub(t)
	key := h.device("sub1")
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	status, body := h.api("POST", "/api/v1/subscriptions", map[string]any{
		"name":        "ops",
		"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": srv.URL}},
		"filter":      map[string]any{"includedEventTypes": []string{"Microsoft.Devices.DeviceConnected", "Microsoft.Devices.DeviceDisconnected"}},
	})
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	var sub map[string]any
	_ = json.Unmarshal(body, &sub)
	if sub["provisioningState"] != "Succeeded" {
		t.Fatalf("subscription not validated: %s", body)
	}
	c, _ := h.v3("sub1", username("sub1"), h.token("sub1", key, time.Hour))
	c.Disconnect(50)
	var got []map[string]any
	eventually(t, 15*time.Second, func() error {
		got = rc.got()
		if len(got) < 2 {
			return errorf("receiver has %d events", len(got))
		}
		return nil
	})
	if got[0]["eventType"] != "Microsoft.Devices.DeviceConnected" || got[1]["eventType"] != "Microsoft.Devices.DeviceDisconnected" {
		t.Fatalf("events %v", got)
	}
	seq := func(e map[string]any) string {
		return e["data"].(map[string]any)["deviceConnectionStateEventInfo"].(map[string]any)["sequenceNumber"].(string)
	}
	if !(seq(got[1]) > seq(got[0])) {
		t.Fatalf("out of order: %s then %s", seq(got[0]), seq(got[1]))
	}
}

// A receiver that validates and then never answers must not slow the hub:
// devices keep connecting and disconnecting, every change is journalled
// and logged, and the delivery engine holds a bounded number of POSTs (and
// so goroutines) for it rather than one per event.
func TestDeadReceiverDoesNotHoldUpTheHub(t *testing.T) {
	h := startHub(t)
	release := make(chan struct{})
	var hanging atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("aeg-event-type") == "SubscriptionValidation" {
			(&receiver{}).ServeHTTP(w, r)
			return
		}
		hanging.Add(1)
		select { // the hub's 30 s timeout or the test's end
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	if status, body := h.api("POST", "/api/v1/subscriptions", map[string]any{
		"name":        "dead",
		"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": srv.URL}},
	}); status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	const devices, cycles = 20, 10
	toks := map[string]string{}
	for i := range devices {
		id := fmt.Sprintf("dead-%02d", i)
		toks[id] = h.token(id, h.device(id), time.Hour)
	}
	before := runtime.NumGoroutine()
	for range cycles {
		for id, tok := range toks {
			c, err := dialRaw(h.TCPAddr(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if rc, err := c.connect(id, username(id), tok, 60); err != nil || rc != 0 {
				t.Fatalf("%s: CONNACK %d %v while the receiver hangs", id, rc, err)
			}
			c.disconnect()
			c.waitClosed(5 * time.Second)
		}
	}
	for id := range toks {
		h.waitLogs(id, 2*cycles)
	}
	if hanging.Load() == 0 {
		t.Fatal("the hub sent the receiver nothing")
	}
	// At most MaxInFlightPerSub (32) POSTs hang, each a server goroutine
	// here and a client one in the hub; 400 events did not make 400.
	if grown := runtime.NumGoroutine() - before; grown > 3*32+50 {
		t.Errorf("%d more goroutines after %d events to a hanging receiver", grown, devices*cycles*2)
	}
}
