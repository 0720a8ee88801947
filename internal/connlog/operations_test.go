package connlog_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/journal"
)

const apiVersion = "2021-04-12"

// operation is a populated operation of category and name; cases change
// what they test.
func operation(category, name string) journal.Operation {
	op := journal.Operation{
		ID: "op-" + category + "-" + name, Time: t0, Hub: "myhub.azure-devices.net",
		Category: category, OperationName: name, DeviceID: "thermo-1", Status: 200, DurationMs: 4,
	}
	if category == journal.CategoryD2CTwinOperations {
		op.Protocol, op.SDKVersion, op.MaskedIP, op.AuthType = "MQTT", sdk, "24.9.142.XXX", "sas"
	} else {
		op.SDKVersion, op.Caller = apiVersion, "iothubowner"
	}
	return op
}

// fail makes op a failure with code (and no description: the log names
// the code).
func fail(op journal.Operation, status int, code, msg string) journal.Operation {
	op.Status, op.ErrorCode, op.ErrorMessage = status, code, msg
	return op
}

// TestFromOperationEveryColumn pins one record completely.
func TestFromOperationEveryColumn(t *testing.T) {
	op := fail(operation(journal.CategoryDirectMethods, journal.OpSend), 504, "504101", "the device did not answer within 30 s")
	op.MethodName, op.RequestSize, op.DurationMs = "reboot", 17, 30002
	got, err := connlog.FromOperation(res, op)
	if err != nil {
		t.Fatal(err)
	}
	dur := int64(30002)
	want := connlog.Record{
		ItemID:            connlog.ItemID(connlog.CategoryDirectMethods, op.ID, 0, t0),
		TimeGenerated:     t0,
		Category:          "DirectMethods",
		OperationName:     "send",
		Level:             "Error",
		ResultType:        "504101",
		ResultDescription: "GatewayTimeout",
		DurationMs:        &dur,
		Properties: `{"deviceId":"thermo-1","RequestSize":17,"ResponseSize":0,"sdkVersion":"2021-04-12","statusCode":"504",` +
			`"methodName":"reboot","caller":"iothubowner","status":504,"errorMessage":"the device did not answer within 30 s"}`,
		Location:         "westeurope",
		ResourceID:       resourceID,
		SubscriptionID:   "9f3c0a62-1b5e-4c2a-9d0e-6a1f2b3c4d5e",
		ResourceGroup:    "IOT-RG",
		Resource:         "MYHUB",
		ResourceProvider: "MICROSOFT.DEVICES",
		ResourceType:     "IOTHUBS",
		Type:             "AzureDiagnostics",
		SourceSystem:     "Azure",
		TenantID:         "00000000-0000-0000-0000-000000000000",
		CorrelationID:    op.ID,
		DeviceID:         "thermo-1",
		SDKVersion:       apiVersion,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("record:\n got %+v\nwant %+v", got, want)
	}
}

