package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/registry"
)

// Renewal timing given to the device SDK: a new token (and with it a
// DISCONNECT + new CONNECT) every valid-margin seconds.
const (
	tokenValidSecs  = 12
	tokenMarginSecs = 6
)

// startHub runs a hub in-process on ephemeral ports. Its log goes to a
// buffer whose tail is printed when the test fails.
func startHub(ctx context.Context, t *testing.T) *app.App {
	t.Helper()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := app.Config{
		DataDir:   t.TempDir(),
		HubName:   "localhost",
		MQTTAddr:  "127.0.0.1:0",
		HTTPSAddr: "127.0.0.1:0",
		Dev:       true,
	}
	a, err := app.New(cfg, logger)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatalf("app.Start: %v\nhub log:\n%s", err, tail(logs.String(), 60))
	}
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := a.Stop(stopCtx); err != nil {
			t.Errorf("app.Stop: %v", err)
		}
		if t.Failed() || os.Getenv("INTEROP_HUB_LOG") != "" {
			t.Logf("hub log (tail):\n%s", tail(logs.String(), 200))
		}
	})
	return a
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		t.Fatalf("address %q has no port", addr)
	}
	return addr[i+1:]
}

// TestDeviceSDK: the official device SDK connects from its connection string
// over MQTT and MQTT over WebSockets, sends telemetry with properties,
// receives C2D (before and after a token renewal: the session keeps the
// subscription, the SDK does not subscribe again), survives SAS token
// renewals, and the Connections log shows the renewal's disconnect/connect.
func TestDeviceSDK(t *testing.T) {
	t.Parallel()
	requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel) // not defer: the parallel subtests run after this function returns
	a := startHub(ctx, t)

	for _, tc := range []struct {
		transport string // TRANSPORT for device.js
		port      string
		protocol  string // protocol the Connections log should name
	}{
		{"mqtt", portOf(t, a.MQTTAddr()), "Mqtt"},
		{"mqttws", portOf(t, a.HTTPSAddr()), "MqttWs"},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			t.Parallel()
			runDevice(ctx, t, a, tc.transport, tc.port, tc.protocol)
		})
	}
}

func runDevice(ctx context.Context, t *testing.T, a *app.App, transport, port, protocol string) {
	deviceID := "interop-" + transport + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	dev, err := a.Registry().Create(ctx, registry.Device{DeviceID: deviceID}, "test")
	if err != nil {
		t.Fatalf("create device: %v", err)
	}
	key := dev.Authentication.SymmetricKey.PrimaryKey
	if key == "" {
		t.Fatal("created device has no primary key")
	}
	connStr := fmt.Sprintf("HostName=localhost;DeviceId=%s;SharedAccessKey=%s", deviceID, key)

	// Telemetry lands in the journal; an ordered consumer from the start of
	// the device's subject sees it whenever we look.
	tele, err := a.Journal().JS.OrderedConsumer(ctx, journal.StreamTelemetry, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{journal.TelemetrySubject(deviceID)},
	})
	if err != nil {
		t.Fatalf("telemetry consumer: %v", err)
	}

	started := time.Now()
	s := startScript(ctx, t, "device.js", map[string]string{
		"CONNECTION_STRING":  connStr,
		"TRANSPORT":          transport,
		"PORT":               port,
		"CA_FILE":            a.CAFile(),
		"TOKEN_VALID_SECS":   strconv.Itoa(tokenValidSecs),
		"TOKEN_MARGIN_SECS":  strconv.Itoa(tokenMarginSecs),
		"RENEWALS":           "1",
		"C2D_COUNT":          "2",
		"STEP_TIMEOUT_SECS":  "20",
		"TOTAL_TIMEOUT_SECS": "75",
	})

	var sent, c2d []event
	renewals := 0
	c2dSent := map[int]string{} // phase -> message id
