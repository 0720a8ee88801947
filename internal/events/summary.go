package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Summary is a one-line account of e for people (e-mail subjects, digests):
//
//	sensor-17 disconnected at 03:12:05Z: 404104 keep-alive, after 6 h 02 min connected
//	sensor-17 connected at 03:14:40Z over MQTT 3.1.1
//	sensor-17 was created at 09:00:00Z
//	sensor-17 sent telemetry at 09:00:01Z (112 bytes)
//
// Times are UTC; the date is left out (Details has it). A half of a
// token renewal says so.
func Summary(e Event) string {
	at := e.Time.UTC().Format("15:04:05Z")
	switch e.Type {
	case DeviceConnected, DeviceDisconnected:
		var d ConnectionData
		_ = json.Unmarshal(e.Data, &d)
		x := Extension{}
		if d.Tether != nil {
			x = *d.Tether
		}
		var s string
		if e.Type == DeviceConnected {
			s = e.DeviceID + " connected at " + at
			if p := protocolName(x.Protocol, x.ProtocolVersion); p != "" {
				s += " over " + p
			}
		} else {
			s = e.DeviceID + " disconnected at " + at
			if why := strings.TrimSpace(x.ResultType + " " + x.Reason); why != "" {
				s += ": " + why
			}
			if x.ConnectDurationMs > 0 {
				s += ", after " + HumanDuration(time.Duration(x.ConnectDurationMs)*time.Millisecond) + " connected"
			}
		}
		if x.TokenRenewal {
			s += " (token renewal)"
		}
		return s
	case DeviceCreated:
		return e.DeviceID + " was created at " + at
	case DeviceDeleted:
		return e.DeviceID + " was deleted at " + at
	case DeviceTelemetry:
		var d struct {
			Body json.RawMessage `json:"body"`
		}
		_ = json.Unmarshal(e.Data, &d)
		return fmt.Sprintf("%s sent telemetry at %s (%d bytes)", e.DeviceID, at, len(d.Body))
	}
	return e.DeviceID + " " + string(e.Type) + " at " + at
}

// Details are the facts of e, one "Name: value" line each, for the body of
// a mail: device, event, time, and for connection events what data.tether
// knows.
func Details(e Event) []string {
	var out []string
	add := func(k, v string) {
		if v != "" {
			out = append(out, fmt.Sprintf("%-15s%s", k+":", v))
		}
	}
	add("Device", e.DeviceID)
	add("Event", string(e.Type))
	add("Time", FormatTime(e.Time))
	if e.Type == DeviceConnected || e.Type == DeviceDisconnected {
		var d ConnectionData
		_ = json.Unmarshal(e.Data, &d)
		if x := d.Tether; x != nil {
			add("Reason", x.Reason)
			add("Result", strings.TrimSpace(x.ResultType+" "+x.ResultDescription))
			add("Protocol", protocolName(x.Protocol, x.ProtocolVersion))
			if x.ConnectDurationMs > 0 {
				add("Connected for", HumanDuration(time.Duration(x.ConnectDurationMs)*time.Millisecond))
			}
			if x.TokenRenewal {
				add("Token renewal", "yes")
			}
			add("Detail", x.Detail)
			add("Session", x.SessionID)
		}
		add("Sequence", e.Sequence)
	}
	add("Event id", e.ID)
	return out
}

func protocolName(p string, v byte) string {
	switch v {
	case 3:
		return strings.TrimSpace(p + " 3.1")
	case 4:
		return strings.TrimSpace(p + " 3.1.1")
	case 5:
		return strings.TrimSpace(p + " 5")
	}
	return p
}

// HumanDuration writes d in its two largest units: "42 s", "5 min 03 s",
// "6 h 02 min", "3 d 04 h".
func HumanDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %02d s", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%d h %02d min", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%d d %02d h", s/86400, s%86400/3600)
}
