package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
	"github.com/tether-hub/tether/internal/diag"
)

// startAppHub runs a whole hub in-process (dev mode, port 0) and returns
// a CLI runner pointed at it through its data dir.
func startAppHub(t *testing.T) (*cliHub, string) {
	t.Helper()
	a := startApp(t)
	return &cliHub{flags: []string{"--data-dir", a.DataDir()}}, a.DataDir()
}

// startApp runs a whole hub in-process (dev mode, port 0).
func startApp(t *testing.T) *app.App {
	t.Helper()
	return startAppIn(t, t.TempDir())
}

// startAppIn is startApp on a given data dir.
func startAppIn(t *testing.T, dir string) *app.App {
	t.Helper()
	return startAppWith(t, app.Config{
		DataDir: dir, HubName: "localhost", Dev: true,
		MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
	})
}

// startAppWith runs a hub with cfg, stopped at the test's end.
func startAppWith(t *testing.T, cfg app.Config) *app.App {
	t.Helper()
	a, err := app.New(cfg, slog.New(slog.DiscardHandler))
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
	return a
}

func TestDiagCLI(t *testing.T) {
	h, dir := startAppHub(t)

	out := h.mustRun(t, "diag", "list")
	if !strings.Contains(out, "default (built-in)") || !strings.Contains(out, "allLogs") {
		t.Errorf("list on a new hub:\n%s", out)
	}
	if _, err := h.run(t, "diag", "delete", "default"); err == nil || !strings.Contains(err.Error(), "built-in") {
		t.Errorf("deleting the built-in default: %v", err)
	}

	// Every problem at once.
	_, err := h.run(t, "diag", "create", "bad", "--categories", "Connections,Telemetry", "--nats-subject", "tether.conn.x", "--archive-retention", "-3")
	var inv *InvalidSubscriptionError
	if !errors.As(err, &inv) || len(inv.Details) != 3 || !strings.Contains(err.Error(), "diagnostic setting (3 problems)") {
		t.Fatalf("bad create: %v", err)
	}

	out = h.mustRun(t, "diag", "create", "ops", "--categories", "allLogs", "--workspace", "--archive", "--archive-retention", "30", "--nats-subject", "iothub.cli")
	for _, want := range []string{"Name:", "ops", "yes, hub retention", "yes, 30 days", "iothub.cli, live only"} {
		if !strings.Contains(out, want) {
			t.Errorf("create output lacks %q:\n%s", want, out)
		}
	}
	if _, err := h.run(t, "diag", "create", "OPS", "--workspace"); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("creating a taken name: %v", err)
	}

	// A registry write after the setting lands in the archive.
	h.mustRun(t, "device", "create", "cli-dev")
	eventually(t, func() error {
		found := false
		err := filepath.WalkDir(filepath.Join(dir, "archive", "ops", "insights-logs-deviceidentityoperations"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if d.Name() != "PT1H.json" || !strings.Contains(p, "/resourceId=/SUBSCRIPTIONS/") || !strings.Contains(p, "/m=00/") {
				return fmt.Errorf("unexpected archive file %s", p)
			}
			b, err := os.ReadFile(p)
			found = found || strings.Contains(string(b), `"operationName":"create"`) && strings.Contains(string(b), `\"deviceId\":\"cli-dev\"`)
			return err
		})
		if !found {
			return fmt.Errorf("no create record of cli-dev in the archive (%v)", err)
		}
		return nil
	})

	out = h.mustRun(t, "diag", "update", "ops", "--no-nats", "--categories", "Connections", "--archive-retention", "7")
	if !strings.Contains(out, "yes, 7 days") || strings.Contains(out, "iothub.cli") {
		t.Errorf("update output:\n%s", out)
	}
	out = h.mustRun(t, "-o", "json", "diag", "show", "ops")
	var s diag.Setting
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if s.NATS != nil || s.Archive == nil || s.Archive.RetentionDays != 7 || strings.Join(s.Categories, ",") != "Connections" || s.Workspace == nil {
		t.Errorf("after update: %+v", s)
	}
	out = h.mustRun(t, "-o", "json", "diag", "list")
	var list []diag.Setting
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Name != "ops" {
		t.Errorf("list -o json: %s (%v)", out, err)
	}
	h.mustRun(t, "diag", "delete", "ops")
	if _, err := h.run(t, "diag", "show", "ops"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("show after delete: %v", err)
	}
	if out := h.mustRun(t, "diag", "list"); !strings.Contains(out, "default (built-in)") {
		t.Errorf("the default is back after the last setting went:\n%s", out)
	}
}

// eventually retries f for up to 10 s.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
