package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/registry"
)

// queryAnswer is the Log Analytics response shape of POST /api/v1/query.
type queryAnswer struct {
	Tables []struct {
		Name    string `json:"name"`
		Columns []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"columns"`
		Rows [][]any `json:"rows"`
	} `json:"tables"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Code string `json:"code"`
			Line int    `json:"line"`
			Pos  int    `json:"pos"`
			Hint string `json:"hint"`
		} `json:"details"`
	} `json:"error"`
}

func (h *hub) query(q string) (int, queryAnswer) {
	h.t.Helper()
	status, body := h.api(http.MethodPost, "/api/v1/query", map[string]string{"query": q, "timespan": "PT1H"})
	var a queryAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		h.t.Fatalf("query answer %d: %v: %s", status, err, body)
	}
	return status, a
}

// rowsAsMaps returns the rows of the first table keyed by column name.
func (a queryAnswer) rowsAsMaps() []map[string]any {
	var out []map[string]any
	for _, r := range a.Tables[0].Rows {
		m := map[string]any{}
		for i, c := range a.Tables[0].Columns {
			m[c.Name] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// The seed's three queries over the real log: devices connect, are taken
// over, have their token expire and get disabled; each query returns
// exactly the records the log holds for it.
func TestSeedQueriesOverTheLog(t *testing.T) {
	h := startHub(t)
	ctx := context.Background()

	// test-device: connect, taken over by a second connection, which then
	// disconnects cleanly.
	key := h.device("test-device")
	lost := make(chan error, 1)
	first, _ := h.v3("test-device", username("test-device"), h.token("test-device", key, time.Hour), func(o *pahov3.ClientOptions) {
		o.SetConnectionLostHandler(func(_ pahov3.Client, err error) { lost <- err })
	})
	second, rc := h.v3("test-device", username("test-device"), h.token("test-device", key, time.Hour))
	if rc != 0 || second == nil {
		t.Fatalf("second connect: %d", rc)
	}
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the first connection was not taken over")
	}
	_ = first
	h.waitEvents("test-device", 3)
	second.Disconnect(250)

	// exp-device: its token expires while connected.
	expKey := h.device("exp-device")
	c, err := dialRaw(h.MQTTAddr(), h.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := c.connect("exp-device", username("exp-device"), h.token("exp-device", expKey, 2*time.Second), 60); err != nil || rc != 0 {
		t.Fatalf("connect: %d %v", rc, err)
	}
	if !c.waitClosed(6 * time.Second) {
		t.Fatal("the hub kept a connection whose token expired")
	}

	// dis-device: disabled while connected.
	disKey := h.device("dis-device")
	d, err := dialRaw(h.MQTTAddr(), h.tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := d.connect("dis-device", username("dis-device"), h.token("dis-device", disKey, time.Hour), 60); err != nil || rc != 0 {
		t.Fatalf("connect: %d %v", rc, err)
	}
	h.waitEvents("dis-device", 1)
	dev, _ := h.Registry().Get(ctx, "dis-device")
	dev.Status = registry.Disabled
	if _, err := h.Registry().Replace(ctx, dev, "*", "test"); err != nil {
		t.Fatal(err)
	}
	if !d.waitClosed(5 * time.Second) {
		t.Fatal("the disabled device is still connected")
	}

	h.waitLogs("test-device", 4)
	h.waitLogs("exp-device", 3)
	h.waitLogs("dis-device", 2)
	all, err := h.Logs().Find(ctx, connlog.Filter{Category: connlog.CategoryConnections})
	if err != nil {
		t.Fatal(err)
	}

	// 1. All connection errors.
	status, a := h.query(`AzureDiagnostics
| where ( ResourceType == "IOTHUBS" and Category == "Connections" and Level == "Error")`)
	if status != http.StatusOK || a.Error != nil {
		t.Fatalf("errors query: %d %+v", status, a.Error)
	}
	var want []string
	for _, r := range all {
		if r.Level == connlog.LevelError {
			want = append(want, fmt.Sprintf("%s %s %s %s %s", r.ItemID, r.DeviceID, r.OperationName, r.ResultType, r.ResultDescription))
		}
	}
	var got []string
	for _, m := range a.rowsAsMaps() {
		got = append(got, fmt.Sprintf("%s %s %s %s %s", m["_ItemId"], m["DeviceId"], m["OperationName"], m["ResultType"], m["ResultDescription"]))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("errors query:\n got %q\nwant %q", got, want)
	}
	var codes []string
	for _, m := range a.rowsAsMaps() {
		codes = append(codes, fmt.Sprint(m["DeviceId"], " ", m["ResultType"]))
	}
	slices.Sort(codes)
	if want := []string{"dis-device 401003", "exp-device 401003", "exp-device 404104", "test-device 400027"}; !slices.Equal(codes, want) {
		t.Errorf("error codes %q, want %q", codes, want)
	}

	// 2. One device, errors and information, in time order.
	status, a = h.query(`AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend DeviceId = tostring(parse_json(properties_s).deviceId)
| where DeviceId == "test-device"
| order by TimeGenerated asc`)
	if status != http.StatusOK || a.Error != nil {
		t.Fatalf("device query: %d %+v", status, a.Error)
	}
	var ops []string
	for _, m := range a.rowsAsMaps() {
		ops = append(ops, fmt.Sprint(m["OperationName"], " ", m["Level"], " ", m["ResultType"]))
	}
	if want := []string{"deviceConnect Information ", "deviceDisconnect Error 400027", "deviceConnect Information ", "deviceDisconnect Information "}; !slices.Equal(ops, want) {
		t.Errorf("device query: %q, want %q", ops, want)
	}

	// 3. SDK versions: one row per record (they differ in TimeGenerated),
	// with the device, protocol and SDK of its properties.
	status, a = h.query(`AzureDiagnostics
| where ResourceProvider == "MICROSOFT.DEVICES" and ResourceType == "IOTHUBS"
| where Category == "Connections"
| extend parsed_json = parse_json(properties_s)
| extend SDKVersion = tostring(parsed_json.sdkVersion) , DeviceId = tostring(parsed_json.deviceId) , Protocol = tostring(parsed_json.protocol)
| distinct TimeGenerated, OperationName, Level, ResultType, ResultDescription, DeviceId, Protocol, SDKVersion`)
	if status != http.StatusOK || a.Error != nil {
		t.Fatalf("distinct query: %d %+v", status, a.Error)
	}
	var cols []string
	for _, c := range a.Tables[0].Columns {
		cols = append(cols, c.Name+":"+c.Type)
	}
	if want := "TimeGenerated:datetime OperationName:string Level:string ResultType:string ResultDescription:string DeviceId:string Protocol:string SDKVersion:string"; strings.Join(cols, " ") != want {
		t.Errorf("distinct columns %q, want %q", cols, want)
	}
	want, got = nil, nil
	for _, r := range all {
		want = append(want, strings.Join([]string{r.TimeGenerated.Format(time.RFC3339Nano), r.OperationName, r.Level, r.ResultType,
			r.ResultDescription, r.DeviceID, r.Protocol, r.SDKVersion}, "|"))
	}
	for _, row := range a.Tables[0].Rows {
		var s []string
		for _, v := range row {
			s = append(s, fmt.Sprint(v))
		}
		got = append(got, strings.Join(s, "|"))
	}
	slices.Sort(want)
	slices.Sort(got)
	want = slices.Compact(want)
	if !slices.Equal(got, want) {
		t.Errorf("distinct query:\n got %q\nwant %q", got, want)
	}

	// A mistake gets the Log Analytics error shape with position and hint.
	status, a = h.query("AzureDiagnostics\n| where DeviceID == \"test-device\"")
	if status != http.StatusBadRequest || a.Error == nil || len(a.Error.Details) != 1 {
		t.Fatalf("bad query: %d %+v", status, a.Error)
	}
	if d := a.Error.Details[0]; d.Code != "SemanticError" || d.Line != 2 || d.Pos != 9 || d.Hint != "did you mean 'DeviceId'?" {
		t.Errorf("bad query detail %+v", d)
	}
	if !strings.Contains(a.Error.Message, "2:9: column 'DeviceID' not found; did you mean 'DeviceId'?") {
		t.Errorf("bad query message %q", a.Error.Message)
	}
}
