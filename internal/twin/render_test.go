package twin

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json golden files")

// golden compares got (compact JSON) with testdata/name, stored indented.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	if !json.Valid(got) {
		t.Fatalf("%s: not valid JSON: %s", name, got)
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	ind.WriteByte('\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, ind.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(ind.Bytes(), want) {
		t.Errorf("%s differs from the golden file:\n%s", name, ind.Bytes())
	}
}

// sampleDevice is a device as the registry and presence would describe it.
var sampleDevice = DeviceInfo{
	DeviceID:                  "devA",
	DeviceETag:                "OTA4NTk1Mjg=",
	Status:                    "enabled",
	ConnectionState:           "Disconnected",
	LastActivityTime:          time.Date(2026, 12, 6, 10, 59, 41, 218218900, time.UTC),
	CloudToDeviceMessageCount: 0,
	AuthenticationType:        "sas",
}

// sampleTwin has tags, nested desired and reported properties, an array, a
// deletion and a few versions behind it.
func sampleTwin(t testing.TB) *Twin {
	t.Helper()
	tw := New(t0)
	steps := []struct {
		op   func([]byte, time.Time) error
		body string
	}{
		{reported(tw), `{"telemetryConfig":{"sendFrequency":"5m","status":"pending"},"batteryLevel":55,"errors":["power","sensor"]}`},
		{service(tw), `{"tags":{"deploymentLocation":{"building":"43","floor":"1"}},"properties":{"desired":{"telemetryConfig":{"sendFrequency":"5m"},"old":true}}}`},
		{service(tw), `{"properties":{"desired":{"old":null,"fw":{"version":"1.2.0","url":"https://x/fw?a=1&b=<2>"}}}}`},
		{reported(tw), `{"telemetryConfig":{"status":"success"},"batteryLevel":54.5}`},
	}
	for i, s := range steps {
		if err := s.op([]byte(s.body), at(i+1)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return tw
}

func reported(tw *Twin) func([]byte, time.Time) error {
	return func(b []byte, now time.Time) error { _, err := tw.PatchReported(b, now); return err }
}

func service(tw *Twin) func([]byte, time.Time) error {
	return func(b []byte, now time.Time) error { _, err := tw.ServicePatch(b, now); return err }
}

func TestRenderGolden(t *testing.T) {
	fresh := New(t0)
	golden(t, "device_new.json", fresh.DeviceJSON())
	golden(t, "service_new.json", fresh.ServiceJSON(sampleDevice))

	tw := sampleTwin(t)
	golden(t, "device_sample.json", tw.DeviceJSON())
	dev := sampleDevice
	dev.ConnectionState, dev.StatusReason = "Connected", "provisioned"
	dev.PrimaryThumbprint, dev.ModelID, dev.IoTEdge = "ABCDEF", "dtmi:com:example:Thermostat;1", true
	golden(t, "service_sample.json", tw.ServiceJSON(dev))

	push, err := tw.ServiceReplace([]byte(`{"tags":{"x":1},"properties":{"desired":{"telemetryConfig":{"rate":1}}}}`), at(10))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "push_replace.json", push)
}

// The device SDK reads desired and reported with their $version out of a
// GET answer; the service SDK reads the twin members it knows.
func TestRenderShapes(t *testing.T) {
	tw := sampleTwin(t)
	var dev struct {
		Desired  map[string]any `json:"desired"`
		Reported map[string]any `json:"reported"`
	}
	if err := json.Unmarshal(tw.DeviceJSON(), &dev); err != nil {
		t.Fatal(err)
	}
	if dev.Desired["$version"] != 3.0 || dev.Reported["$version"] != 3.0 || dev.Desired["$metadata"] != nil {
		t.Errorf("device twin %s", tw.DeviceJSON())
	}

	var svc map[string]any
	if err := json.Unmarshal(tw.ServiceJSON(sampleDevice), &svc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"deviceId", "etag", "deviceEtag", "status", "statusUpdateTime", "connectionState",
		"lastActivityTime", "cloudToDeviceMessageCount", "authenticationType", "x509Thumbprint", "modelId",
		"version", "tags", "properties", "capabilities"} {
		if _, ok := svc[k]; !ok {
			t.Errorf("service twin has no %q", k)
		}
	}
	if _, ok := svc["statusReason"]; ok {
		t.Errorf("empty statusReason rendered")
	}
	var fresh map[string]any
	if err := json.Unmarshal(New(t0).ServiceJSON(sampleDevice), &fresh); err != nil {
		t.Fatal(err)
	}
	if _, ok := fresh["tags"]; ok {
		t.Errorf("a twin without tags renders tags")
	}
	if fresh["etag"] != "AAAAAAAAAAE=" || fresh["version"] != 2.0 {
		t.Errorf("new twin etag %v version %v", fresh["etag"], fresh["version"])
	}
}

func TestFormatTime(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 12, 6, 11, 0, 0, 123456700, time.UTC), "2026-12-06T11:00:00.1234567Z"},
		{time.Date(2023, 1, 2, 21, 21, 20, 314905000, time.UTC), "2023-01-02T21:21:20.314905Z"},
		{time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC), "2026-12-06T11:00:00Z"},
		{time.Date(2026, 12, 6, 12, 0, 0, 999999999, time.FixedZone("CET", 3600)), "2026-12-06T11:00:00.9999999Z"},
		{time.Time{}, "0001-01-01T00:00:00Z"},
	} {
		if got := FormatTime(tc.t); got != tc.want {
			t.Errorf("FormatTime(%v) = %s, want %s", tc.t, got, tc.want)
		}
	}
	// The hand-written formatter agrees with time's own.
	for i := range 20000 {
		tm := time.Unix(int64(i)*7919*104729%(1<<34), int64(i)*2654435761%1e9).UTC()
		if i%3 == 0 {
			tm = tm.Truncate(time.Duration(i%9) * time.Millisecond)
		}
		if got, want := FormatTime(tm), tm.Format(timeLayout); got != want {
			t.Fatalf("FormatTime(%v) = %s, time.Format gives %s", tm, got, want)
		}
	}
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if got, want := FormatTime(tm), tm.Format(timeLayout); got != want {
			t.Errorf("FormatTime(%v) = %s, want %s", tm, got, want)
		}
	}
	// What is stored is what is shown: writes keep 100 ns ticks.
	tw := New(time.Date(2026, 12, 6, 11, 0, 0, 123456789, time.UTC))
	if ns := tw.Reported.Meta.LastUpdated.Nanosecond(); ns != 123456700 {
		t.Errorf("stamped %d ns", ns)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "\n\r\t\x00\x1f\x7f", "<&> é 数 😀", "\u2028", "bad \xff utf8"} {
		var back string
		enc := appendString(nil, s)
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, enc, err)
		}
		if want := string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD"))); back != want {
			t.Errorf("appendString(%q) decodes to %q", s, back)
		}
	}
}
