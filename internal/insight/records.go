package insight

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Kinds of derived records (journal subject tether.insights.<kind>.<key>,
// log OperationName).
const (
	KindMassDisconnect         = "massDisconnect"         // an incident was detected
	KindMassDisconnectResolved = "massDisconnectResolved" // it closed
	KindDeviceFlapping         = "deviceFlapping"         // a device's flap score crossed the threshold, either way
)

// Kinds lists the record kinds.
var Kinds = []string{KindMassDisconnect, KindMassDisconnectResolved, KindDeviceFlapping}

// Record is one derived record, as the engine emits it and the journal
// stores it (JSON, stream TETHER_INSIGHTS). The log writer turns it into an
// Insights record, the delivery engine an incident into a
// Tether.Insights.MassDisconnect event. Stored records are read back by
// later versions: fields are only added, optional.
type Record struct {
	// ID is stable for what it records (an incident's id and state, a
	// device's flap change and time), so a record derived again when the
	// engine is rebuilt from the journal is the same record.
	ID   string    `json:"id"`
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	Hub  string    `json:"hub"`
	// Source is the TETHER_CONN position the engine had applied when it
	// derived the record; a rebuilt engine publishes only records past the
	// newest stored one's.
	Source   uint64      `json:"sourceSeq"`
	Incident *Incident   `json:"incident,omitempty"`
	Flap     *FlapChange `json:"flap,omitempty"`
}

// FlapChange: a device started (Flapping) or stopped flapping.
type FlapChange struct {
	DeviceID      string  `json:"deviceId"`
	Flapping      bool    `json:"flapping"`
	Score         int     `json:"flapScore"`
	Trend         string  `json:"trend"`
	RecentPerHour float64 `json:"recentPerHour"`
	BeforePerHour float64 `json:"beforePerHour"`
	Threshold     int     `json:"threshold"`
}

// Key is the last token of the record's journal subject: the incident id
// or the device id.
func (r *Record) Key() string {
	switch {
	case r.Incident != nil:
		return r.Incident.ID
	case r.Flap != nil:
		return r.Flap.DeviceID
	}
	return ""
}

// DeviceID is the device the record is about ("" for incidents).
func (r *Record) DeviceID() string {
	if r.Flap != nil {
		return r.Flap.DeviceID
	}
	return ""
}

// ErrMalformed is wrapped by DecodeRecord's errors.
var ErrMalformed = errors.New("insight: malformed record")

// EncodeRecord is r's journal payload.
func EncodeRecord(r Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("insight: encoding record %s: %w", r.ID, err)
	}
	return b, nil
}

// DecodeRecord reads a journal payload: one of Kinds with its member.
func DecodeRecord(data []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch {
	case r.ID == "":
		return Record{}, fmt.Errorf("%w: no id", ErrMalformed)
	case (r.Kind == KindMassDisconnect || r.Kind == KindMassDisconnectResolved) && r.Incident == nil:
		return Record{}, fmt.Errorf("%w: %s without its incident", ErrMalformed, r.Kind)
	case r.Kind == KindDeviceFlapping && r.Flap == nil:
		return Record{}, fmt.Errorf("%w: %s without its flap change", ErrMalformed, r.Kind)
	case r.Kind != KindMassDisconnect && r.Kind != KindMassDisconnectResolved && r.Kind != KindDeviceFlapping:
		return Record{}, fmt.Errorf("%w: unknown kind %q", ErrMalformed, r.Kind)
	}
	return r, nil
}
