package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
)

// logsHub is a fake hub answering GET /api/v1/logs with recs; it records
// the query it got.
type logsHub struct {
	srv      *httptest.Server
	recs     []connlog.Record
	status   int
	requests atomic.Int32
	query    atomic.Value // url.Values
	flags    []string     // client flags that reach this hub
}

func newLogsHub(t *testing.T) *logsHub {
	h := &logsHub{status: http.StatusOK}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		if r.URL.Path != "/api/v1/logs" || r.Method != "GET" || !strings.HasPrefix(r.Header.Get("Authorization"), "SharedAccessSignature ") {
			http.Error(w, "unexpected request "+r.Method+" "+r.URL.String(), http.StatusNotFound)
			return
		}
		h.query.Store(r.URL.Query())
		w.Header().Set("Content-Type", "application/json")
		if h.status != http.StatusOK {
			w.WriteHeader(h.status)
			w.Write([]byte(`{"error":{"code":"ArgumentInvalid","message":"level \"Warning\" is unknown"}}`))
			return
		}
		// The API encodes Record.Map(), as the real handler does.
		maps := []map[string]any{}
		for _, r := range h.recs {
			maps = append(maps, r.Map())
		}
		json.NewEncoder(w).Encode(map[string]any{"records": maps})
	}))
	t.Cleanup(h.srv.Close)

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	// newRootCmd resets clientFlags to the flag defaults: pass flags.
	h.flags = []string{
		"--connection-string", "HostName=myhub.example.net;SharedAccessKeyName=iothubowner;SharedAccessKey=c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=",
		"--url", h.srv.URL, "--ca", ca, "--data-dir", dir,
	}
	t.Setenv("TETHER_CONNECTION_STRING", "")
	t.Setenv("TETHER_URL", "")
	t.Setenv("TETHER_CA", "")
	return h
}

// runTether runs the CLI against h with args and returns stdout and
// stderr.
func (h *logsHub) runTether(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	args = append(append([]string{}, args...), h.flags...)
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func sampleLogRecords(t *testing.T) []connlog.Record {
	at := time.Date(2026, 1, 2, 15, 4, 5, 678_000_000, time.UTC)
	base := presence.ConnectionEvent{Time: at, Hub: "myhub.example.net", DeviceID: "thermo-1", Protocol: "MQTT",
		MaskedIP: "10.0.0.XXX", Sequence: "1"}
	connected := base
	connected.ID, connected.Kind = "thermo-1/1", presence.Connected
	dropped := base
	dropped.ID, dropped.Kind, dropped.Time = "thermo-1/2", presence.Disconnected, at.Add(time.Minute)
	dropped.Reason, dropped.Result, dropped.Detail = presence.ReasonKeepAlive, presence.ResultClosedRemotely, "no packet for 270s\n(keep-alive 180s)"
	var out []connlog.Record
	for _, e := range []presence.ConnectionEvent{connected, dropped} {
		rs, err := connlog.FromConnectionEvent(connlog.Resource{}, e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rs...)
	}
	return out
}

func TestLogsTable(t *testing.T) {
	h := newLogsHub(t)
	h.recs = sampleLogRecords(t)
	before := time.Now()
	out, errOut, err := h.runTether(t, "logs", "--device", "thermo-1", "--since", "1h", "--level", "error", "--category", "connections", "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	q := h.query.Load().(interface{ Get(string) string })
	since, perr := time.Parse(time.RFC3339Nano, q.Get("since"))
	if perr != nil || since.Before(before.Add(-time.Hour-time.Second)) || since.After(time.Now().Add(-time.Hour)) {
		t.Errorf("since sent as %q, want the absolute time an hour ago", q.Get("since"))
	}
	if q.Get("device") != "thermo-1" || q.Get("level") != "Error" || q.Get("category") != "Connections" || q.Get("limit") != "2" || q.Get("until") != "" {
		t.Errorf("query %v", q)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want a header and 2 rows:\n%s", len(lines), out)
	}
	for _, col := range []string{"TimeGenerated", "OperationName", "Level", "ResultType", "ResultDescription", "DeviceId", "Protocol", "errorMessage"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header %q lacks %s", lines[0], col)
		}
	}
	for _, want := range []string{"2026-01-02T15:04:05.678Z", "deviceConnect", "Information", "thermo-1", "Mqtt"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row 1 %q lacks %q", lines[1], want)
		}
	}
	for _, want := range []string{"2026-01-02T15:05:05.678Z", "deviceDisconnect", "Error", "404104", "DeviceConnectionClosedRemotely",
		"Device disconnected, see cause and resolution at https://aka.ms/iothub404104; no packet for 270s (keep-alive 180s)"} {
		if !strings.Contains(lines[2], want) {
			t.Errorf("row 2 %q lacks %q", lines[2], want)
		}
	}
	if !strings.Contains(errOut, "newest 2 records") {
		t.Errorf("no hint that the limit was reached; stderr %q", errOut)
	}
}

func TestLogsJSON(t *testing.T) {
	h := newLogsHub(t)
	h.recs = sampleLogRecords(t)
	out, _, err := h.runTether(t, "logs", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if q := h.query.Load().(interface{ Get(string) string }); q.Get("limit") != "100" {
		t.Errorf("default limit sent as %q, want 100", q.Get("limit"))
	}
	var raw struct {
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if len(raw.Records) != 2 || len(raw.Records[1]) != len(connlog.Columns) || raw.Records[1]["ResultType"] != "404104" {
		t.Fatalf("JSON records: %v", raw.Records)
	}
	var typed logsResponse
	json.Unmarshal([]byte(out), &typed)
	if !reflect.DeepEqual(typed.Records, h.recs) {
		t.Errorf("records did not survive hub → CLI → JSON:\n got %+v\nwant %+v", typed.Records, h.recs)
	}
}

func TestLogsEmpty(t *testing.T) {
	h := newLogsHub(t)
	out, errOut, err := h.runTether(t, "logs", "--since", "2026-01-02T00:00:00Z", "--until", "2026-01-03T00:00:00Z")
	if err != nil || strings.TrimSpace(out) != "No records." || errOut != "" {
		t.Fatalf("empty answer: out %q, stderr %q, err %v", out, errOut, err)
	}
}

func TestLogsRejectsBadFlagsBeforeAsking(t *testing.T) {
	h := newLogsHub(t)
	for _, args := range [][]string{
		{"logs", "--level", "warning"},
		{"logs", "--category", "Routes"},
		{"logs", "--since", "yesterday"},
		{"logs", "--since", "1h", "--until", "2h"},
		{"logs", "--limit", "0"},
		{"logs", "--limit", "20000"},
		{"logs", "-o", "yaml"},
		{"logs", "extra-arg"},
	} {
		if _, _, err := h.runTether(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if n := h.requests.Load(); n != 0 {
		t.Errorf("bad flags still sent %d requests", n)
	}
}

func TestLogsHubError(t *testing.T) {
	h := newLogsHub(t)
	h.status = http.StatusBadRequest
	_, _, err := h.runTether(t, "logs")
	if err == nil || !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), `level "Warning" is unknown`) {
		t.Fatalf("hub error: %v", err)
	}
}
