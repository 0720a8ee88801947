package app_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/metrics"
	"github.com/tether-hub/tether/internal/mqttclient"
	"github.com/tether-hub/tether/internal/throttle"
)

// Every throttle end to end: the device sees its code (a closed
// connection before the TLS handshake, CONNACK 3, the session ended), the
// Connections log has the record (ResultType, ResultDescription,
// errorMessage), and the metric counts it by Scope, in the history alert
// rules read and on /metrics.

func startLimitedHub(t *testing.T, l throttle.Limits) *hub {
	t.Helper()
	return startHubWith(t, t.TempDir(), func(c *app.Config) { c.Limits = l })
}

// throttleRecords waits for n Connections records of resultType and
// returns them.
func (h *hub) throttleRecords(resultType string, n int) []connlog.Record {
	h.t.Helper()
	var out []connlog.Record
	eventually(h.t, 10*time.Second, func() error {
		recs, err := h.Logs().Find(context.Background(), connlog.Filter{Category: "Connections", Level: "Error"})
		if err != nil {
			return err
		}
		out = out[:0]
		for _, r := range recs {
			if r.ResultType == resultType {
				out = append(out, r)
			}
		}
		if len(out) < n {
			return fmt.Errorf("%d records %s, want %d", len(out), resultType, n)
		}
		return nil
	})
	return out
}

// waitScope waits until metric's Total for Scope scope is want, in the
// metrics history and on /metrics (family prom).
func (h *hub) waitScope(metric, prom, scope string, want float64, since time.Time) {
	h.t.Helper()
	eventually(h.t, 10*time.Second, func() error {
		if got := h.metricTotal(metric, since.Add(-time.Second), metrics.DimScope)[scope]; got != want {
			return fmt.Errorf("%s{Scope=%s} = %v, want %v", metric, scope, got, want)
		}
		_, text := h.scrape("")
		if line := fmt.Sprintf(`%s{scope="%s"} %v`, prom, scope, want); !strings.Contains(text, line) {
			return fmt.Errorf("/metrics lacks %s", line)
		}
		return nil
	})
}

func checkRecord(t *testing.T, r connlog.Record, op, resultType, description, device, msg string) {
	t.Helper()
	p := props(t, r)
	if r.OperationName != op || r.Level != "Error" || r.ResultType != resultType || r.ResultDescription != description ||
		r.DeviceID != device || !strings.Contains(fmt.Sprint(p["errorMessage"]), "https://aka.ms/iothub"+resultType) ||
		!strings.Contains(fmt.Sprint(p["errorMessage"]), msg) {
		t.Fatalf("record %s %s %s %s device %q: %v; want %s %s %s device %q, message with %q",
			r.OperationName, r.ResultType, r.ResultDescription, r.Level, r.DeviceID, p, op, resultType, description, device, msg)
	}
}

