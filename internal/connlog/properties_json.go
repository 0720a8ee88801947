package connlog

import (
	"strconv"
	"unicode/utf8"
)

// The properties_s objects are written by hand rather than by
// encoding/json's reflection: they are made for every record on the
// ingest path. The output is byte for byte what marshalProperties (an
// encoding/json Encoder without HTML escaping) writes for the same value;
// FuzzPropertiesJSON holds the two together.

// appendJSON appends p as properties_s JSON.
func (p *ConnectionProperties) appendJSON(b []byte) []byte {
	b = append(b, `{"deviceId":`...)
	b = appendJSONString(b, p.DeviceID)
	b = append(b, `,"protocol":`...)
	b = appendJSONString(b, p.Protocol)
	b = append(b, `,"authType":`...)
	b = appendJSONStringPtr(b, p.AuthType)
	b = append(b, `,"maskedIpAddress":`...)
	b = appendJSONString(b, p.MaskedIP)
	b = append(b, `,"statusCode":`...)
	b = appendJSONStringPtr(b, p.StatusCode)
	b = append(b, `,"errorMessage":`...)
	b = appendJSONString(b, p.ErrorMessage)
	b = appendOptString(b, `,"sdkVersion":`, p.SDKVersion)
	b = appendOptString(b, `,"moduleId":`, p.ModuleID)
	b = appendOptString(b, `,"sessionId":`, p.SessionID)
	b = appendOptString(b, `,"sequenceNumber":`, p.SequenceNumber)
	b = appendOptString(b, `,"reason":`, p.Reason)
	if p.ConnectDurationMs != 0 {
		b = append(b, `,"connectDurationMs":`...)
		b = strconv.AppendInt(b, p.ConnectDurationMs, 10)
	}
	if p.IdleMs != 0 {
		b = append(b, `,"idleMs":`...)
		b = strconv.AppendInt(b, p.IdleMs, 10)
	}
	b = appendOptString(b, `,"tokenExpiry":`, p.TokenExpiry)
	if p.ProtocolVersion != 0 {
		b = append(b, `,"protocolVersion":`...)
		b = strconv.AppendUint(b, uint64(p.ProtocolVersion), 10)
	}
	if p.KeepAlive != 0 {
		b = append(b, `,"keepAlive":`...)
		b = strconv.AppendUint(b, uint64(p.KeepAlive), 10)
	}
	if p.TokenRenewal {
		b = append(b, `,"tokenRenewal":true`...)
	}
	b = appendOptString(b, `,"renewalOf":`, p.RenewalOf)
	return append(b, '}')
}

// appendJSON appends p as properties_s JSON.
func (p *IdentityProperties) appendJSON(b []byte) []byte {
	b = append(b, `{"maskedIpAddress":`...)
	b = appendJSONStringPtr(b, p.MaskedIP)
	b = append(b, `,"deviceId":`...)
	b = appendJSONString(b, p.DeviceID)
	b = appendOptString(b, `,"caller":`, p.Caller)
	b = appendOptString(b, `,"status":`, p.Status)
	b = appendOptString(b, `,"statusReason":`, p.StatusReason)
	b = appendOptString(b, `,"generationId":`, p.GenerationID)
	b = appendOptString(b, `,"etag":`, p.ETag)
	b = appendOptString(b, `,"primaryKeyFingerprint":`, p.PrimaryKey)
	b = appendOptString(b, `,"secondaryKeyFingerprint":`, p.SecondaryKey)
	return append(b, '}')
}

// appendOptString appends key and s unless s is empty (omitempty).
func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendJSONString(append(b, key...), s)
}

func appendJSONStringPtr(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendJSONString(b, *s)
}

// appendJSONString appends s as a JSON string the way encoding/json does
// with HTML escaping off: '"' and '\\' escaped, control characters as
// \b \f \n \r \t or \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped; everything else as is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
