package connlog_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
)

var (
	t0  = time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
	seq = "00000000000000000000000000000000000000000000000000000000000000A5"
	res = connlog.Resource{SubscriptionID: "9f3c0a62-1b5e-4c2a-9d0e-6a1f2b3c4d5e", ResourceGroup: "iot-rg", Location: "westeurope"}
)

const (
	resourceID = "/SUBSCRIPTIONS/9F3C0A62-1B5E-4C2A-9D0E-6A1F2B3C4D5E/RESOURCEGROUPS/IOT-RG/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/MYHUB"
	sdk        = "azure-iot-device/1.18.3 (node v20.11.0; Linux; x64)"
	authDevice = `{\"scope\":\"device\",\"type\":\"sas\",\"issuer\":\"iothub\",\"acceptingIpFilterRule\":null}`
	authHub    = `{\"scope\":\"hub\",\"type\":\"sas\",\"issuer\":\"iothub\",\"acceptingIpFilterRule\":null}`
)

// event is a fully populated event of kind k; cases change what they test.
func event(k presence.Kind) presence.ConnectionEvent {
	return presence.ConnectionEvent{
		ID: "thermo-1/" + seq, Kind: k, Time: t0, Hub: "myhub.azure-devices.net",
		DeviceID: "thermo-1", Sequence: seq, Protocol: "MQTT", ProtocolVersion: 4,
		MaskedIP: "24.9.142.XXX", SDKVersion: sdk, AuthType: "sas", SessionID: "s-42",
		TokenExpiry: time.Date(2025, 6, 1, 13, 0, 0, 0, time.UTC), KeepAliveSeconds: 180,
	}
}