// The hub-wide new-connection rate: a TLS connection past it is closed
// before its handshake, a plain TCP one gets CONNACK 3; an alert rule on
// throttledConnects split by Scope fires for scope hub.
func TestThrottleHubConnectRate(t *testing.T) {
	start := time.Now()
	sink := &alertSink{}
	web := httptest.NewServer(sink)
	defer web.Close()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	writeFile(t, rules, fmt.Sprintf(`
actionGroups:
  - name: ops
    actions: [{webhook: {url: %q}}]
rules:
  - name: connect-storm
    severity: 2
    metric: {name: throttledConnects, aggregation: Total, splitBy: [Scope]}
    operator: GreaterThan
    threshold: 1
    frequency: 1s
    window: 30s
    actionGroups: [ops]
`, web.URL))
	h := startHubWith(t, filepath.Join(dir, "hub"), func(c *app.Config) {
		c.Limits = throttle.Limits{ConnectRate: 0.05, ConnectBurst: 1}
		c.RulesFile = rules
	})
	key := h.device("r1")
	if _, rc := h.v3("r1", username("r1"), h.token("r1", key, time.Hour)); rc != 0 {
		t.Fatalf("first connect: CONNACK %d", rc)
	}
	// Ten TLS connections past the rate: each closed before its
	// handshake; journalled together (refusals before a handshake are
	// batched), logged and counted one by one.
	for range 10 {
		if c, err := tls.Dial("tcp", h.MQTTAddr(), h.tlsConfig()); err == nil {
			c.Close()
			t.Fatal("a TLS handshake past the hub-wide rate")
		}
	}
	c, err := dialRaw(h.TCPAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rc, err := c.connect("r1", username("r1"), h.token("r1", key, time.Hour), 60); err != nil || rc != 3 {
		t.Fatalf("over TCP: CONNACK %d %v, want 3 (server unavailable)", rc, err)
	}
	recs := h.throttleRecords("429001", 11)
	items := map[string]bool{}
	for _, r := range recs {
		items[r.ItemID] = true
		if r.DeviceID == "" {
			checkRecord(t, r, "deviceConnect", "429001", "ThrottlingException", "", "before the TLS handshake")
		} else {
			checkRecord(t, r, "deviceConnect", "429001", "ThrottlingException", "r1", "new connections a second")
		}
	}
	if len(recs) != 11 || len(items) != 11 {
		t.Fatalf("%d records, %d distinct, want 11", len(recs), len(items))
	}
	h.waitScope(metrics.ThrottledConnects, "tether_throttled_connects_total", "hub", 11, start)
	fired := sink.wait(t, "Fired", 10*time.Second)
	c0 := fired.p.Data.AlertContext.Condition.AllOf[0]
	if c0.MetricName != metrics.ThrottledConnects || len(c0.Dimensions) != 1 || c0.Dimensions[0].Value != "hub" || *c0.MetricValue < 2 {
		t.Fatalf("Fired %+v", c0)
	}
}

// A device in a reconnect loop gets 429005; a source address over its
// rate is refused before the handshake.
func TestThrottleDeviceLoopAndAddress(t *testing.T) {
	start := time.Now()
	h := startLimitedHub(t, throttle.Limits{AddressRate: 0.01, AddressBurst: 4, DeviceRate: 0.01, DeviceBurst: 2})
	key := h.device("loop1")
	for i := range 2 {
		c, rc := h.v3("loop1", username("loop1"), h.token("loop1", key, time.Hour))
		if rc != 0 {
			t.Fatalf("connect %d: CONNACK %d", i, rc)
		}
		c.Disconnect(50)
	}
	if _, rc := h.v3("loop1", username("loop1"), h.token("loop1", key, time.Hour)); rc != 3 {
		t.Fatalf("third connect of the device: CONNACK %d, want 3", rc)
	}
	recs := h.throttleRecords("429005", 1)
	checkRecord(t, recs[0], "deviceConnect", "429005", "DeviceThrottlingLimitExceeded", "loop1", "reconnect loop")
	h.waitScope(metrics.ThrottledConnects, "tether_throttled_connects_total", "device", 1, start)

	// Three connections from 127.0.0.1 so far; one more is allowed, the
	// fifth is closed before its handshake.
	other := h.device("addr1")
	if _, rc := h.v3("addr1", username("addr1"), h.token("addr1", other, time.Hour)); rc != 0 {
		t.Fatalf("fourth connection from the address: CONNACK %d", rc)
	}
	if c, err := tls.Dial("tcp", h.MQTTAddr(), h.tlsConfig()); err == nil {
		c.Close()
		t.Fatal("a fifth connection from one address got its handshake")
	}
	recs = h.throttleRecords("429001", 1)
	checkRecord(t, recs[0], "deviceConnect", "429001", "ThrottlingException", "", "the source address opens more than")
	h.waitScope(metrics.ThrottledConnects, "tether_throttled_connects_total", "address", 1, start)
}

// With every handshake slot held, a new TLS connection waits for one and
// is refused when none frees in time.
func TestThrottleHandshakeCapEndToEnd(t *testing.T) {
	start := time.Now()
	h := startLimitedHub(t, throttle.Limits{Handshakes: 1, HandshakeQueue: 300 * time.Millisecond})
	silent, err := net.Dial("tcp", h.MQTTAddr()) // holds the slot until the connect timeout
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	eventually(t, 5*time.Second, func() error {
		if v := h.Limits().Handshakes; v != 1 {
			return fmt.Errorf("cap %d", v)
		}
		if _, text := h.scrape(""); !strings.Contains(text, "tether_tls_handshakes_in_progress 1") {
			return fmt.Errorf("the silent connection holds no slot yet")
		}
		return nil
	})
	if c, err := tls.Dial("tcp", h.MQTTAddr(), h.tlsConfig()); err == nil {
		c.Close()
		t.Fatal("a handshake while the only slot was held")
	}
	recs := h.throttleRecords("429001", 1)
	checkRecord(t, recs[0], "deviceConnect", "429001", "ThrottlingException", "", "TLS handshakes were in progress")
	h.waitScope(metrics.ThrottledConnects, "tether_throttled_connects_total", "handshake", 1, start)
	silent.Close()
	key := h.device("hs1")
	eventually(t, 5*time.Second, func() error {
		if _, rc := h.v3("hs1", username("hs1"), h.token("hs1", key, time.Hour)); rc != 0 {
			return fmt.Errorf("CONNACK %d", rc)
		}
		return nil
	})
}

// publishAll connects id over MQTT/TLS and sends n QoS 1 messages at once,
// then waits for the hub to end the session.
func (h *hub) publishAll(id string, n int) {
	h.t.Helper()
	key := h.device(id)
	c, err := dialRaw(h.MQTTAddr(), h.tlsConfig())
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	if rc, err := c.connect(id, username(id), h.token(id, key, time.Hour), 60); err != nil || rc != 0 {
		h.t.Fatalf("%s: CONNACK %d %v", id, rc, err)
	}
	var b []byte
	for i := range n {
		b = mqttclient.AppendPublish(b, "devices/"+id+"/messages/events/", 1, uint16(i+1), []byte("m"))
	}
	if _, err := c.Write(b); err != nil {
		h.t.Fatal(err)
	}
	if !c.waitClosed(10 * time.Second) {
		h.t.Fatalf("%s: the hub did not end the session", id)
	}
}

// A device over its message rate for longer than the message queue is
// disconnected with 429001.
func TestThrottleDeviceMessageRate(t *testing.T) {
	start := time.Now()
	h := startLimitedHub(t, throttle.Limits{MessageRate: 10, MessageBurst: 2, MessageQueue: 300 * time.Millisecond})
	h.publishAll("m1", 40)
	recs := h.throttleRecords("429001", 1)
	checkRecord(t, recs[0], "deviceDisconnect", "429001", "ThrottlingException", "m1", "messages a second")
	h.waitScope(metrics.SendThrottle, "tether_d2c_throttled_messages_total", "device", 1, start)
}

// The hub-wide message rate refuses the message whose turn is too far.
func TestThrottleHubMessageRate(t *testing.T) {
	start := time.Now()
	h := startLimitedHub(t, throttle.Limits{HubMessageRate: 0.01, HubMessageBurst: 3})
	h.publishAll("hm1", 5)
	recs := h.throttleRecords("429001", 1)
	checkRecord(t, recs[0], "deviceDisconnect", "429001", "ThrottlingException", "hm1", "from all devices")
	h.waitScope(metrics.SendThrottle, "tether_d2c_throttled_messages_total", "hub", 1, start)
}

// The daily quota: past it, 403002; the count survives a restart.
func TestThrottleDailyQuota(t *testing.T) {
	start := time.Now()
	dir := t.TempDir()
	limits := func(c *app.Config) { c.Limits = throttle.Limits{DailyQuota: 5} }
	h := startHubWith(t, dir, limits)
	h.publishAll("q1", 8)
	recs := h.throttleRecords("403002", 1)
	checkRecord(t, recs[0], "deviceDisconnect", "403002", "IotHubQuotaExceeded", "q1", "daily quota of 5 messages")
	h.waitScope(metrics.SendThrottle, "tether_d2c_throttled_messages_total", "quota", 1, start)
	eventually(t, 5*time.Second, func() error {
		if v, _ := h.latest(metrics.DailyQuotaUsed); v != 5 {
			return fmt.Errorf("dailyMessageQuotaUsed %v, want 5", v)
		}
		return nil
	})
	// Wait until the history holds the 5 messages, then restart.
	eventually(t, 5*time.Second, func() error {
		if v := h.metricTotal(metrics.TelemetryIngress, start.Add(-time.Second))[""]; v != 5 {
			return fmt.Errorf("telemetry %v", v)
		}
		return nil
	})
	h.stop()
	h2 := startHubWith(t, dir, limits)
	eventually(t, 5*time.Second, func() error {
		if v, _ := h2.latest(metrics.DailyQuotaUsed); v != 5 {
			return fmt.Errorf("after a restart dailyMessageQuotaUsed is %v, want 5", v)
		}
		return nil
	})
}
