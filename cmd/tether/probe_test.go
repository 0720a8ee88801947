package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/probe"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/sas"
)

// startProbeHub runs a whole hub in-process and returns it with the
// probe flags that reach it for a new device.
func startProbeHub(t *testing.T) (*app.App, []string) {
	t.Helper()
	a, err := app.New(app.Config{
		DataDir: t.TempDir(), HubName: "localhost", Dev: true,
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	d, err := a.Registry().Create(context.Background(), registry.Device{DeviceID: "cli-probe"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	cs := sas.ConnectionString{HostName: "localhost", DeviceID: "cli-probe", SharedAccessKey: d.Authentication.SymmetricKey.PrimaryKey}
	_, mqttPort, _ := net.SplitHostPort(a.MQTTAddr())
	_, httpsPort, _ := net.SplitHostPort(a.HTTPSAddr())
	return a, []string{"probe", "--connection-string", cs.String(), "--ca", a.CAFile(), "--mqtt-port", mqttPort, "--https-port", httpsPort, "--timeout", "2s"}
}

func TestProbeCommand(t *testing.T) {
	_, args := startProbeHub(t)
	h := &cliHub{}

	out, err := h.run(t, append(args, "--publish")...)
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	for _, want := range []string{"STEP  CHECK", "5     mqtt", "6     websocket", "Result: PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("table output lacks %q:\n%s", want, out)
		}
	}

	out, err = h.run(t, append(args, "-o", "json")...)
	if err != nil {
		t.Fatalf("probe -o json: %v", err)
	}
	var rep probe.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if rep.Status != probe.Pass || len(rep.Steps) != 9 || !strings.HasPrefix(rep.ClientType, "tether-probe/") {
		t.Errorf("report: %s, %d steps, client %q", rep.Status, len(rep.Steps), rep.ClientType)
	}

	// A closed MQTT port: exit status 12, the error names the step.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closed, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	bad := append(append([]string{}, args...), "--mqtt-port", closed)
	out, err = h.run(t, bad...)
	var ee exitError
	if !errors.As(err, &ee) || int(ee) != 12 || !strings.Contains(err.Error(), "probe failed at step 2 (tcp localhost:"+closed+")") {
		t.Fatalf("closed port: %v", err)
	}
	if !strings.Contains(out, "Result: FAIL (exit status 12)") || !strings.Contains(out, "what to do:") {
		t.Errorf("table:\n%s", out)
	}

	// Bad flags: exit 1 (a plain error), every problem named.
	_, err = h.run(t, "probe", "--connection-string", "HostName=h;DeviceId=d;SharedAccessKey=x", "--idle", "2h", "-o", "json")
	if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), "not base64") || !strings.Contains(err.Error(), "at most 29m0s") {
		t.Errorf("bad flags: %v", err)
	}
}
