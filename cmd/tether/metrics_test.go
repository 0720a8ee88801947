package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
)

// tether metrics lists the catalog offline and queries a real hub.
func TestMetricsCommand(t *testing.T) {
	dir := t.TempDir()
	a, err := app.New(app.Config{DataDir: filepath.Join(dir, "hub"), Dev: true, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		a.Stop(ctx)
	})
	h := &cliHub{flags: []string{"--connection-string", a.OwnerConnectionString(), "--url", "https://" + a.HTTPSAddr(), "--ca", a.CAFile(), "--data-dir", dir}}

	out := h.mustRun(t, "metrics")
	rows := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	if r := rows["connectedDeviceCount"]; len(r) != 6 || r[1] != "gauge" || r[5] != "tether_connected_devices" {
		t.Errorf("catalog row %v:\n%s", r, out)
	}
	if r := rows["deviceConnects"]; len(r) != 6 || r[3] != "ResultType,Protocol,TokenRenewal" || r[4] != "Total,Count" {
		t.Errorf("catalog row %v:\n%s", r, out)
	}
	h.mustRun(t, "device", "create", "cli-1")
	h.mustRun(t, "device", "create", "cli-2")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out = h.mustRun(t, "metrics", "totalDeviceCount", "connectedDeviceCount", "--interval", "PT1S", "--timespan", "PT20S", "--aggregation", "Maximum")
		if strings.Contains(out, "totalDeviceCount (Count)") && strings.Contains(out, "connectedDeviceCount (Count)") &&
			strings.Contains(out, "maximum") && strings.Contains(out, "  2\n") {
			t.Logf("%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	out = h.mustRun(t, "metrics", "deviceConnects", "--filter", "ResultType eq '*'", "-o", "json")
	if !strings.Contains(out, `"value": "deviceConnects"`) || !strings.Contains(out, `"interval": "PT1M"`) {
		t.Errorf("json:\n%s", out)
	}
	for args, want := range map[string]string{
		"metrics connectedDevices":                         "known metrics: connectedDeviceCount",
		"metrics deviceConnects --filter ResultType":       "expected eq",
		"metrics connectedDeviceCount --aggregation Total": "allows Average, Count, Maximum, Minimum",
		"metrics connectedDeviceCount --interval 5m":       "ISO 8601",
	} {
		_, err := h.run(t, strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", args, err, want)
		}
	}
}