// TestConnectedRecordEveryColumn pins one record completely.
func TestConnectedRecordEveryColumn(t *testing.T) {
	got, err := connlog.FromConnectionEvent(res, event(presence.Connected))
	if err != nil {
		t.Fatal(err)
	}
	want := []connlog.Record{{
		ItemID:            connlog.ItemID(connlog.CategoryConnections, "thermo-1/"+seq, 0, t0),
		TimeGenerated:     t0,
		Category:          "Connections",
		OperationName:     "deviceConnect",
		Level:             "Information",
		ResultType:        "",
		ResultDescription: "",
		DurationMs:        nil,
		Properties: `{"deviceId":"thermo-1","protocol":"Mqtt","authType":"` + authDevice + `","maskedIpAddress":"24.9.142.XXX","statusCode":null,"errorMessage":"","sdkVersion":"` + sdk + `",` +
			`"sessionId":"s-42","sequenceNumber":"` + seq + `","tokenExpiry":"2025-06-01T13:00:00Z","protocolVersion":4,"keepAlive":180}`,
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
		CorrelationID:    "thermo-1/" + seq,
		CallerIPAddress:  "24.9.142.XXX",
		DeviceID:         "thermo-1",
		Protocol:         "Mqtt",
		SDKVersion:       sdk,
		SequenceNumber:   seq,
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("connect record:\n got %+v\nwant %+v", got, want)
	}
}

// row is what the mapping table checks of each record.
type row struct {
	op, level, resultType, resultDesc string
	props                             string
	after                             time.Duration // TimeGenerated − event time
}

func TestFromConnectionEvent(t *testing.T) {
	const link = "Device disconnected, see cause and resolution at https://aka.ms/iothub"
	const refused = "Device connection refused, see cause and resolution at https://aka.ms/iothub"
	// Tether extras common to the disconnects below.
	extras := `"sessionId":"s-42","sequenceNumber":"` + seq + `"`
	cases := []struct {
		name string
		edit func(e *presence.ConnectionEvent)
		want []row
	}{
		{"connected over websockets with a policy token",
			func(e *presence.ConnectionEvent) {
				e.Kind, e.Protocol, e.AuthType, e.SDKVersion = presence.Connected, "MQTT-WS", "policy:iothubowner", ""
				e.TokenExpiry, e.KeepAliveSeconds, e.ProtocolVersion = time.Time{}, 0, 0
			},
			[]row{{"deviceConnect", "Information", "", "",
				`{"deviceId":"thermo-1","protocol":"MqttWs","authType":"` + authHub + `","maskedIpAddress":"24.9.142.XXX","statusCode":null,"errorMessage":"",` + extras + `}`, 0}}},
		{"client DISCONNECT",
			func(e *presence.ConnectionEvent) {
				e.Kind, e.Reason, e.DurationMs, e.AuthType = presence.Disconnected, presence.ReasonClient, 3_600_000, ""
				e.TokenExpiry, e.KeepAliveSeconds, e.ProtocolVersion = time.Time{}, 0, 0
			},
			[]row{{"deviceDisconnect", "Information", "", "",
				`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":null,"errorMessage":"","sdkVersion":"` + sdk + `",` + extras + `,"reason":"client","connectDurationMs":3600000}`, 0}}},
		{"keep-alive expired",
			func(e *presence.ConnectionEvent) {
				e.Kind, e.Reason, e.Result, e.Detail = presence.Disconnected, presence.ReasonKeepAlive, presence.ResultClosedRemotely, "no packet for 270s (keep-alive 180s)"
				e.SDKVersion, e.AuthType, e.TokenExpiry, e.ProtocolVersion = "", "", time.Time{}, 0
			},
			[]row{{"deviceDisconnect", "Error", "404104", "DeviceConnectionClosedRemotely",
				`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"404","errorMessage":"` + link + `404104; no packet for 270s (keep-alive 180s)",` + extras + `,"reason":"keep-alive","keepAlive":180}`, 0}}},
		{"network drop",
			func(e *presence.ConnectionEvent) {
				e.Kind, e.Reason, e.Result = presence.Disconnected, presence.ReasonNetwork, presence.ResultClosedRemotely
				e.SDKVersion, e.AuthType, e.TokenExpiry, e.ProtocolVersion, e.KeepAliveSeconds = "", "", time.Time{}, 0, 0
			},
			[]row{{"deviceDisconnect", "Error", "404104", "DeviceConnectionClosedRemotely",
				`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"404","errorMessage":"` + link + `404104",` + extras + `,"reason":"network"}`, 0}}},
		{"takeover",
			func(e *presence.ConnectionEvent) {
				e.Kind, e.Reason, e.Result, e.Detail = presence.Disconnected, presence.ReasonTakeover, presence.ResultTakeover, "a new connection from 24.9.143.XXX"
				e.SDKVersion, e.AuthType, e.TokenExpiry, e.ProtocolVersion, e.KeepAliveSeconds = "", "", time.Time{}, 0, 0
			},
			[]row{{"deviceDisconnect", "Error", "400027", "ConnectionForcefullyClosedOnNewConnection",
				`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"400","errorMessage":"` + link + `400027; a new connection from 24.9.143.XXX",` + extras + `,"reason":"takeover"}`, 0}}},
		{"token expired gives 401003 then 404104",
			func(e *presence.ConnectionEvent) {
				e.Kind, e.Reason, e.Result, e.Detail = presence.Disconnected, presence.ReasonTokenExpired, presence.ResultClosedRemotely, "token expired at 2025-06-01T12:00:00Z"
				e.SDKVersion, e.AuthType, e.ProtocolVersion, e.KeepAliveSeconds = "", "", 0, 0
				e.TokenExpiry = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
			},
			[]row{
				{"deviceDisconnect", "Error", "401003", "IoTHubUnauthorized",
					`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"401","errorMessage":"` + link + `401003; token expired at 2025-06-01T12:00:00Z",` + extras + `,"reason":"token-expired","tokenExpiry":"2025-06-01T12:00:00Z"}`, 0},
				{"deviceDisconnect", "Error", "404104", "DeviceConnectionClosedRemotely",
					`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"404","errorMessage":"` + link + `404104",` + extras + `,"reason":"token-expired","tokenExpiry":"2025-06-01T12:00:00Z"}`, connlog.TokenExpiryGap},
			}},
		{"token expired without a result still gives both",
			func(e *presence.ConnectionEvent) {
				e.Kind, e.Reason, e.Result = presence.Disconnected, presence.ReasonTokenExpired, presence.ResultOK
				e.SDKVersion, e.AuthType, e.TokenExpiry, e.ProtocolVersion, e.KeepAliveSeconds, e.Sequence, e.SessionID = "", "", time.Time{}, 0, 0, "", ""
			},
			[]row{
				{"deviceDisconnect", "Error", "401003", "IoTHubUnauthorized",
					`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"401","errorMessage":"` + link + `401003","reason":"token-expired"}`, 0},
				{"deviceDisconnect", "Error", "404104", "DeviceConnectionClosedRemotely",
					`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"404","errorMessage":"` + link + `404104","reason":"token-expired"}`, connlog.TokenExpiryGap},
			}},
		{"device disabled",
			func(e *presence.ConnectionEvent) {
				e.Kind, e.Reason, e.Result, e.Detail = presence.Disconnected, presence.ReasonDisabled, presence.ResultUnauthorized, "device disabled"
				e.SDKVersion, e.AuthType, e.TokenExpiry, e.ProtocolVersion, e.KeepAliveSeconds = "", "", time.Time{}, 0, 0
			},
			[]row{{"deviceDisconnect", "Error", "401003", "IoTHubUnauthorized",
				`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"401","errorMessage":"` + link + `401003; device disabled",` + extras + `,"reason":"disabled"}`, 0}}},
		{"server shutdown",
			func(e *presence.ConnectionEvent) {
				e.Kind, e.Reason, e.Result = presence.Disconnected, presence.ReasonServerShutdown, presence.ResultServerError
				e.SDKVersion, e.AuthType, e.TokenExpiry, e.ProtocolVersion, e.KeepAliveSeconds = "", "", time.Time{}, 0, 0
			},
			[]row{{"deviceDisconnect", "Error", "500001", "ServerError",
				`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"500","errorMessage":"` + link + `500001",` + extras + `,"reason":"server-shutdown"}`, 0}}},
		{"refused: bad token",
			func(e *presence.ConnectionEvent) {
				e.ID, e.Kind, e.Reason, e.Result = "r-1", presence.Refused, presence.ReasonAuthFailed, presence.ResultUnauthorized
				e.Detail = "Authentication failed for this device, renew token or certificate and reconnect"
				e.Sequence, e.SessionID, e.AuthType, e.TokenExpiry, e.KeepAliveSeconds = "", "", "", time.Time{}, 0
			},
			[]row{{"deviceConnect", "Error", "401003", "IoTHubUnauthorized",
				`{"deviceId":"thermo-1","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"401","errorMessage":"` + refused + `401003; Authentication failed for this device, renew token or certificate and reconnect","sdkVersion":"` + sdk + `","reason":"auth-failed","protocolVersion":4}`, 0}}},
		{"refused: no CONNECT in time, no result given",
			func(e *presence.ConnectionEvent) {
				*e = presence.ConnectionEvent{ID: "r-2", Kind: presence.Refused, Time: t0, Hub: "myhub.azure-devices.net",
					Protocol: "MQTT", MaskedIP: "24.9.142.XXX", Reason: presence.ReasonConnectTimeout}
			},
			[]row{{"deviceConnect", "Error", "500008", "GenericTimeout",
				`{"deviceId":"","protocol":"Mqtt","authType":null,"maskedIpAddress":"24.9.142.XXX","statusCode":"500","errorMessage":"` + refused + `500008","reason":"connect-timeout"}`, 0}}},
		{"refused: malformed CONNECT, no result given",
			func(e *presence.ConnectionEvent) {
				*e = presence.ConnectionEvent{ID: "r-3", Kind: presence.Refused, Time: t0, Hub: "myhub.azure-devices.net",
					DeviceID: "x", Reason: presence.ReasonProtocolError, Detail: "username is not {host}/{deviceId}/?api-version=…"}
			},
			[]row{{"deviceConnect", "Error", "400000", "GenericBadRequest",
				`{"deviceId":"x","protocol":"","authType":null,"maskedIpAddress":"","statusCode":"400","errorMessage":"` + refused + `400000; username is not {host}/{deviceId}/?api-version=…","reason":"protocol-error"}`, 0}}},
		{"refused: disabled device, no result given",
			func(e *presence.ConnectionEvent) {
				*e = presence.ConnectionEvent{ID: "r-4", Kind: presence.Refused, Time: t0, Hub: "myhub.azure-devices.net",
					DeviceID: "x", Reason: presence.ReasonDisabled, ModuleID: "m1"}
			},
			[]row{{"deviceConnect", "Error", "401003", "IoTHubUnauthorized",
				`{"deviceId":"x","protocol":"","authType":null,"maskedIpAddress":"","statusCode":"401","errorMessage":"` + refused + `401003","moduleId":"m1","reason":"disabled"}`, 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := event(presence.Connected)
			tc.edit(&e)
			recs, err := connlog.FromConnectionEvent(res, e)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(tc.want) {
				t.Fatalf("%d records, want %d: %+v", len(recs), len(tc.want), recs)
			}
			seen := map[string]bool{}
			for i, r := range recs {
				w := tc.want[i]
				got := row{r.OperationName, r.Level, r.ResultType, r.ResultDescription, r.Properties, r.TimeGenerated.Sub(e.Time)}
				if got != w {
					t.Errorf("record %d:\n got %+v\nwant %+v", i, got, w)
				}
				if !json.Valid([]byte(r.Properties)) {
					t.Errorf("record %d: properties_s is not JSON: %s", i, r.Properties)
				}
				if r.ItemID != connlog.ItemID(connlog.CategoryConnections, e.ID, i, e.Time) || seen[r.ItemID] {
					t.Errorf("record %d: _ItemId %s is not the %d-th id of %s", i, r.ItemID, i, e.ID)
				}
				seen[r.ItemID] = true
				checkColumns(t, r, e)
			}
		})
	}
}

// checkColumns checks the columns every Connections record shares with
// its event and its properties_s.
func checkColumns(t *testing.T, r connlog.Record, e presence.ConnectionEvent) {
	t.Helper()
	var p struct {
		DeviceID       string `json:"deviceId"`
		Protocol       string `json:"protocol"`
		SDKVersion     string `json:"sdkVersion"`
		SequenceNumber string `json:"sequenceNumber"`
		MaskedIP       string `json:"maskedIpAddress"`
	}
	if err := json.Unmarshal([]byte(r.Properties), &p); err != nil {
		t.Fatal(err)
	}
	if r.DeviceID != p.DeviceID || r.Protocol != p.Protocol || r.SDKVersion != p.SDKVersion ||
		r.SequenceNumber != p.SequenceNumber || r.CallerIPAddress != p.MaskedIP {
		t.Errorf("indexed columns %q %q %q %q %q disagree with properties_s %+v",
			r.DeviceID, r.Protocol, r.SDKVersion, r.SequenceNumber, r.CallerIPAddress, p)
	}
	if r.Category != connlog.CategoryConnections || r.CorrelationID != e.ID || r.ResourceID != resourceID ||
		r.Type != "AzureDiagnostics" || r.ResourceProvider != "MICROSOFT.DEVICES" || r.ResourceType != "IOTHUBS" ||
		r.SourceSystem != "Azure" || r.Location != "westeurope" || r.DurationMs != nil {
		t.Errorf("common columns wrong: %+v", r)
	}
}

func TestFromConnectionEventUnknownKind(t *testing.T) {
	e := event("reconnected")
	if _, err := connlog.FromConnectionEvent(res, e); !errors.Is(err, connlog.ErrUnknownKind) {
		t.Fatalf("err = %v, want ErrUnknownKind", err)
	}
}

// TestFromConnectionEventIsDeterministic: a redelivered event maps to the
// same records, which is what makes Append idempotent.
func TestFromConnectionEventIsDeterministic(t *testing.T) {
	e := event(presence.Disconnected)
	e.Reason, e.Result = presence.ReasonTokenExpired, presence.ResultUnauthorized
	a, _ := connlog.FromConnectionEvent(res, e)
	b, _ := connlog.FromConnectionEvent(res, e)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("mapping the same event twice gave different records")
	}
}

// The connect that completes a SAS renewal is marked in properties_s with
// the sequence number of the disconnect it follows.
func TestRenewalConnectIsMarked(t *testing.T) {
	ev := presence.ConnectionEvent{
		ID: "d/2", Kind: presence.Connected, Time: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), Hub: "hub",
		DeviceID: "d", Sequence: "02", Protocol: "MQTT", TokenRenewal: true, RenewalOf: "01",
	}
	recs, err := connlog.FromConnectionEvent(connlog.Resource{}, ev)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(recs[0].Properties, `"tokenRenewal":true,"renewalOf":"01"`) {
		t.Fatalf("properties_s = %s", recs[0].Properties)
	}
}

