package events

import "github.com/tether-hub/tether/internal/presence"

// ConnectionData is data of DeviceConnected and DeviceDisconnected
// (reference/iothub-facts.md §1.2), members in IoT Hub's order.
type ConnectionData struct {
	DeviceConnectionStateEventInfo StateEventInfo `json:"deviceConnectionStateEventInfo"`
	HubName                        string         `json:"hubName"`
	DeviceID                       string         `json:"deviceId"`
	// ModuleID is "" for devices, as in IoT Hub's ordering sample.
	ModuleID string     `json:"moduleId"`
	Tether   *Extension `json:"tether,omitempty"`
}

// StateEventInfo holds the sequence number: 64 upper-case hex digits whose
// string order is the event order per device (§1.3).
type StateEventInfo struct {
	SequenceNumber string `json:"sequenceNumber"`
}

// Marks are what the hub learns about a connection event after it was
// journalled; the delivery engine passes them to FromConnection.
type Marks struct {
	// TokenRenewal: the event is one half of a token-renewal pair. A
	// connect that presence marked (ConnectionEvent.TokenRenewal) is
	// marked without it.
	TokenRenewal bool
}

// FromConnection is the event of a connection change. Refusals change no
// device's state and have no Event Grid event: ok is false for them (and
// for any kind this version does not know).
func FromConnection(r Resource, ce presence.ConnectionEvent, m Marks) (Event, bool) {
	var t EventType
	switch ce.Kind {
	case presence.Connected:
		t = DeviceConnected
	case presence.Disconnected:
		t = DeviceDisconnected
	default:
		return Event{}, false
	}
	data := ConnectionData{
		DeviceConnectionStateEventInfo: StateEventInfo{SequenceNumber: ce.Sequence},
		HubName:                        r.HubName(ce.Hub),
		DeviceID:                       ce.DeviceID,
		ModuleID:                       ce.ModuleID,
		Tether: &Extension{
			Reason:            string(ce.Reason),
			ResultType:        ce.Result.Type,
			ResultDescription: ce.Result.Description,
			Protocol:          ce.Protocol,
			ProtocolVersion:   ce.ProtocolVersion,
			SessionID:         ce.SessionID,
			ConnectDurationMs: ce.DurationMs,
			TokenRenewal:      m.TokenRenewal || ce.TokenRenewal,
			Detail:            ce.Detail,
		},
	}
	return Event{
		ID:          eventID(ce.Hub, sourceConn, ce.ID),
		Type:        t,
		Topic:       r.ID(ce.Hub),
		Subject:     Subject(ce.DeviceID),
		Time:        ce.Time,
		DataVersion: DataVersionHub,
		Data:        mustMarshal(data),
		DeviceID:    ce.DeviceID,
		Sequence:    ce.Sequence,
	}, true
}