loop:
	for {
		e := s.next(ctx, t, "device.js events")
		switch e.str("event") {
		case "connected":
			t.Logf("%s: connected after %v", transport, time.Since(started).Round(time.Millisecond))
		case "sent":
			sent = append(sent, e)
		case "renewed":
			renewals++
			t.Logf("%s: token renewed (#%d) at %v", transport, renewals, time.Since(started).Round(time.Millisecond))
		case "ready":
			phase := e.num("phase")
			mid := fmt.Sprintf("c2d-%s-%d", transport, phase)
			props := map[string]string{"phase": strconv.Itoa(phase), "k y": "v/1=2", "unicode": "é"}
			payload := fmt.Sprintf(`{"hello":"device","phase":%d}`, phase)
			if err := a.Broker().SendC2D(ctx, deviceID, []byte(payload), props, mid); err != nil {
				t.Fatalf("SendC2D phase %d: %v\n%s", phase, err, s.diag())
			}
			c2dSent[phase] = payload
		case "c2d":
			c2d = append(c2d, e)
		case "disconnect", "client-error":
			t.Logf("%s: SDK reported %s: %s", transport, e.str("event"), e.str("message"))
		case "closed":
			break loop
		default:
			t.Logf("%s: unexpected line %v", transport, e)
		}
	}
	s.wait(ctx, t)

	// C2D: both messages arrived with their message id and decoded properties.
	if len(c2d) != 2 {
		t.Fatalf("want 2 C2D messages, got %d: %v", len(c2d), c2d)
	}
	for i, e := range c2d {
		phase := i + 1
		if got, want := e.str("data"), c2dSent[phase]; got != want {
			t.Errorf("C2D %d data = %q, want %q", phase, got, want)
		}
		if got, want := e.str("messageId"), fmt.Sprintf("c2d-%s-%d", transport, phase); got != want {
			t.Errorf("C2D %d messageId = %q, want %q", phase, got, want)
		}
		p := e.props()
		if p["phase"] != strconv.Itoa(phase) || p["k y"] != "v/1=2" || p["unicode"] != "é" {
			t.Errorf("C2D %d properties = %v, want phase=%d, \"k y\"=\"v/1=2\", unicode=é", phase, p, phase)
		}
	}

	// Telemetry: both messages (before and after the renewal) reached the
	// journal with payload and properties decoded.
	if len(sent) != 2 || sent[1]["afterRenewal"] != true {
		t.Fatalf("want 2 telemetry messages, the second after a renewal; got %v", sent)
	}
	for i, e := range sent {
		fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
		msg, err := nextMsg(fctx, tele)
		fcancel()
		if err != nil {
			t.Fatalf("telemetry %d (%s) not in the journal: %v", i+1, e.str("messageId"), err)
		}
		checkTelemetry(t, deviceID, i+1, e, msg)
		t.Logf("%s: telemetry %d in the journal: %s %v", transport, i+1, msg.Data(), msg.Headers())
	}

	// Connections log: connect, the renewal's disconnect (no error), connect
	// again, and the final disconnect after close(), in time order.
	var recs []logRecord
	eventually(ctx, t, 15*time.Second, "Connections log for "+deviceID, func() error {
		recs, err = connectionRecords(ctx, a, deviceID)
		if err != nil {
			return err
		}
		return checkRenewalInLog(recs, protocol)
	})
	for _, r := range recs {
		t.Logf("%s: log: %s", transport, r)
	}
}

