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
	e := encoder{b: make([]byte, 0, 64+2*(Size(t.Desired.Values)+Size(t.Reported.Values)))}
	e.b = append(e.b, `{"desired":`...)
	e.section(t.Desired, false, false)
	e.key("reported")
	e.section(t.Reported, false, false)
	return append(e.b, '}')
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
	// Metadata makes the rendering of properties several times their Size.
	e := encoder{b: make([]byte, 0, 512+2*Size(t.Tags)+9*(Size(t.Desired.Values)+Size(t.Reported.Values)))}
	e.b = appendString(append(e.b, `{"deviceId":`...), dev.DeviceID)
	e.str("etag", t.ETag())
	e.str("deviceEtag", dev.DeviceETag)
	e.str("status", dev.Status)
	if dev.StatusReason != "" {
		e.str("statusReason", dev.StatusReason)
	}
	e.key("statusUpdateTime")
	e.time(dev.StatusUpdateTime)
	e.str("connectionState", dev.ConnectionState)
	e.key("lastActivityTime")
	e.time(dev.LastActivityTime)
	e.key("cloudToDeviceMessageCount")
	e.int(int64(dev.CloudToDeviceMessageCount))
	e.str("authenticationType", dev.AuthenticationType)
	e.b = appendNullable(append(e.b, `,"x509Thumbprint":{"primaryThumbprint":`...), dev.PrimaryThumbprint)
	e.key("secondaryThumbprint")
	e.b = appendNullable(e.b, dev.SecondaryThumbprint)
	e.b = appendString(append(e.b, `},"modelId":`...), dev.ModelID)
	e.key("version")
	e.int(t.Version)
	if len(t.Tags) > 0 {
		e.key("tags")
		e.value(t.Tags)
	}
	e.b = append(e.b, `,"properties":{"desired":`...)
	e.section(t.Desired, true, true)
	e.key("reported")
	e.section(t.Reported, true, false)
	e.b = strconv.AppendBool(append(e.b, `},"capabilities":{"iotEdge":`...), dev.IoTEdge)
	return append(e.b, "}}"...)
}

// section renders a section: its values, then "$metadata" (when meta;
// with $lastUpdatedVersion when versions) and "$version".
func (e *encoder) section(p Properties, meta, versions bool) {
	e.b = append(e.b, '{')
	e.members(p.Values)
	if meta {
		e.b = append(e.b, `"$metadata":`...)
		e.meta(p.Meta, versions)
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, `"$version":`...)
	e.int(p.Version)
	e.b = append(e.b, '}')
}

// meta renders one $metadata object: $lastUpdated, $lastUpdatedVersion
// (desired only, when set), then its members' metadata.
func (e *encoder) meta(m *Meta, versions bool) {
	if m == nil {
		e.b = append(e.b, "{}"...)
		return
	}
	e.b = append(e.b, `{"$lastUpdated":`...)
	e.time(m.LastUpdated)
	if versions && m.LastUpdatedVersion != 0 {
		e.key("$lastUpdatedVersion")
		e.int(m.LastUpdatedVersion)
	}
	start, end := pushKeys(e, m.Children)
	for i := start; i < end; i++ {
		k := e.keys[i]
		e.b = append(appendString(append(e.b, ','), k), ':')
		e.meta(m.Children[k], versions)
	}
	e.popKeys(start)
	e.b = append(e.b, '}')
}

func appendNullable(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}
