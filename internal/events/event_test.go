package events

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/connlog"
	"github.com/tether-hub/tether/internal/presence"
	"github.com/tether-hub/tether/internal/registry"
)

func TestGoldenEventGrid(t *testing.T) {
	for name, e := range sampleEvents() {
		t.Run(name, func(t *testing.T) { golden(t, "events/"+name+".eventgrid.json", e.EventGrid()) })
	}
}

func TestGoldenCloudEvents(t *testing.T) {
	for name, e := range sampleEvents() {
		t.Run(name, func(t *testing.T) { golden(t, "events/"+name+".cloudevents.json", e.CloudEvent()) })
	}
}

func TestNoEventForRefusalsAndUpdates(t *testing.T) {
	if _, ok := FromConnection(testResource, refusedEvent(), Marks{}); ok {
		t.Error("a refusal made an event")
	}
	if _, ok := FromConnection(testResource, presence.ConnectionEvent{Kind: "future-kind"}, Marks{}); ok {
		t.Error("an unknown kind made an event")
	}
	if _, ok := FromChange(testResource, change(registry.OpUpdated)); ok {
		t.Error("a registry update made an event")
	}
}

func TestEnvelopeRules(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	eventTime := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`)
	wantTopic := "/SUBSCRIPTIONS/5C1A0F3E-1111-2222-3333-444455556666/RESOURCEGROUPS/IOT-RG/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/EGTESTHUB1"
	for name, e := range sampleEvents() {
		eg, ce := e.EventGrid(), e.CloudEvent()
		if !uuid.MatchString(eg.ID) || eg.ID != ce.ID {
			t.Errorf("%s: id %q / %q", name, eg.ID, ce.ID)
		}
		if eg.Topic != wantTopic || ce.Source != wantTopic {
			t.Errorf("%s: topic %q source %q", name, eg.Topic, ce.Source)
		}
		if !eventTime.MatchString(eg.EventTime) || eg.EventTime != ce.Time {
			t.Errorf("%s: eventTime %q time %q", name, eg.EventTime, ce.Time)
		}
		if eg.Subject != "devices/LogicAppTestDevice" || ce.Subject != eg.Subject {
			t.Errorf("%s: subject %q", name, eg.Subject)
		}
		if string(eg.Data) != string(ce.Data) {
			t.Errorf("%s: data differs between schemas", name)
		}
		wantDV := "1"
		if e.Type == DeviceTelemetry {
			wantDV = ""
		}
		if eg.DataVersion != wantDV || eg.MetadataVersion != "1" || ce.SpecVersion != "1.0" || ce.DataContentType != "application/json" {
			t.Errorf("%s: versions %q %q %q %q", name, eg.DataVersion, eg.MetadataVersion, ce.SpecVersion, ce.DataContentType)
		}
		// Every Event Grid member is written, even when empty.
		b, _ := json.Marshal(eg)
		for _, k := range []string{"id", "topic", "subject", "eventType", "eventTime", "data", "dataVersion", "metadataVersion"} {
			if !strings.Contains(string(b), `"`+k+`":`) {
				t.Errorf("%s: %s missing in %s", name, k, b)
			}
		}
	}
}

// The topic is the Connections log's _ResourceId for the same settings,
// so events and log records of a hub can be joined.
func TestTopicMatchesConnectionsLog(t *testing.T) {
	for _, r := range []Resource{{}, testResource, {Hub: "Other"}} {
		l := connlog.Resource{SubscriptionID: r.SubscriptionID, ResourceGroup: r.ResourceGroup, Hub: r.Hub}
		for _, host := range []string{"", "localhost", testHub} {
			if got, want := r.ID(host), l.ID(host); got != want {
				t.Errorf("Resource%+v.ID(%q) = %q, connlog has %q", r, host, got, want)
			}
		}
	}
	if got := (Resource{}).HubName(testHub); got != "egtesthub1" {
		t.Errorf("HubName = %q", got)
	}
}

func TestIDsStable(t *testing.T) {
	a, b := sampleEvents(), sampleEvents()
	seen := map[string]string{}
	for name := range a {
		if a[name].ID != b[name].ID {
			t.Errorf("%s: id not deterministic", name)
		}
		if other, dup := seen[a[name].ID]; dup {
			t.Errorf("%s and %s share id %s", name, other, a[name].ID)
		}
		seen[a[name].ID] = name
	}
	// The same journal record with a renewal mark added later keeps its id.
	x, _ := FromConnection(testResource, disconnectedEvent(), Marks{})
	if x.ID != a["disconnected"].ID {
		t.Error("marks changed the id")
	}
	// Another hub, same record id: another event.
	ce := disconnectedEvent()
	ce.Hub = "otherhub"
	y, _ := FromConnection(testResource, ce, Marks{})
	if y.ID == x.ID {
		t.Error("two hubs share an event id")
	}
	if eventID("h", sourceConn, "x") == eventID("h", sourceRegistry, "x") {
		t.Error("kinds share an id")
	}
}

func TestConnectionData(t *testing.T) {
	e, ok := FromConnection(testResource, disconnectedEvent(), Marks{TokenRenewal: true})
	if !ok || e.Type != DeviceDisconnected || e.Sequence != seq2 || e.DeviceID != "LogicAppTestDevice" {
		t.Fatalf("%+v %v", e, ok)
	}
	var d ConnectionData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	x := d.Tether
	if d.DeviceConnectionStateEventInfo.SequenceNumber != seq2 || d.HubName != "egtesthub1" || d.ModuleID != "" ||
		x.Reason != "keep-alive" || x.ResultType != "404104" || x.ResultDescription != "DeviceConnectionClosedRemotely" ||
		x.Protocol != "MQTT-WS" || x.ProtocolVersion != 5 || x.ConnectDurationMs != 41000 || !x.TokenRenewal {
		t.Errorf("%+v %+v", d, x)
	}
	// tokenRenewal is written even when false.
	c, _ := FromConnection(testResource, connectedEvent(), Marks{})
	if !strings.Contains(string(c.Data), `"tokenRenewal":false`) {
		t.Errorf("%s", c.Data)
	}
	// A connect presence marked as a renewal is marked without Marks.
	ce := connectedEvent()
	ce.TokenRenewal, ce.RenewalOf = true, seq1
	if r, _ := FromConnection(testResource, ce, Marks{}); !strings.Contains(string(r.Data), `"tokenRenewal":true`) {
		t.Errorf("%s", r.Data)
	}
}

func TestTelemetryBody(t *testing.T) {
	for _, tc := range []struct {
		name, ct, enc string
		payload       string
		wantJSON      bool
	}{
		{"json utf-8", "application/json", "utf-8", `{"a":1}`, true},
		{"case-insensitive", "Application/JSON", "UTF-8", `[1,2]`, true},
		{"scalar JSON", "application/json", "utf-8", `"text"`, true},
		{"no encoding", "application/json", "", `{"a":1}`, false},
		{"no content type", "", "utf-8", `{"a":1}`, false},
		{"other encoding", "application/json", "utf-16", `{"a":1}`, false},
		{"charset parameter is not application/json", "application/json; charset=utf-8", "utf-8", `{"a":1}`, false},
		{"declared but invalid", "application/json", "utf-8", `{"a":`, false},
		{"declared but invalid UTF-8", "application/json", "utf-8", "\"\xff\"", false},
		{"empty", "application/json", "utf-8", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := jsonTelemetry()
			m.Payload = []byte(tc.payload)
			m.SystemProperties = map[string]string{}
			if tc.ct != "" {
				m.SystemProperties["content-type"] = tc.ct
			}
			if tc.enc != "" {
				m.SystemProperties["content-encoding"] = tc.enc
			}
			e := FromTelemetry(Resource{}, testHub, m, "s/1")
			var d struct{ Body json.RawMessage }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if tc.wantJSON {
				if string(d.Body) != tc.payload {
					t.Errorf("body %s, want %s", d.Body, tc.payload)
				}
				return
			}
			var s []byte
			if err := json.Unmarshal(d.Body, &s); err != nil || string(s) != tc.payload {
				t.Errorf("body %s is not the base64 of the payload (%v)", d.Body, err)
			}
		})
	}
}

func TestTelemetrySystemProperties(t *testing.T) {
	m := jsonTelemetry()
	m.ModuleID = "mod"
	e := FromTelemetry(Resource{}, testHub, m, "s/1")
	var d TelemetryData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"iothub-content-type": "application/json", "iothub-content-encoding": "utf-8", "message-id": "m-1",
		"iothub-connection-device-id": "LogicAppTestDevice", "iothub-connection-module-id": "mod",
		"iothub-enqueuedtime": "2019-01-07T20:58:30.4800000Z", "iothub-message-source": "Telemetry",
	}
	for k, v := range want {
		if d.SystemProperties[k] != v {
			t.Errorf("%s = %q, want %q", k, d.SystemProperties[k], v)
		}
	}
	if len(d.SystemProperties) != len(want) {
		t.Errorf("extra system properties: %v", d.SystemProperties)
	}
	// A message without properties has {} rather than null.
	e = FromTelemetry(Resource{}, testHub, binaryTelemetry(), "s/2")
	if !strings.Contains(string(e.Data), `"properties":{}`) {
		t.Errorf("%s", e.Data)
	}
}

func TestFormatTime(t *testing.T) {
	for in, want := range map[time.Time]string{
		time.Date(2018, 6, 2, 19, 17, 44, 438399700, time.UTC):          "2018-06-02T19:17:44.4383997Z",
		time.Date(2018, 6, 2, 19, 17, 44, 0, time.UTC):                  "2018-06-02T19:17:44.0000000Z",
		time.Date(2018, 6, 2, 21, 17, 44, 99, time.FixedZone("", 7200)): "2018-06-02T19:17:44.0000000Z",
	} {
		if got := FormatTime(in); got != want {
			t.Errorf("FormatTime(%v) = %q, want %q", in, got, want)
		}
	}
}
