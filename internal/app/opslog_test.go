package app_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/journal"
	"github.com/tether-hub/tether/internal/metrics"
)

// Operations recorded through the hook reach every place the hub reports
// them: the workspace log (GET /api/v1/logs?category=…), KQL over
// AzureDiagnostics, the metrics history (GET /api/v1/metrics) and
// /metrics. An operation that would make a wrong record is refused.
func TestRecordOperation(t *testing.T) {
	h := startHub(t)
	start := time.Now().Add(-time.Second).Truncate(time.Second)
	ops := []journal.Operation{
		{Category: journal.CategoryDirectMethods, OperationName: journal.OpSend, DeviceID: "m1", Status: 200, DurationMs: 12,
			SDKVersion: "2021-04-12", Caller: "service", MethodName: "reboot", RequestSize: 2, ResponseSize: 40},
		{Category: journal.CategoryDirectMethods, OperationName: journal.OpSend, DeviceID: "m1", Status: 404, DurationMs: 3000,
			ErrorCode: "404103", ErrorMessage: "the device is not online", SDKVersion: "2021-04-12", Caller: "service", MethodName: "reboot"},
		{Category: journal.CategoryD2CTwinOperations, OperationName: journal.OpGet, DeviceID: "m1", Status: 200, DurationMs: 1,
			Protocol: "MQTT", SDKVersion: "azure-iot-device/1.18.3", MaskedIP: "127.0.0.XXX", AuthType: "sas", ResponseSize: 300},
		{Category: journal.CategoryTwinQueries, OperationName: journal.OpQuery, Status: 200, DurationMs: 4, SDKVersion: "2021-04-12",
			Caller: "iothubowner", Query: "SELECT * FROM devices", PageSize: 100, ResultCount: 1, RequestSize: 30, ResponseSize: 500},
	}
	for _, op := range ops {
		if err := h.RecordOperation(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.RecordOperation(journal.Operation{Category: journal.CategoryDirectMethods, OperationName: "invoke", DeviceID: "m1"}); !errors.Is(err, journal.ErrInvalidOperation) {
		t.Errorf("invalid operation: %v, want ErrInvalidOperation", err)
	}

	// The log, through the API's category filter.
	eventually(t, 10*time.Second, func() error {
		status, body := h.api(http.MethodGet, "/api/v1/logs?category=directmethods", nil)
		var got struct{ Records []connlog.Record }
		if err := json.Unmarshal(body, &got); status != 200 || err != nil {
			return fmt.Errorf("%d %v %s", status, err, body)
		}
		if len(got.Records) != 2 {
			return fmt.Errorf("%d DirectMethods records, want 2", len(got.Records))
		}
		r := got.Records[1]
		if r.Level != "Error" || r.ResultType != "404103" || r.ResultDescription != "DeviceNotOnline" || r.Resource != "LOCALHOST" ||
			r.DurationMs == nil || *r.DurationMs != 3000 || !strings.Contains(r.Properties, `"errorMessage":"the device is not online"`) {
			return fmt.Errorf("failed call's record %+v", r)
		}
		return nil
	})
	if status, body := h.api(http.MethodGet, "/api/v1/logs?category=C2DCommands", nil); status != 400 || !strings.Contains(string(body), "DirectMethods") {
		t.Errorf("unknown category: %d %s", status, body)
	}

	// KQL.
	eventually(t, 10*time.Second, func() error {
		status, a := h.query(`AzureDiagnostics | where Category in ("DirectMethods", "D2CTwinOperations", "TwinQueries") | summarize n = count() by Category, Level`)
		if status != 200 {
			return fmt.Errorf("query: %d %+v", status, a.Error)
		}
		got := map[string]float64{}
		for _, r := range a.rowsAsMaps() {
			got[r["Category"].(string)+"/"+r["Level"].(string)] = r["n"].(float64)
		}
		want := map[string]float64{"DirectMethods/Information": 1, "DirectMethods/Error": 1, "D2CTwinOperations/Information": 1, "TwinQueries/Information": 1}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("counts %v, want %v", got, want)
		}
		return nil
	})

	// Metrics: the history (alert rules, the API) and /metrics.
	eventually(t, 10*time.Second, func() error {
		for m, want := range map[string]float64{metrics.MethodsSuccess: 1, metrics.MethodsFailure: 1, metrics.D2CTwinReadSuccess: 1, metrics.TwinQueriesSuccess: 1} {
			if got := h.metricTotal(m, start)[""]; got != want {
				return fmt.Errorf("%s: %v, want %v", m, got, want)
			}
		}
		status, m, body := h.getMetrics(url.Values{"metricnames": {"c2d.methods.responseSize"}, "aggregation": {"average"}, "timespan": {"PT1H"}, "interval": {"PT1H"}})
		if status != 200 || len(m.Value) != 1 || m.Value[0].Unit != "Bytes" {
			return fmt.Errorf("metrics API: %d %s", status, body)
		}
		found := false
		for _, p := range m.Value[0].Timeseries[0].Data {
			if v, ok := p["average"]; ok {
				found = v == 40.0
			}
		}
		if !found {
			return fmt.Errorf("no average response size of 40: %s", body)
		}
		if _, text := h.scrape(""); !strings.Contains(text, `tether_direct_method_calls_total{result="failure"} 1`) {
			return fmt.Errorf("/metrics lacks the failed call")
		}
		return nil
	})
}
