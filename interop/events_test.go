package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// The Microsoft.Devices event types the interop test subscribes to.
var deviceEventTypes = []string{
	"Microsoft.Devices.DeviceCreated",
	"Microsoft.Devices.DeviceConnected",
	"Microsoft.Devices.DeviceTelemetry",
	"Microsoft.Devices.DeviceDisconnected",
	"Microsoft.Devices.DeviceDeleted",
}

const (
	schemaEventGrid   = "EventGridSchema"
	schemaCloudEvents = "CloudEventSchemaV1_0"
)

// Receiver paths, one per subscription.
const (
	pathEG      = "/eventgrid"
	pathCE      = "/cloudevents"
	pathEGBatch = "/eventgrid-batch"
	pathCEBatch = "/cloudevents-batch"
)

// TestEventDeliveryInterop: webhook subscriptions created through the
// hub's API, in both schemas, one event per POST and batched, receive a
// device's whole life (created, connected, telemetry, disconnected,
// deleted); every delivery is then read by the npm packages subscribers use
// (node/eventcheck.js): @azure/eventgrid's EventGridDeserializer and
// isSystemEvent type guards, and cloudevents' HTTP.toEvent + validate().
// Every subscription gets the same event ids.
//
// INTEROP_EVENTS_DIR=dir keeps the deliveries there as files, for
// `node eventcheck.js dir/*.json`.
func TestEventDeliveryInterop(t *testing.T) {
	t.Parallel()
	requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	a := startHub(ctx, t)
	api := newHubAPI(t, a)

	// Four subscriptions: one event per POST in each schema, and batches of
	// up to 10 in each schema. The batch endpoints hold their first
	// delivery until the device has been deleted, so that the device's
	// later events queue up and go out together (a batch never waits to be
	// filled): that is the Event Grid array of several events and the
	// application/cloudevents-batch+json delivery.
	paths := []string{pathEG, pathCE, pathEGBatch, pathCEBatch}
	rc := startReceiver(t, pathEGBatch, pathCEBatch)
	for _, s := range []struct {
		name, schema, path string
		batch              int
	}{
		{"interop-eg", schemaEventGrid, pathEG, 0},
		{"interop-ce", schemaCloudEvents, pathCE, 0},
		{"interop-eg-batch", schemaEventGrid, pathEGBatch, 10},
		{"interop-ce-batch", schemaCloudEvents, pathCEBatch, 10},
	} {
		props := map[string]any{"endpointUrl": rc.url + s.path}
		if s.batch > 0 {
			props["maxEventsPerBatch"] = s.batch
		}
		status, body := api.do(ctx, t, http.MethodPost, "/api/v1/subscriptions", map[string]any{
			"name":                s.name,
			"destination":         map[string]any{"endpointType": "WebHook", "properties": props},
			"filter":              map[string]any{"includedEventTypes": deviceEventTypes},
			"eventDeliverySchema": s.schema,
		})
		if status != http.StatusCreated {
			t.Fatalf("create subscription %s: %d %s", s.name, status, body)
		}
		var sub struct {
			ProvisioningState string `json:"provisioningState"`
		}
		if err := json.Unmarshal(body, &sub); err != nil || sub.ProvisioningState != "Succeeded" {
			t.Fatalf("subscription %s is not validated (%v): %s\nreceiver saw: %s", s.name, err, body, rc.describe())
		}
	}
	wantHS := map[string]int{pathEG: 1, pathCE: 1, pathEGBatch: 1, pathCEBatch: 1}
	if got := rc.handshakes(); !reflect.DeepEqual(got, wantHS) {
		t.Fatalf("handshakes per path = %v, want %v (a SubscriptionValidation POST for the Event Grid schema, an OPTIONS for CloudEvents)", got, wantHS)
	}

	// The device's life: created, connected, one telemetry message (JSON in
	// UTF-8, so that data.body is the object itself), disconnected, deleted.
	deviceID := "interop-events-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	dev, err := a.Registry().Create(ctx, registry.Device{DeviceID: deviceID}, "test")
	if err != nil {
		t.Fatalf("create device: %v", err)
	}
	const payload = `{"temperature":21.5,"unit":"C","tags":["interop"]}`
	c := connectDevice(t, a, deviceID, dev.Authentication.SymmetricKey.PrimaryKey)
	topic := "devices/" + deviceID + "/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&%24.mid=interop-1&source=eventcheck"
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish telemetry: %v", tok.Error())
	}
	c.Disconnect(250)

	// Delete only once the disconnect has been delivered (one event per
	// POST, both schemas), so that the session is over and the device's
	// events keep their natural order. The batch endpoints are released
	// once the delete has been delivered too: by then their subscriptions
	// have the device's four later events queued behind the held first.
	want := func(paths []string, types ...string) func() error {
		return func() error {
			for _, path := range paths {
				got := rc.types(t, path, "devices/"+deviceID)
				for _, typ := range types {
					if got[typ] == 0 {
						return fmt.Errorf("%s has not received %s yet (has %v)", path, typ, got)
					}
				}
			}
			return nil
		}
	}
	eventually(ctx, t, 20*time.Second, "DeviceDisconnected delivered", want(paths[:2], "Microsoft.Devices.DeviceDisconnected"))
	if err := a.Registry().Delete(ctx, deviceID, "*", "test"); err != nil {
		t.Fatalf("delete device: %v", err)
	}
	eventually(ctx, t, 15*time.Second, "DeviceDeleted delivered", want(paths[:2], "Microsoft.Devices.DeviceDeleted"))
	rc.release()
	eventually(ctx, t, 15*time.Second, "all five event types delivered on all four subscriptions", want(paths, deviceEventTypes...))

	deliveries := rc.deliveries()
	if dir := os.Getenv("INTEROP_EVENTS_DIR"); dir != "" {
		saveDeliveries(t, dir, deliveries)
	}
	for _, d := range deliveries {
		if d.Headers["aeg-event-type"] != "Notification" {
			t.Errorf("delivery on %s: aeg-event-type %q, want Notification", d.Path, d.Headers["aeg-event-type"])
		}
	}

	// Every delivery through eventcheck.js.
	s := startScript(ctx, t, "eventcheck.js", nil)
	go func() {
		enc := json.NewEncoder(s.stdin)
		for _, d := range deliveries {
			if err := enc.Encode(d); err != nil {
				break
			}
		}
		_ = s.stdin.Close()
	}()
	var checked, failed []event
	var summary event
	for e := range s.Events {
		switch e.str("event") {
		case "checked":
			checked = append(checked, e)
		case "failed":
			failed = append(failed, e)
		case "summary":
			summary = e
		case "error":
			t.Fatalf("eventcheck.js could not run: %s\n%s", e.str("message"), s.diag())
		default:
			t.Errorf("eventcheck.js printed %v", e)
		}
	}
	<-s.done
	for _, f := range failed {
		path := "?"
		if n := f.num("delivery"); n >= 1 && n <= len(deliveries) {
			path = deliveries[n-1].Path
		}
		t.Errorf("the npm packages reject delivery %d on %s (%s, event %d: %s, id %s): %v",
			f.num("delivery"), path, f.str("schema"), f.num("index"), f.str("type"), f.str("id"), f["problems"])
	}
	if s.err != nil || len(failed) > 0 || summary == nil {
		t.Fatalf("eventcheck.js: exit %v, %d failures, summary %v\n%s\ndeliveries:\n%s", s.err, len(failed), summary, s.diag(), describeDeliveries(deliveries))
	}

	// What the packages read: every type on every path with its type guard,
	// the same event ids everywhere (one id per source record, whatever the
	// schema or subscription), sequence numbers rising.
	ids := map[string]map[string][]string{}     // path → type → ids
	seq := map[string]map[string]string{}       // path → type → sequenceNumber
	perDelivery := make([]int, len(deliveries)) // events of our device per delivery
	for _, e := range checked {
		n := e.num("delivery")
		if n < 1 || n > len(deliveries) {
			t.Fatalf("eventcheck.js names delivery %d of %d: %v", n, len(deliveries), e)
		}
		path, schema, typ := deliveries[n-1].Path, e.str("schema"), e.str("type")
		if want := schemaOfPath(path); schema != want {
			t.Errorf("delivery %d on %s was read as %s, want %s", n, path, schema, want)
		}
		if e.str("guard") != typ {
			t.Errorf("%s event %s: type guard %q, want %q", path, e.str("id"), e.str("guard"), typ)
		}
		if e.str("subject") != "devices/"+deviceID {
			continue
		}
		perDelivery[n-1]++
		if ids[path] == nil {
			ids[path], seq[path] = map[string][]string{}, map[string]string{}
		}
		ids[path][typ] = append(ids[path][typ], e.str("id"))
		if sn := e.str("sequenceNumber"); sn != "" {
			seq[path][typ] = sn
		}
		if notes, _ := e["modelNotes"].([]any); len(notes) > 0 && (path == pathEG || path == pathCE) {
			t.Logf("%s %s: differs from the @azure/eventgrid model as IoT Hub does: %v", schema, typ, notes)
		}
		if typ == "Microsoft.Devices.DeviceTelemetry" {
			checkTelemetryEvent(t, path, e, payload, deviceID)
		}
	}
	for _, typ := range deviceEventTypes {
		var first []string
		for _, path := range paths {
			got := slices.Compact(slices.Sorted(slices.Values(ids[path][typ])))
			switch {
			case len(got) != 1:
				t.Errorf("%s on %s: checked with ids %v, want one event (duplicates of one id allowed)", typ, path, got)
			case first == nil:
				first = got
			case !slices.Equal(got, first):
				t.Errorf("%s: id on %s is %v, on %s %v; one source record has one id", typ, path, got, paths[0], first)
			}
		}
	}
	for _, path := range paths {
		if c, d := seq[path]["Microsoft.Devices.DeviceConnected"], seq[path]["Microsoft.Devices.DeviceDisconnected"]; !(c < d) {
			t.Errorf("%s: sequenceNumber of DeviceConnected %q is not below DeviceDisconnected's %q", path, c, d)
		}
	}
	// The batch endpoints got at least one delivery of several events;
	// CloudEvents sends those as application/cloudevents-batch+json.
	for _, path := range []string{pathEGBatch, pathCEBatch} {
		most := 0
		for i, d := range deliveries {
			if d.Path != path || perDelivery[i] <= most {
				continue
			}
			most = perDelivery[i]
			if most > 1 && path == pathCEBatch && !strings.HasPrefix(d.ContentType, "application/cloudevents-batch+json") {
				t.Errorf("%s: a delivery of %d CloudEvents has content type %q, want application/cloudevents-batch+json", path, most, d.ContentType)
			}
		}
		if most < 2 {
			t.Errorf("%s: no delivery held more than one event, so batch mode went untested\ndeliveries:\n%s", path, describeDeliveries(deliveries))
		}
	}
	t.Logf("eventcheck.js: %d events checked in %d deliveries: %v", len(checked), len(deliveries), summary["counts"])
}

