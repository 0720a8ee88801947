package journal

import (
	"strings"
)

// Stream names.
const (
	StreamConn      = "TETHER_CONN"
	StreamRegistry  = "TETHER_REGISTRY"
	StreamTelemetry = "TETHER_TELEMETRY"
	StreamOps       = "TETHER_OPS"
	StreamInsights  = "TETHER_INSIGHTS"
)

// Subject prefixes.
const (
	ConnPrefix      = "tether.conn."
	RegistryPrefix  = "tether.registry."
	TelemetryPrefix = "tether.telemetry."
	OpsPrefix       = "tether.ops."
	InsightsPrefix  = "tether.insights."
)

// ConnSubject is the subject of a connection event of kind for device id.
func ConnSubject(deviceID, kind string) string {
	return ConnPrefix + EncodeToken(deviceID) + "." + kind
}

// RegistrySubject is the subject of a registry change.
func RegistrySubject(deviceID, op string) string {
	return RegistryPrefix + EncodeToken(deviceID) + "." + op
}

// TelemetrySubject is the subject of device telemetry.
func TelemetrySubject(deviceID string) string {
	return TelemetryPrefix + EncodeToken(deviceID)
}

// OpsSubject is the subject of an Operation of category about device
// id ("" for none: a twin query).
func OpsSubject(category, deviceID string) string {
	return OpsPrefix + EncodeToken(category) + "." + EncodeToken(deviceID)
}

// InsightsSubject is the subject of a derived insight record of kind
// (massDisconnect, massDisconnectResolved, deviceFlapping) about key (an
// incident id or a device id).
func InsightsSubject(kind, key string) string {
	return InsightsPrefix + EncodeToken(kind) + "." + EncodeToken(key)
}

// OpsFilter is the filter subject of the operations of category.
func OpsFilter(category string) string {
	return OpsPrefix + EncodeToken(category) + ".*"
}

const hexDigits = "0123456789ABCDEF"

func needsEscape(c byte) bool {
	return c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '%'
}

// EncodeToken makes s safe as one NATS subject token, reversibly.
func EncodeToken(s string) string {
	if s == "" {
		return "%"
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if needsEscape(c) {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// DecodeToken reverses EncodeToken; ok is false for a token it did not make.
func DecodeToken(t string) (string, bool) {
	if t == "%" {
		return "", true
	}
	if !strings.Contains(t, "%") {
		return t, true
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		if t[i] != '%' {
			b.WriteByte(t[i])
			continue
		}
		if i+2 >= len(t) {
			return "", false
		}
		hi, lo := unhex(t[i+1]), unhex(t[i+2])
		if hi < 0 || lo < 0 {
			return "", false
		}
		b.WriteByte(byte(hi<<4 | lo))
		i += 2
	}
	return b.String(), true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}
