package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/api"
	"github.com/tether-hub/tether/internal/registry"
	"github.com/tether-hub/tether/internal/registry/memstore"
	"github.com/tether-hub/tether/internal/sas"
)

const testHub = "hub.example"

type sentC2D struct {
	device, payload, id string
	props               map[string]string
}

// cliHub is the API of a hub (real registry on a memstore, fake C2D and
// telemetry) behind TLS, and the global flags that reach it.
type cliHub struct {
	reg   *registry.Registry
	flags []string

	mu   sync.Mutex
	sent []sentC2D
	subs chan func(api.TelemetryMessage)
}

func (h *cliHub) SendC2D(ctx context.Context, id string, payload []byte, props map[string]string, mid string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sent = append(h.sent, sentC2D{id, string(payload), mid, props})
	return nil
}

func (h *cliHub) Subscribe(ctx context.Context, id string, fn func(api.TelemetryMessage)) error {
	h.subs <- fn
	<-ctx.Done()
	return ctx.Err()
}

// startCLIHub serves the real API over a memory registry; opts add
// dependencies.
func startCLIHub(t *testing.T, opts ...func(*api.Deps)) *cliHub {
	t.Helper()
	reg, err := registry.New(context.Background(), memstore.New(), registry.Options{HubName: testHub})
	if err != nil {
		t.Fatal(err)
	}
	h := &cliHub{reg: reg, subs: make(chan func(api.TelemetryMessage), 1)}
	deps := api.Deps{Registry: reg, HubName: testHub, C2D: h, Telemetry: h}
	for _, o := range opts {
		o(&deps)
	}
	ts := httptest.NewTLSServer(api.New(deps))
	t.Cleanup(ts.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	owner, _ := reg.Policy("iothubowner")
	cs := sas.ConnectionString{HostName: testHub, SharedAccessKeyName: owner.Name, SharedAccessKey: owner.PrimaryKey}
	h.flags = []string{"--connection-string", cs.String(), "--url", ts.URL, "--ca", ca, "--data-dir", dir}
	return h
}

// syncBuffer is a bytes.Buffer safe for a command goroutine and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func (h *cliHub) runCtx(ctx context.Context, out, errOut *syncBuffer, args ...string) error {
	root := newRootCmd()
	root.SetArgs(append(append([]string{}, h.flags...), args...))
	root.SetOut(out)
	root.SetErr(errOut)
	return root.ExecuteContext(ctx)
}

// run runs the CLI and returns its standard output.
func (h *cliHub) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut syncBuffer
	err := h.runCtx(context.Background(), &out, &errOut, args...)
	return out.String(), err
}

