package sas

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrUsername is wrapped by every username parse error.
var ErrUsername = errors.New("malformed MQTT username")

// Username is the parsed MQTT username of an IoT Hub device:
//
//	{host}/{deviceId}[/{moduleId}]/?api-version=…[&DeviceClientType=…][&model-id=…]
//
// Older SDKs omit the '?' ("{host}/{device}/api-version=…&DeviceClientType=…");
// both forms are accepted (reference/iothub-facts.md §5.2).
type Username struct {
	Host             string
	DeviceID         string
	ModuleID         string
	APIVersion       string
	DeviceClientType string // decoded, e.g. "azure-iot-device/1.18.4 (node v20…)"
	ModelID          string
}

const maxUsernameLen = 2048

// ParseUsername parses an MQTT username. The device id is taken verbatim
// (IoT Hub does not percent-decode it in the username).
func ParseUsername(s string) (Username, error) {
	var u Username
	if len(s) > maxUsernameLen {
		return u, fmt.Errorf("%w: %d bytes, longer than %d", ErrUsername, len(s), maxUsernameLen)
	}
	path, query, hasQ := strings.Cut(s, "/?")
	if !hasQ {
		// Legacy form: the last segment is the query.
		i := strings.LastIndexByte(s, '/')
		if i < 0 {
			return u, fmt.Errorf("%w: expected {host}/{deviceId}/?api-version=…", ErrUsername)
		}
		path, query = s[:i], s[i+1:]
		if query != "" && !strings.Contains(query, "=") {
			return u, fmt.Errorf("%w: expected {host}/{deviceId}/?api-version=…", ErrUsername)
		}
	}
	segs := strings.Split(path, "/")
	switch len(segs) {
	case 2:
		u.Host, u.DeviceID = segs[0], segs[1]
	case 3:
		u.Host, u.DeviceID, u.ModuleID = segs[0], segs[1], segs[2]
	default:
		return u, fmt.Errorf("%w: expected {host}/{deviceId}[/{moduleId}]/?…, got %d path segments", ErrUsername, len(segs))
	}
	if u.Host == "" || u.DeviceID == "" {
		return u, fmt.Errorf("%w: host and device id must not be empty", ErrUsername)
	}
	if len(segs) == 3 && u.ModuleID == "" {
		return u, fmt.Errorf("%w: module id must not be empty", ErrUsername)
	}
	for kv := range strings.SplitSeq(query, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "api-version":
			u.APIVersion = v
		case "DeviceClientType":
			dec, err := url.PathUnescape(v)
			if err != nil {
				dec = v // keep what the device sent rather than refuse it
			}
			u.DeviceClientType = dec
		case "model-id":
			// Inserted unencoded by the Node SDK, encoded by the C SDK.
			if dec, err := url.PathUnescape(v); err == nil {
				v = dec
			}
			u.ModelID = v
		}
	}
	return u, nil
}
