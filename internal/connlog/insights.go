package connlog

import (
	"fmt"

	"github.com/tether-hub/tether/internal/insight"
)

// CategoryInsights holds what the insight engine derives from the
// connection events: mass-disconnect incidents (OperationName
// massDisconnect when detected, massDisconnectResolved when closed) and
// devices that start or stop flapping (deviceFlapping). Tether's own
// category; IoT Hub has none like it.
const CategoryInsights = "Insights"

// IncidentProperties is the properties_s object of an incident's record:
// the incident's figures, the most common value of each dimension (flat,
// for simple queries) and the groups whole.
type IncidentProperties struct {
	IncidentID      string          `json:"incidentId"`
	State           string          `json:"state"`
	Summary         string          `json:"summary"`
	Start           string          `json:"start"`
	DetectedAt      string          `json:"detectedAt"`
	LastDrop        string          `json:"lastDrop"`
	End             string          `json:"end,omitempty"`
	Devices         int             `json:"devices"`
	Recovered       int             `json:"recovered"`
	ConnectedBefore int             `json:"connectedBefore"`
	Baseline        float64         `json:"baseline"`
	Peak            int             `json:"peak"`
	WindowSeconds   int             `json:"windowSeconds"`
	ResultType      string          `json:"resultType,omitempty"`
	Reason          string          `json:"reason,omitempty"`
	SDKVersion      string          `json:"sdkVersion,omitempty"`
	Protocol        string          `json:"protocol,omitempty"`
	SourcePrefix    string          `json:"sourcePrefix,omitempty"`
	SourceNetwork   string          `json:"sourceNetwork,omitempty"`
	HubNode         string          `json:"hubNode,omitempty"`
	Groups          []insight.Group `json:"groups"`
}

// FlapProperties is the properties_s object of a deviceFlapping record.
type FlapProperties struct {
	DeviceID      string  `json:"deviceId"`
	State         string  `json:"state"` // "flapping" | "stable"
	FlapScore     int     `json:"flapScore"`
	Trend         string  `json:"trend"`
	RecentPerHour float64 `json:"recentPerHour"`
	BeforePerHour float64 `json:"beforePerHour"`
	Threshold     int     `json:"threshold"`
}

// FromInsight turns one insight record into its Insights record: Level
// Error when an incident is detected or a device starts flapping,
// Information when it closes or the device is stable again. An incident's
// two records share CorrelationId (the incident id); the resolved one has
// DurationMs from its first drop to its close.
func FromInsight(res Resource, r insight.Record) (Record, error) {
	rec := Record{
		ItemID:        ItemID(CategoryInsights, r.ID, 0, r.Time),
		TimeGenerated: r.Time.UTC(),
		Category:      CategoryInsights,
		OperationName: r.Kind,
		Level:         LevelInformation,
		CorrelationID: r.ID,
	}
	switch {
	case r.Incident != nil:
		inc := r.Incident
		rec.CorrelationID = inc.ID
		props := IncidentProperties{
			IncidentID: inc.ID, State: inc.State, Summary: inc.Summary,
			Start: formatTime(inc.Start), DetectedAt: formatTime(inc.DetectedAt), LastDrop: formatTime(inc.LastDrop), End: formatTime(inc.End),
			Devices: inc.Devices, Recovered: inc.Recovered, ConnectedBefore: inc.ConnectedBefore,
			Baseline: inc.Baseline, Peak: inc.Peak, WindowSeconds: inc.WindowSeconds, Groups: inc.Groups,
		}
		if props.Groups == nil {
			props.Groups = []insight.Group{}
		}
		for _, g := range inc.Groups {
			if len(g.Values) == 0 {
				continue
			}
			v := g.Values[0].Value
			switch g.Dimension {
			case insight.DimResultType:
				props.ResultType = v
			case insight.DimReason:
				props.Reason = v
			case insight.DimSDK:
				props.SDKVersion = v
			case insight.DimProtocol:
				props.Protocol = v
			case insight.DimSourcePrefix:
				props.SourcePrefix = v
			case insight.DimSourceNetwork:
				props.SourceNetwork = v
			case insight.DimHubNode:
				props.HubNode = v
			}
		}
		if inc.State == insight.IncidentOpen {
			rec.Level = LevelError
		} else if !inc.End.IsZero() {
			d := inc.End.Sub(inc.Start).Milliseconds()
			rec.DurationMs = &d
		}
		rec.Properties = marshalProperties(props)
	case r.Flap != nil:
		fl := r.Flap
		props := FlapProperties{DeviceID: fl.DeviceID, State: "stable", FlapScore: fl.Score, Trend: fl.Trend,
			RecentPerHour: fl.RecentPerHour, BeforePerHour: fl.BeforePerHour, Threshold: fl.Threshold}
		if fl.Flapping {
			props.State = "flapping"
			rec.Level = LevelError
		}
		rec.DeviceID = fl.DeviceID
		rec.Properties = marshalProperties(props)
	default:
		return Record{}, fmt.Errorf("connlog: insight record %s of kind %q has nothing to log", r.ID, r.Kind)
	}
	res.stamp(&rec, r.Hub)
	return rec, nil
}
