package diag_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/diag"
)

// TestStorageShape: the keys and formats Azure writes to storage
// (reference/iothub-facts.md §2.2).
func TestStorageShape(t *testing.T) {
	ok := connlog.Record{
		TimeGenerated: time.Date(2026, 11, 26, 1, 2, 3, 123456789, time.UTC), Category: "Connections",
		OperationName: "deviceConnect", Level: "Information", Location: "westeurope",
		ResourceID: "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/HUB",
		Properties: `{"deviceId":"d1","protocol":"Mqtt","authType":null,"maskedIpAddress":"10.0.0.XXX","statusCode":null,"errorMessage":""}`,
	}
	got := string(diag.AppendStorageJSON(nil, ok))
	want := `{"time":"2026-11-26T01:02:03.1234567Z","resourceId":"/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/HUB",` +
		`"operationName":"deviceConnect","category":"Connections","level":"Information",` +
		`"properties":"{\"deviceId\":\"d1\",\"protocol\":\"Mqtt\",\"authType\":null,\"maskedIpAddress\":\"10.0.0.XXX\",\"statusCode\":null,\"errorMessage\":\"\"}",` +
		`"location":"westeurope"}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	bad := ok
	bad.Level, bad.ResultType, bad.ResultDescription = "Error", "404104", "DeviceConnectionClosedRemotely"
	var m map[string]any
	if err := json.Unmarshal(diag.AppendStorageJSON(nil, bad), &m); err != nil {
		t.Fatal(err)
	}
	if m["resultType"] != "404104" || m["resultDescription"] != "DeviceConnectionClosedRemotely" || m["level"] != "Error" {
		t.Errorf("error record: %v", m)
	}
	if strings.Contains(got, "\n") {
		t.Error("a line holds a newline")
	}
}
