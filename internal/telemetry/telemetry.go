// Package telemetry holds device-to-cloud and cloud-to-device messages and
// the IoT Hub MQTT topic grammar for them: the property bag appended to
// devices/{id}/messages/events/ (D2C) and devices/{id}/messages/devicebound/
// (C2D), percent-encoded key=value pairs joined by '&', system properties
// prefixed "$." (sent as "%24.").
package telemetry

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Message is one D2C telemetry message as the hub received it.
type Message struct {
	DeviceID     string
	ModuleID     string
	EnqueuedTime time.Time
	Payload      []byte
	// Properties are application properties.
	Properties map[string]string
	// SystemProperties are "$."-prefixed properties by their IoT Hub names
	// (message-id, correlation-id, content-type, content-encoding, …).
	SystemProperties map[string]string
}

// systemNames maps the short topic names to IoT Hub's message system
// property names.
var systemNames = map[string]string{
	"mid":  "message-id",
	"cid":  "correlation-id",
	"uid":  "user-id",
	"to":   "to",
	"ct":   "content-type",
	"ce":   "content-encoding",
	"exp":  "absolute-expiry-time",
	"ifid": "interface-id",
	"sub":  "dt-subject",
}

// ErrTopic is wrapped by topic parse errors.
var ErrTopic = errors.New("not a telemetry topic")

// ParseEventsTopic splits devices/{id}[/modules/{mid}]/messages/events/{bag}
// into device id, module id and decoded properties.
func ParseEventsTopic(topic string) (deviceID, moduleID string, props, sys map[string]string, err error) {
	rest, ok := strings.CutPrefix(topic, "devices/")
	if !ok {
		return "", "", nil, nil, fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	i := strings.IndexByte(rest, '/')
	if i <= 0 {
		return "", "", nil, nil, fmt.Errorf("%w: %q", ErrTopic, topic)
	}
	deviceID, rest = rest[:i], rest[i+1:]
	if m, ok := strings.CutPrefix(rest, "modules/"); ok {
		j := strings.IndexByte(m, '/')
		if j <= 0 {
			return "", "", nil, nil, fmt.Errorf("%w: %q", ErrTopic, topic)
		}
		moduleID, rest = m[:j], m[j+1:]
	}
	bag, ok := strings.CutPrefix(rest, "messages/events/")
	if !ok {
		if rest != "messages/events" {
			return "", "", nil, nil, fmt.Errorf("%w: %q", ErrTopic, topic)
		}
	}
	props, sys, err = ParseProperties(bag)
	return deviceID, moduleID, props, sys, err
}

// ParseProperties decodes a property bag. A leading '?' is tolerated
// (C2D samples show "/?k=v").
func ParseProperties(bag string) (props, sys map[string]string, err error) {
	bag = strings.TrimPrefix(bag, "?")
	if bag == "" {
		return nil, nil, nil
	}
	for kv := range strings.SplitSeq(bag, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		dk, err1 := url.PathUnescape(k)
		dv, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("property %q is not valid percent-encoding", kv)
		}
		if short, ok := strings.CutPrefix(dk, "$."); ok {
			if sys == nil {
				sys = map[string]string{}
			}
			name := systemNames[short]
			if name == "" {
				name = short
			}
			sys[name] = dv
			continue
		}
		if props == nil {
			props = map[string]string{}
		}
		props[dk] = dv
	}
	return props, sys, nil
}

// C2DTopic builds devices/{id}/messages/devicebound/{bag} for props, in a
// stable order, with messageID as "$.mid" when set.
func C2DTopic(deviceID string, props map[string]string, messageID string) string {
	var b strings.Builder
	b.WriteString("devices/")
	b.WriteString(deviceID)
	b.WriteString("/messages/devicebound/")
	first := true
	add := func(k, v string) {
		if !first {
			b.WriteByte('&')
		}
		first = false
		b.WriteString(escape(k))
		b.WriteByte('=')
		b.WriteString(escape(v))
	}
	if messageID != "" {
		first = false
		b.WriteString("%24.mid=")
		b.WriteString(escape(messageID))
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, props[k])
	}
	return b.String()
}

// escape percent-encodes like JavaScript's encodeURIComponent, which is
// what the SDKs decode.
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