// A refusal standing for several attempts (refusals before a TLS
// handshake, journalled together) is a record per attempt, each its own
// _ItemId.
func TestRefusalCountRecords(t *testing.T) {
	e := presence.ConnectionEvent{ID: "batch-1", Kind: presence.Refused, Time: t0, Hub: "myhub.azure-devices.net",
		Protocol: "MQTT", MaskedIP: "24.9.142.XXX", Reason: presence.ReasonThrottledHub, Result: presence.ResultThrottled,
		Detail: "the hub takes 300 new connections a second", Count: 5}
	recs, err := connlog.FromConnectionEvent(res, e)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range recs {
		ids[r.ItemID] = true
		if r.OperationName != connlog.OpDeviceConnect || r.ResultType != "429001" || r.ResultDescription != "ThrottlingException" ||
			r.DeviceID != "" || !strings.Contains(r.Properties, "throttled-hub") || !r.TimeGenerated.Equal(t0) {
			t.Fatalf("record %+v", r)
		}
	}
	if len(recs) != 5 || len(ids) != 5 {
		t.Fatalf("%d records, %d distinct ids; want 5", len(recs), len(ids))
	}
	// Deterministic: a redelivered event gives the same records.
	again, _ := connlog.FromConnectionEvent(res, e)
	if !reflect.DeepEqual(recs, again) {
		t.Fatal("a redelivered batch gives other records")
	}
}