func (h *cliHub) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.run(t, args...)
	if err != nil {
		t.Fatalf("tether %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestDeviceCommands(t *testing.T) {
	h := startCLIHub(t)

	// create, table and JSON
	out := h.mustRun(t, "device", "create", "dev1")
	if !strings.Contains(out, "Device ID:") || !strings.Contains(out, "dev1") || !strings.Contains(out, "enabled") {
		t.Fatalf("create table:\n%s", out)
	}
	var d2 registry.Device
	out = h.mustRun(t, "-o", "json", "device", "create", "a#b?", "--status", "Disabled", "--status-reason", "spare")
	if err := json.Unmarshal([]byte(out), &d2); err != nil || d2.DeviceID != "a#b?" || d2.Status != "disabled" || *d2.StatusReason != "spare" {
		t.Fatalf("create json: %v\n%s", err, out)
	}
	if _, err := h.run(t, "device", "create", "dev1"); err == nil || !strings.Contains(err.Error(), "409") || !strings.Contains(err.Error(), "DeviceAlreadyExists") {
		t.Fatalf("create existing: %v", err)
	}

	// list
	out = h.mustRun(t, "device", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "DEVICE ID") || !strings.HasPrefix(lines[1], "a#b?") || !strings.Contains(lines[2], "Disconnected") {
		t.Fatalf("list:\n%s", out)
	}
	var devs []registry.Device
	if err := json.Unmarshal([]byte(h.mustRun(t, "device", "list", "-o", "json")), &devs); err != nil || len(devs) != 2 {
		t.Fatalf("list json: %v %v", err, devs)
	}

	// show
	dev1, _ := h.reg.Device("dev1")
	out = h.mustRun(t, "device", "show", "dev1")
	if !strings.Contains(out, dev1.Authentication.SymmetricKey.PrimaryKey) || !strings.Contains(out, "Status reason:") {
		t.Fatalf("show:\n%s", out)
	}
	if _, err := h.run(t, "device", "show", "ghost"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("show missing: %v", err)
	}

	// update
	out = h.mustRun(t, "-o", "json", "device", "update", "dev1", "--status", "disabled", "--status-reason", "stolen")
	var u registry.Device
	if err := json.Unmarshal([]byte(out), &u); err != nil || u.Status != "disabled" || *u.StatusReason != "stolen" {
		t.Fatalf("update: %v\n%s", err, out)
	}
	if c, _ := h.reg.Device("dev1"); c.Status != "disabled" {
		t.Fatal("registry not updated")
	}
	h.mustRun(t, "device", "update", "dev1", "--status-reason", "")
	if c, _ := h.reg.Device("dev1"); c.StatusReason != nil || c.Status != "disabled" {
		t.Fatalf("after clearing the reason: %+v", c)
	}

	// connection-string and token
	dev1, _ = h.reg.Device("dev1")
	k := dev1.Authentication.SymmetricKey
	out = h.mustRun(t, "device", "connection-string", "dev1")
	if strings.TrimSpace(out) != "HostName=hub.example;DeviceId=dev1;SharedAccessKey="+k.PrimaryKey {
		t.Fatalf("connection-string: %s", out)
	}
	out = h.mustRun(t, "device", "connection-string", "dev1", "--key", "secondary", "-o", "json")
	if !strings.Contains(out, `"connectionString": "HostName=hub.example;DeviceId=dev1;SharedAccessKey=`+k.SecondaryKey) {
		t.Fatalf("connection-string json: %s", out)
	}
	out = h.mustRun(t, "device", "token", "dev1", "--ttl", "10m")
	tok, err := sas.Parse(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("token %q: %v", out, err)
	}
	if tok.Resource != "hub.example/devices/dev1" || tok.KeyName != "" {
		t.Fatalf("token resource %q skn %q", tok.Resource, tok.KeyName)
	}
	if err := tok.Verify(k.PrimaryKey, time.Now()); err != nil {
		t.Fatalf("token does not verify with the primary key: %v", err)
	}
	if left := time.Until(tok.Expiry); left < 9*time.Minute || left > 10*time.Minute {
		t.Fatalf("token expires in %v, want ~10m", left)
	}
	out = h.mustRun(t, "device", "token", "a#b?", "--key", "secondary")
	tok, _ = sas.Parse(strings.TrimSpace(out))
	if tok.Resource != "hub.example/devices/a#b?" || tok.Verify(d2.Authentication.SymmetricKey.SecondaryKey, time.Now()) != nil {
		t.Fatalf("token for a#b?: %+v", tok)
	}

	// send
	out = h.mustRun(t, "device", "send", "dev1", `{"led":"on"}`, "--prop", "a=1", "--prop", "b=x=y", "--message-id", "m-7")
	if strings.TrimSpace(out) != "Sent message m-7 to dev1" {
		t.Fatalf("send: %s", out)
	}
	h.mu.Lock()
	got := h.sent[0]
	h.mu.Unlock()
	if got.device != "dev1" || got.payload != `{"led":"on"}` || got.id != "m-7" || got.props["a"] != "1" || got.props["b"] != "x=y" {
		t.Fatalf("sent %+v", got)
	}

	// delete
	out = h.mustRun(t, "device", "delete", "a#b?")
	if strings.TrimSpace(out) != "Deleted device a#b?" {
		t.Fatalf("delete: %s", out)
	}
	if _, ok := h.reg.Device("a#b?"); ok {
		t.Fatal("still registered")
	}
}

func TestDeviceArgumentErrors(t *testing.T) {
	h := startCLIHub(t)
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"device", "show"}, "takes the device id (got 0 arguments)"},
		{[]string{"device", "send", "dev1"}, "takes the device id and the payload"},
		{[]string{"device", "create", "d", "--status", "paused"}, `--status "paused": use enabled or disabled`},
		{[]string{"device", "update", "d"}, "nothing to update"},
		{[]string{"device", "update", "d", "--status", "on"}, "use enabled or disabled"},
		{[]string{"device", "token", "d", "--ttl", "-1h"}, "must be positive"},
		{[]string{"device", "token", "d", "--key", "tertiary"}, "use primary or secondary"},
		{[]string{"device", "connection-string", "d", "--key", "x"}, "use primary or secondary"},
		{[]string{"device", "send", "d", "p", "--prop", "novalue"}, `--prop "novalue": want key=value`},
		{[]string{"device", "send", "d", "p", "--prop", "a=1", "--prop", "a=2"}, "given twice"},
		{[]string{"device", "list", "--top", "0"}, "use 1 to 1000"},
		{[]string{"device", "list", "-o", "yaml"}, `unknown output format "yaml"`},
		{[]string{"device", "create", "bad id"}, "character ' '"},
		{[]string{"device", "monitor", "ghost"}, "404: device 'ghost' is not registered"},
	}
	for _, tc := range tests {
		_, err := h.run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("tether %s: error %v, want %q", strings.Join(tc.args, " "), err, tc.msg)
		}
	}
}

