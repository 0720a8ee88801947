package events

import (
	"bytes"
	"strconv"
	"sync"

	"github.com/tether-hub/tether/internal/jsonenc"
	"github.com/tether-hub/tether/internal/presence"
)

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
		Data:        encodeConnectionData(&data),
		DeviceID:    ce.DeviceID,
		Sequence:    ce.Sequence,
	}, true
}

// scratch holds the buffers encodeConnectionData appends into, so that
// the data each event keeps is allocated once at its exact size.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func encodeConnectionData(d *ConnectionData) []byte {
	p := scratch.Get().(*[]byte)
	b := appendConnectionData((*p)[:0], d)
	out := bytes.Clone(b)
	*p = b
	scratch.Put(p)
	return out
}

// appendConnectionData appends d as encoding/json writes it (members in
// field order, the same omitempty rules and escaping), without
// reflection: every connection event a subscription takes is encoded
// once per subscription. TestConnectionDataMatchesMarshal and
// FuzzConnectionData hold it to encoding/json; TestConnectionDataCovers
// fails when ConnectionData or Extension gain a field this does not write.
func appendConnectionData(b []byte, d *ConnectionData) []byte {
	b = append(b, `{"deviceConnectionStateEventInfo":{"sequenceNumber":`...)
	b = jsonenc.String(b, d.DeviceConnectionStateEventInfo.SequenceNumber)
	b = append(b, `},"hubName":`...)
	b = jsonenc.String(b, d.HubName)
	b = append(b, `,"deviceId":`...)
	b = jsonenc.String(b, d.DeviceID)
	b = append(b, `,"moduleId":`...)
	b = jsonenc.String(b, d.ModuleID)
	if x := d.Tether; x != nil {
		b = append(b, `,"tether":{`...)
		n := len(b)
		opt := func(key, v string) {
			if v != "" {
				if len(b) > n {
					b = append(b, ',')
				}
				b = jsonenc.String(append(append(b, '"'), key+`":`...), v)
			}
		}
		opt("reason", x.Reason)
		opt("resultType", x.ResultType)
		opt("resultDescription", x.ResultDescription)
		opt("protocol", x.Protocol)
		if x.ProtocolVersion != 0 {
			if len(b) > n {
				b = append(b, ',')
			}
			b = strconv.AppendUint(append(b, `"protocolVersion":`...), uint64(x.ProtocolVersion), 10)
		}
		opt("sessionId", x.SessionID)
		if x.ConnectDurationMs != 0 {
			if len(b) > n {
				b = append(b, ',')
			}
			b = strconv.AppendInt(append(b, `"connectDurationMs":`...), x.ConnectDurationMs, 10)
		}
		if len(b) > n {
			b = append(b, ',')
		}
		b = strconv.AppendBool(append(b, `"tokenRenewal":`...), x.TokenRenewal)
		opt("detail", x.Detail)
		b = append(b, '}')
	}
	return append(b, '}')
}
