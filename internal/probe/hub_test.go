package probe_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/probe"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// hub is one in-process Tether for the package's tests (dev mode,
// loopback, port 0): starting a hub takes a while, and every test uses
// its own devices.
var hub struct {
	app             *app.App
	ca              []byte
	mqttPort, https int
	devices         atomic.Int64
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "probe-hub-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		a, err := app.New(app.Config{
			DataDir: dir, HubName: "localhost", Dev: true,
			MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", ConnectTimeout: 3 * time.Second,
		}, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer func() {
			sctx, c := context.WithTimeout(context.Background(), 20*time.Second)
			defer c()
			_ = a.Stop(sctx)
		}()
		hub.app = a
		hub.ca, err = os.ReadFile(a.CAFile())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		hub.mqttPort, hub.https = portOf(a.MQTTAddr()), portOf(a.HTTPSAddr())
		return m.Run()
	}()
	os.Exit(code)
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		panic(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// newDevice registers a device with the given status and returns its
// connection string.
func newDevice(t *testing.T, status registry.Status) (id, cs string) {
	t.Helper()
	id = fmt.Sprintf("probe-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), hub.devices.Add(1))
	d, err := hub.app.Registry().Create(context.Background(), registry.Device{DeviceID: id, Status: status}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return id, sas.ConnectionString{HostName: "localhost", DeviceID: id, SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey}.String()
}

// config points a probe at the test hub.
func config(cs string) probe.Config {
	return probe.Config{
		ConnectionString: cs, CAPEM: hub.ca, CAName: "--ca hub.pem",
		MQTTPort: hub.mqttPort, HTTPSPort: hub.https,
		Timeout: 2 * time.Second, ClientType: probe.ClientTypePrefix + "test",
	}
}

func run(t *testing.T, cfg probe.Config) *probe.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := probe.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		var b strings.Builder
		probe.WriteTable(&b, rep)
		t.Logf("\n%s", b.String())
	}
	return rep
}

// step returns the step or fails the test.
func step(t *testing.T, rep *probe.Report, number int, target string) *probe.Step {
	t.Helper()
	s := rep.Step(number, target)
	if s == nil {
		t.Fatalf("no step %d %s in the report", number, target)
	}
	return s
}

func hostPort(port int) string { return net.JoinHostPort("localhost", strconv.Itoa(port)) }

// eventually retries f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
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
