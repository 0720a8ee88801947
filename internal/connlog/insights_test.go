package connlog

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tether-hub/tether/internal/insight"
)

func TestFromInsight(t *testing.T) {
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	inc := &insight.Incident{ID: "md-20261206T120000Z-42", State: insight.IncidentOpen, Start: start, DetectedAt: start.Add(time.Second),
		LastDrop: start.Add(2 * time.Second), Devices: 500, ConnectedBefore: 2000, Peak: 500, WindowSeconds: 10,
		Groups: []insight.Group{
			{Dimension: insight.DimResultType, Values: []insight.GroupValue{{Value: "404104", Devices: 500, Share: 1}}},
			{Dimension: insight.DimSourcePrefix, Values: []insight.GroupValue{{Value: "10.2.3.XXX", Devices: 490, Share: 0.98}}},
		},
		Summary: "500 devices dropped in 2 s"}
	open := insight.Record{ID: inc.ID + ":open", Kind: insight.KindMassDisconnect, Time: start.Add(4 * time.Second), Hub: "h.example", Incident: inc}
	rec, err := FromInsight(Resource{}, open)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Category != CategoryInsights || rec.OperationName != "massDisconnect" || rec.Level != LevelError ||
		rec.CorrelationID != inc.ID || rec.DeviceID != "" || rec.DurationMs != nil || rec.Validate() != nil {
		t.Errorf("open record %+v", rec)
	}
	var props map[string]any
	if err := json.Unmarshal([]byte(rec.Properties), &props); err != nil {
		t.Fatal(err)
	}
	if props["resultType"] != "404104" || props["sourcePrefix"] != "10.2.3.XXX" || props["devices"] != 500.0 || props["state"] != "open" {
		t.Errorf("properties %v", props)
	}
	closed := *inc
	closed.State, closed.End, closed.Recovered = insight.IncidentClosed, start.Add(time.Minute), 480
	rec2, err := FromInsight(Resource{}, insight.Record{ID: inc.ID + ":closed", Kind: insight.KindMassDisconnectResolved, Time: closed.End, Incident: &closed})
	if err != nil {
		t.Fatal(err)
	}
	if rec2.Level != LevelInformation || rec2.DurationMs == nil || *rec2.DurationMs != 60000 || rec2.CorrelationID != inc.ID || rec2.ItemID == rec.ItemID {
		t.Errorf("closed record %+v", rec2)
	}
	flap := insight.Record{ID: "flap:dev-1:flapping:x", Kind: insight.KindDeviceFlapping, Time: start,
		Flap: &insight.FlapChange{DeviceID: "dev-1", Flapping: true, Score: 9, Trend: "rising", Threshold: 6}}
	rec3, err := FromInsight(Resource{}, flap)
	if err != nil {
		t.Fatal(err)
	}
	if rec3.DeviceID != "dev-1" || rec3.Level != LevelError || rec3.OperationName != "deviceFlapping" {
		t.Errorf("flap record %+v", rec3)
	}
	if want := `{"deviceId":"dev-1","state":"flapping","flapScore":9,"trend":"rising","recentPerHour":0,"beforePerHour":0,"threshold":6}`; rec3.Properties != want {
		t.Errorf("flap properties %s", rec3.Properties)
	}
	// The same record always makes the same _ItemId (a rebuilt engine's
	// repeat is dropped by the store).
	again, _ := FromInsight(Resource{}, flap)
	if again.ItemID != rec3.ItemID {
		t.Error("_ItemId not stable")
	}
	if _, err := FromInsight(Resource{}, insight.Record{ID: "x", Kind: "other"}); err == nil {
		t.Error("a record with nothing to log was accepted")
	}
}