func TestDeviceMonitor(t *testing.T) {
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			h := startCLIHub(t)
			if _, err := h.reg.Create(context.Background(), registry.Device{DeviceID: "dev1"}, ""); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out, errOut syncBuffer
			done := make(chan error, 1)
			go func() { done <- h.runCtx(ctx, &out, &errOut, "-o", format, "device", "monitor", "dev1") }()
			var fn func(api.TelemetryMessage)
			select {
			case fn = <-h.subs:
			case err := <-done:
				t.Fatalf("monitor ended early: %v", err)
			}
			at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			fn(api.TelemetryMessage{DeviceID: "dev1", EnqueuedTime: at, Payload: []byte(`{"t":21}`), Properties: map[string]string{"b": "2", "a": "1"}})
			fn(api.TelemetryMessage{DeviceID: "dev1", EnqueuedTime: at, Payload: []byte{0xff}})
			deadline := time.Now().Add(5 * time.Second)
			for strings.Count(out.String(), "\n") < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("output so far: %q", out.String())
				}
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("monitor after Ctrl-C: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("monitor did not stop on cancel")
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if format == "table" {
				if lines[0] != `2026-03-01T12:00:00Z  dev1  a=1,b=2  {"t":21}` || lines[1] != "2026-03-01T12:00:00Z  dev1  -  base64:/w==" {
					t.Fatalf("table output:\n%s", out.String())
				}
				if !strings.Contains(errOut.String(), "Monitoring telemetry from dev1") {
					t.Fatalf("no banner: %q", errOut.String())
				}
				return
			}
			var ev api.TelemetryEvent
			if err := json.Unmarshal([]byte(lines[0]), &ev); err != nil || ev.Payload != `{"t":21}` || ev.Properties["a"] != "1" {
				t.Fatalf("json line %q: %v", lines[0], err)
			}
		})
	}
}

func TestScanSSE(t *testing.T) {
	stream := ": open\n\ndata: {\"a\":1}\n\nevent: dropped\ndata: {\"dropped\":3}\n\n: keep-alive\n\ndata: line1\ndata: line2\n\n"
	var got []string
	err := scanSSE(strings.NewReader(stream), func(ev, data string) error {
		got = append(got, ev+"|"+data)
		return nil
	})
	want := []string{`|{"a":1}`, `dropped|{"dropped":3}`, "|line1\nline2"}
	if err != nil || strings.Join(got, "\n--\n") != strings.Join(want, "\n--\n") {
		t.Fatalf("got %q, %v", got, err)
	}
	stop := errors.New("stop")
	if err := scanSSE(strings.NewReader(stream), func(string, string) error { return stop }); err != stop {
		t.Fatalf("fn error not returned: %v", err)
	}
}