// nextMsg fetches the next message from an ordered consumer.
func nextMsg(ctx context.Context, c jetstream.Consumer) (jetstream.Msg, error) {
	for {
		deadline, _ := ctx.Deadline()
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, context.DeadlineExceeded
		}
		if wait > 2*time.Second {
			wait = 2 * time.Second
		}
		batch, err := c.Fetch(1, jetstream.FetchMaxWait(wait))
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			return m, nil
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// checkTelemetry compares what device.js sent with the journal message:
// payload as data, application and system properties decoded, as JSON
// objects in the Tether-Properties and Tether-System-Properties headers.
func checkTelemetry(t *testing.T, deviceID string, n int, sent event, m jetstream.Msg) {
	t.Helper()
	if got, want := string(m.Data()), sent.str("data"); got != want {
		t.Errorf("telemetry %d payload = %q, want %q", n, got, want)
	}
	h := m.Headers()
	if got := h.Get(journal.HeaderDeviceID); got != deviceID {
		t.Errorf("telemetry %d: header %s = %q, want %q", n, journal.HeaderDeviceID, got, deviceID)
	}
	decode := func(name string) map[string]string {
		v := h.Get(name)
		if v == "" {
			t.Errorf("telemetry %d: header %s missing (headers %v)", n, name, h)
			return nil
		}
		var m map[string]string
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			t.Errorf("telemetry %d: header %s = %q: %v", n, name, v, err)
		}
		return m
	}
	props, sys := decode(journal.HeaderProperties), decode(journal.HeaderSystemProperties)
	if want := sent.props(); !maps.Equal(props, want) {
		t.Errorf("telemetry %d: application properties = %v, want %v", n, props, want)
	}
	wantSys := map[string]string{
		"message-id":       sent.str("messageId"),
		"correlation-id":   sent.str("correlationId"),
		"content-type":     sent.str("contentType"),
		"content-encoding": sent.str("contentEncoding"),
	}
	for k, v := range wantSys {
		if sys[k] != v {
			t.Errorf("telemetry %d: system property %s = %q, want %q (all: %v)", n, k, sys[k], v, sys)
		}
	}
}

// logRecord is the subset of a Connections record the checks use.
type logRecord struct {
	Time              time.Time
	Operation         string
	Level             string
	ResultType        string
	ResultDescription string
	Protocol          string
	Properties        string
}

func (r logRecord) String() string {
	return fmt.Sprintf("%s %s level=%s result=%q/%q protocol=%s props=%s",
		r.Time.Format("15:04:05.000"), r.Operation, r.Level, r.ResultType, r.ResultDescription, r.Protocol, r.Properties)
}

// connectionRecords reads the device's Connections records, oldest first.
func connectionRecords(ctx context.Context, a *app.App, deviceID string) ([]logRecord, error) {
	recs, err := a.Logs().Find(ctx, connlog.Filter{DeviceID: deviceID, Category: connlog.CategoryConnections})
	if err != nil {
		return nil, err
	}
	out := make([]logRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, logRecord{
			Time:              r.TimeGenerated,
			Operation:         r.OperationName,
			Level:             r.Level,
			ResultType:        r.ResultType,
			ResultDescription: r.ResultDescription,
			Protocol:          r.Protocol,
			Properties:        r.Properties,
		})
	}
	return out, nil
}

// checkRenewalInLog wants, in time order: deviceConnect, deviceDisconnect
// (Information, no error), deviceConnect (the renewal), and a final
// deviceDisconnect (the SDK's close), all Information, protocol as given.
func checkRenewalInLog(recs []logRecord, protocol string) error {
	dump := func() string {
		var b strings.Builder
		for _, r := range recs {
			b.WriteString("\n  ")
			b.WriteString(r.String())
		}
		return b.String()
	}
	if len(recs) < 4 {
		return fmt.Errorf("want ≥4 Connections records (connect, renewal disconnect+connect, final disconnect), have %d:%s", len(recs), dump())
	}
	want := []string{"deviceConnect", "deviceDisconnect"}
	for i, r := range recs {
		if r.Operation != want[i%2] {
			return fmt.Errorf("record %d is %s, want %s (connects and disconnects must alternate):%s", i, r.Operation, want[i%2], dump())
		}
		if r.Level != "Information" || r.ResultType != "" {
			return fmt.Errorf("record %d should be Information without error (a renewal and a clean close are not failures):%s", i, dump())
		}
		if protocol != "" && r.Protocol != "" && r.Protocol != protocol {
			return fmt.Errorf("record %d protocol %q, want %q:%s", i, r.Protocol, protocol, dump())
		}
	}
	if recs[len(recs)-1].Operation != "deviceDisconnect" {
		return fmt.Errorf("last record should be the disconnect of close():%s", dump())
	}
	// The renewal: the SDK sends DISCONNECT and connects again at once
	// (~10-30 ms on the wire).
	if gap := recs[2].Time.Sub(recs[1].Time); gap < 0 || gap > 5*time.Second {
		return fmt.Errorf("renewal disconnect → connect took %v, want a prompt reconnect:%s", gap, dump())
	}
	// The hub recognises the reconnect as the renewal and marks it.
	if !strings.Contains(recs[2].Properties, `"tokenRenewal":true`) || strings.Contains(recs[0].Properties, `"tokenRenewal"`) {
		return fmt.Errorf("the renewal connect (and only it) should carry tokenRenewal:%s", dump())
	}
	return nil
}