// Golden records of every category, succeeded and failed: the columns a
// category decides and properties_s byte for byte.
func TestFromOperation(t *testing.T) {
	d2cGet := operation(journal.CategoryD2CTwinOperations, journal.OpGet)
	d2cGet.ResponseSize, d2cGet.RequestSize = 412, 0
	d2cPatch := fail(operation(journal.CategoryD2CTwinOperations, journal.OpUpdate), 400, "400004", "reported properties must be a JSON object")
	d2cPatch.Protocol, d2cPatch.RequestSize = "MQTT-WS", 9
	c2dRead := operation(journal.CategoryC2DTwinOperations, journal.OpRead)
	c2dRead.ResponseSize = 640
	c2dReplace := fail(operation(journal.CategoryC2DTwinOperations, journal.OpReplace), 412, "412001", "etag mismatch")
	c2dReplace.RequestSize, c2dReplace.ResponseSize = 300, 80
	c2dUpdate := fail(operation(journal.CategoryC2DTwinOperations, journal.OpUpdate), 404, "404001", "")
	c2dUpdate.ErrorDescription = "DeviceNotFound"
	query := operation(journal.CategoryTwinQueries, journal.OpQuery)
	query.DeviceID = ""
	query.Query, query.PageSize, query.Continuation, query.ResultCount = `SELECT * FROM devices WHERE tags.floor = "3"`, 100, true, 2
	query.RequestSize, query.ResponseSize = 58, 2048
	badQuery := fail(operation(journal.CategoryTwinQueries, journal.OpQuery), 400, "400000", "syntax error at 1:8")
	badQuery.DeviceID, badQuery.Query, badQuery.PageSize = "", "SELECT FROM", 100
	method := operation(journal.CategoryDirectMethods, journal.OpSend)
	method.Status, method.MethodName, method.RequestSize, method.ResponseSize = 500, "reboot", 2, 31
	offline := fail(operation(journal.CategoryDirectMethods, journal.OpSend), 404, "404103", "")
	offline.MethodName = "reboot"
	unknownCode := fail(operation(journal.CategoryDirectMethods, journal.OpSend), 500, "500999", "")

	cases := []struct {
		name                 string
		op                   journal.Operation
		level, code, desc    string
		protocol, ip, device string
		props                string
	}{
		{"d2c get", d2cGet, "Information", "", "", "Mqtt", "24.9.142.XXX", "thermo-1",
			`{"deviceId":"thermo-1","protocol":"Mqtt","authenticationType":"` + authDevice + `","sdkVersion":"` + sdk + `",` +
				`"maskedIpAddress":"24.9.142.XXX","messageSize":"412","statusCode":null,"status":200}`},
		{"d2c update failed", d2cPatch, "Error", "400004", "ArgumentInvalid", "MqttWs", "24.9.142.XXX", "thermo-1",
			`{"deviceId":"thermo-1","protocol":"MqttWs","authenticationType":"` + authDevice + `","sdkVersion":"` + sdk + `",` +
				`"maskedIpAddress":"24.9.142.XXX","messageSize":"9","statusCode":"400","status":400,"errorMessage":"reported properties must be a JSON object"}`},
		{"c2d read", c2dRead, "Information", "", "", "", "", "thermo-1",
			`{"deviceId":"thermo-1","sdkVersion":"2021-04-12","messageSize":"640","statusCode":null,"caller":"iothubowner","status":200}`},
		{"c2d replace failed", c2dReplace, "Error", "412001", "PreconditionFailed", "", "", "thermo-1",
			`{"deviceId":"thermo-1","sdkVersion":"2021-04-12","messageSize":"300","statusCode":"412","caller":"iothubowner","status":412,"errorMessage":"etag mismatch"}`},
		{"c2d update failed, described", c2dUpdate, "Error", "404001", "DeviceNotFound", "", "", "thermo-1",
			`{"deviceId":"thermo-1","sdkVersion":"2021-04-12","messageSize":"0","statusCode":"404","caller":"iothubowner","status":404}`},
		{"query", query, "Information", "", "", "", "", "",
			`{"query":"SELECT * FROM devices WHERE tags.floor = \"3\"","sdkVersion":"2021-04-12","messageSize":"58","pageSize":"100",` +
				`"continuation":"true","resultSize":"2048","statusCode":null,"caller":"iothubowner","resultCount":2,"status":200}`},
		{"query failed", badQuery, "Error", "400000", "GenericBadRequest", "", "", "",
			`{"query":"SELECT FROM","sdkVersion":"2021-04-12","messageSize":"0","pageSize":"100","continuation":"false",` +
				`"resultSize":"0","statusCode":"400","caller":"iothubowner","status":400,"errorMessage":"syntax error at 1:8"}`},
		{"method answered 500", method, "Information", "", "", "", "", "thermo-1",
			`{"deviceId":"thermo-1","RequestSize":2,"ResponseSize":31,"sdkVersion":"2021-04-12","statusCode":null,"methodName":"reboot","caller":"iothubowner","status":500}`},
		{"method device offline", offline, "Error", "404103", "DeviceNotOnline", "", "", "thermo-1",
			`{"deviceId":"thermo-1","RequestSize":0,"ResponseSize":0,"sdkVersion":"2021-04-12","statusCode":"404","methodName":"reboot","caller":"iothubowner","status":404}`},
		{"unknown code", unknownCode, "Error", "500999", "", "", "", "thermo-1",
			`{"deviceId":"thermo-1","RequestSize":0,"ResponseSize":0,"sdkVersion":"2021-04-12","statusCode":"500","caller":"iothubowner","status":500}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := connlog.FromOperation(res, tc.op)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				t.Fatal(err)
			}
			if r.Category != tc.op.Category || r.OperationName != tc.op.OperationName || r.Level != tc.level ||
				r.ResultType != tc.code || r.ResultDescription != tc.desc {
				t.Errorf("columns %s/%s/%s/%s/%q, want %s/%s/%s/%s/%q", r.Category, r.OperationName, r.Level, r.ResultType, r.ResultDescription,
					tc.op.Category, tc.op.OperationName, tc.level, tc.code, tc.desc)
			}
			if r.DurationMs == nil || *r.DurationMs != tc.op.DurationMs {
				t.Errorf("DurationMs %v, want %d", r.DurationMs, tc.op.DurationMs)
			}
			if r.Protocol != tc.protocol || r.CallerIPAddress != tc.ip || r.DeviceID != tc.device || r.SDKVersion != tc.op.SDKVersion {
				t.Errorf("Protocol %q CallerIPAddress %q DeviceId %q SdkVersion %q", r.Protocol, r.CallerIPAddress, r.DeviceID, r.SDKVersion)
			}
			if r.Properties != tc.props {
				t.Errorf("properties_s\n got %s\nwant %s", r.Properties, tc.props)
			}
			// The indexed columns repeat properties_s (the KQL rewrite of
			// parse_json(properties_s).deviceId/protocol/sdkVersion relies
			// on it).
			var p map[string]any
			if err := json.Unmarshal([]byte(r.Properties), &p); err != nil {
				t.Fatal(err)
			}
			str := func(k string) string { s, _ := p[k].(string); return s }
			if str("deviceId") != r.DeviceID || str("protocol") != r.Protocol || str("sdkVersion") != r.SDKVersion {
				t.Errorf("columns DeviceId %q Protocol %q SdkVersion %q differ from properties_s %s", r.DeviceID, r.Protocol, r.SDKVersion, r.Properties)
			}
		})
	}
}

func TestFromOperationUnknownCategory(t *testing.T) {
	op := operation("C2DCommands", "send")
	if _, err := connlog.FromOperation(res, op); !errors.Is(err, connlog.ErrUnknownCategory) {
		t.Errorf("err %v, want ErrUnknownCategory", err)
	}
}

func TestCategoriesAreParsed(t *testing.T) {
	for _, c := range connlog.Categories {
		got, err := connlog.ParseCategory(c)
		if err != nil || got != c {
			t.Errorf("ParseCategory(%q) = %q, %v", c, got, err)
		}
		if connlog.StreamOf(c) == "" || connlog.ConsumerName("connlog", c) == "" {
			t.Errorf("%s has no stream or consumer", c)
		}
	}
	if got, err := connlog.ParseCategory("directmethods"); err != nil || got != connlog.CategoryDirectMethods {
		t.Errorf("case-insensitive: %q, %v", got, err)
	}
	if _, err := connlog.ParseCategory("C2DCommands"); err == nil {
		t.Error("C2DCommands (not logged) was accepted")
	}
	for c, want := range map[string]string{
		connlog.CategoryConnections:   "connlog",
		connlog.CategoryDirectMethods: "connlog-ops",
		connlog.CategoryTwinQueries:   "connlog-ops",
	} {
		if got := connlog.ConsumerName("connlog", c); got != want {
			t.Errorf("ConsumerName(%s) = %q, want %q", c, got, want)
		}
	}
}