// checkTelemetryEvent: data.body is the JSON the device sent, properties
// and system properties as it set them.
func checkTelemetryEvent(t *testing.T, path string, e event, payload, deviceID string) {
	t.Helper()
	data, _ := e["data"].(map[string]any)
	var want any
	_ = json.Unmarshal([]byte(payload), &want)
	if !reflect.DeepEqual(data["body"], want) {
		t.Errorf("%s DeviceTelemetry: data.body = %#v, want %s", path, data["body"], payload)
	}
	props, _ := data["properties"].(map[string]any)
	if props["source"] != "eventcheck" {
		t.Errorf("%s DeviceTelemetry: data.properties = %v, want source=eventcheck", path, props)
	}
	sys, _ := data["systemProperties"].(map[string]any)
	for k, v := range map[string]string{
		"iothub-content-type":         "application/json",
		"iothub-content-encoding":     "utf-8",
		"iothub-connection-device-id": deviceID,
		"message-id":                  "interop-1",
	} {
		if sys[k] != v {
			t.Errorf("%s DeviceTelemetry: systemProperties[%s] = %v, want %q (all: %v)", path, k, sys[k], v, sys)
		}
	}
}

// delivery is one request the receiver stored, in eventcheck.js's input
// form.
type delivery struct {
	Path        string            `json:"path"`
	ContentType string            `json:"contentType"`
	Headers     map[string]string `json:"headers"`
	Body        string            `json:"body"`
}

