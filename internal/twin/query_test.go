package twin

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestLookup(t *testing.T) {
	tw := sampleTwin(t)
	dev := sampleDevice
	dev.StatusUpdateTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	doc := tw.Doc(dev)
	for _, tc := range []struct {
		path []string
		want any // absent: ok false
	}{
		{[]string{"deviceId"}, "devA"},
		{[]string{"etag"}, "AAAAAAAAAAM="},
		{[]string{"deviceEtag"}, "OTA4NTk1Mjg="},
		{[]string{"status"}, "enabled"},
		{[]string{"statusReason"}, absent},
		{[]string{"statusUpdateTime"}, "2026-01-02T03:04:05Z"},
		{[]string{"connectionState"}, "Disconnected"},
		{[]string{"lastActivityTime"}, "2026-12-06T10:59:41.2182189Z"},
		{[]string{"cloudToDeviceMessageCount"}, json.Number("0")},
		{[]string{"authenticationType"}, "sas"},
		{[]string{"x509Thumbprint", "primaryThumbprint"}, nil},
		{[]string{"modelId"}, ""},
		{[]string{"version"}, json.Number("6")},
		{[]string{"capabilities", "iotEdge"}, false},
		{[]string{"tags", "deploymentLocation", "building"}, "43"},
		{[]string{"tags", "deploymentLocation"}, map[string]any{"building": "43", "floor": "1"}},
		{[]string{"tags", "nope"}, absent},
		{[]string{"tags", "deploymentLocation", "building", "deeper"}, absent},
		{[]string{"properties", "desired", "telemetryConfig", "sendFrequency"}, "5m"},
		{[]string{"properties", "desired", "$version"}, json.Number("3")},
		{[]string{"properties", "desired", "$metadata", "$lastUpdated"}, "2026-12-06T11:00:03.1234567Z"},
		{[]string{"properties", "desired", "$metadata", "$lastUpdatedVersion"}, json.Number("3")},
		{[]string{"properties", "desired", "$metadata", "fw", "version", "$lastUpdatedVersion"}, json.Number("3")},
		{[]string{"properties", "desired", "$metadata", "telemetryConfig", "$lastUpdated"}, "2026-12-06T11:00:02.1234567Z"},
		{[]string{"properties", "desired", "$metadata", "nope", "$lastUpdated"}, absent},
		{[]string{"properties", "reported", "batteryLevel"}, json.Number("54.5")},
		{[]string{"properties", "reported", "errors", "1"}, "sensor"},
		{[]string{"properties", "reported", "errors", "2"}, absent},
		{[]string{"properties", "reported", "errors", "x"}, absent},
		{[]string{"properties", "reported", "$version"}, json.Number("3")},
		{[]string{"properties", "reported", "$metadata", "telemetryConfig", "status", "$lastUpdated"}, "2026-12-06T11:00:04.1234567Z"},
		{[]string{"properties", "reported", "$metadata", "$lastUpdatedVersion"}, absent},
		{[]string{"properties", "reported", "$metadata", "errors"}, map[string]any{"$lastUpdated": "2026-12-06T11:00:01.1234567Z"}},
		{[]string{"properties", "reported", "$version", "x"}, absent},
		{[]string{"properties", "other"}, absent},
		{[]string{"properties", "reported", "nope"}, absent},
		{[]string{"nope"}, absent},
		{[]string{"deviceId", "x"}, absent},
	} {
		got, ok := doc.Lookup(tc.path)
		if tc.want == absent {
			if ok {
				t.Errorf("Lookup(%q) = %v, want none", tc.path, got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Lookup(%q) = %#v, %v; want %#v", tc.path, got, ok, tc.want)
		}
	}
	if _, ok := New(t0).Doc(dev).Lookup([]string{"tags"}); ok {
		t.Error("a twin without tags has tags (ServiceJSON leaves them out)")
	}
	if v, ok := tw.Doc(DeviceInfo{StatusReason: "r"}).Lookup([]string{"statusReason"}); !ok || v != "r" {
		t.Error("statusReason")
	}
}

type absentT struct{}

var absent = absentT{}

// Every member Lookup gives for a whole container is the one the rendered
// twin has there.
func TestLookupMatchesServiceJSON(t *testing.T) {
	tw := sampleTwin(t)
	doc := tw.Doc(sampleDevice)
	rendered, err := doc.MarshalJSON()
	if err != nil || string(rendered) != string(tw.ServiceJSON(sampleDevice)) {
		t.Fatalf("MarshalJSON is not ServiceJSON: %v", err)
	}
	whole, ok := doc.Lookup(nil)
	if !ok {
		t.Fatal("no whole document")
	}
	if jsonOf(whole) != canon(t, string(rendered)) {
		t.Errorf("Lookup(nil) = %s\nServiceJSON %s", jsonOf(whole), rendered)
	}
	m := whole.(map[string]any)
	for _, path := range [][]string{{"properties"}, {"properties", "desired"}, {"properties", "reported", "$metadata"},
		{"properties", "desired", "$metadata", "fw"}, {"x509Thumbprint"}, {"capabilities"}, {"tags"}} {
		got, ok := doc.Lookup(path)
		want, wok := walk(m, path)
		if !ok || !wok || jsonOf(got) != jsonOf(want) {
			t.Errorf("Lookup(%q) = %s, rendered twin has %s", path, jsonOf(got), jsonOf(want))
		}
	}
}

// The query hot paths allocate nothing.
func TestLookupAllocations(t *testing.T) {
	tw := sampleTwin(t)
	doc := tw.Doc(sampleDevice)
	for _, path := range [][]string{
		{"connectionState"},
		{"status"},
		{"tags", "deploymentLocation", "building"},
		{"properties", "reported", "telemetryConfig", "status"},
		{"properties", "reported", "batteryLevel"},
	} {
		if n := testing.AllocsPerRun(100, func() { doc.Lookup(path) }); n != 0 {
			t.Errorf("Lookup(%q) allocates %.0f times", path, n)
		}
	}
}
