package events

import (
	"github.com/tether-hub/tether/internal/registry"
)

// LifecycleData is data of DeviceCreated and DeviceDeleted
// (reference/iothub-facts.md §1.5).
type LifecycleData struct {
	Twin     Twin   `json:"twin"`
	HubName  string `json:"hubName"`
	DeviceID string `json:"deviceId"`
}

// Twin is the twin snapshot of a lifecycle event, members in IoT Hub's
// order. Tether has no device twins, so the twin-only members are fixed:
// version 1 and empty desired/reported properties at version 1, last
// updated at the change. As IoT Hub warns for its own events, treat the
// snapshot as a default, not as the device's full state.
type Twin struct {
	DeviceID string `json:"deviceId"`
	// ETag and DeviceETag are both the registry ETag of the device after
	// the change (before it, for deletes): it changes with every registry
	// write, which is what consumers use it for (detecting stale events).
	ETag                      string         `json:"etag"`
	DeviceETag                string         `json:"deviceEtag"`
	Status                    string         `json:"status"`
	StatusUpdateTime          string         `json:"statusUpdateTime"`
	ConnectionState           string         `json:"connectionState"`
	LastActivityTime          string         `json:"lastActivityTime"`
	CloudToDeviceMessageCount int            `json:"cloudToDeviceMessageCount"`
	AuthenticationType        string         `json:"authenticationType"`
	X509Thumbprint            X509Thumbprint `json:"x509Thumbprint"`
	Version                   int64          `json:"version"`
	Properties                TwinProperties `json:"properties"`
}

// X509Thumbprint of a twin; null members for SAS devices.
type X509Thumbprint struct {
	PrimaryThumbprint   *string `json:"primaryThumbprint"`
	SecondaryThumbprint *string `json:"secondaryThumbprint"`
}

// TwinProperties are the desired and reported property sets.
type TwinProperties struct {
	Desired  TwinPropertySet `json:"desired"`
	Reported TwinPropertySet `json:"reported"`
}

// TwinPropertySet is an empty property set: only its metadata.
type TwinPropertySet struct {
	Metadata TwinMetadata `json:"$metadata"`
	Version  int64        `json:"$version"`
}

// TwinMetadata is $metadata of a property set.
type TwinMetadata struct {
	LastUpdated string `json:"$lastUpdated"`
}

// FromChange is the event of a registry change: DeviceCreated or
// DeviceDeleted. IoT Hub has no event for an update: ok is false for it.
func FromChange(r Resource, c registry.Change) (Event, bool) {
	var t EventType
	switch c.Op {
	case registry.OpCreated:
		t = DeviceCreated
	case registry.OpDeleted:
		t = DeviceDeleted
	default:
		return Event{}, false
	}
	d := c.Device
	state := d.ConnectionState
	if state == "" {
		state = "Disconnected"
	}
	auth := d.Authentication.Type
	if auth == "" {
		auth = "sas"
	}
	changed := FormatTime(c.Time)
	set := TwinPropertySet{Metadata: TwinMetadata{LastUpdated: changed}, Version: 1}
	data := LifecycleData{
		Twin: Twin{
			DeviceID:                  c.DeviceID,
			ETag:                      d.ETag,
			DeviceETag:                d.ETag,
			Status:                    string(d.Status),
			StatusUpdateTime:          formatTwinTime(d.StatusUpdatedTime),
			ConnectionState:           state,
			LastActivityTime:          formatTwinTime(d.LastActivityTime),
			CloudToDeviceMessageCount: d.CloudToDeviceMessageCount,
			AuthenticationType:        auth,
			X509Thumbprint: X509Thumbprint{
				PrimaryThumbprint:   d.Authentication.X509Thumbprint.PrimaryThumbprint,
				SecondaryThumbprint: d.Authentication.X509Thumbprint.SecondaryThumbprint,
			},
			Version:    1,
			Properties: TwinProperties{Desired: set, Reported: set},
		},
		HubName:  r.HubName(c.Hub),
		DeviceID: c.DeviceID,
	}
	return Event{
		ID:          eventID(c.Hub, sourceRegistry, c.ID),
		Type:        t,
		Topic:       r.ID(c.Hub),
		Subject:     Subject(c.DeviceID),
		Time:        c.Time,
		DataVersion: DataVersionHub,
		Data:        mustMarshal(data),
		DeviceID:    c.DeviceID,
	}, true
}