// TestAppendConnectionEvent: the log writer's form appends after what the
// batch holds, leaves it as it was on an error, and makes a record with
// two allocations (its _ItemId and its Properties) — no slice of its own,
// no copy of the Properties JSON.
func TestAppendConnectionEvent(t *testing.T) {
	first, err := connlog.FromConnectionEvent(res, event(presence.Connected))
	if err != nil {
		t.Fatal(err)
	}
	batch := make([]connlog.Record, 1, 8)
	batch[0] = first[0]
	got, err := connlog.AppendConnectionEvent(batch, res, event(presence.Disconnected))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := connlog.FromConnectionEvent(res, event(presence.Disconnected))
	if len(got) != 2 || got[0] != first[0] || got[1] != want[0] {
		t.Fatalf("appended: %d records, want the batch's one then the disconnect's", len(got))
	}
	bad := event(presence.Connected)
	bad.Kind = "sideways"
	kept, err := connlog.AppendConnectionEvent(got, res, bad)
	if !errors.Is(err, connlog.ErrUnknownKind) || len(kept) != 2 {
		t.Fatalf("unknown kind: err %v, %d records (want ErrUnknownKind and the 2 of before)", err, len(kept))
	}
	ev := event(presence.Disconnected)
	allocs := testing.AllocsPerRun(100, func() {
		batch, _ = connlog.AppendConnectionEvent(batch[:0], res, ev)
	})
	if allocs > 4 {
		t.Fatalf("%.0f allocations per record, want ≤ 4", allocs)
	}
}
