package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/insight"
)

func TestFromInsight(t *testing.T) {
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	inc := &insight.Incident{ID: "md-20261206T120000Z-42", State: insight.IncidentOpen, Start: start, DetectedAt: start.Add(time.Second),
		LastDrop: start.Add(2 * time.Second), Devices: 500, Summary: "500 devices dropped in 2 s"}
	rec := insight.Record{ID: inc.ID + ":open", Kind: insight.KindMassDisconnect, Time: start.Add(4 * time.Second), Hub: "myhub.azure-devices.net", Incident: inc}
	ev, ok := FromInsight(Resource{}, rec)
	if !ok {
		t.Fatal("no event")
	}
	if ev.Type != MassDisconnect || ev.Subject != "insights/massDisconnect/"+inc.ID || ev.Topic != (Resource{}).ID("myhub.azure-devices.net") || ev.DataVersion != "1" {
		t.Errorf("event %+v", ev)
	}
	var data map[string]any
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data["hubName"] != "myhub" || data["incidentId"] != inc.ID || data["state"] != "open" || data["devices"] != 500.0 {
		t.Errorf("data %v", data)
	}
	if again, _ := FromInsight(Resource{}, rec); again.ID != ev.ID {
		t.Error("event id not stable for the same record")
	}
	closed := rec
	closed.ID = inc.ID + ":closed"
	if c, _ := FromInsight(Resource{}, closed); c.ID == ev.ID {
		t.Error("the close has the announcement's id")
	}
	// In both schemas.
	if _, err := json.Marshal(ev.EventGrid()); err != nil {
		t.Fatal(err)
	}
	// A flap change is a log record, not an event.
	if _, ok := FromInsight(Resource{}, insight.Record{ID: "f", Kind: insight.KindDeviceFlapping, Flap: &insight.FlapChange{DeviceID: "d"}}); ok {
		t.Error("flap change became an event")
	}
	// Subscriptions can name the type, in any case.
	if got, ok := ParseEventType("tether.insights.massdisconnect"); !ok || got != MassDisconnect {
		t.Errorf("ParseEventType = %q %v", got, ok)
	}
}
