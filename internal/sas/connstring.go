package sas

import (
	"fmt"
	"strings"
)

// ConnectionString holds the fields of an IoT Hub connection string
// ("HostName=…;DeviceId=…;SharedAccessKey=…" or
// "HostName=…;SharedAccessKeyName=iothubowner;SharedAccessKey=…").
type ConnectionString struct {
	HostName              string
	DeviceID              string
	ModuleID              string
	SharedAccessKey       string
	SharedAccessKeyName   string
	SharedAccessSignature string
	GatewayHostName       string
}

// ParseConnectionString splits on ';' and each field on its first '=', so
// base64 keys ending in '=' survive.
func ParseConnectionString(s string) (ConnectionString, error) {
	var cs ConnectionString
	seen := map[string]bool{}
	for part := range strings.SplitSeq(strings.TrimSpace(s), ";") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return cs, fmt.Errorf("connection string: %q has no '='", truncate(part))
		}
		if seen[k] {
			return cs, fmt.Errorf("connection string: %s given twice", k)
		}
		seen[k] = true
		switch k {
		case "HostName":
			cs.HostName = v
		case "DeviceId":
			cs.DeviceID = v
		case "ModuleId":
			cs.ModuleID = v
		case "SharedAccessKey":
			cs.SharedAccessKey = v
		case "SharedAccessKeyName":
			cs.SharedAccessKeyName = v
		case "SharedAccessSignature":
			cs.SharedAccessSignature = v
		case "GatewayHostName":
			cs.GatewayHostName = v
		case "x509":
		default:
			return cs, fmt.Errorf("connection string: unknown key %q", truncate(k))
		}
	}
	if cs.HostName == "" {
		return cs, fmt.Errorf("connection string: HostName is missing")
	}
	if cs.SharedAccessKey == "" && cs.SharedAccessSignature == "" {
		return cs, fmt.Errorf("connection string: SharedAccessKey or SharedAccessSignature is required")
	}
	if cs.DeviceID == "" && cs.SharedAccessKeyName == "" {
		return cs, fmt.Errorf("connection string: needs DeviceId (device) or SharedAccessKeyName (policy)")
	}
	return cs, nil
}

// String renders the connection string in the canonical key order.
func (cs ConnectionString) String() string {
	parts := []string{"HostName=" + cs.HostName}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("DeviceId", cs.DeviceID)
	add("ModuleId", cs.ModuleID)
	add("SharedAccessKeyName", cs.SharedAccessKeyName)
	add("SharedAccessKey", cs.SharedAccessKey)
	add("SharedAccessSignature", cs.SharedAccessSignature)
	add("GatewayHostName", cs.GatewayHostName)
	return strings.Join(parts, ";")
}
