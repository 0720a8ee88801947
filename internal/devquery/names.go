package devquery

import "strings"

// IoT Hub's own example, SELECT DeviceId, LastActivityTime FROM devices,
// answers with "deviceId" and "lastActivityTime": the twin's fixed fields
// are found whatever their case. Tether does the same for the fields of
// the twin's shape below and keeps every other name (tags, desired and
// reported properties, which may differ only in case) exact.
var twinFields = fold(
	"deviceId", "moduleId", "etag", "deviceEtag", "status", "statusReason", "statusUpdateTime",
	"connectionState", "lastActivityTime", "cloudToDeviceMessageCount", "authenticationType",
	"x509Thumbprint", "modelId", "version", "tags", "properties", "capabilities", "deviceScope",
	"parentScopes",
)

var twinSubfields = map[string]map[string]string{
	"properties":     fold("desired", "reported"),
	"x509Thumbprint": fold("primaryThumbprint", "secondaryThumbprint"),
	"capabilities":   fold("iotEdge"),
}

func fold(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[strings.ToLower(n)] = n
	}
	return m
}

// canonical returns the names a path looks up: a leading "devices." (the
// collection, as in devices.deviceId) dropped and the twin's fixed fields
// in their own spelling. Escaped names ([[x]]) are taken as written.
func canonical(names []string, escaped []bool) []string {
	out := append([]string(nil), names...)
	esc := append([]bool(nil), escaped...)
	if len(out) > 1 && !esc[0] && strings.EqualFold(out[0], "devices") {
		out, esc = out[1:], esc[1:]
	}
	if !esc[0] {
		if c, ok := twinFields[strings.ToLower(out[0])]; ok {
			out[0] = c
		}
	}
	if len(out) > 1 && !esc[1] {
		if c, ok := twinSubfields[out[0]][strings.ToLower(out[1])]; ok {
			out[1] = c
		}
	}
	return out
}
