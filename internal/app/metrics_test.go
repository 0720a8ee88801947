package app_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tether-hub/tether/internal/metrics"
)

// total is one metric's Total over [from, now+1s), split by dims.
func (h *hub) metricTotal(metric string, from time.Time, split ...string) map[string]float64 {
	h.t.Helper()
	vals, err := h.Metrics().Window(context.Background(), metrics.WindowQuery{
		Metric: metric, Aggregation: metrics.AggTotal, SplitBy: split, From: from, To: time.Now().Add(time.Second),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[string]float64{}
	for _, v := range vals {
		var parts []string
		for _, d := range split {
			parts = append(parts, v.Dimensions[d])
		}
		out[strings.Join(parts, "/")] = v.Value
	}
	return out
}

// latest is a gauge's most recent one-second sample.
func (h *hub) latest(metric string) (float64, int) {
	h.t.Helper()
	now := time.Now()
	vals, err := h.Metrics().Window(context.Background(), metrics.WindowQuery{
		Metric: metric, Aggregation: metrics.AggAverage, From: now.Add(-time.Second), To: now,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return vals[0].Value, vals[0].Samples
}

func (h *hub) scrape(accept string) (string, string) {
	h.t.Helper()
	req, _ := http.NewRequest("GET", "https://"+h.HTTPSAddr()+"/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: h.tlsConfig()}}).Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		h.t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get("Content-Type"), string(b)
}

func wantEqual(got map[string]float64, want map[string]float64) error {
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("got %v, want %v", got, want)
		}
	}
	return nil
}

// Real devices connect, are refused, send telemetry and disconnect; the
// history (Window) and /metrics count them from the journal, and the
// counts survive a restart without being counted twice.
func TestMetricsFromJournal(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	start := time.Now().Add(-time.Second)
	var clients []pahov3.Client
	for i := range 5 {
		id := fmt.Sprintf("m%d", i)
		key := h.device(id)
		c, rc := h.v3(id, username(id), h.token(id, key, time.Hour))
		if rc != 0 {
			t.Fatalf("%s: CONNACK %d", id, rc)
		}
		clients = append(clients, c)
	}
	// A token signed with another device's key: 401003, bad signature.
	other := h.device("m-other")
	if c, rc := h.v3("m0", username("m0"), h.token("m0", other, time.Hour)); c != nil || rc != 5 {
		t.Fatalf("bad token accepted: rc %d", rc)
	}
	for i := range 3 {
		tok := clients[1].Publish("devices/m1/messages/events/", 1, false, fmt.Sprintf(`{"n":%d}`, i))
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	eventually(t, 10*time.Second, func() error {
		if v, n := h.latest(metrics.ConnectedDevices); v != 5 || n != 1 {
			return fmt.Errorf("connectedDeviceCount %v (%d samples), want 5", v, n)
		}
		return nil
	})
	clients[3].Disconnect(250)
	clients[4].Disconnect(250)
	eventually(t, 10*time.Second, func() error {
		if v, _ := h.latest(metrics.ConnectedDevices); v != 3 {
			return fmt.Errorf("connectedDeviceCount %v, want 3", v)
		}
		if v, _ := h.latest(metrics.TotalDevices); v != 6 {
			return fmt.Errorf("totalDeviceCount %v, want 6", v)
		}
		return nil
	})
	counts := func(h *hub) error {
		if err := wantEqual(h.metricTotal(metrics.Connects, start, metrics.DimResultType, metrics.DimProtocol),
			map[string]float64{"Success/MQTT": 5, "401003/MQTT": 1}); err != nil {
			return fmt.Errorf("connects: %w", err)
		}
		if err := wantEqual(h.metricTotal(metrics.AuthFailures, start, metrics.DimReason), map[string]float64{"bad-signature": 1}); err != nil {
			return fmt.Errorf("auth failures: %w", err)
		}
		if err := wantEqual(h.metricTotal(metrics.Disconnects, start, metrics.DimReason), map[string]float64{"client": 2}); err != nil {
			return fmt.Errorf("disconnects: %w", err)
		}
		if err := wantEqual(h.metricTotal(metrics.TelemetryIngress, start), map[string]float64{"": 3}); err != nil {
			return fmt.Errorf("telemetry: %w", err)
		}
		return nil
	}
	eventually(t, 10*time.Second, func() error { return counts(h) })

	ct, text := h.scrape("")
	for _, want := range []string{
		"tether_connected_devices 3",
		`tether_device_connects_total{protocol="MQTT",result_type="Success"} 5`,
		`tether_device_auth_failures_total{reason="bad-signature"} 1`,
		`tether_device_disconnects_total{protocol="MQTT",reason="client",result_type="Success"} 2`,
		"tether_d2c_telemetry_ingress_messages_total 3",
		`tether_registry_devices{status="enabled"} 6`,
		`tether_journal_consumer_lag_messages{consumer="connlog",stream="TETHER_CONN"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics (%s) lacks %q:\n%s", ct, want, text)
		}
	}
	if !strings.HasPrefix(ct, "text/plain") || strings.Contains(text, "# EOF") {
		t.Errorf("Content-Type %q", ct)
	}
	ct, text = h.scrape("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
	if !strings.HasPrefix(ct, "application/openmetrics-text") || !strings.HasSuffix(text, "# EOF\n") ||
		!strings.Contains(text, `tether_device_connects_total{protocol="MQTT",result_type="Success"} 5.0`) {
		t.Errorf("OpenMetrics: %s\n%s", ct, text)
	}

	// Restart: the stored counts are read back, the journal is followed
	// from where they end (nothing counted twice), the shutdown's
	// disconnects are counted, and nobody is connected.
	h.stop()
	h2 := startHubIn(t, dir)
	eventually(t, 10*time.Second, func() error {
		if err := counts(h2); err != nil && !strings.HasPrefix(err.Error(), "disconnects") {
			return err
		}
		got := h2.metricTotal(metrics.Disconnects, start, metrics.DimReason)
		if got["client"] != 2 || got["server-shutdown"] != 3 {
			return fmt.Errorf("disconnects after restart: %v", got)
		}
		if v, n := h2.latest(metrics.ConnectedDevices); v != 0 || n != 1 {
			return fmt.Errorf("connectedDeviceCount after restart %v (%d samples)", v, n)
		}
		return nil
	})
}

// 20 of 100 connected devices drop: the newest one-second sample of
// connectedDeviceCount shows it within a second (it is refreshed every
// 100 ms; the alert rule of issue 5 fires from that sample).
func TestConnectedDeviceCountFresh(t *testing.T) {
	h := startHub(t)
	clients := make([]pahov3.Client, 100)
	for i := range clients {
		id := fmt.Sprintf("f%03d", i)
		key := h.device(id)
		c, rc := h.v3(id, username(id), h.token(id, key, time.Hour))
		if rc != 0 {
			t.Fatalf("%s: CONNACK %d", id, rc)
		}
		clients[i] = c
	}
	eventually(t, 10*time.Second, func() error {
		if v, _ := h.latest(metrics.ConnectedDevices); v != 100 {
			return fmt.Errorf("connectedDeviceCount %v, want 100", v)
		}
		return nil
	})
	dropped := time.Now()
	for _, c := range clients[:20] {
		c.Disconnect(0)
	}
	eventually(t, 5*time.Second, func() error {
		if v, _ := h.latest(metrics.ConnectedDevices); v != 80 {
			return fmt.Errorf("connectedDeviceCount %v, want 80", v)
		}
		return nil
	})
	if d := time.Since(dropped); d > time.Second {
		t.Errorf("the sample showed the drop %v after it, want ≤ 1 s", d)
	}
	t.Logf("drop of 20 seen in the newest sample after %v", time.Since(dropped))
}

// Webhook deliveries (outcome and latency, per subscription) and C2D
// sends through the API are counted.
func TestDeliveryAndC2DMetrics(t *testing.T) {
	h := startHub(t)
	start := time.Now().Add(-time.Second)
	key := h.device("w1")
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	status, body := h.api("POST", "/api/v1/subscriptions", map[string]any{
		"name":        "ops",
		"destination": map[string]any{"endpointType": "WebHook", "properties": map[string]any{"endpointUrl": srv.URL}},
		"filter":      map[string]any{"includedEventTypes": []string{"Microsoft.Devices.DeviceConnected"}},
	})
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	if _, rc := h.v3("w1", username("w1"), h.token("w1", key, time.Hour)); rc != 0 {
		t.Fatalf("CONNACK %d", rc)
	}
	for range 2 {
		if status, body := h.api("POST", "/api/v1/devices/w1/messages", map[string]any{"payload": "hi"}); status >= 300 {
			t.Fatalf("C2D: %d %s", status, body)
		}
	}
	eventually(t, 15*time.Second, func() error {
		if err := wantEqual(h.metricTotal(metrics.Deliveries, start, metrics.DimSubscription, metrics.DimResult),
			map[string]float64{"ops/success": 1}); err != nil {
			return fmt.Errorf("deliveries: %w", err)
		}
		if err := wantEqual(h.metricTotal(metrics.C2DSent, start), map[string]float64{"": 2}); err != nil {
			return fmt.Errorf("c2d: %w", err)
		}
		vals, err := h.Metrics().Window(context.Background(), metrics.WindowQuery{
			Metric: metrics.DeliveryLatency, Aggregation: metrics.AggMaximum, SplitBy: []string{metrics.DimEventType},
			From: start, To: time.Now().Add(time.Second),
		})
		if err != nil {
			return err
		}
		if len(vals) != 1 || vals[0].Dimensions[metrics.DimEventType] != "Microsoft.Devices.DeviceConnected" || vals[0].Samples != 1 ||
			vals[0].Value <= 0 || vals[0].Value > 15000 {
			return fmt.Errorf("latency: %+v", vals)
		}
		return nil
	})
	_, text := h.scrape("")
	for _, want := range []string{
		`tether_event_deliveries_total{result="success",subscription="ops"} 1`,
		`tether_event_delivery_latency_seconds_count{event_type="Microsoft.Devices.DeviceConnected",subscription="ops"} 1`,
		"tether_c2d_messages_sent_total 2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