// schemaOfPath is the delivery schema of the subscription on path.
func schemaOfPath(path string) string {
	if strings.HasPrefix(path, pathCE) {
		return schemaCloudEvents
	}
	return schemaEventGrid
}

// receiver is a webhook endpoint on 127.0.0.1:0 that answers both
// validation handshakes and stores every delivery. On the held paths the
// first delivery is answered only after release.
type receiver struct {
	url     string
	gate    chan struct{}
	mu      sync.Mutex
	got     []delivery
	hs      map[string]int  // handshakes per path
	held    map[string]bool // path → its first delivery is (was) held
	log     []string        // everything that arrived, for failure messages
	release func()
}

func startReceiver(t *testing.T, holdFirst ...string) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{url: "http://" + ln.Addr().String(), gate: make(chan struct{}), hs: map[string]int{}, held: map[string]bool{}}
	rc.release = sync.OnceFunc(func() { close(rc.gate) })
	for _, p := range holdFirst {
		rc.held[p] = false
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		rc.release()
		_ = srv.Close()
	})
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.log = append(rc.log, fmt.Sprintf("%s %s %v %s", r.Method, r.URL.Path, r.Header, body))
	rc.mu.Unlock()
	switch {
	case r.Method == http.MethodOptions:
		// CloudEvents webhook abuse protection: allow the origin asking.
		origin := r.Header.Get("WebHook-Request-Origin")
		if origin == "" {
			http.Error(w, "no WebHook-Request-Origin", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.hs[r.URL.Path]++
		rc.mu.Unlock()
		w.Header().Set("WebHook-Allowed-Origin", origin)
		w.Header().Set("WebHook-Allowed-Rate", "*")
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodPost && r.Header.Get("aeg-event-type") == "SubscriptionValidation":
		var batch []struct {
			Data struct {
				ValidationCode string `json:"validationCode"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &batch); err != nil || len(batch) != 1 {
			http.Error(w, "bad validation event", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.hs[r.URL.Path]++
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"validationResponse": batch[0].Data.ValidationCode})
	case r.Method == http.MethodPost:
		rc.mu.Lock()
		held, hold := rc.held[r.URL.Path]
		hold = hold && !held
		if hold {
			rc.held[r.URL.Path] = true
		}
		rc.mu.Unlock()
		if hold {
			select {
			case <-rc.gate:
			case <-r.Context().Done():
				return
			}
		}
		h := map[string]string{}
		for k := range r.Header {
			h[strings.ToLower(k)] = r.Header.Get(k)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Headers: h, Body: string(body)})
		rc.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func (rc *receiver) handshakes() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return maps.Clone(rc.hs)
}

func (rc *receiver) describe() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return tail(strings.Join(rc.log, "\n"), 40)
}

// types counts the event types path has received for subject, reading
// either schema (a JSON array or a single CloudEvent).
func (rc *receiver) types(t *testing.T, path, subject string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, d := range rc.deliveries() {
		if d.Path != path {
			continue
		}
		var evs []map[string]any
		b := []byte(d.Body)
		if len(bytes.TrimSpace(b)) > 0 && bytes.TrimSpace(b)[0] == '{' {
			b = append(append([]byte{'['}, b...), ']')
		}
		if err := json.Unmarshal(b, &evs); err != nil {
			t.Fatalf("delivery on %s is not JSON: %v\n%s", path, err, d.Body)
		}
		for _, ev := range evs {
			if ev["subject"] != subject {
				continue
			}
			typ, _ := ev["eventType"].(string)
			if typ == "" {
				typ, _ = ev["type"].(string)
			}
			out[typ]++
		}
	}
	return out
}

func describeDeliveries(ds []delivery) string {
	var b strings.Builder
	for i, d := range ds {
		fmt.Fprintf(&b, "#%d %s %s\n%s\n", i+1, d.Path, d.ContentType, d.Body)
	}
	return b.String()
}

// saveDeliveries writes each delivery to dir as a record file that
// eventcheck.js reads.
func saveDeliveries(t *testing.T, dir string, ds []delivery) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		b, _ := json.MarshalIndent(d, "", "  ")
		name := filepath.Join(dir, fmt.Sprintf("delivery-%02d-%s.json", i+1, strings.Trim(d.Path, "/")))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d deliveries saved in %s", len(ds), dir)
}

// hubAPI calls the hub's HTTPS API with an iothubowner SAS token.
type hubAPI struct {
	base   string
	token  string
	client *http.Client
}

func newHubAPI(t *testing.T, a *app.App) *hubAPI {
	t.Helper()
	cs, err := sas.ParseConnectionString(a.OwnerConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := sas.Sign(a.HubName(), cs.SharedAccessKey, cs.SharedAccessKeyName, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: hubTLS(t, a)}}
	t.Cleanup(client.CloseIdleConnections)
	return &hubAPI{base: "https://" + a.HTTPSAddr(), token: tok, client: client}
}

func (h *hubAPI) do(ctx context.Context, t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", h.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// hubTLS trusts the hub's development CA.
func hubTLS(t *testing.T, a *app.App) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(a.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", a.CAFile())
	}
	return &tls.Config{RootCAs: pool, ServerName: a.HubName(), MinVersion: tls.VersionTLS12}
}

// connectDevice connects a paho MQTT 3.1.1 client as the device, over TLS
// with a SAS token, as IoT Hub devices do.
func connectDevice(t *testing.T, a *app.App, deviceID, key string) pahov3.Client {
	t.Helper()
	tok, err := sas.Sign(sas.DeviceResource(a.HubName(), deviceID), key, "", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	o := pahov3.NewClientOptions().
		AddBroker("ssl://" + a.MQTTAddr()).
		SetClientID(deviceID).
		SetUsername(a.HubName() + "/" + deviceID + "/?api-version=2021-04-12").
		SetPassword(tok).
		SetTLSConfig(hubTLS(t, a)).
		SetProtocolVersion(4).SetCleanSession(false).
		SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(30 * time.Second).SetConnectTimeout(10 * time.Second)
	c := pahov3.NewClient(o)
	ct := c.Connect()
	if !ct.WaitTimeout(15 * time.Second) {
		t.Fatal("MQTT connect timed out")
	}
	if err := ct.Error(); err != nil {
		t.Fatalf("MQTT connect: %v", err)
	}
	t.Cleanup(func() {
		if c.IsConnected() {
			c.Disconnect(0)
		}
	})
	return c
}
