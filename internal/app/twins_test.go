package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// twinDevice is a paho device subscribed to the twin and method topics,
// recording what the hub publishes to it.
type twinDevice struct {
	c   pahov3.Client
	mu  sync.Mutex
	got []pahov3.Message
}

func (d *twinDevice) record(_ pahov3.Client, m pahov3.Message) {
	d.mu.Lock()
	d.got = append(d.got, m)
	d.mu.Unlock()
}

// waitFor returns the first recorded message whose topic starts with
// prefix, waiting up to 5 s.
func (d *twinDevice) waitFor(t *testing.T, prefix string) pahov3.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		d.mu.Lock()
		for i, m := range d.got {
			if strings.HasPrefix(m.Topic(), prefix) {
				d.got = append(d.got[:i], d.got[i+1:]...)
				d.mu.Unlock()
				return m
			}
		}
		d.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no message on %s…", prefix)
	return nil
}

func (h *hub) twinDevice(id, key string, subscribe bool) *twinDevice {
	h.t.Helper()
	d := &twinDevice{}
	c, rc := h.v3(id, username(id), h.token(id, key, time.Hour), func(o *pahov3.ClientOptions) { o.SetDefaultPublishHandler(d.record) })
	if c == nil {
		h.t.Fatalf("connect refused: %d", rc)
	}
	d.c = c
	if subscribe {
		for _, f := range []string{"$iothub/twin/res/#", "$iothub/twin/PATCH/properties/desired/#", "$iothub/methods/POST/#"} {
			if tok := c.Subscribe(f, 0, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				h.t.Fatalf("subscribe %s: %v", f, tok.Error())
			}
		}
	}
	return d
}

