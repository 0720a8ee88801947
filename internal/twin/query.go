package twin

import (
	"encoding/json"
	"strconv"
)

// Doc is a twin as the device query language sees it: the shape of
// ServiceJSON, read in place. Making one copies dev and nothing of the
// twin; it reads the twin as it is when asked, so the caller's rules for
// reading a Twin apply (see Twin).
type Doc struct {
	t   *Twin
	dev DeviceInfo
}

// Doc returns the query view of t with the device fields of dev.
func (t *Twin) Doc(dev DeviceInfo) *Doc { return &Doc{t: t, dev: dev} }

// Reset makes d the view of t with dev: a scan that does not keep its
// documents reuses one instead of allocating one per device.
func (d *Doc) Reset(t *Twin, dev DeviceInfo) { d.t, d.dev = t, dev }

// MarshalJSON is ServiceJSON.
func (d *Doc) MarshalJSON() ([]byte, error) { return d.t.ServiceJSON(d.dev), nil }

// Lookup returns the value at path in the service twin shape, e.g.
// ["connectionState"], ["tags","location","building"],
// ["properties","reported","$metadata","temp","$lastUpdated"],
// ["properties","desired","$version"], ["properties","reported","list","0"]
// (array elements by decimal index). ok is false where the document has no
// such member (tags when there are none, statusReason when empty, a
// $lastUpdatedVersion outside desired).
//
// Values: nil (JSON null), bool, json.Number (every number, the twin's own
// counters included), string, map[string]any, []any. Maps and slices are the
// twin's own where it stores them (tags, sections' values), shared and
// read-only; containers the twin does not store as such (properties, a
// whole section with $metadata and $version, $metadata, x509Thumbprint,
// capabilities) are built for the call.
//
// A stored scalar, and status, connectionState and authenticationType with
// IoT Hub's values, come back without allocating; numbers the twin keeps
// as integers (version, $version, …), times and other device strings are
// converted per call.
func (d *Doc) Lookup(path []string) (any, bool) {
	if len(path) == 0 {
		return d.tree(), true
	}
	t, dev := d.t, &d.dev
	one := len(path) == 1
	switch path[0] {
	case "deviceId":
		return dev.DeviceID, one
	case "etag":
		return t.ETag(), one
	case "deviceEtag":
		return dev.DeviceETag, one
	case "status":
		return interned(dev.Status), one
	case "statusReason":
		return dev.StatusReason, one && dev.StatusReason != ""
	case "statusUpdateTime":
		return FormatTime(dev.StatusUpdateTime), one
	case "connectionState":
		return interned(dev.ConnectionState), one
	case "lastActivityTime":
		return FormatTime(dev.LastActivityTime), one
	case "cloudToDeviceMessageCount":
		return number(int64(dev.CloudToDeviceMessageCount)), one
	case "authenticationType":
		return interned(dev.AuthenticationType), one
	case "x509Thumbprint":
		return walk(d.thumbprints(), path[1:])
	case "modelId":
		return dev.ModelID, one
	case "version":
		return number(t.Version), one
	case "tags":
		if len(t.Tags) == 0 {
			return nil, false
		}
		return walk(t.Tags, path[1:])
	case "properties":
		if one {
			return d.properties(), true
		}
		switch path[1] {
		case "desired":
			return sectionLookup(t.Desired, path[2:], true)
		case "reported":
			return sectionLookup(t.Reported, path[2:], false)
		}
	case "capabilities":
		return walk(map[string]any{"iotEdge": dev.IoTEdge}, path[1:])
	}
	return nil, false
}

// sectionLookup looks path up in one properties section, whose own members
// are its values plus $metadata and $version.
func sectionLookup(p Properties, path []string, desired bool) (any, bool) {
	if len(path) == 0 {
		return sectionTree(p, desired), true
	}
	switch path[0] {
	case "$version":
		return number(p.Version), len(path) == 1
	case "$metadata":
		return metaLookup(p.Meta, path[1:], desired)
	}
	return walk(p.Values, path)
}

func metaLookup(m *Meta, path []string, desired bool) (any, bool) {
	for ; len(path) > 0 && m != nil; path = path[1:] {
		switch path[0] {
		case "$lastUpdated":
			return FormatTime(m.LastUpdated), len(path) == 1
		case "$lastUpdatedVersion":
			return number(m.LastUpdatedVersion), len(path) == 1 && desired && m.LastUpdatedVersion != 0
		}
		m = m.Children[path[0]]
	}
	if m == nil {
		return nil, false
	}
	return metaTree(m, desired), true
}

// walk follows path through decoded JSON.
func walk(v any, path []string) (any, bool) {
	for _, seg := range path {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func (d *Doc) tree() map[string]any {
	// The one rendering of the shape is ServiceJSON; decoding it keeps the
	// two from drifting apart. Whole-document lookups are rare (SELECT * is
	// served by MarshalJSON).
	m, _ := decodeObject(d.t.ServiceJSON(d.dev), "the twin")
	return m
}

func (d *Doc) properties() map[string]any {
	return map[string]any{
		"desired":  sectionTree(d.t.Desired, true),
		"reported": sectionTree(d.t.Reported, false),
	}
}

func (d *Doc) thumbprints() map[string]any {
	return map[string]any{
		"primaryThumbprint":   nullable(d.dev.PrimaryThumbprint),
		"secondaryThumbprint": nullable(d.dev.SecondaryThumbprint),
	}
}

func sectionTree(p Properties, desired bool) map[string]any {
	out := make(map[string]any, len(p.Values)+2)
	for k, v := range p.Values {
		out[k] = v
	}
	out["$metadata"] = metaTree(p.Meta, desired)
	out["$version"] = number(p.Version)
	return out
}

func metaTree(m *Meta, desired bool) map[string]any {
	out := make(map[string]any, len(m.Children)+2)
	out["$lastUpdated"] = FormatTime(m.LastUpdated)
	if desired && m.LastUpdatedVersion != 0 {
		out["$lastUpdatedVersion"] = number(m.LastUpdatedVersion)
	}
	for k, c := range m.Children {
		out[k] = metaTree(c, desired)
	}
	return out
}

func number(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// internedValues hold IoT Hub's enumerated device strings already boxed,
// so that the hot query paths (connectionState = 'Disconnected' over every
// device) return them without allocating.
var internedValues = func() map[string]any {
	m := map[string]any{}
	for _, s := range []string{"Connected", "Disconnected", "enabled", "disabled",
		"sas", "selfSigned", "certificateAuthority", "none"} {
		m[s] = s
	}
	return m
}()

func interned(s string) any {
	if v, ok := internedValues[s]; ok {
		return v
	}
	return s
}
