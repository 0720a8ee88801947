package app_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/broker/brokertest"
	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// hub is an in-process Tether on loopback port 0 with a recorder of the
// connection events it journals.
type hub struct {
	*app.App
	t      testing.TB
	dir    string
	events *eventLog
	// caFile is the CA clients trust: the dev CA unless a test gave the
	// hub its own certificate (production_test.go).
	caFile string
}

func startHub(t *testing.T) *hub {
	t.Helper()
	return startHubIn(t, t.TempDir())
}

func startHubIn(t *testing.T, dir string) *hub {
	t.Helper()
	return startHubWith(t, dir, nil)
}

// startHubWith starts a hub whose config is adjusted by configure.
func startHubWith(t testing.TB, dir string, configure func(*app.Config)) *hub {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("TETHER_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return startHubLog(t, dir, configure, log)
}

// startHubLog is startHubWith with the hub's logger.
func startHubLog(t testing.TB, dir string, configure func(*app.Config), log *slog.Logger) *hub {
	t.Helper()
	cfg := app.Config{
		DataDir: dir, HubName: "localhost", Dev: true,
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0",
		ConnectTimeout: 2 * time.Second, CompactAfter: 50,
	}
	if configure != nil {
		configure(&cfg)
	}
	a, err := app.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	h := &hub{App: a, t: t, dir: dir, events: &eventLog{}}
	sub, err := a.Journal().NC.Subscribe(journal.ConnPrefix+">", h.events.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sub.Unsubscribe()
		h.stop()
		brokertest.CheckNoSessionGoroutines(t) // several hubs run in one binary, but one at a time
	})
	return h
}

func (h *hub) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.Stop(ctx); err != nil {
		h.t.Errorf("stop: %v", err)
	}
}

// eventLog collects ConnectionEvents from the journal subjects.
type eventLog struct {
	mu     sync.Mutex
	events []presence.ConnectionEvent
}

func (e *eventLog) add(m *nats.Msg) {
	var ev presence.ConnectionEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		panic(err)
	}
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

func (e *eventLog) forDevice(id string) []presence.ConnectionEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []presence.ConnectionEvent
	for _, ev := range e.events {
		if ev.DeviceID == id {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvents polls until the device has n events, then returns them.
func (h *hub) waitEvents(id string, n int) []presence.ConnectionEvent {
	h.t.Helper()
	var evs []presence.ConnectionEvent
	eventually(h.t, 10*time.Second, func() error {
		evs = h.events.forDevice(id)
		if len(evs) < n {
			return fmt.Errorf("device %s has %d events, want %d: %s", id, len(evs), n, describe(evs))
		}
		return nil
	})
	return evs
}

func describe(evs []presence.ConnectionEvent) string {
	var parts []string
	for _, ev := range evs {
		parts = append(parts, fmt.Sprintf("%s(%s %s %s)", ev.Kind, ev.Reason, ev.Result.Type, ev.Detail))
	}
	return strings.Join(parts, ", ")
}

// waitLogs polls the Connections log until the device has n records.
func (h *hub) waitLogs(id string, n int) []connlog.Record {
	h.t.Helper()
	var recs []connlog.Record
	eventually(h.t, 10*time.Second, func() error {
		var err error
		recs, err = h.Logs().Find(context.Background(), connlog.Filter{DeviceID: id, Category: "Connections"})
		if err != nil {
			return err
		}
		if len(recs) < n {
			return fmt.Errorf("device %s has %d log records, want %d", id, len(recs), n)
		}
		return nil
	})
	return recs
}

// eventually retries f until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// device creates a device and returns its primary key.
func (h *hub) device(id string) string {
	h.t.Helper()
	d, err := h.Registry().Create(context.Background(), registry.Device{DeviceID: id}, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	return d.Authentication.SymmetricKey.PrimaryKey
}

func (h *hub) token(id, key string, ttl time.Duration) string {
	h.t.Helper()
	tok, err := sas.Sign(sas.DeviceResource("localhost", id), key, "", time.Now().Add(ttl))
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func username(id string) string {
	return "localhost/" + id + "/?api-version=2021-04-12&DeviceClientType=tether-test%2F1.0"
}

func (h *hub) tlsConfig() *tls.Config {
	h.t.Helper()
	ca := h.CAFile()
	if h.caFile != "" {
		ca = h.caFile
	}
	pem, err := os.ReadFile(ca)
	if err != nil {
		h.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

// v3 connects a paho 3.1.1 client over TLS; it returns the client (nil
// if refused) and the CONNACK return code.
func (h *hub) v3(clientID, user, pass string, opts ...func(*pahov3.ClientOptions)) (pahov3.Client, byte) {
	h.t.Helper()
	o := pahov3.NewClientOptions().
		AddBroker("ssl://" + h.MQTTAddr()).
		SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetTLSConfig(h.tlsConfig()).SetCleanSession(false).
		SetAutoReconnect(false).SetConnectRetry(false).SetKeepAlive(30 * time.Second).
		SetConnectTimeout(5 * time.Second).SetProtocolVersion(4)
	for _, f := range opts {
		f(o)
	}
	c := pahov3.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(max(10*time.Second, o.ConnectTimeout+5*time.Second)) {
		h.t.Fatal("connect timed out")
	}
	rc := tok.(*pahov3.ConnectToken).ReturnCode()
	if tok.Error() != nil {
		return nil, rc
	}
	h.t.Cleanup(func() { c.Disconnect(0) })
	return c, rc
}