// TestServiceSDK: the official service SDK (azure-iothub Registry) creates,
// gets, lists, disables, enables and deletes a device; after each step the
// hub's registry is checked from Go.
func TestServiceSDK(t *testing.T) {
	t.Parallel()
	requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a := startHub(ctx, t)

	deviceID := "interop-svc-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	s := startScript(ctx, t, "service.js", map[string]string{
		"CONNECTION_STRING":  a.OwnerConnectionString(),
		"PORT":               portOf(t, a.HTTPSAddr()),
		"CA_FILE":            a.CAFile(),
		"DEVICE_ID":          deviceID,
		"STEP_SYNC":          "1",
		"STEP_TIMEOUT_SECS":  "15",
		"TOTAL_TIMEOUT_SECS": "50",
	})
	get := func() (registry.Device, error) { return a.Registry().Get(ctx, deviceID) }
	steps := []string{"create", "create-duplicate", "get", "list", "disable", "enable", "delete"}
	for _, want := range steps {
		e := s.next(ctx, t, "step "+want)
		if e.str("event") != "step" || e.str("step") != want {
			t.Fatalf("want step %s, got %v\n%s", want, e, s.diag())
		}
		switch want {
		case "create", "get", "list", "enable":
			d, err := get()
			if err != nil {
				t.Fatalf("after %s: registry Get: %v", want, err)
			}
			if d.Status != registry.Enabled {
				t.Fatalf("after %s: status %q, want enabled", want, d.Status)
			}
			if d.Authentication.SymmetricKey.PrimaryKey == "" || d.Authentication.SymmetricKey.SecondaryKey == "" {
				t.Fatalf("after %s: keys missing", want)
			}
		case "disable":
			d, err := get()
			if err != nil {
				t.Fatalf("after disable: registry Get: %v", err)
			}
			if d.Status != registry.Disabled {
				t.Fatalf("after disable: status %q, want disabled", d.Status)
			}
		case "delete":
			if _, err := get(); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("after delete: registry Get error = %v, want not found", err)
			}
		}
		t.Logf("step %s ok: %v", want, e["device"])
		if _, err := s.stdin.Write([]byte("ok\n")); err != nil {
			t.Fatalf("ack step %s: %v\n%s", want, err, s.diag())
		}
	}
	if e := s.next(ctx, t, "done"); e.str("event") != "done" {
		t.Fatalf("want done, got %v", e)
	}
	s.wait(ctx, t)
}

// TestDeviceSDKBadKey: a connection string with the wrong key is refused,
// and the SDK reports it as the UnauthorizedError apps handle (not a hang or
// a retry loop).
func TestDeviceSDKBadKey(t *testing.T) {
	t.Parallel()
	requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	a := startHub(ctx, t)
	deviceID := "interop-badkey"
	if _, err := a.Registry().Create(ctx, registry.Device{DeviceID: deviceID}, "test"); err != nil {
		t.Fatalf("create device: %v", err)
	}
	wrong := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	s := startScript(ctx, t, "device.js", map[string]string{
		"CONNECTION_STRING":  fmt.Sprintf("HostName=localhost;DeviceId=%s;SharedAccessKey=%s", deviceID, wrong),
		"TRANSPORT":          "mqtt",
		"PORT":               portOf(t, a.MQTTAddr()),
		"CA_FILE":            a.CAFile(),
		"STEP_TIMEOUT_SECS":  "20",
		"TOTAL_TIMEOUT_SECS": "30",
	})
	var last event
	for e := range s.Events {
		last = e
	}
	<-s.done
	if s.err == nil || last.str("event") != "error" || !strings.Contains(last.str("message"), "UnauthorizedError") {
		t.Fatalf("want device.js to fail open() with UnauthorizedError; exit %v, last event %v\n%s", s.err, last, s.diag())
	}
	t.Logf("refused as expected: %s", last.str("message"))
}
