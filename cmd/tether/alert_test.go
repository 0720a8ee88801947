package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/app"
)

func TestAlertCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte(`
rules:
  - name: low
    metric: {name: connectedDeviceCount}
    operator: LessThan
    threshold: 90
    frequency: 1s
`), 0o600)
	os.WriteFile(bad, []byte(`
rules:
  - name: low
    metric: {name: connectedDeviceCount, aggregation: Total, splitBy: [Protocol]}
    operator: LessThan
    threshold: ninety
    frequency: 1s
    window: 1m
    actionGroups: [ops]
`), 0o600)
	h := &cliHub{}
	var out, errOut syncBuffer
	if err := h.runCtx(context.Background(), &out, &errOut, "alert", "check", good); err != nil || !strings.Contains(out.String(), "1 rule(s), 0 action group(s): OK") {
		t.Fatalf("good file: %v %q %q", err, out.String(), errOut.String())
	}
	out, errOut = syncBuffer{}, syncBuffer{}
	err := h.runCtx(context.Background(), &out, &errOut, "alert", "check", bad)
	if err == nil || !strings.Contains(err.Error(), "4 problem(s)") {
		t.Fatalf("bad file: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	want := []string{
		bad + `:6:16: rules[0].threshold: "ninety" is not a number`,
		bad + `:9:20: rules[0].actionGroups[0]: no action group "ops" in this file`,
	}
	if len(lines) != 4 || !strings.HasPrefix(lines[0], bad+":4:20: rules[0].metric: ") || !strings.Contains(lines[0], `not "Total"`) ||
		!strings.HasPrefix(lines[1], bad+":4:20: rules[0].metric: ") || !strings.Contains(lines[1], `"Protocol"`) || lines[2] != want[0] || lines[3] != want[1] {
		t.Fatalf("problems:\n%s", errOut.String())
	}
}

// The example in deploy/ stays valid.
func TestAlertCheckDeployExample(t *testing.T) {
	var out, errOut syncBuffer
	if err := (&cliHub{}).runCtx(context.Background(), &out, &errOut, "alert", "check", "../../deploy/alert-rules.yaml"); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
}

// list, history and reload against a real hub.
func TestAlertCommandsAgainstAHub(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rules, []byte(`
rules:
  - name: nobody-home
    severity: 3
    metric: {name: connectedDeviceCount, aggregation: Maximum}
    operator: "<"
    threshold: 1
    frequency: 1s
`), 0o600)
	a, err := app.New(app.Config{DataDir: filepath.Join(dir, "hub"), Dev: true, MQTTAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", RulesFile: rules},
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
	// No device is connected: the rule fires at its first evaluation.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := h.mustRun(t, "alert", "list")
		if strings.Contains(out, "nobody-home") && strings.Contains(out, "Fired") && strings.Contains(out, "Maximum(connectedDeviceCount) LessThan 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := h.mustRun(t, "alert", "list", "--fired", "-o", "json"); !strings.Contains(out, `"state": "Fired"`) {
		t.Fatalf("list json:\n%s", out)
	}
	out := h.mustRun(t, "alert", "history", "--rule", "nobody-home", "--since", "1h")
	if !strings.Contains(out, "nobody-home") || !strings.Contains(out, "Sev3") || !strings.Contains(out, "Fired") {
		t.Fatalf("history:\n%s", out)
	}
	// Reload a file that drops the rule: its alert resolves.
	os.WriteFile(rules, []byte("rules: []\n"), 0o600)
	if out := h.mustRun(t, "alert", "reload"); !strings.Contains(out, "0 rule(s)") {
		t.Fatalf("reload: %s", out)
	}
	out = h.mustRun(t, "alert", "history")
	if !strings.Contains(out, "Resolved") || !strings.Contains(out, "rule removed") {
		t.Fatalf("history after reload:\n%s", out)
	}
	os.WriteFile(rules, []byte("rules: {}\n"), 0o600)
	var o, e syncBuffer
	if err := h.runCtx(context.Background(), &o, &e, "alert", "reload"); err == nil || !strings.Contains(e.String(), "rules.yaml:1:8: rules: want a list") {
		t.Fatalf("bad reload: %v %q", err, e.String())
	}
	if out := h.mustRun(t, "alert", "actions"); !strings.Contains(out, "suppressed by rate limits: 0") {
		t.Fatalf("actions: %s", out)
	}
}