func (d *twinDevice) publish(t *testing.T, topic, payload string) {
	t.Helper()
	if tok := d.c.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

const q = "?api-version=2021-04-12"

// Device and service sides of twins through the whole hub: MQTT GET and
// reported patches, REST reads and writes with etags, desired pushes, and
// the same after the device reconnects without subscribing again.
func TestTwinsEndToEnd(t *testing.T) {
	h := startHub(t)
	key := h.device("tw1")
	d := h.twinDevice("tw1", key, true)

	d.publish(t, "$iothub/twin/GET/?$rid=1", " ")
	if m := d.waitFor(t, "$iothub/twin/res/"); m.Topic() != "$iothub/twin/res/200/?$rid=1" || !strings.Contains(string(m.Payload()), `"desired":{"$version":1}`) {
		t.Fatalf("GET: %s %s", m.Topic(), m.Payload())
	}
	d.publish(t, "$iothub/twin/PATCH/properties/reported/?$rid=2", `{"fw":"1.0","temp":21.5}`)
	if m := d.waitFor(t, "$iothub/twin/res/"); m.Topic() != "$iothub/twin/res/204/?$rid=2&$version=2" {
		t.Fatalf("patch: %s %s", m.Topic(), m.Payload())
	}
	d.publish(t, "$iothub/twin/PATCH/properties/reported/?$rid=3", `{"fw":`)
	if m := d.waitFor(t, "$iothub/twin/res/"); m.Topic() != "$iothub/twin/res/400/?$rid=3" || !strings.Contains(string(m.Payload()), `"errorCode":400006`) {
		t.Fatalf("bad JSON: %s %s", m.Topic(), m.Payload())
	}
	d.publish(t, "$iothub/twin/PATCH/properties/reported/?$rid=4", `{"$bad":1}`)
	if m := d.waitFor(t, "$iothub/twin/res/"); m.Topic() != "$iothub/twin/res/400/?$rid=4" || !strings.Contains(string(m.Payload()), `"errorCode":400004`) {
		t.Fatalf("bad key: %s %s", m.Topic(), m.Payload())
	}

	status, body := h.apiRaw("GET", "/twins/tw1"+q, nil, nil)
	var tw struct {
		ETag       string `json:"etag"`
		Properties struct {
			Reported map[string]any `json:"reported"`
			Desired  map[string]any `json:"desired"`
		} `json:"properties"`
		Tags map[string]any `json:"tags"`
	}
	if status != 200 || json.Unmarshal(body, &tw) != nil || tw.Properties.Reported["fw"] != "1.0" {
		t.Fatalf("REST GET %d %s", status, body)
	}
	status, body = h.apiRaw("PATCH", "/twins/tw1"+q, []byte(`{"tags":{"site":"b1"},"properties":{"desired":{"interval":5}}}`), map[string]string{"If-Match": `"` + tw.ETag + `"`})
	if status != 200 || !strings.Contains(string(body), `"site":"b1"`) {
		t.Fatalf("REST PATCH %d %s", status, body)
	}
	if m := d.waitFor(t, "$iothub/twin/PATCH/properties/desired/"); m.Topic() != "$iothub/twin/PATCH/properties/desired/?$version=2" || string(m.Payload()) != `{"interval":5,"$version":2}` {
		t.Fatalf("desired push: %s %s", m.Topic(), m.Payload())
	}
	status, body = h.apiRaw("PATCH", "/twins/tw1"+q, []byte(`{"properties":{"desired":{"interval":6}}}`), map[string]string{"If-Match": `"` + tw.ETag + `"`})
	if status != 412 || !strings.Contains(string(body), "PreconditionFailed") {
		t.Fatalf("stale etag: %d %s", status, body)
	}
	status, body = h.apiRaw("PATCH", "/twins/tw1"+q, []byte(`{"properties":{"reported":{"fw":"2.0"}}}`), nil)
	if status != 400 || !strings.Contains(string(body), "ArgumentInvalid") {
		t.Fatalf("service writes reported: %d %s", status, body)
	}
	status, body = h.apiRaw("PATCH", "/twins/nope"+q, []byte(`{"tags":{}}`), nil)
	if status != 404 || !strings.Contains(string(body), "DeviceNotFound") {
		t.Fatalf("missing device: %d %s", status, body)
	}
	status, body = h.apiRaw("PUT", "/twins/tw1"+q, []byte(`{"tags":{"site":"b2"},"properties":{"desired":{"mode":"eco"}}}`), map[string]string{"If-Match": "*"})
	if status != 200 || strings.Contains(string(body), `"interval"`) || !strings.Contains(string(body), `"mode":"eco"`) {
		t.Fatalf("REST PUT %d %s", status, body)
	}
	if m := d.waitFor(t, "$iothub/twin/PATCH/properties/desired/"); !strings.Contains(string(m.Payload()), `"interval":null`) || !strings.Contains(string(m.Payload()), `"mode":"eco"`) {
		t.Fatalf("desired push after replace: %s", m.Payload())
	}

	// A SAS renewal: a new connection with clean session 0 and no new
	// SUBSCRIBE still gets answers and pushes.
	d.c.Disconnect(100)
	d = h.twinDevice("tw1", key, false)
	d.publish(t, "$iothub/twin/GET/?$rid=5", "")
	if m := d.waitFor(t, "$iothub/twin/res/"); m.Topic() != "$iothub/twin/res/200/?$rid=5" || !strings.Contains(string(m.Payload()), `"fw":"1.0"`) {
		t.Fatalf("GET after renewal: %s %s", m.Topic(), m.Payload())
	}
	h.apiRaw("PATCH", "/twins/tw1"+q, []byte(`{"properties":{"desired":{"interval":7}}}`), nil)
	if m := d.waitFor(t, "$iothub/twin/PATCH/properties/desired/"); !strings.Contains(string(m.Payload()), `"interval":7`) {
		t.Fatalf("desired push after renewal: %s", m.Payload())
	}
}

// Direct methods through the REST API: answered, unanswered (504101),
// offline (404103, also after waiting connectTimeoutInSeconds), bad
// requests, and a device that connects while the call waits.
func TestMethodsEndToEnd(t *testing.T) {
	h := startHub(t)
	key := h.device("m1")
	h.device("off1")
	d := h.twinDevice("m1", key, true)
	answer := func(status int, payload string) {
		m := d.waitFor(t, "$iothub/methods/POST/")
		rid := m.Topic()[strings.Index(m.Topic(), "$rid=")+5:]
		d.publish(t, fmt.Sprintf("$iothub/methods/res/%d/?$rid=%s", status, rid), payload)
	}
	call := func(id, body string) (int, string) {
		status, out := h.apiRaw("POST", "/twins/"+id+"/methods"+q, []byte(body), nil)
		return status, string(out)
	}

	go answer(200, `{"ok":true}`)
	if status, out := call("m1", `{"methodName":"reboot","payload":{"in":1},"responseTimeoutInSeconds":5}`); status != 200 || out != "{\"status\":200,\"payload\":{\"ok\":true}}\n" {
		t.Fatalf("answered: %d %s", status, out)
	}
	go answer(500, `not json`)
	if status, out := call("m1", `{"methodName":"x","responseTimeoutInSeconds":5}`); status != 200 || !strings.Contains(out, `"status":500,"payload":"not json"`) {
		t.Fatalf("device error: %d %s", status, out)
	}
	if status, out := call("m1", `{"methodName":"silent","responseTimeoutInSeconds":5}`); status != 504 || !strings.Contains(out, "504101") {
		t.Fatalf("unanswered: %d %s", status, out)
	}
	d.waitFor(t, "$iothub/methods/POST/silent/")
	start := time.Now()
	if status, out := call("off1", `{"methodName":"x","connectTimeoutInSeconds":1}`); status != 404 || !strings.Contains(out, "DeviceNotOnline") || time.Since(start) < time.Second {
		t.Fatalf("offline: %d %s after %v", status, out, time.Since(start))
	}
	for _, bad := range []struct{ body, want string }{
		{`{"payload":1}`, "methodName is required"},
		{`{"methodName":"a/b"}`, "may not contain"},
		{`{"methodName":"a","responseTimeoutInSeconds":1}`, "out of range"},
		{`{"methodName":"a","connectTimeoutInSeconds":301}`, "out of range"},
		{`{"methodName":`, "not valid JSON"},
	} {
		if status, out := call("m1", bad.body); status != 400 || !strings.Contains(out, bad.want) {
			t.Errorf("%s: %d %s", bad.body, status, out)
		}
	}
	if status, out := call("nope", `{"methodName":"a"}`); status != 404 || !strings.Contains(out, "DeviceNotFound") {
		t.Errorf("unknown device: %d %s", status, out)
	}

	// A call waiting for its device: it connects (persistent session
	// with the methods subscription) and answers.
	d.c.Disconnect(100)
	done := make(chan string, 1)
	go func() {
		_, out := call("m1", `{"methodName":"late","connectTimeoutInSeconds":10,"responseTimeoutInSeconds":5}`)
		done <- out
	}()
	time.Sleep(200 * time.Millisecond)
	d = h.twinDevice("m1", key, false)
	answer(200, `"hi"`)
	if out := <-done; !strings.Contains(out, `"payload":"hi"`) {
		t.Fatalf("late device: %s", out)
	}

	// Every call is in the DirectMethods log with its outcome.
	eventually(t, 10*time.Second, func() error {
		status, body := h.api("POST", "/api/v1/query", map[string]string{"query": `AzureDiagnostics | where Category == "DirectMethods" | summarize n = count() by ResultType | order by ResultType asc`})
		want := []string{`"",3`, `"400004",5`, `"404001",1`, `"404103",1`, `"504101",1`}
		for _, w := range want {
			if !strings.Contains(strings.ReplaceAll(string(body), "[", ""), w) {
				return fmt.Errorf("%d %s: no row %s", status, body, w)
			}
		}
		return nil
	})
}

// Bulk registry operations: per-device results.
func TestBulkDevices(t *testing.T) {
	h := startHub(t)
	h.device("b0")
	status, body := h.apiRaw("POST", "/devices"+q, []byte(`[{"id":"b1","importMode":"create"},{"id":"b0","importMode":"create"},{"id":"b0","importMode":"delete"}]`), nil)
	var res struct {
		IsSuccessful bool `json:"isSuccessful"`
		Errors       []struct {
			DeviceID  string `json:"deviceId"`
			ErrorCode int    `json:"errorCode"`
		} `json:"errors"`
	}
	if status != 200 || json.Unmarshal(body, &res) != nil || res.IsSuccessful || len(res.Errors) != 1 || res.Errors[0].ErrorCode != 409001 {
		t.Fatalf("%d %s", status, body)
	}
	if _, ok := h.Registry().Device("b1"); !ok {
		t.Error("b1 not created")
	}
	if _, ok := h.Registry().Device("b0"); ok {
		t.Error("b0 not deleted")
	}
	if status, body := h.apiRaw("POST", "/devices"+q, []byte(`{"id":"x"}`), nil); status != 400 || !strings.Contains(string(body), "JSON array") {
		t.Errorf("not an array: %d %s", status, body)
	}
}

// Device queries over the REST API: a filter on tags and connection
// state, paging with continuation tokens, a count by group, bad queries.
func TestDeviceQueryEndToEnd(t *testing.T) {
	h := startHub(t)
	key := h.device("q0")
	for i := 1; i <= 4; i++ {
		h.device(fmt.Sprintf("q%d", i))
		h.apiRaw("PATCH", fmt.Sprintf("/twins/q%d", i)+q, []byte(fmt.Sprintf(`{"tags":{"floor":%d}}`, i%2)), nil)
	}
	h.twinDevice("q0", key, false)
	query := func(sql, cont string, pageSize int) (int, string, http.Header) {
		b, _ := json.Marshal(map[string]string{"query": sql})
		hd := map[string]string{"x-ms-max-item-count": fmt.Sprint(pageSize)}
		if cont != "" {
			hd["x-ms-continuation"] = cont
		}
		status, out, header := h.apiRawHeader("POST", "/devices/query"+q, b, hd)
		return status, string(out), header
	}
	status, out, hd := query("SELECT deviceId FROM devices WHERE connectionState = 'Disconnected'", "", 2)
	if status != 200 || out != "[{\"deviceId\":\"q1\"},{\"deviceId\":\"q2\"}]" || hd.Get("x-ms-continuation") == "" || hd.Get("x-ms-item-type") != "raw" {
		t.Fatalf("page 1: %d %s %v", status, out, hd)
	}
	status, out, hd = query("SELECT deviceId FROM devices WHERE connectionState = 'Disconnected'", hd.Get("x-ms-continuation"), 2)
	if status != 200 || out != "[{\"deviceId\":\"q3\"},{\"deviceId\":\"q4\"}]" || hd.Values("x-ms-continuation") != nil {
		t.Fatalf("page 2: %d %s %v", status, out, hd)
	}
	status, out, hd = query("SELECT * FROM devices WHERE tags.floor = 1", "", 10)
	if status != 200 || strings.Count(out, `"deviceId"`) != 2 || !strings.Contains(out, `"deviceId":"q3"`) || hd.Get("x-ms-item-type") != "twin" {
		t.Fatalf("tags: %d %s", status, out)
	}
	status, out, _ = query("SELECT tags.floor, COUNT() AS n FROM devices GROUP BY tags.floor", "", 10)
	if status != 200 || !strings.Contains(out, `{"floor":0,"n":2}`) || !strings.Contains(out, `{"floor":1,"n":2}`) {
		t.Fatalf("count: %d %s", status, out)
	}
	if status, out, _ = query("SELECT * FROM devices WHERE", "", 10); status != 400 || !strings.Contains(out, "column") {
		t.Errorf("bad query: %d %s", status, out)
	}
	if status, out, _ = query("SELECT * FROM devices", "garbage", 10); status != 400 || !strings.Contains(out, "x-ms-continuation") {
		t.Errorf("bad token: %d %s", status, out)
	}
}

// IoT Hub's twin and method limits through the whole hub, with their
// codes: section sizes, depth, keys, a method payload over 128 KB, and
// more than 16 calls waiting on one device.
func TestTwinAndMethodLimitsEndToEnd(t *testing.T) {
	h := startHub(t)
	key := h.device("lim")
	d := h.twinDevice("lim", key, true)
	big := `{"blob":"` + strings.Repeat("x", 4000) + `"`
	for i := range 9 {
		big += fmt.Sprintf(`,"k%d":"%s"`, i, strings.Repeat("y", 4000))
	}
	big += "}"
	deep := strings.Repeat(`{"a":`, 12) + "1" + strings.Repeat("}", 12)
	for i, c := range []struct{ patch, want string }{
		{big, "32"},
		{deep, "depth"},
		{`{"k":"` + strings.Repeat("z", 4097) + `"}`, "4"},
		{`{"a b":1}`, "' '"},
		{`{"a.b":1}`, "'.'"},
		{`"just a string"`, "object"},
	} {
		rid := fmt.Sprint(100 + i)
		d.publish(t, "$iothub/twin/PATCH/properties/reported/?$rid="+rid, c.patch)
		m := d.waitFor(t, "$iothub/twin/res/")
		if m.Topic() != "$iothub/twin/res/400/?$rid="+rid || !strings.Contains(string(m.Payload()), c.want) {
			t.Errorf("patch %.30s: %s %s", c.patch, m.Topic(), m.Payload())
		}
	}
	bigTags := `{"tags":{"t":"` + strings.Repeat("t", 4000) + `","u":"` + strings.Repeat("u", 4000) + `","v":"` + strings.Repeat("v", 400) + `"}}`
	if status, body := h.apiRaw("PATCH", "/twins/lim"+q, []byte(bigTags), nil); status != 400 || !strings.Contains(string(body), "ArgumentInvalid") {
		t.Errorf("tags over 8 KB: %d %s", status, body)
	}
	if status, body := h.apiRaw("PATCH", "/twins/lim"+q, []byte(`{"properties":{"desired":`), nil); status != 400 || !strings.Contains(string(body), "IotHubFormatError") {
		t.Errorf("malformed body: %d %s", status, body)
	}
	payload := `{"methodName":"m","payload":"` + strings.Repeat("p", 128<<10) + `"}`
	if status, body := h.apiRaw("POST", "/twins/lim/methods"+q, []byte(payload), nil); status != 400 || !strings.Contains(string(body), "limit") {
		t.Errorf("payload over 128 KB: %d %.200s", status, body)
	}
	// 16 unanswered calls wait; the 17th is throttled.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			h.apiRaw("POST", "/twins/lim/methods"+q, []byte(`{"methodName":"slow","responseTimeoutInSeconds":5}`), nil)
		})
	}
	for range 16 {
		d.waitFor(t, "$iothub/methods/POST/slow/")
	}
	if status, body := h.apiRaw("POST", "/twins/lim/methods"+q, []byte(`{"methodName":"slow","responseTimeoutInSeconds":5}`), nil); status != 429 || !strings.Contains(string(body), "Throttl") {
		t.Errorf("17th call: %d %s", status, body)
	}
	wg.Wait()
}
