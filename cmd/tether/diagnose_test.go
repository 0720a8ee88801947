package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// insightHub is a fake hub answering the insight endpoints with canned
// bodies; it records the requests it got.
type insightHub struct {
	srv    *httptest.Server
	bodies map[string]string // path → body
	got    []string          // path?query of each request
	flags  []string
}

func newInsightHub(t *testing.T) *insightHub {
	h := &insightHub{bodies: map[string]string{}}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.got = append(h.got, r.URL.EscapedPath()+"?"+r.URL.RawQuery)
		body, ok := h.bodies[r.URL.EscapedPath()]
		if !ok || !strings.HasPrefix(r.Header.Get("Authorization"), "SharedAccessSignature ") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"DeviceNotFound","message":"device 'nobody' is not in the registry and has no connection history"}}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	t.Cleanup(h.srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	h.flags = []string{
		"--connection-string", "HostName=myhub.example.net;SharedAccessKeyName=iothubowner;SharedAccessKey=c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY=",
		"--url", h.srv.URL, "--ca", ca, "--data-dir", dir,
	}
	t.Setenv("TETHER_CONNECTION_STRING", "")
	t.Setenv("TETHER_URL", "")
	t.Setenv("TETHER_CA", "")
	return h
}

func (h *insightHub) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut strings.Builder
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append(append([]string{}, args...), h.flags...))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// The diagnosis of the insight package's golden duplicate-identity
// history, as the API would serve it.
func goldenDiagnosis(t *testing.T) string {
	b, err := os.ReadFile("../../internal/insight/testdata/diagnose/duplicate-identity.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDiagnoseTable(t *testing.T) {
	h := newInsightHub(t)
	h.bodies["/api/v1/devices/dup-1/diagnosis"] = goldenDiagnosis(t)
	out, err := h.run(t, "diagnose", "dup-1", "--since", "6h")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.got) != 1 || !strings.Contains(h.got[0], "since=") || strings.Contains(h.got[0], "since=6h") {
		t.Errorf("request %v: since must go as an absolute time", h.got)
	}
	for _, want := range []string{
		"Device dup-1 — 2026-11-24 10:23 to 2026-12-01 10:23 UTC",
		"PROBLEM: duplicate identity",
		"41 connects (0 token renewals) · 40 disconnects · 0 refused",
		"sources: 10.0.1.XXX, 10.0.7.XXX",
		"1. duplicate-identity  confidence 0.99",
		"Evidence: 40 of 40 sessions ended by a new connection with the same id (400027)",
		"deviceDisconnect  400027 ConnectionForcefullyClosedOnNewConnection  takeover  from 10.0.1.XXX",
		"Why: IoT Hub, and Tether, keep one connection per device identity",
		"Fix: Give every client its own device identity.",
		`tether query 'AzureDiagnostics`,
		`| where Category == "Connections" and DeviceId == "dup-1"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// -o json is the API's answer.
	out, err = h.run(t, "diagnose", "dup-1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil || d["deviceId"] != "dup-1" {
		t.Errorf("json: %v %s", err, out)
	}
	// Mistakes are said.
	if _, err := h.run(t, "diagnose", "dup-1", "--since", "yesterday"); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("bad --since: %v", err)
	}
	if _, err := h.run(t, "diagnose", "nobody"); err == nil || !strings.Contains(err.Error(), "not in the registry") {
		t.Errorf("unknown device: %v", err)
	}
	if _, err := h.run(t, "diagnose"); err == nil {
		t.Error("no device: no error")
	}
}

func TestInsightsTables(t *testing.T) {
	h := newInsightHub(t)
	h.bodies["/api/v1/insights/flapping"] = `{"devices":[{"deviceId":"flappy","score":12,"recentPerHour":24,"beforePerHour":8,"trend":"rising","flapping":true,"connected":true}]}`
	h.bodies["/api/v1/insights/incidents"] = `{"incidents":[{"id":"md-20261206T125019Z-514","state":"closed","start":"2026-12-06T12:50:19.414Z","devices":500,"recovered":498,"summary":"500 devices dropped in 2 s: 100 % 404104 network, from 127.0.5.XXX (100 %); 498 of 500 came back","groups":[]}]}`
	out, err := h.run(t, "insights", "flapping", "--top", "5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "flappy") || !strings.Contains(out, "rising") || !strings.Contains(h.got[0], "top=5") {
		t.Errorf("flapping: %s (requests %v)", out, h.got)
	}
	out, err = h.run(t, "insights", "incidents")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "md-20261206T125019Z-514") || !strings.Contains(out, "498 of 500 came back") {
		t.Errorf("incidents: %s", out)
	}
	if _, err := h.run(t, "insights", "flapping", "--top", "-1"); err == nil {
		t.Error("--top -1 accepted")
	}
}
