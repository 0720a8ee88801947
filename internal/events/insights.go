package events

import (
	"time"

	"github.com/tether-hub/tether/internal/insight"
)

// Tether's own event types, beside IoT Hub's: what the insight engine
// derives from the connection events (issue 13). A subscription receives
// them only when its includedEventTypes names them: subscriptions written
// for IoT Hub's events ("All", or none) keep receiving only those.
const (
	// MassDisconnect: a burst of disconnects well above the recent
	// baseline, as one incident (data.state "open" when detected,
	// "closed" when the fleet came back).
	MassDisconnect EventType = "Tether.Insights.MassDisconnect"
)

// InsightEventTypes are the Tether event types a subscription can ask
// for.
var InsightEventTypes = []EventType{MassDisconnect}

// IsInsightType reports whether t is one of InsightEventTypes.
func IsInsightType(t EventType) bool {
	for _, v := range InsightEventTypes {
		if v == t {
			return true
		}
	}
	return false
}

// MassDisconnectData is data of Tether.Insights.MassDisconnect: the
// incident (see insight.Incident) with the hub's name.
type MassDisconnectData struct {
	HubName         string          `json:"hubName"`
	IncidentID      string          `json:"incidentId"`
	State           string          `json:"state"`
	Summary         string          `json:"summary"`
	Start           time.Time       `json:"start"`
	DetectedAt      time.Time       `json:"detectedAt"`
	LastDrop        time.Time       `json:"lastDrop"`
	End             time.Time       `json:"end,omitzero"`
	Devices         int             `json:"devices"`
	Recovered       int             `json:"recovered"`
	ConnectedBefore int             `json:"connectedBefore"`
	Baseline        float64         `json:"baseline"`
	Peak            int             `json:"peak"`
	WindowSeconds   int             `json:"windowSeconds"`
	Groups          []insight.Group `json:"groups"`
}

// sourceInsight is the source kind of insight events' ids.
const sourceInsight = "insight"

// IncidentSubject is the subject of an incident's events:
// "insights/massDisconnect/{incidentId}".
func IncidentSubject(id string) string { return "insights/massDisconnect/" + id }

// FromInsight is the event of an insight record: ok is false for records
// that are not events (a device's flap change is a log record only).
func FromInsight(r Resource, rec insight.Record) (Event, bool) {
	inc := rec.Incident
	if inc == nil || (rec.Kind != insight.KindMassDisconnect && rec.Kind != insight.KindMassDisconnectResolved) {
		return Event{}, false
	}
	groups := inc.Groups
	if groups == nil {
		groups = []insight.Group{}
	}
	data := MassDisconnectData{
		HubName: r.HubName(rec.Hub), IncidentID: inc.ID, State: inc.State, Summary: inc.Summary,
		Start: inc.Start, DetectedAt: inc.DetectedAt, LastDrop: inc.LastDrop, End: inc.End,
		Devices: inc.Devices, Recovered: inc.Recovered, ConnectedBefore: inc.ConnectedBefore,
		Baseline: inc.Baseline, Peak: inc.Peak, WindowSeconds: inc.WindowSeconds, Groups: groups,
	}
	return Event{
		ID:          eventID(rec.Hub, sourceInsight, rec.ID),
		Type:        MassDisconnect,
		Topic:       r.ID(rec.Hub),
		Subject:     IncidentSubject(inc.ID),
		Time:        rec.Time,
		DataVersion: DataVersionHub,
		Data:        mustMarshal(data),
	}, true
}
