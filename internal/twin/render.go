package twin

import (
	"strconv"
	"time"
)

// DeviceInfo is what a served twin shows of the device identity and its
// connection; the caller fills it from the registry and presence. Strings
// are rendered as given (IoT Hub's values: Status "enabled"|"disabled",
// ConnectionState "Connected"|"Disconnected", AuthenticationType
// "sas"|"selfSigned"|"certificateAuthority"|"none").
type DeviceInfo struct {
	DeviceID                  string
	DeviceETag                string // the identity's etag in the registry ("deviceEtag")
	Status                    string
	StatusReason              string    // left out when empty, as IoT Hub does
	StatusUpdateTime          time.Time // zero: "0001-01-01T00:00:00Z"
	ConnectionState           string
	LastActivityTime          time.Time
	CloudToDeviceMessageCount int
	AuthenticationType        string
	PrimaryThumbprint         string // empty: null
	SecondaryThumbprint       string // empty: null
	ModelID                   string // "" for devices without a model, as IoT Hub shows it
	IoTEdge                   bool
}

// DeviceJSON is the twin as $iothub/twin/GET answers it:
// {"desired":{…,"$version":n},"reported":{…,"$version":m}}, no metadata,
// no tags. azure-iot-device merges desired and reported from it.
func (t *Twin) DeviceJSON() []byte {
	b := make([]byte, 0, 64+Size(t.Desired.Values)+Size(t.Reported.Values))
	b = append(b, `{"desired":`...)
	b = appendSection(b, t.Desired, false, false)
	b = append(b, `,"reported":`...)
	b = appendSection(b, t.Reported, false, false)
	return append(b, '}')
}

// ServiceJSON is the twin as GET /twins/{id} returns it, members in IoT
// Hub's order: deviceId, etag, deviceEtag, status, statusReason (if any),
// statusUpdateTime, connectionState, lastActivityTime,
// cloudToDeviceMessageCount, authenticationType, x509Thumbprint, modelId,
// version, tags (left out when there are none, as IoT Hub does),
// properties{desired, reported} each with $metadata and $version, and
// capabilities. Keys inside tags and sections are sorted (IoT Hub keeps
// insertion order; a Go map has none, so the order is made deterministic).
func (t *Twin) ServiceJSON(dev DeviceInfo) []byte {
	b := make([]byte, 0, 512+2*(Size(t.Tags)+Size(t.Desired.Values)+Size(t.Reported.Values)))
	b = appendString(append(b, `{"deviceId":`...), dev.DeviceID)
	b = appendString(append(b, `,"etag":`...), t.ETag())
	b = appendString(append(b, `,"deviceEtag":`...), dev.DeviceETag)
	b = appendString(append(b, `,"status":`...), dev.Status)
	if dev.StatusReason != "" {
		b = appendString(append(b, `,"statusReason":`...), dev.StatusReason)
	}
	b = appendString(append(b, `,"statusUpdateTime":`...), FormatTime(dev.StatusUpdateTime))
	b = appendString(append(b, `,"connectionState":`...), dev.ConnectionState)
	b = appendString(append(b, `,"lastActivityTime":`...), FormatTime(dev.LastActivityTime))
	b = strconv.AppendInt(append(b, `,"cloudToDeviceMessageCount":`...), int64(dev.CloudToDeviceMessageCount), 10)
	b = appendString(append(b, `,"authenticationType":`...), dev.AuthenticationType)
	b = appendNullable(append(b, `,"x509Thumbprint":{"primaryThumbprint":`...), dev.PrimaryThumbprint)
	b = appendNullable(append(b, `,"secondaryThumbprint":`...), dev.SecondaryThumbprint)
	b = appendString(append(b, `},"modelId":`...), dev.ModelID)
	b = strconv.AppendInt(append(b, `,"version":`...), t.Version, 10)
	if len(t.Tags) > 0 {
		b = appendValue(append(b, `,"tags":`...), t.Tags)
	}
	b = append(b, `,"properties":{"desired":`...)
	b = appendSection(b, t.Desired, true, true)
	b = append(b, `,"reported":`...)
	b = appendSection(b, t.Reported, true, false)
	b = strconv.AppendBool(append(b, `},"capabilities":{"iotEdge":`...), dev.IoTEdge)
	return append(b, "}}"...)
}

// appendSection renders a section: its values, then "$metadata" (when
// meta; with $lastUpdatedVersion when versions) and "$version".
func appendSection(b []byte, p Properties, meta, versions bool) []byte {
	b = appendMembers(append(b, '{'), p.Values)
	if meta {
		b = appendMeta(append(b, `"$metadata":`...), p.Meta, versions)
		b = append(b, ',')
	}
	b = strconv.AppendInt(append(b, `"$version":`...), p.Version, 10)
	return append(b, '}')
}

// appendMeta renders one $metadata object: $lastUpdated,
// $lastUpdatedVersion (desired only, when set), then its members' metadata.
func appendMeta(b []byte, m *Meta, versions bool) []byte {
	if m == nil {
		return append(b, "{}"...)
	}
	b = appendString(append(b, `{"$lastUpdated":`...), FormatTime(m.LastUpdated))
	if versions && m.LastUpdatedVersion != 0 {
		b = strconv.AppendInt(append(b, `,"$lastUpdatedVersion":`...), m.LastUpdatedVersion, 10)
	}
	for _, k := range sortedKeys(m.Children) {
		b = appendString(append(b, ','), k)
		b = appendMeta(append(b, ':'), m.Children[k], versions)
	}
	return append(b, '}')
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}
